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


def save_comparison_gif(panels, layout: JointLayout, path, fps: float = 25.0, reference=None,
                        captions=None, title: str = "", dpi: int = 72) -> pathlib.Path:
    """Pose sequences side by side, one 3D panel each, as an animated GIF.

    panels: {panel title: (T, J, 3) metres, camera space}, all of one length T.
    reference: optional (T, J, 3) drawn thin and grey in every panel (e.g. ground truth).
    captions: optional {panel title: T strings} shown under each panel per frame (e.g. the
    latency of that frame). title: a line above all panels.
    """
    panels = {name: np.asarray(poses, np.float32) for name, poses in panels.items()}
    everything = np.concatenate(list(panels.values()) +
                                ([np.asarray(reference, np.float32)] if reference is not None
                                 else []))
    fig = plt.figure(figsize=(4 * len(panels), 4.4))
    if title:
        fig.suptitle(title, fontsize=10)
    updates = []
    for i, (name, poses) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1, projection="3d")
        _setup_axes(ax, everything, name)
        drawn = [(poses, _draw(ax, poses[0], layout))]
        if reference is not None:
            ghost = _draw(ax, reference[0], layout)
            for line, _, _ in ghost:
                line.set_color("0.75")
                line.set_linewidth(1.2)
            drawn.append((np.asarray(reference, np.float32), ghost))
        text = fig.text((i + 0.5) / len(panels), 0.03, "", ha="center", fontsize=10)
        updates.append((drawn, text, (captions or {}).get(name)))

    def update(frame):
        changed = []
        for drawn, text, lines in updates:
            for poses, artists in drawn:
                shown = _display(poses[frame])
                for line, parent, child in artists:
                    segment = shown[[parent, child]]
                    line.set_data(segment[:, 0], segment[:, 1])
                    line.set_3d_properties(segment[:, 2])
                    changed.append(line)
            if lines is not None:
                text.set_text(lines[frame])
                changed.append(text)
        return changed

    length = len(next(iter(panels.values())))
    movie = animation.FuncAnimation(fig, update, frames=length, interval=1000 / fps)
    movie.save(path, writer=animation.PillowWriter(fps=fps), dpi=dpi)
    plt.close(fig)
    return pathlib.Path(path)
