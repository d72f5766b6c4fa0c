"""A picture of the Anny bodies: a line-up of pool bodies at rest, and frames of a dataset
rendered on them (`synth.render --images`), cropped around the person.

    python experiments/body_gallery.py --out docs/anny_bodies.jpg [--count 10] [--seed 0]
        [--cache DIR] [--dataset DATASET_DIR]

Bodies are built (if missing) by `python -m synth.bodies build` in a child process; this
process renders with pyrender (OSMesa/EGL) and never imports PyTorch.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

import numpy as np
from PIL import Image, ImageDraw

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synth.bodies import pool  # noqa: E402
from synth.bodies.body import AnnyBody  # noqa: E402
from synth.rendering import use_platform  # noqa: E402

ROW_HEIGHT = 420


def lineup(bodies, width_per_body: int = 190) -> Image.Image:
    """The bodies side by side at rest, seen from the front, to scale."""
    use_platform(None)
    if not hasattr(np, "infty"):
        np.infty = np.inf
    import pyrender
    import trimesh

    scene = pyrender.Scene(bg_color=[0.93, 0.93, 0.93, 1.0], ambient_light=[0.35] * 3)
    spacing = 0.95  # metres between bodies: A-pose arms span about 0.9 m
    tones = np.linspace([0.93, 0.78, 0.67], [0.45, 0.31, 0.23], len(bodies))
    for i, body in enumerate(bodies):
        mesh = body.mesh()
        vertices = mesh.vertices + [(i - (len(bodies) - 1) / 2) * spacing, 0.0, 0.0]
        tm = trimesh.Trimesh(vertices, mesh.faces, process=False)
        material = pyrender.MetallicRoughnessMaterial(baseColorFactor=[*tones[i], 1.0],
                                                      metallicFactor=0.0, roughnessFactor=0.7)
        scene.add(pyrender.Mesh.from_trimesh(tm, material=material, smooth=True))
    width = width_per_body * len(bodies)
    ymag = 1.05  # half the view's height, metres: floor to 2.1 m
    camera = pyrender.OrthographicCamera(xmag=ymag * width / ROW_HEIGHT, ymag=ymag)
    # Looking along +Y (the people face -Y) from in front, centred at mid height.
    pose = np.array([[1, 0, 0, 0], [0, 0, -1, -5.0], [0, 1, 0, ymag - 0.03], [0, 0, 0, 1]],
                    float)
    scene.add(camera, pose=pose)
    light = np.array([[1, 0, 0, 0], [0, 0.8, -0.6, 0], [0, 0.6, 0.8, 0], [0, 0, 0, 1]], float)
    scene.add(pyrender.DirectionalLight(intensity=3.0), pose=light @ pose)
    renderer = pyrender.OffscreenRenderer(width, ROW_HEIGHT)
    rgb, _ = renderer.render(scene)
    renderer.delete()
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    for i, body in enumerate(bodies):
        s = body.spec
        draw.text((i * width_per_body + 40, 8),
                  f"{s['sex'][0].upper()} {s['age']:.0f} y {body.height:.2f} m", fill=(0, 0, 0))
    return image


def dataset_crops(dataset: pathlib.Path, count: int) -> Image.Image:
    """Rendered frames of a dataset, one per record, cropped around the 2D keypoints."""
    manifest = json.loads((dataset / "manifest.json").read_text())
    crops = []
    for entry in manifest["records"]:
        if "images" not in entry:
            continue
        record = np.load(dataset / entry["file"], allow_pickle=False)
        frames = record["image_frames"]
        frame = int(frames[len(frames) // 2])
        points = record["keypoints2d"][0, frame]
        scale = entry["images"]["scale"]
        points = scale * (points + 0.5) - 0.5
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        side = 1.35 * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        path = dataset / entry["images"]["dir"] / entry["images"]["rgb"].format(camera=0,
                                                                             frame=frame)
        image = Image.open(path).convert("RGB")
        box = tuple(int(round(v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2,
                                            cy + side / 2))
        crops.append(image.crop(box).resize((ROW_HEIGHT, ROW_HEIGHT)))
        if len(crops) == count:
            break
    row = Image.new("RGB", (ROW_HEIGHT * len(crops), ROW_HEIGHT))
    for i, crop in enumerate(crops):
        row.paste(crop, (i * ROW_HEIGHT, 0))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=pathlib.Path, default=None)
    parser.add_argument("--dataset", type=pathlib.Path, default=None,
                        help="a dataset rendered with --images on Anny bodies")
    args = parser.parse_args()
    cache_dir = args.cache or pathlib.Path(tempfile.mkdtemp(prefix="bodies-"))
    specs = pool.pool_specs(100, args.seed, False)[:args.count]
    files = pool.ensure_built(cache_dir, specs)
    rows = [lineup([AnnyBody(f) for f in files])]
    if args.dataset is not None:
        rows.append(dataset_crops(args.dataset, count=max(1, rows[0].width // ROW_HEIGHT)))
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, sum(r.height for r in rows)), (255, 255, 255))
    y = 0
    for row in rows:
        sheet.paste(row, ((width - row.width) // 2, y))
        y += row.height
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=85)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
