"""Rendering a retargeted clip to images: RGB, depth, person mask and per-joint visibility.

The avatar's skinned mesh (`synth.skinning`) stands on a textured floor in front of a
gradient backdrop, lit by a key and a fill light, all chosen per clip and avatar by
`synth.appearance.Appearance`. pyrender draws it offscreen with software OpenGL (OSMesa) on
machines without a GPU and with EGL where one exists; `choose_platform` decides, and the
``SYNTH_RENDERER`` environment variable or the `renderer` option (osmesa, egl, auto)
overrides it. TensorFlow and this module must never share a process (their LLVMs clash):
render in worker processes started with "spawn".

Geometry: a pinhole render is undistorted, so each camera is first rendered on an
undistorted canvas (same focal length, enlarged or cropped to cover the preimage of the
image) and then warped with the camera's distortion (`ImageGeometry`), so a joint's
`Camera.project` keypoint falls on that joint in the image. Pixel coordinates follow OpenCV:
the centre of pixel (row i, column j) is (u, v) = (j, i). With an image scale s, the image is
round(s W) x round(s H) and a keypoint (u, v) sits at (s_x (u + 0.5) - 0.5, s_y (v + 0.5) - 0.5)
with s_x, s_y the exact width and height ratios.

Outputs per camera and frame: an sRGB PNG, optionally a 16-bit depth PNG (camera z,
millimetres, 0 where no surface or beyond 65.535 m; the floor included) and a 1-bit
person-mask PNG (`np.asarray(Image.open(path))` gives a bool array). A joint is visible
when nothing lies in front of it by more than its local body radius
(`visibility_tolerance`): the depth buffer at its pixel is compared with its camera depth.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import pathlib
import struct
import sys
import time
import zlib
from collections import defaultdict
from typing import Dict, Iterator, Optional, Sequence

import numpy as np
from PIL import Image

from posecontract.layouts import H36M_17

from . import dataset as ds
from .appearance import Appearance, srgb_to_linear
from .cameras import Camera
from .retarget import RetargetedClip
from .skinning import Skinner, joint_radii, vertex_segments

RENDERER_ENV = "SYNTH_RENDERER"
PLATFORMS = ("osmesa", "egl")
ZNEAR, ZFAR = 0.1, 100.0
FLOOR_HALF_SIZE = 40.0  # metres, around the subject
DEPTH_UNIT = 0.001  # metres per depth-PNG step
PNG_COMPRESS_LEVEL = 1  # zlib level: 1 is several times faster than 6, files ~25 % larger
_SKIN_CHUNK = 32  # frames posed at once


@dataclasses.dataclass(frozen=True)
class ImageSettings:
    """What `--images` renders (stored in the dataset manifest).

    scale:      image size factor relative to the camera's (intrinsics scale with it).
    frame_step: render every n-th frame.
    depth, mask: also write 16-bit depth and person-mask PNGs.
    preview:    write a GIF per clip and avatar with the 2D skeleton over the renders.
    renderer:   "auto", "osmesa" or "egl".
    """

    scale: float = 1.0
    frame_step: int = 1
    depth: bool = False
    mask: bool = False
    preview: bool = True
    renderer: str = "auto"

    def __post_init__(self):
        if not self.scale > 0 or self.frame_step < 1:
            raise ValueError(f"image scale must be > 0 and frame step >= 1, got "
                             f"{self.scale}, {self.frame_step}")
        if self.renderer not in PLATFORMS + ("auto",):
            raise ValueError(f"renderer must be auto, osmesa or egl, got {self.renderer!r}")


# --- OpenGL platform --------------------------------------------------------------------------

def has_gpu() -> bool:
    """Whether this machine exposes a GPU device node (NVIDIA or a DRM render node)."""
    return bool(glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/dri/renderD*"))


def choose_platform(requested: Optional[str] = None) -> str:
    """"osmesa" or "egl": `requested`, else $SYNTH_RENDERER, else EGL where a GPU exists."""
    requested = requested or os.environ.get(RENDERER_ENV) or "auto"
    if requested == "auto":
        return "egl" if has_gpu() else "osmesa"
    if requested not in PLATFORMS:
        raise ValueError(f"renderer must be auto, osmesa or egl, got {requested!r}")
    return requested


def use_platform(requested: Optional[str] = None) -> str:
    """Sets PYOPENGL_PLATFORM for `choose_platform(requested)`; PyOpenGL reads it once, when
    it is first imported, so a process that already loaded another platform cannot switch.
    Refuses to run beside TensorFlow."""
    platform = choose_platform(requested)
    if "tensorflow" in sys.modules:  # fail clearly instead of crashing (exit 139)
        raise RuntimeError("TensorFlow is loaded in this process and its LLVM clashes with "
                           "software OpenGL: render in another process (python -m "
                           "synth.render, or render_dataset with workers >= 2)")
    loaded = "OpenGL.GL" in sys.modules
    if loaded and os.environ.get("PYOPENGL_PLATFORM") != platform:
        raise RuntimeError(f"PyOpenGL is already loaded for platform "
                           f"{os.environ.get('PYOPENGL_PLATFORM')!r}; cannot switch to "
                           f"{platform!r} in this process")
    os.environ["PYOPENGL_PLATFORM"] = platform
    return platform


def _import_pyrender():
    if not hasattr(np, "infty"):  # removed in NumPy 2, still used by pyrender 0.1.45
        np.infty = np.inf
    import pyrender
    return pyrender


# --- camera geometry and distortion -----------------------------------------------------------

class ImageGeometry:
    """One camera's image at a scale, the undistorted canvas it is rendered on, and the warp.

    width, height:      output image size, pixels.
    fx, fy, cx, cy:     output intrinsics, pixels (OpenCV pixel centres).
    canvas_width, canvas_height, canvas_cx, canvas_cy: the undistorted render (same focal
                        lengths), covering the preimage of every output pixel.
    Warps sample the canvas at each output pixel's undistorted position (bilinear for colour,
    nearest for depth and masks), over the whole image or a box of it.
    """

    def __init__(self, camera: Camera, scale: float = 1.0, max_growth: float = 2.0):
        self.camera = camera
        self.width = max(1, int(round(camera.width * scale)))
        self.height = max(1, int(round(camera.height * scale)))
        sx, sy = self.width / camera.width, self.height / camera.height
        self.scale_xy = np.array([sx, sy])
        self.fx, self.fy = camera.fx * sx, camera.fy * sy
        self.cx, self.cy = sx * (camera.cx + 0.5) - 0.5, sy * (camera.cy + 0.5) - 0.5
        v, u = np.mgrid[0:self.height, 0:self.width].astype(np.float64)
        distorted = np.stack([(u - self.cx) / self.fx, (v - self.cy) / self.fy], axis=-1)
        xy = undistort_points(camera, distorted)
        cu, cv = self.fx * xy[..., 0] + self.cx, self.fy * xy[..., 1] + self.cy
        # The canvas covers every source pixel, with a pixel of margin for bilinear taps.
        u0 = int(np.floor(max(cu.min(), self.cx - max_growth * self.width))) - 1
        v0 = int(np.floor(max(cv.min(), self.cy - max_growth * self.height))) - 1
        u1 = int(np.ceil(min(cu.max(), self.cx + max_growth * self.width))) + 2
        v1 = int(np.ceil(min(cv.max(), self.cy + max_growth * self.height))) + 2
        self.canvas_width, self.canvas_height = u1 - u0, v1 - v0
        self.canvas_cx, self.canvas_cy = self.cx - u0, self.cy - v0
        self._prepare_warp(cu - u0, cv - v0)

    def _prepare_warp(self, cu: np.ndarray, cv: np.ndarray) -> None:
        w = self.canvas_width
        j0 = np.clip(np.floor(cu), 0, w - 2).astype(np.int64)
        i0 = np.clip(np.floor(cv), 0, self.canvas_height - 2).astype(np.int64)
        fu = np.clip(cu - j0, 0.0, 1.0)
        fv = np.clip(cv - i0, 0.0, 1.0)
        base = i0 * w + j0
        self._taps = np.stack([base, base + 1, base + w, base + w + 1]).astype(np.int32)
        weights = np.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv])
        # 8-bit fixed point: the four weights sum to exactly 256.
        fixed = np.floor(weights * 256.0).astype(np.int32)
        best = np.argmax(weights, axis=0)[None]
        np.put_along_axis(fixed, best, np.take_along_axis(fixed, best, 0)
                          + 256 - fixed.sum(axis=0, keepdims=True), 0)
        self._weights = fixed.astype(np.uint16)
        self._nearest = np.take_along_axis(self._taps, best, 0)[0]

    def warp(self, canvas: np.ndarray, box: Optional[tuple] = None) -> np.ndarray:
        """Bilinear warp of an (H', W', 3) uint8 canvas to the (H, W, 3) distorted image, or
        to the output pixels of `box` (row slice, column slice)."""
        box = box or (slice(None), slice(None))
        taps, weights = self._taps[(slice(None),) + box], self._weights[(slice(None),) + box]
        flat = canvas.reshape(-1, canvas.shape[-1])
        out = flat[taps[0]] * weights[0][..., None]
        for k in range(1, 4):
            out += flat[taps[k]] * weights[k][..., None]
        return (out >> 8).astype(np.uint8)

    def warp_nearest(self, canvas: np.ndarray, box: Optional[tuple] = None) -> np.ndarray:
        """Nearest-neighbour warp (depth, masks) of an (H', W', ...) canvas, whole or `box`."""
        box = box or (slice(None), slice(None))
        return canvas.reshape((-1,) + canvas.shape[2:])[self._nearest[box]]

    def output_box(self, rows: slice, cols: slice) -> tuple:
        """(row slice, column slice) of the output pixels whose warp reads the canvas box
        (rows, cols) (its distorted image, found from its sampled outline, plus margins)."""
        t = np.linspace(0.0, 1.0, 33)
        top, bottom = rows.start - 1.5, rows.stop + 0.5
        left, right = cols.start - 1.5, cols.stop + 0.5
        u = np.concatenate([left + (right - left) * t, np.full(33, right),
                            left + (right - left) * t, np.full(33, left)])
        v = np.concatenate([np.full(33, top), top + (bottom - top) * t,
                            np.full(33, bottom), top + (bottom - top) * t])
        xy = np.stack([(u - self.canvas_cx) / self.fx, (v - self.canvas_cy) / self.fy], -1)
        xy = self.camera.distort(xy)
        uo, vo = self.fx * xy[:, 0] + self.cx, self.fy * xy[:, 1] + self.cy
        r0 = int(np.clip(np.floor(vo.min()) - 1, 0, self.height))
        r1 = int(np.clip(np.ceil(vo.max()) + 2, 0, self.height))
        c0 = int(np.clip(np.floor(uo.min()) - 1, 0, self.width))
        c1 = int(np.clip(np.ceil(uo.max()) + 2, 0, self.width))
        return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))

    def canvas_pixels(self, points_cam: np.ndarray) -> np.ndarray:
        """(..., 3) camera-space points -> (..., 2) undistorted canvas pixels (u, v)."""
        z = np.where(points_cam[..., 2] > 1e-9, points_cam[..., 2], 1e-9)
        return np.stack([self.fx * points_cam[..., 0] / z + self.canvas_cx,
                         self.fy * points_cam[..., 1] / z + self.canvas_cy], axis=-1)

    def image_pixels(self, points_cam: np.ndarray) -> np.ndarray:
        """(..., 3) camera-space points -> (..., 2) pixels of the scaled, distorted image."""
        uv = self.camera.project(points_cam)
        return self.scale_xy * (uv + 0.5) - 0.5

    def floor_depth(self, floor_centre: np.ndarray, half_size: float = FLOOR_HALF_SIZE
                    ) -> np.ndarray:
        """(H', W') camera depth, metres, of the floor square z = 0 along each canvas pixel's
        ray; inf where the ray misses it."""
        v, u = np.mgrid[0:self.canvas_height, 0:self.canvas_width].astype(np.float64)
        rays = np.stack([(u - self.canvas_cx) / self.fx, (v - self.canvas_cy) / self.fy,
                         np.ones_like(u)], axis=-1)
        normal = self.camera.rotation[:, 2]  # world +Z in camera coordinates
        t = self.camera.translation
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = (normal @ t) / (rays @ normal)
            hit = self.camera.camera_to_world(rays * depth[..., None])
        inside = ((depth > ZNEAR) & (depth < ZFAR)
                  & np.all(np.abs(hit[..., :2] - floor_centre[:2]) <= half_size, axis=-1))
        return np.where(inside, depth, np.inf)


def undistort_points(camera: Camera, distorted: np.ndarray, tolerance: float = 1e-9,
                     max_iterations: int = 200) -> np.ndarray:
    """(..., 2) distorted normalised coordinates -> undistorted ones: the inverse of
    `Camera.distort`, by fixed-point iteration (its Jacobian is near the identity over the
    monotonic part of the lens that cameras keep images in)."""
    xy = distorted.copy()
    for _ in range(max_iterations):
        residual = camera.distort(xy) - distorted
        xy -= residual
        if np.abs(residual).max() < tolerance:
            break
    return xy


# --- visibility -------------------------------------------------------------------------------

def visibility_tolerance(radii: np.ndarray) -> np.ndarray:
    """Metres a surface may lie in front of a joint with the joint still visible: a little
    more than the body's local radius, which the joint's own limb always puts in front."""
    return 1.25 * np.asarray(radii) + 0.02


def joint_visibility(depth: np.ndarray, pixels: np.ndarray, joint_depth: np.ndarray,
                     tolerance: np.ndarray) -> np.ndarray:
    """(..., J) bool: joints whose rendered surface is not nearer than `tolerance`.

    depth:       (H, W) float rendered camera depth, metres, 0 where nothing was drawn.
    pixels:      (..., J, 2) the joints' pixels (u, v) in that render.
    joint_depth: (..., J) their camera depth, metres.
    tolerance:   (J,) metres.
    Joints outside the render or behind the camera are not visible.
    """
    h, w = depth.shape
    col = np.rint(pixels[..., 0]).astype(np.int64)
    row = np.rint(pixels[..., 1]).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (joint_depth > ZNEAR)
    surface = depth[np.clip(row, 0, h - 1), np.clip(col, 0, w - 1)]
    return inside & ((surface <= 0) | (joint_depth <= surface + tolerance))


# --- the renderer -----------------------------------------------------------------------------

@dataclasses.dataclass
class RenderedFrame:
    """One camera's view of one frame.

    rgb: (H, W, 3) uint8; depth: (H, W) float32 metres (0: nothing); mask: (H, W) bool;
    visibility: (J,) bool over the clip's full skeleton.
    """

    camera: int
    frame: int
    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    visibility: np.ndarray


class ClipRenderer:
    """An offscreen pyrender renderer, reused across clips (context creation is slow).

    timings: seconds spent per stage ("setup", "skin", "render", "warp"), accumulated, as
    measured by `clock` (wall time; `time.process_time` counts this process's CPU time).
    """

    def __init__(self, platform: Optional[str] = None, clock=time.perf_counter):
        self.clock = clock
        self.platform = use_platform(platform)
        self._pyrender = _import_pyrender()
        self._offscreen = _Offscreen(self.platform)
        self.timings: Dict[str, float] = defaultdict(float)

    def close(self) -> None:
        self._offscreen.delete()

    def render(self, clip: RetargetedClip, cameras: Sequence[Camera], appearance: Appearance,
               frames: Sequence[int], scale: float = 1.0) -> Iterator[RenderedFrame]:
        """Yields every camera's view of every frame in `frames`, camera by camera.

        The floor and backdrop do not move: each camera renders them once, and every frame
        then draws only the person, composites it over them by depth and warps the box
        around it.
        """
        pr, clock = self._pyrender, self.clock
        skinner = Skinner(clip)
        tolerance = self._tolerances(clip, skinner)
        person = self._person(skinner, appearance)
        vertex_data = np.concatenate([person.positions, person.normals, person.color_0], 1)
        floor_centre = np.array([*clip.positions[:, 0, :2].mean(axis=0), 0.0])
        person_scene = self._scene(appearance)
        person_scene.add(pr.Mesh([person]))
        static_scene = self._scene(appearance)
        static_scene.add(self._floor(appearance, floor_centre))
        frames = np.asarray(frames)
        for c, camera in enumerate(cameras):
            t0 = clock()
            geometry = ImageGeometry(camera, scale)
            camera_nodes = [scene.add(pr.IntrinsicsCamera(
                geometry.fx, geometry.fy, geometry.canvas_cx + 0.5, geometry.canvas_cy + 0.5,
                znear=ZNEAR, zfar=ZFAR), pose=_opencv_to_opengl_pose(camera))
                for scene in (static_scene, person_scene)]
            size = (geometry.canvas_width, geometry.canvas_height)
            still = _StaticView(self._offscreen.render(static_scene, *size), geometry,
                                appearance, floor_centre)
            # Anti-aliased (EGL) person edges blend with this: the static view's mean colour.
            person_scene.bg_color = np.append(still.rgb.reshape(-1, 3).mean(axis=0) / 255, 1)
            points_cam = camera.world_to_camera(clip.positions)
            canvas_pixels = geometry.canvas_pixels(points_cam)
            self.timings["setup"] += clock() - t0
            for start in range(0, len(frames), _SKIN_CHUNK):
                chunk = frames[start:start + _SKIN_CHUNK]
                t0 = clock()
                vertices, normals = skinner.pose(chunk)
                self.timings["skin"] += clock() - t0
                for i, frame in enumerate(chunk):
                    t0 = clock()
                    vertex_data[:, :3], vertex_data[:, 3:6] = vertices[i], normals[i]
                    self._offscreen.upload(person, vertex_data)
                    rgb, depth = self._offscreen.render(person_scene, *size)
                    t1 = clock()
                    view = still.composite(rgb, depth)
                    visible = joint_visibility(still.work_depth, canvas_pixels[frame],
                                               points_cam[frame, :, 2], tolerance)
                    still.restore()
                    self.timings["render"] += t1 - t0
                    self.timings["warp"] += clock() - t1
                    yield RenderedFrame(c, int(frame), *view, visible)
            for scene, node in zip((static_scene, person_scene), camera_nodes):
                scene.remove_node(node)

    @staticmethod
    def _tolerances(clip: RetargetedClip, skinner: Skinner) -> np.ndarray:
        """(J,) visibility tolerance of every source joint: that of the nearest canonical
        joint at rest."""
        tol19 = visibility_tolerance(joint_radii(skinner.mesh, skinner.rest))
        rest_full = clip.skeleton.rest_positions()
        distance = np.linalg.norm(rest_full[:, None] - skinner.rest[None], axis=-1)
        tolerance = tol19[np.argmin(distance, axis=1)]
        tolerance[clip.canonical_indices] = tol19
        return tolerance

    def _person(self, skinner: Skinner, appearance: Appearance):
        pr = self._pyrender
        colours = appearance.segment_colours()[vertex_segments(skinner.mesh)]
        if skinner.mesh.skin is not None:  # hands stay bare under long sleeves
            colours[skinner.mesh.skin] = appearance.skin
        return pr.Primitive(
            positions=skinner.mesh.vertices.astype(np.float32),
            normals=skinner.rest_normals.astype(np.float32),
            color_0=np.concatenate([srgb_to_linear(colours), np.ones((len(colours), 1))], 1),
            indices=skinner.mesh.faces.astype(np.uint32),
            material=pr.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                                                  metallicFactor=0.0, roughnessFactor=0.75))

    def _scene(self, appearance: Appearance):
        """A scene with the clip's lights and nothing else."""
        pr = self._pyrender
        scene = pr.Scene(bg_color=[0.0, 0.0, 0.0, 1.0],
                         ambient_light=np.array(appearance.ambient))
        for direction, colour, intensity in (
                (appearance.key_light_direction, appearance.key_light_colour,
                 appearance.key_light_intensity),
                (appearance.fill_light_direction, appearance.fill_light_colour,
                 appearance.fill_light_intensity)):
            scene.add(pr.DirectionalLight(color=np.array(colour), intensity=intensity),
                      pose=_light_pose(np.array(direction)))
        return scene

    def _floor(self, appearance: Appearance, centre: np.ndarray):
        pr = self._pyrender
        half = FLOOR_HALF_SIZE
        corners = centre + np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0],
                                     [-half, half, 0]])
        texture = pr.Texture(source=appearance.floor_texture(), source_channels="RGB",
                             sampler=pr.Sampler())  # repeats, mipmapped
        material = pr.MetallicRoughnessMaterial(baseColorTexture=texture, metallicFactor=0.0,
                                                roughnessFactor=0.9)
        primitive = pr.Primitive(
            positions=corners.astype(np.float32),
            normals=np.tile([0.0, 0.0, 1.0], (4, 1)).astype(np.float32),
            texcoord_0=(corners[:, :2] / appearance.floor_tile).astype(np.float32),
            indices=np.array([[0, 1, 2], [0, 2, 3]], np.uint32), material=material)
        return pr.Mesh([primitive])


class _Offscreen:
    """pyrender's OffscreenRenderer without its costly habit here: on OSMesa (no framebuffer
    objects) it rebuilds the context, recompiling every shader, whenever the image size
    changes. This keeps one context, grows its buffer only for a larger canvas, and draws
    each image into the buffer's corner (EGL renders into resizable framebuffer objects)."""

    def __init__(self, platform: str):
        self.platform = platform
        self._context = None
        self._renderer = None
        self._size = (0, 0)

    def _create(self, width: int, height: int) -> None:
        self.delete()
        if self.platform == "egl":
            from pyrender.platforms import egl
            device = egl.get_device_by_index(int(os.environ.get("EGL_DEVICE_ID", "0")))
            self._context = egl.EGLPlatform(width, height, device=device)
        else:
            from pyrender.platforms.osmesa import OSMesaPlatform
            self._context = OSMesaPlatform(width, height)
        self._context.init_context()
        self._context.make_current()
        from pyrender.renderer import Renderer
        self._renderer = Renderer(width, height)
        self._size = (width, height)

    def render(self, scene, width: int, height: int):
        """(height, width, 3) uint8 colour and (height, width) float32 depth (metres, 0 where
        nothing was drawn) of `scene` from its camera."""
        from pyrender.constants import RenderFlags
        if self._context is None or (not self._context.supports_framebuffers()
                                     and (width > self._size[0] or height > self._size[1])):
            self._create(max(width, self._size[0]), max(height, self._size[1]))
        self._context.make_current()
        renderer = self._renderer
        renderer.viewport_width, renderer.viewport_height = width, height
        if self._context.supports_framebuffers():
            return renderer.render(scene, RenderFlags.OFFSCREEN)
        renderer.render(scene, RenderFlags.NONE)
        return renderer.read_color_buf(), renderer.read_depth_buf()

    def upload(self, primitive, vertex_data: np.ndarray) -> None:
        """New vertex positions and normals for a primitive, without rebuilding it.

        pyrender uploads `positions` and `normals` when it (re)creates the primitive's
        buffers (its first use in a context); afterwards the interleaved vertex buffer
        [position, normal, colour] is overwritten in place.
        """
        primitive.positions = vertex_data[:, :3]
        primitive.normals = vertex_data[:, 3:6]
        if primitive._vaid is None:
            return
        from OpenGL import GL
        data = np.ascontiguousarray(vertex_data, dtype=np.float32)
        self._context.make_current()
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, primitive._buffers[0])
        GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, data.nbytes, data)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)

    def delete(self) -> None:
        if self._context is not None:
            self._context.make_current()
            if self._renderer is not None:
                self._renderer.delete()
            self._context.delete_context()
        self._context = self._renderer = None
        self._size = (0, 0)


class _StaticView:
    """One camera's floor and backdrop, and the per-frame composite of the person over them.

    The canvas holds the static scene (rendered once); a frame's person render replaces it
    inside the person's box (where the person is nearer than the floor), that box is warped
    into a copy of the static image, and `restore` puts the static canvas back.
    """

    def __init__(self, render, geometry: ImageGeometry, appearance: Appearance,
                 floor_centre: np.ndarray):
        rgb, depth = render
        self.geometry = geometry
        empty = depth <= 0
        backdrop = appearance.background(geometry.canvas_width, geometry.canvas_height)
        self.rgb = np.where(empty[..., None], backdrop, rgb)
        self.depth = np.array(depth, dtype=np.float32)
        self.image_rgb = geometry.warp(self.rgb)
        self.image_depth = geometry.warp_nearest(self.depth)
        self.work_rgb, self.work_depth = self.rgb.copy(), self.depth.copy()
        self.work_mask = np.zeros(depth.shape, bool)
        floor = geometry.floor_depth(floor_centre)
        # Person pixels lie nearer than the floor by more than the depth buffer's precision.
        self.person_limit = np.where(np.isfinite(floor), floor * 0.999 - 0.003,
                                     np.inf).astype(np.float32)
        self._box = None

    def composite(self, rgb: np.ndarray, depth: np.ndarray):
        """The output (rgb, depth, mask) of a person render (canvas rgb and depth)."""
        g = self.geometry
        person = (depth > 0) & (depth < self.person_limit)
        out_rgb, out_depth = self.image_rgb.copy(), self.image_depth.copy()
        out_mask = np.zeros(out_depth.shape, bool)
        rows, cols = np.flatnonzero(person.any(axis=1)), np.flatnonzero(person.any(axis=0))
        if len(rows) == 0:
            return out_rgb, out_depth, out_mask
        box = (slice(max(rows[0] - 2, 0), rows[-1] + 3), slice(max(cols[0] - 2, 0), cols[-1] + 3))
        self._box = box
        inside = person[box]
        self.work_rgb[box] = np.where(inside[..., None], rgb[box], self.rgb[box])
        self.work_depth[box] = np.where(inside, depth[box], self.depth[box])
        self.work_mask[box] = inside
        out_box = g.output_box(*box)
        out_rgb[out_box] = g.warp(self.work_rgb, out_box)
        out_depth[out_box] = g.warp_nearest(self.work_depth, out_box)
        out_mask[out_box] = g.warp_nearest(self.work_mask, out_box)
        return out_rgb, out_depth, out_mask

    def restore(self) -> None:
        if self._box is not None:
            self.work_rgb[self._box] = self.rgb[self._box]
            self.work_depth[self._box] = self.depth[self._box]
            self.work_mask[self._box] = False
            self._box = None


def _opencv_to_opengl_pose(camera: Camera) -> np.ndarray:
    """(4, 4) camera-to-world pose of an OpenGL camera (x right, y up, looking down -z)
    that sees what the OpenCV camera sees."""
    pose = np.eye(4)
    pose[:3, :3] = camera.rotation.T @ np.diag([1.0, -1.0, -1.0])
    pose[:3, 3] = camera.position
    return pose


def _light_pose(direction: np.ndarray) -> np.ndarray:
    """(4, 4) pose of a pyrender directional light shining along `direction` (its -z)."""
    z = -direction / np.linalg.norm(direction)
    x = np.cross([0.0, 0.0, 1.0], z)
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0.0, 0.0])
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    return pose


# --- writing a clip's images ------------------------------------------------------------------

_RENDERERS: Dict[str, ClipRenderer] = {}


def get_renderer(platform: Optional[str] = None) -> ClipRenderer:
    """This process's renderer for `platform` (created once)."""
    name = choose_platform(None if platform in (None, "auto") else platform)
    if name not in _RENDERERS:
        _RENDERERS[name] = ClipRenderer(name)
    return _RENDERERS[name]


def image_frames(num_frames: int, settings: ImageSettings) -> np.ndarray:
    """(N,) int32 indices of the frames that get images."""
    return np.arange(0, num_frames, settings.frame_step, dtype=np.int32)


def frame_file(camera: int, frame: int, kind: str = "rgb") -> str:
    """Path of one image relative to the clip's image folder."""
    suffix = {"rgb": "", "depth": "_depth", "mask": "_mask"}[kind]
    return f"cam{camera}/{frame:06d}{suffix}.png"


def encode_png(image: np.ndarray, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) RGB, uint8 (H, W) grey or uint16 (H, W) grey image.

    Written here rather than by pillow, whose encoder always tries all five row filters for
    every row: that search costs more than the compression itself (17 vs 8 ms for a 640x480
    render, same size). Colour rows go unfiltered; 16-bit rows use the Sub filter, which
    shrinks smooth depth maps about twofold.
    """
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    if image.dtype == np.uint16 and image.ndim == 2:
        rows = image.astype(">u2").view(np.uint8).reshape(height, 2 * width)
        depth, colour_type, filter_type = 16, 0, 1
        filtered = rows.copy()
        filtered[:, 2:] -= rows[:, :-2]  # Sub: minus the same byte of the previous pixel
    elif image.dtype == np.uint8 and image.ndim in (2, 3):
        channels = 1 if image.ndim == 2 else image.shape[2]
        if channels not in (1, 3):
            raise ValueError(f"encode_png: 1 or 3 channels, got {channels}")
        filtered = image.reshape(height, -1)
        depth, colour_type, filter_type = 8, 0 if channels == 1 else 2, 0
    else:
        raise ValueError(f"encode_png: unsupported image {image.dtype} {image.shape}")
    raw = np.empty((height, filtered.shape[1] + 1), np.uint8)
    raw[:, 0] = filter_type
    raw[:, 1:] = filtered
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return b"".join([b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
                     _png_chunk(b"IEND", b"")])


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def write_png(path: pathlib.Path, image: np.ndarray) -> None:
    """Atomic PNG: uint8 (H, W, 3) RGB, uint16 (H, W) grey or bool (H, W) 1-bit."""
    with ds.atomic_path(path) as tmp:
        if image.dtype == bool:  # pillow packs bits; its filter search is cheap at 1 bit
            Image.fromarray(image).save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        else:
            tmp.write_bytes(encode_png(image))


def depth_to_png(depth: np.ndarray) -> np.ndarray:
    """(H, W) float metres -> uint16 millimetres (0: nothing drawn, or beyond 65.535 m)."""
    mm = np.rint(np.asarray(depth, np.float64) / DEPTH_UNIT)
    return np.where((mm > 0) & (mm < 65536), mm, 0).astype(np.uint16)


def render_clip_images(clip: RetargetedClip, cameras: Sequence[Camera],
                       appearance: Appearance, folder: pathlib.Path, settings: ImageSettings,
                       renderer: Optional[ClipRenderer] = None) -> Dict[str, object]:
    """Renders and writes one clip x avatar's images under `folder` (see `frame_file`).

    renderer: default a new one, closed afterwards (`get_renderer` gives a reused one, for
    benchmarks; its images may then depend on what it rendered before).

    Returns arrays for the clip record — ``image_frames`` (N,) int32, ``image_size``
    (C, 2) int32 (width, height), ``visibility`` (C, N, 17) bool and ``visibility_full``
    (C, N, J) bool — and ``timings`` (seconds per stage, PNG writing included) and, when
    ``settings.preview``, ``preview`` (the preview GIF's path).
    """
    from .preview import PreviewCollector  # drawing sits beside, not inside, rendering

    if renderer is None:
        # A fresh renderer per clip: an image must not depend on what its process rendered
        # before (a grown OSMesa buffer, pyrender's caches), so any worker count, order,
        # shard or resume writes identical files. Costs one context (0.05-0.4 s) per clip.
        renderer = ClipRenderer(choose_platform(None if settings.renderer in (None, "auto")
                                                else settings.renderer))
        try:
            return render_clip_images(clip, cameras, appearance, folder, settings, renderer)
        finally:
            renderer.close()
    folder = pathlib.Path(folder)
    frames = image_frames(clip.positions.shape[0], settings)
    layout17 = clip.canonical_indices[:H36M_17.num_joints]
    visibility = np.zeros((len(cameras), len(frames), clip.positions.shape[1]), bool)
    slot = {int(f): i for i, f in enumerate(frames)}
    preview = PreviewCollector(clip, cameras, frames, settings.scale) if settings.preview \
        else None
    clock = renderer.clock
    before = dict(renderer.timings)
    write_seconds = 0.0
    sizes = []
    for view in renderer.render(clip, cameras, appearance, frames, settings.scale):
        visibility[view.camera, slot[view.frame]] = view.visibility
        t0 = clock()
        write_png(folder / frame_file(view.camera, view.frame), view.rgb)
        if settings.depth:
            write_png(folder / frame_file(view.camera, view.frame, "depth"),
                      depth_to_png(view.depth))
        if settings.mask:
            write_png(folder / frame_file(view.camera, view.frame, "mask"), view.mask)
        write_seconds += clock() - t0
        if preview is not None:
            preview.add(view)
        if len(sizes) == view.camera:
            sizes.append((view.rgb.shape[1], view.rgb.shape[0]))
    timings = {k: renderer.timings[k] - before.get(k, 0.0) for k in renderer.timings}
    timings["write"] = write_seconds
    result: Dict[str, object] = {
        "image_frames": frames,
        "image_size": np.array(sizes, np.int32).reshape(len(cameras), 2),
        "visibility": visibility[:, :, layout17],
        "visibility_full": visibility,
        "timings": timings,
    }
    if preview is not None:
        path = folder / "preview.gif"
        preview.write(path, result["visibility"])
        result["preview"] = path
    return result


def image_folder(dataset_dir: pathlib.Path, clip_key: str, avatar: str) -> pathlib.Path:
    """Where one clip x avatar's images go: ``images/<clip_key>__<avatar>``."""
    return pathlib.Path(dataset_dir) / "images" / f"{clip_key}__{avatar}"


def manifest_images_entry(dataset_dir: pathlib.Path, folder: pathlib.Path,
                          settings: ImageSettings, result: Dict[str, object]) -> dict:
    """The manifest's description of a clip x avatar's images (paths relative)."""
    entry = {"dir": pathlib.Path(folder).relative_to(dataset_dir).as_posix(),
             "rgb": "cam{camera}/{frame:06d}.png",
             "depth": "cam{camera}/{frame:06d}_depth.png" if settings.depth else None,
             "mask": "cam{camera}/{frame:06d}_mask.png" if settings.mask else None,
             "frame_step": settings.frame_step, "num_frames": int(len(result["image_frames"])),
             "scale": settings.scale,
             "image_size": np.asarray(result["image_size"]).tolist(),
             "preview": (pathlib.Path(result["preview"]).relative_to(dataset_dir).as_posix()
                         if "preview" in result else None)}
    return entry


def record_arrays(result: Dict[str, object]) -> Dict[str, np.ndarray]:
    """The image-derived arrays of a clip record (README: "What a clip record holds")."""
    return {"image_frames": np.asarray(result["image_frames"], np.int32),
            "image_size": np.asarray(result["image_size"], np.int32),
            "visibility": np.asarray(result["visibility"], bool),
            "visibility_full": np.asarray(result["visibility_full"], bool)}

