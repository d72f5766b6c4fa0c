"""Virtual cameras: a pinhole model with OpenCV (Brown-Conrady) distortion, and their placement.

Frames: the world is right-handed, Z up, metres (see `synth.motion`). Camera space follows
OpenCV: x right, y down, z forward (depth), metres; ``X_cam = R @ X_world + t``. Pixel
coordinates have their origin at the top-left corner of the image, u right, v down.

`place_cameras` puts seeded cameras around a clip so that every joint of every frame stays
in the image; the same seed and input always give the same cameras.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
from scipy.spatial.transform import Rotation

from synth.kinematics import quat_canonical

#: Image sizes (width, height) in pixels that `place_cameras` chooses among by default:
#: Human3.6M, full HD, HD and VGA.
COMMON_IMAGE_SIZES: Tuple[Tuple[int, int], ...] = ((1000, 1000), (1920, 1080), (1280, 720),
                                                   (640, 480))

#: Layout of `Camera.intrinsics_vector`, shared with ``vp3dkeras.camera.project_to_2d``.
INTRINSICS_LAYOUT: Tuple[str, ...] = ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "p1", "p2")


@dataclasses.dataclass
class Camera:
    """One calibrated camera.

    width, height:  image size, pixels.
    fx, fy:         focal lengths, pixels.
    cx, cy:         principal point, pixels.
    k:              (3,) radial distortion (k1, k2, k3).
    p:              (2,) tangential distortion (p1, p2).
    rotation:       (3, 3) float64, world -> camera rotation R (orthonormal, det +1).
    translation:    (3,) float64, metres, t in ``X_cam = R @ X_world + t``.
    name:           optional label, e.g. ``"cam0"``.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    k: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    p: Tuple[float, float] = (0.0, 0.0)
    rotation: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    name: str = ""

    def __post_init__(self):
        self.width, self.height = int(self.width), int(self.height)
        self.fx, self.fy, self.cx, self.cy = (float(v) for v in (self.fx, self.fy, self.cx, self.cy))
        self.k = tuple(float(v) for v in self.k)
        self.p = tuple(float(v) for v in self.p)
        self.rotation = np.asarray(self.rotation, dtype=np.float64)
        self.translation = np.asarray(self.translation, dtype=np.float64)
        if len(self.k) != 3 or len(self.p) != 2:
            raise ValueError(f"camera needs 3 radial and 2 tangential coefficients, "
                             f"got k={self.k}, p={self.p}")
        if self.rotation.shape != (3, 3) or self.translation.shape != (3,):
            raise ValueError(f"camera rotation must be (3, 3) and translation (3,), got "
                             f"{self.rotation.shape} and {self.translation.shape}")
        if self.width <= 0 or self.height <= 0 or self.fx <= 0 or self.fy <= 0:
            raise ValueError("camera image size and focal lengths must be positive")

    # --- geometry -----------------------------------------------------------------------

    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world points, metres -> (..., 3) camera-space points, metres."""
        points_world = np.asarray(points_world, dtype=np.float64)
        return points_world @ self.rotation.T + self.translation

    def camera_to_world(self, points_cam: np.ndarray) -> np.ndarray:
        """(..., 3) camera-space points, metres -> (..., 3) world points, metres."""
        points_cam = np.asarray(points_cam, dtype=np.float64)
        return (points_cam - self.translation) @ self.rotation

    def distort(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) normalised image coordinates (X/Z, Y/Z) -> (..., 2) distorted ones."""
        x, y = xy[..., 0], xy[..., 1]
        k1, k2, k3 = self.k
        p1, p2 = self.p
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        return np.stack([xd, yd], axis=-1)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """(..., 3) camera-space points, metres -> (..., 2) pixels (u, v), OpenCV distortion.

        Points at or behind the camera (Z <= 0) give meaningless pixels; use `in_frame` to
        test visibility.
        """
        points_cam = np.asarray(points_cam, dtype=np.float64)
        xy = points_cam[..., :2] / points_cam[..., 2:3]
        xy = self.distort(xy)
        return np.stack([self.fx * xy[..., 0] + self.cx, self.fy * xy[..., 1] + self.cy],
                        axis=-1)

    def project_world(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world points, metres -> (..., 2) pixels."""
        return self.project(self.world_to_camera(points_world))

    def in_frame(self, points_world: np.ndarray, margin: float = 0.0,
                 min_depth: float = 0.1) -> np.ndarray:
        """(...,) bool: the world point lies in front of the camera and inside the image.

        margin:     fraction of the image's width/height kept free on every side.
        min_depth:  metres; nearer points count as not visible.
        A point also counts as not visible beyond `monotonic_radius`, where the distortion
        polynomial folds back and would land far-off points inside the image.
        """
        # Written out in components: this runs on every joint of every frame while cameras
        # are placed, and the generic project() path allocates several times more.
        points_world = np.asarray(points_world, dtype=np.float64)
        cam = points_world @ self.rotation.T + self.translation
        depth = cam[..., 2]
        inv_depth = 1.0 / np.where(depth > min_depth, depth, 1.0)
        x, y = cam[..., 0] * inv_depth, cam[..., 1] * inv_depth
        (k1, k2, k3), (p1, p2) = self.k, self.p
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xy2 = 2.0 * x * y
        u = self.fx * (x * radial + p1 * xy2 + p2 * (r2 + 2.0 * x * x)) + self.cx
        v = self.fy * (y * radial + p1 * (r2 + 2.0 * y * y) + p2 * xy2) + self.cy
        mu, mv = margin * self.width, margin * self.height
        return ((depth > min_depth) & (r2 < self.monotonic_radius() ** 2)
                & (u >= mu) & (u <= self.width - mu) & (v >= mv) & (v <= self.height - mv))

    def monotonic_radius(self) -> float:
        """Normalised (undistorted) radius up to which the radial distortion is increasing.

        With ``r_d(r) = r (1 + k1 r^2 + k2 r^4 + k3 r^6)``, returns the smallest r > 0 where
        ``dr_d/dr = 1 + 3 k1 r^2 + 5 k2 r^4 + 7 k3 r^6`` reaches zero, or ``inf``.
        """
        return _monotonic_radius(self.k)

    def image_corner_radius(self) -> float:
        """Largest normalised distorted radius of the four image corners."""
        return _corner_radius(self.width, self.height, self.fx, self.fy, self.cx, self.cy)

    def distortion_is_monotonic(self, headroom: float = 1.05) -> bool:
        """Whether the radial distortion increases over the whole image, with headroom.

        True when the distorted radius reached at `monotonic_radius` exceeds the image
        corners' radius by the factor `headroom`, so every pixel has a single preimage on
        the increasing branch.
        """
        return _covers_image(self.k, self.image_corner_radius() * headroom)

    # --- pose ---------------------------------------------------------------------------

    @property
    def position(self) -> np.ndarray:
        """(3,) camera centre in world coordinates, metres: ``-R^T t``."""
        return -self.rotation.T @ self.translation

    def orientation_quaternion(self) -> np.ndarray:
        """(4,) unit quaternion (w, x, y, z), w >= 0, of the camera -> world rotation R^T.

        With it, ``X_world = rotate(q, X_cam) + position`` (VideoPose3D's convention).
        """
        q = Rotation.from_matrix(self.rotation.T).as_quat(scalar_first=True)
        return quat_canonical(q)

    def intrinsic_matrix(self) -> np.ndarray:
        """(3, 3) float64 K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], pixels."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def intrinsics_vector(self) -> np.ndarray:
        """(9,) float32 ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` in pixels (`INTRINSICS_LAYOUT`)."""
        return np.array([self.fx, self.fy, self.cx, self.cy, *self.k, *self.p], dtype=np.float32)

    # --- serialisation ------------------------------------------------------------------

    def to_dict(self) -> Dict:
        """JSON-able dict of plain floats, ints, strings and lists; inverse of `from_dict`."""
        return {"name": self.name, "width": self.width, "height": self.height,
                "fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy,
                "k": list(self.k), "p": list(self.p),
                "rotation": self.rotation.tolist(), "translation": self.translation.tolist()}

    @classmethod
    def from_dict(cls, data: Dict) -> "Camera":
        return cls(width=data["width"], height=data["height"], fx=data["fx"], fy=data["fy"],
                   cx=data["cx"], cy=data["cy"], k=data["k"], p=data["p"],
                   rotation=data["rotation"], translation=data["translation"],
                   name=data.get("name", ""))

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """NumPy arrays for an ``.npz`` (stack over cameras for a clip record).

        image_size:   (2,) int32 (width, height), pixels.
        intrinsics:   (9,) float32 `intrinsics_vector` layout, pixels.
        rotation:     (3, 3) float64 world -> camera.
        translation:  (3,) float64 metres, ``X_cam = R @ X_world + t``.
        position:     (3,) float64 metres, camera centre in the world.
        orientation:  (4,) float64 quaternion (w, x, y, z), camera -> world.
        """
        return {"image_size": np.array([self.width, self.height], dtype=np.int32),
                "intrinsics": self.intrinsics_vector(),
                "rotation": self.rotation.copy(), "translation": self.translation.copy(),
                "position": self.position, "orientation": self.orientation_quaternion()}

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray], name: str = "") -> "Camera":
        """Inverse of `to_arrays` (intrinsics come back at float32 precision)."""
        fx, fy, cx, cy, k1, k2, k3, p1, p2 = np.asarray(arrays["intrinsics"], np.float64)
        width, height = np.asarray(arrays["image_size"]).tolist()
        return cls(width, height, fx, fy, cx, cy, (k1, k2, k3), (p1, p2),
                   arrays["rotation"], arrays["translation"], name)


# --- distortion helpers ----------------------------------------------------------------------

def _monotonic_radius(k: Sequence[float]) -> float:
    return _monotonic_radius_cached(tuple(float(c) for c in k))


@functools.lru_cache(maxsize=1024)
def _monotonic_radius_cached(k: Tuple[float, float, float]) -> float:
    k1, k2, k3 = k
    # dr_d/dr as a polynomial in s = r^2 (numpy.roots wants the highest degree first).
    roots = np.roots(np.trim_zeros([7.0 * k3, 5.0 * k2, 3.0 * k1, 1.0], "f"))
    s = [r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0]
    return float(np.sqrt(min(s))) if s else float("inf")


def _corner_radius(width, height, fx, fy, cx, cy) -> float:
    corners = np.array([[0.0, 0.0], [width, 0.0], [0.0, height], [width, height]])
    xy = (corners - [cx, cy]) / [fx, fy]
    return float(np.linalg.norm(xy, axis=-1).max())


def _covers_image(k: Sequence[float], corner_radius: float) -> bool:
    r_fold = _monotonic_radius(k)
    if not np.isfinite(r_fold):
        return True
    k1, k2, k3 = k
    s = r_fold * r_fold
    return r_fold * (1.0 + s * (k1 + s * (k2 + s * k3))) > corner_radius


# --- placement -------------------------------------------------------------------------------

def look_at_rotation(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) world -> camera rotation of an upright OpenCV camera at `position` facing `target`.

    Rows are the camera's x (right), y (down) and z (forward) axes in world coordinates;
    the image's horizontal axis stays level (no roll). position, target: (3,) metres.
    """
    forward = np.asarray(target, np.float64) - np.asarray(position, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:
        raise ValueError("look_at_rotation: camera looks straight up or down")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def _sample_distortion(rng: np.random.Generator, corner_radius: float,
                       radial_range, tangential_range) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Radial and tangential coefficients, shrunk until monotonic over the image."""
    k = rng.uniform(*np.asarray(radial_range, np.float64).T)
    p = rng.uniform(-tangential_range, tangential_range, size=2)
    # Shrinking every coefficient towards zero always ends at the identity, which is monotonic.
    for _ in range(20):
        if _covers_image(k, corner_radius * 1.1):
            break
        k = k * 0.7
    else:
        k = np.zeros(3)
    return tuple(k.tolist()), tuple(p.tolist())


def _sphere_directions(count: int) -> np.ndarray:
    """(count, 3) unit vectors spread evenly over the sphere (Fibonacci lattice)."""
    i = np.arange(count) + 0.5
    z = 1.0 - 2.0 * i / count
    azimuth = np.pi * (1.0 + 5.0 ** 0.5) * i
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(azimuth), r * np.sin(azimuth), z], axis=1)


_SEARCH_DIRECTIONS = _sphere_directions(64)


def place_cameras(positions_world: np.ndarray, num_cameras: int = 4,
                  rng: Union[np.random.Generator, int, None] = 0, *,
                  image_sizes: Sequence[Tuple[int, int]] = COMMON_IMAGE_SIZES,
                  distance_range: Tuple[float, float] = (3.0, 7.0),
                  height_range: Tuple[float, float] = (0.8, 2.5),
                  hfov_range_deg: Tuple[float, float] = (40.0, 75.0),
                  azimuth_jitter_deg: float = 15.0,
                  aim_jitter_deg: float = 2.0,
                  roll_jitter_deg: float = 2.0,
                  principal_jitter: float = 0.02,
                  radial_range: Sequence[Tuple[float, float]] = ((-0.25, 0.05), (-0.05, 0.25),
                                                                 (-0.01, 0.01)),
                  tangential_range: float = 0.002,
                  margin: float = 0.05,
                  max_distance: float = 30.0,
                  max_hfov_deg: float = 100.0) -> List[Camera]:
    """Seeded cameras around a clip, every joint of every frame inside every image.

    positions_world: (T, J, 3) metres, world joint positions of the whole clip.
    num_cameras:     cameras to place, spread evenly in azimuth around the subject with
                     seeded jitter (`azimuth_jitter_deg`) and a seeded common offset.
    rng:             `numpy.random.Generator` (its state advances) or an integer seed.
    image_sizes:     (width, height) pixel sizes to choose among.
    distance_range:  metres, horizontal distance from the subject's mean horizontal position.
    height_range:    metres, camera height above the clip's lowest joint (the floor).
    hfov_range_deg:  horizontal field of view; fx = (width / 2) / tan(hfov / 2), fy ~= fx.
    aim_jitter_deg, roll_jitter_deg: small seeded pan/tilt and roll away from the look-at.
    principal_jitter: fraction of the image size the principal point may sit off-centre.
    radial_range:    (3, 2) lower/upper bounds of k1, k2, k3 (Human3.6M's are about
                     (-0.2, 0.2, -0.002)); shrunk when they would not be monotonic over the
                     image with 10% headroom.
    tangential_range: |p1|, |p2| bound.
    margin:          fraction of the image width/height kept free on every side.

    The camera aims at the subject centre: mean horizontal joint position over the clip,
    at mid-height between the clip's lowest and highest joint. When some joint of some
    frame leaves the image (or comes within 0.1 m of the camera plane), the camera backs
    away along its horizontal direction, and past `max_distance` the field of view widens
    (up to `max_hfov_deg`); if that still fails a ValueError is raised.
    Returns `num_cameras` cameras named ``cam0``, ``cam1``, ...
    """
    positions_world = np.asarray(positions_world, dtype=np.float64)
    if positions_world.ndim != 3 or positions_world.shape[-1] != 3 or positions_world.size == 0:
        raise ValueError(f"positions_world must be (T, J, 3), got {positions_world.shape}")
    if not np.all(np.isfinite(positions_world)):
        raise ValueError("positions_world contains non-finite values")
    if num_cameras < 1:
        raise ValueError("num_cameras must be at least 1")
    rng = np.random.default_rng(rng)

    points = positions_world.reshape(-1, 3)
    floor, top = points[:, 2].min(), points[:, 2].max()
    target = np.array([*points[:, :2].mean(axis=0), 0.5 * (floor + top)])

    # The search tests the points that are extreme along many directions (they decide the
    # framing, like the convex hull's vertices but far cheaper to find); the final check runs
    # over every point, and any point it catches joins the search set.
    search_points = points[np.unique(np.argmax(_SEARCH_DIRECTIONS @ points.T, axis=1))]

    base = rng.uniform(0.0, 2.0 * np.pi)
    cameras = []
    for i in range(num_cameras):
        azimuth = (base + 2.0 * np.pi * i / num_cameras
                   + np.deg2rad(rng.uniform(-azimuth_jitter_deg, azimuth_jitter_deg)))
        distance = rng.uniform(*distance_range)
        height = floor + rng.uniform(*height_range)
        width, height_px = image_sizes[rng.integers(len(image_sizes))]
        hfov = np.deg2rad(rng.uniform(*hfov_range_deg))
        focal = 0.5 * width / np.tan(0.5 * hfov)
        aspect = 1.0 + rng.uniform(-0.005, 0.005)
        principal = (np.array([width, height_px], np.float64)
                     * (0.5 + rng.uniform(-principal_jitter, principal_jitter, size=2)))
        jitter = Rotation.from_euler(
            "xyz", [rng.uniform(-aim_jitter_deg, aim_jitter_deg),
                    rng.uniform(-aim_jitter_deg, aim_jitter_deg),
                    rng.uniform(-roll_jitter_deg, roll_jitter_deg)], degrees=True).as_matrix()
        corner = _corner_radius(width, height_px, focal, focal * aspect, *principal)
        k, p = _sample_distortion(rng, corner, radial_range, tangential_range)

        for _ in range(200):
            direction = np.array([np.cos(azimuth), np.sin(azimuth), 0.0])
            centre = np.array([*(target[:2] + distance * direction[:2]), height])
            rotation = jitter @ look_at_rotation(centre, target)
            camera = Camera(width, height_px, focal, focal * aspect, *principal, k, p,
                            rotation, -rotation @ centre, name=f"cam{i}")
            if not camera.distortion_is_monotonic(1.1):  # the field of view has widened
                k = tuple((0.7 * np.asarray(camera.k)).tolist())
                continue
            if np.all(camera.in_frame(search_points, margin=margin)):
                outside = ~camera.in_frame(points, margin=margin)
                if not outside.any():
                    break
                search_points = np.concatenate([search_points, points[outside]])
            if distance < max_distance:
                distance = min(distance * 1.1, max_distance)
            elif hfov < np.deg2rad(max_hfov_deg):
                hfov = min(hfov + np.deg2rad(5.0), np.deg2rad(max_hfov_deg))
                focal = 0.5 * width / np.tan(0.5 * hfov)
            else:
                raise ValueError(f"could not keep the subject in frame of camera {i} "
                                 f"(distance {distance:.1f} m, hfov {np.rad2deg(hfov):.0f} deg)")
        else:
            raise ValueError(f"could not place camera {i} with the subject in frame")
        cameras.append(camera)
    return cameras
