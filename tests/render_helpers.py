"""Rendering checks that run in a child process.

pyrender's software OpenGL and TensorFlow (which other test files import) crash when they
share a process, so tests never import pyrender themselves: they run this file with the
project's Python and read back what it saved.

    python tests/render_helpers.py MOCAP_DIR OUT_NPZ
"""
import os
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
CLIP = "HDM_bd_throwBasketball_001_120"  # frame 0: standing, arms down at the sides
SIZE = (320, 240)


def run_child(*args, timeout: float = 600.0) -> subprocess.CompletedProcess:
    """Runs `python ARGS...` from the repository root; fails the test with its output."""
    env = dict(os.environ, PYTHONPATH=str(REPO), LP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"child process failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def render_checks(mocap_dir: pathlib.Path, out_npz: pathlib.Path) -> None:
    """Renders a real clip from seeded cameras and from both sides; saves what tests check."""
    from synth.appearance import Appearance
    from synth.avatars import CANONICAL_JOINTS, get_avatars
    from synth.cameras import Camera, look_at_rotation, place_cameras
    from synth.mocap_io import load_motion
    from synth.rendering import ClipRenderer, ImageGeometry, depth_to_png, undistort_points
    from synth.resample import resample
    from synth.retarget import Retargeter
    from synth.render import canonical_indices

    motion = resample(load_motion(mocap_dir / f"{CLIP}.amc"), 25.0)
    clip = Retargeter(motion, canonical_indices(motion, None))(get_avatars(["ben"])[0])
    layout17 = clip.canonical_indices[:17]
    renderer = ClipRenderer()
    appearance = Appearance.sample(np.random.default_rng(5))
    frames = np.arange(0, motion.num_frames, 6)
    cameras = place_cameras(clip.positions, 3, rng=7, image_sizes=(SIZE,))

    saved = {"frames": frames, "platform": np.array(renderer.platform)}
    hits, surface, joint_depth, visible, depth_png_error, floor_height = [], [], [], [], [], []
    for view in renderer.render(clip, cameras, appearance, frames):
        camera = cameras[view.camera]
        geometry = ImageGeometry(camera)
        points = camera.world_to_camera(clip.positions[view.frame, layout17])
        col, row = np.rint(geometry.image_pixels(points)).astype(int).T
        hits.append(view.mask[row, col])
        surface.append(view.depth[row, col])
        joint_depth.append(points[:, 2])
        visible.append(view.visibility[layout17])
        drawn = view.depth > 0
        depth_png_error.append(np.abs(depth_to_png(view.depth)[drawn] * 1e-3
                                      - view.depth[drawn]).max())
        # Floor pixels of the distorted image, back-projected through the lens, lie on z = 0
        # (to a fraction of their depth: a depth sample may sit half a pixel off).
        rows, cols = np.nonzero(drawn & ~view.mask & (view.depth < 8.0))
        pick = np.linspace(0, len(rows) - 1, 200).astype(int)
        xy = undistort_points(camera, np.stack([(cols[pick] - camera.cx) / camera.fx,
                                                (rows[pick] - camera.cy) / camera.fy], -1))
        ray_points = np.concatenate([xy, np.ones((len(pick), 1))], -1)
        ray_points *= view.depth[rows[pick], cols[pick]][:, None]
        floor_height.append(np.max(np.abs(camera.camera_to_world(ray_points)[:, 2])
                                   / ray_points[:, 2]))
    saved.update(mask_hits=np.array(hits), surface_depth=np.array(surface),
                 joint_depth=np.array(joint_depth), visible=np.array(visible),
                 depth_png_error=np.array(depth_png_error), floor_height=np.array(floor_height))

    # Side views of frame 0: cameras 4 m to the person's left and right, at chest height.
    names = {n: i for i, n in enumerate(CANONICAL_JOINTS)}
    pose = clip.canonical_positions[0]
    left = pose[names["l_shoulder"]] - pose[names["r_shoulder"]]
    left[2] = 0.0
    left /= np.linalg.norm(left)
    target = pose[names["hip"]] + [0.0, 0.0, 0.2]
    sides = []
    for sign in (1.0, -1.0):
        centre = target + sign * 4.0 * left
        rotation = look_at_rotation(centre, target)
        sides.append(Camera(*SIZE, 260.0, 260.0, 160.0, 120.0, (-0.1, 0.02, 0.0), (0.0, 0.0),
                            rotation, -rotation @ centre))
    side_visible = np.zeros((2, 17), bool)
    for view in renderer.render(clip, sides, appearance, [0]):
        side_visible[view.camera] = view.visibility[layout17]
    saved["side_visible"] = side_visible
    np.savez(out_npz, **saved)


if __name__ == "__main__":
    render_checks(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
