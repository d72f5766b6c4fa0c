"""Pictures of 3D skeletons with matplotlib (Agg backend: no display needed).

Poses are camera-space (x right, y down, z forward); they are drawn with z as depth and -y up,
so the skeleton stands as the camera saw it. Left limbs blue, right limbs red.
"""
from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import animation  # noqa: E402

from posecontract.layouts import JointLayout  # noqa: E402


def _display(points: np.ndarray) -> np.ndarray:
    """Camera (x, y down, z forward) -> plot (x, z, -y)."""
    return np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1)


def _bone_colour(layout: JointLayout, child: int) -> str:
    name = layout.names[child]
    return "tab:blue" if name.startswith("l_") else "tab:red" if name.startswith("r_") \
        else "0.3"


def _setup_axes(ax, poses: np.ndarray, title: str = "") -> None:
    points = _display(poses).reshape(-1, 3)
    centre = (points.max(0) + points.min(0)) / 2
    radius = max(float(np.max(points.max(0) - points.min(0))) / 2, 0.5)
    ax.set_xlim(centre[0] - radius, centre[0] + radius)
    ax.set_ylim(centre[1] - radius, centre[1] + radius)
    ax.set_zlim(centre[2] - radius, centre[2] + radius)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x (m)")
    ax.set_ylabel("depth (m)")
    ax.set_zlabel("up (m)")
    ax.view_init(elev=15, azim=-70)
    if title:
        ax.set_title(title)


def _draw(ax, pose: np.ndarray, layout: JointLayout):
    shown = _display(pose)
    artists = []
    for parent, child in layout.bones():
        segment = shown[[parent, child]]
        (line,) = ax.plot(segment[:, 0], segment[:, 1], segment[:, 2],
                          color=_bone_colour(layout, child), linewidth=2.5)
        artists.append((line, parent, child))
    return artists


def save_pose_png(pose, layout: JointLayout, path, title: str = "") -> pathlib.Path:
    """One pose (J, 3) metres, camera space -> PNG."""
    pose = np.asarray(pose, np.float32)
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(projection="3d")
    _setup_axes(ax, pose[None], title)
    _draw(ax, pose, layout)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return pathlib.Path(path)


def save_pose_gif(poses, layout: JointLayout, path, fps: float = 25.0,
                  title: str = "") -> pathlib.Path:
    """A pose sequence (T, J, 3) metres, camera space -> animated GIF (Pillow writer)."""
    poses = np.asarray(poses, np.float32)
    fig = plt.figure(figsize=(4, 4))
    ax = fig.add_subplot(projection="3d")
    _setup_axes(ax, poses, title)
    artists = _draw(ax, poses[0], layout)

    def update(frame):
        shown = _display(poses[frame])
        for line, parent, child in artists:
            segment = shown[[parent, child]]
            line.set_data(segment[:, 0], segment[:, 1])
            line.set_3d_properties(segment[:, 2])
        return [line for line, _, _ in artists]

    movie = animation.FuncAnimation(fig, update, frames=len(poses), interval=1000 / fps)
    movie.save(path, writer=animation.PillowWriter(fps=fps))
    plt.close(fig)
    return pathlib.Path(path)
