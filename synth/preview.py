"""A preview GIF per clip and avatar: the 2D skeleton drawn over the rendered images.

Each GIF frame tiles every camera's view of one frame (up to `MAX_FRAMES` frames spread over
the clip), cropped around the person, with the record's distorted 2D keypoints on top, so a
person can check at a glance that skeleton and body agree. Left limbs are drawn red, right
limbs blue, the trunk green; a joint hidden by the body (`visibility` False) is a hollow
white ring and the bones that reach it are thin.
"""
from __future__ import annotations

import math
import pathlib
from typing import Dict, List, Sequence

import numpy as np
from PIL import Image, ImageDraw

from posecontract.layouts import H36M_17

from . import dataset as ds
from .cameras import Camera
from .retarget import RetargetedClip

MAX_FRAMES = 24
TILE_SIZE = (200, 260)  # pixels (width, height) per camera view in the preview
FRAME_SECONDS = 0.2

_LEFT, _RIGHT, _TRUNK = (235, 60, 50), (40, 110, 240), (40, 190, 70)


def _side_colour(joint: int):
    name = H36M_17.names[joint]
    return _LEFT if name.startswith("l_") else _RIGHT if name.startswith("r_") else _TRUNK


def draw_skeleton(image: Image.Image, keypoints: np.ndarray, visible: np.ndarray,
                  radius: float = 3.0) -> None:
    """Draws the 17-joint skeleton (`posecontract.layouts.H36M_17`) onto `image` in place.

    keypoints: (17, 2) pixels (u, v) in `image`; visible: (17,) bool.
    """
    draw = ImageDraw.Draw(image)
    for parent, child in H36M_17.bones():
        both = bool(visible[parent] and visible[child])
        draw.line([tuple(keypoints[parent]), tuple(keypoints[child])],
                  fill=_side_colour(child), width=3 if both else 1)
    for joint, (u, v) in enumerate(keypoints):
        box = [u - radius, v - radius, u + radius, v + radius]
        if visible[joint]:
            draw.ellipse(box, fill=_side_colour(joint), outline=(0, 0, 0))
        else:
            draw.ellipse(box, fill=None, outline=(255, 255, 255), width=2)


class PreviewCollector:
    """Keeps thumbnails of a few frames while a clip renders, then writes the GIF.

    clip, cameras: what is rendered; frames: (N,) the rendered frame indices; scale: the
    image scale of the renders.
    """

    def __init__(self, clip: RetargetedClip, cameras: Sequence[Camera], frames: np.ndarray,
                 scale: float):
        self.clip = clip
        self.cameras = list(cameras)
        picks = np.unique(np.linspace(0, len(frames) - 1, min(MAX_FRAMES, len(frames)))
                          .round().astype(int))
        self.frames = [int(frames[i]) for i in picks]
        self.slots = {int(f): i for i, f in enumerate(frames)}
        self.thumbnails: Dict[tuple, Image.Image] = {}
        # Per camera: the image's scale and a crop box (left, top, zoom) of the tile's
        # aspect around every joint of the preview frames.
        self.crops = []
        width, height = TILE_SIZE
        for camera in self.cameras:
            ratio = np.array([round(camera.width * scale) / camera.width,
                              round(camera.height * scale) / camera.height])
            uv = ratio * (camera.project_world(clip.positions[self.frames]) + 0.5) - 0.5
            low, high = uv.reshape(-1, 2).min(axis=0), uv.reshape(-1, 2).max(axis=0)
            centre, extent = 0.5 * (low + high), 1.3 * (high - low) + 8.0
            zoom = min(width / extent[0], height / extent[1])
            left, top = centre - 0.5 * np.array([width, height]) / zoom
            self.crops.append((ratio, left, top, zoom))

    def add(self, view) -> None:
        """Keeps a `synth.rendering.RenderedFrame` if its frame is one of the preview's."""
        if view.frame not in self.frames:
            return
        _, left, top, zoom = self.crops[view.camera]
        width, height = TILE_SIZE
        box = (left, top, left + width / zoom, top + height / zoom)
        self.thumbnails[(view.camera, view.frame)] = Image.fromarray(view.rgb).transform(
            TILE_SIZE, Image.Transform.EXTENT, box, Image.Resampling.BILINEAR)

    def write(self, path: pathlib.Path, visibility: np.ndarray) -> None:
        """Writes the GIF atomically; visibility: (C, N, 17) bool of the rendered frames."""
        layout17 = self.clip.canonical_indices[:H36M_17.num_joints]
        num = len(self.cameras)
        columns = min(num, 4 if num <= 8 else math.ceil(math.sqrt(num)))
        rows = math.ceil(num / columns)
        width, height = TILE_SIZE
        pages: List[Image.Image] = []
        for frame in self.frames:
            page = Image.new("RGB", (columns * width, rows * height), (0, 0, 0))
            for c, camera in enumerate(self.cameras):
                tile = self.thumbnails[(c, frame)].copy()
                # The record's keypoints (distorted), in the tile's pixels.
                ratio, left, top, zoom = self.crops[c]
                uv = ratio * (camera.project_world(self.clip.positions[frame, layout17])
                              + 0.5) - 0.5
                draw_skeleton(tile, (uv + 0.5 - [left, top]) * zoom - 0.5,
                              visibility[c, self.slots[frame]])
                ImageDraw.Draw(tile).text((4, 2), f"cam{c} frame {frame}", fill=(255, 255, 255))
                page.paste(tile, ((c % columns) * width, (c // columns) * height))
            pages.append(page)
        with ds.atomic_path(path) as tmp:
            pages[0].save(tmp, format="GIF", save_all=True, append_images=pages[1:],
                          duration=int(FRAME_SECONDS * 1000), loop=0)
