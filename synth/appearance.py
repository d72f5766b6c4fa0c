"""Seeded looks for rendered clips: skin and clothing colours, lights, floor and background.

One `Appearance` per clip and avatar, drawn from a generator seeded like the cameras
(seed, clip, avatar), so resumed and sharded runs render identical images. Colours are sRGB
in [0, 1]; `synth.rendering` converts them to the renderer's linear space.
"""
from __future__ import annotations

import colorsys
import dataclasses
from typing import Tuple

import numpy as np
from PIL import Image

from .avatars import CANONICAL_JOINTS

Colour = Tuple[float, float, float]

# Skin tones run between a light and a dark end (sRGB), with a little hue jitter.
_SKIN_LIGHT = np.array([0.96, 0.80, 0.69])
_SKIN_DARK = np.array([0.31, 0.20, 0.14])

FLOOR_PATTERNS = ("checker", "tiles", "planks", "speckle")

_J = {name: i for i, name in enumerate(CANONICAL_JOINTS)}
# Segment (named by its end joint) -> body region; sleeves and trouser legs decide below.
_REGIONS = {
    "head": ("head", "neck_nose"),
    "top": ("spine", "thorax", "l_shoulder", "r_shoulder"),
    "upper_arm": ("l_elbow", "r_elbow"),
    "forearm": ("l_wrist", "r_wrist"),
    "pelvis": ("l_hip", "r_hip"),
    "thigh": ("l_knee", "r_knee"),
    "shin": ("l_ankle", "r_ankle"),
    "foot": ("l_toe", "r_toe"),
}


@dataclasses.dataclass(frozen=True)
class Appearance:
    """What one clip x avatar looks like (sRGB colours in [0, 1], directions in the world).

    skin, top, bottom, shoes: body colours; sleeves: "none", "short" or "long";
    shorts: whether the shins show skin.
    key_light_direction: (3,) unit vector the key light shines along (pointing down).
    key_light_colour, key_light_intensity: its colour and strength (pyrender units).
    fill_light_*: a weaker light from the other side.
    ambient: (3,) ambient light colour x strength.
    floor_pattern: one of FLOOR_PATTERNS; floor_colours: its two colours;
    floor_tile: metres per pattern repeat.
    background_top, background_bottom: the vertical gradient behind the scene;
    background_seed: seeds the gradient's soft blotches.
    """

    skin: Colour
    top: Colour
    bottom: Colour
    shoes: Colour
    sleeves: str
    shorts: bool
    key_light_direction: Tuple[float, float, float]
    key_light_colour: Colour
    key_light_intensity: float
    fill_light_direction: Tuple[float, float, float]
    fill_light_colour: Colour
    fill_light_intensity: float
    ambient: Colour
    floor_pattern: str
    floor_colours: Tuple[Colour, Colour]
    floor_tile: float
    background_top: Colour
    background_bottom: Colour
    background_seed: int

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Appearance":
        """Draws every choice from `rng` in a fixed order."""
        t = rng.uniform(0.0, 1.0)
        skin = np.clip((1 - t) * _SKIN_LIGHT + t * _SKIN_DARK + rng.normal(0, 0.02, 3), 0, 1)
        top = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.9), rng.uniform(0.15, 0.95))
        bottom = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.7), rng.uniform(0.1, 0.8))
        shoes = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.5), rng.uniform(0.05, 0.9))
        sleeves = ("none", "short", "long")[rng.choice(3, p=[0.15, 0.45, 0.40])]
        shorts = bool(rng.uniform() < 0.25)

        key_azimuth = rng.uniform(0, 2 * np.pi)
        key_dir = _direction(key_azimuth, rng.uniform(25, 75))
        # The fill light stands roughly opposite the key light.
        fill_dir = _direction(key_azimuth + np.pi + rng.uniform(-0.6, 0.6), rng.uniform(10, 50))
        warmth = rng.uniform(-1, 1)
        key_colour = np.clip([1.0 + 0.08 * warmth, 1.0, 1.0 - 0.12 * warmth], 0, 1)
        fill_colour = np.clip(1.0 + rng.normal(0, 0.05, 3), 0, 1)
        ambient = rng.uniform(0.15, 0.45) * np.clip(1.0 + rng.normal(0, 0.05, 3), 0, 1.2)

        pattern = FLOOR_PATTERNS[rng.integers(len(FLOOR_PATTERNS))]
        base = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.5), rng.uniform(0.25, 0.8))
        other = np.clip(np.array(base) * rng.uniform(0.6, 1.4) + rng.normal(0, 0.05, 3), 0, 1)
        background_top = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.5), rng.uniform(0.3, 1.0))
        background_bottom = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.5),
                                 rng.uniform(0.2, 0.9))
        return cls(
            skin=_tuple(skin), top=top, bottom=bottom, shoes=shoes, sleeves=str(sleeves),
            shorts=shorts,
            key_light_direction=_tuple(key_dir), key_light_colour=_tuple(key_colour),
            key_light_intensity=float(rng.uniform(2.0, 5.0)),
            fill_light_direction=_tuple(fill_dir), fill_light_colour=_tuple(fill_colour),
            fill_light_intensity=float(rng.uniform(0.3, 1.5)),
            ambient=_tuple(ambient), floor_pattern=pattern,
            floor_colours=(base, _tuple(other)), floor_tile=float(rng.uniform(0.3, 1.2)),
            background_top=background_top, background_bottom=background_bottom,
            background_seed=int(rng.integers(2 ** 31)))

    def segment_colours(self) -> np.ndarray:
        """(19, 3) sRGB colour of each segment (named by its end joint, `CANONICAL_JOINTS`)."""
        colours = np.zeros((len(CANONICAL_JOINTS), 3))
        region = {"head": self.skin, "top": self.top, "pelvis": self.bottom,
                  "thigh": self.bottom, "shin": self.skin if self.shorts else self.bottom,
                  "foot": self.shoes,
                  "upper_arm": self.skin if self.sleeves == "none" else self.top,
                  "forearm": self.top if self.sleeves == "long" else self.skin}
        for name, joints in _REGIONS.items():
            for joint in joints:
                colours[_J[joint]] = region[name]
        colours[_J["hip"]] = self.bottom
        return colours

    def floor_texture(self, size: int = 128) -> np.ndarray:
        """(size, size, 3) uint8 sRGB texture covering one `floor_tile` of the floor."""
        a, b = (np.array(c) for c in self.floor_colours)
        rng = np.random.default_rng(self.background_seed + 1)
        y, x = np.mgrid[0:size, 0:size] / size
        if self.floor_pattern == "checker":
            t = ((x < 0.5) ^ (y < 0.5)).astype(float)
        elif self.floor_pattern == "tiles":
            grout = (np.minimum(x, 1 - x) < 0.03) | (np.minimum(y, 1 - y) < 0.03)
            t = grout.astype(float)
        elif self.floor_pattern == "planks":
            t = 0.5 + 0.5 * np.sin(2 * np.pi * (4 * y + 0.3 * np.sin(2 * np.pi * x)))
            t = np.where(np.minimum(y * 4 % 1, 1 - y * 4 % 1) < 0.04, 1.0, 0.6 * t)
        else:  # speckle
            t = (rng.uniform(size=(size, size)) < 0.15).astype(float)
        noise = rng.normal(0.0, 0.03, (size, size, 1))
        image = (1 - t[..., None]) * a + t[..., None] * b + noise
        return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)

    def background(self, width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8 sRGB backdrop: a vertical gradient with soft blotches."""
        rng = np.random.default_rng(self.background_seed)
        t = np.linspace(0.0, 1.0, height)[:, None, None]
        gradient = ((1 - t) * np.array(self.background_top)
                    + t * np.array(self.background_bottom))
        blotches = Image.fromarray(
            (rng.uniform(0, 255, (4, 6, 3))).astype(np.uint8)).resize(
            (width, height), Image.BICUBIC)
        image = gradient + 0.12 * (np.asarray(blotches, np.float64) / 255.0 - 0.5)
        image = np.broadcast_to(image, (height, width, 3))
        return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def srgb_to_linear(colour: np.ndarray) -> np.ndarray:
    colour = np.asarray(colour, dtype=np.float64)
    return np.where(colour <= 0.04045, colour / 12.92, ((colour + 0.055) / 1.055) ** 2.4)


def _hsv(h: float, s: float, v: float) -> Colour:
    return _tuple(colorsys.hsv_to_rgb(h, s, v))


def _direction(azimuth: float, elevation_deg: float) -> np.ndarray:
    """Unit vector along which light from a source at `azimuth` (radians, from +X towards
    +Y), `elevation_deg` above the horizon, travels."""
    e = np.deg2rad(elevation_deg)
    return -np.array([np.cos(azimuth) * np.cos(e), np.sin(azimuth) * np.cos(e), np.sin(e)])


def _tuple(values) -> Colour:
    return tuple(float(v) for v in np.asarray(values).ravel())
