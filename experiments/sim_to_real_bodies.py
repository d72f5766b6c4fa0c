"""How much of the sim-to-real gap is body proportions? The real set's own training motion,
re-proportioned and filmed by the synthetic camera sampler, trained and scored like the
sim-to-real rows (`experiments/sim_to_real.py`).

    .venv/bin/python experiments/sim_to_real_bodies.py [--config CONFIG.json]
        [--synthetic NAME=DATASET_DIR ...] [--replicas 10] [--work datasets/sim_to_real_bodies]
        [--runs runs/sim_to_real_bodies] [--out experiments/results/sim_to_real] [--table-only]
        [--bone-jitter SD] [--note TEXT]

Each row is a VideoPose3D-format folder: the real set's test subjects as they are (their
cameras and 2D), and `--replicas` copies of every training subject, each filmed by 3 cameras
from `synth.cameras.place_cameras` (the renderer's sampler: 3-7 m, 0.8-2.5 m high, 40-75
degree field of view, lens distortion) with the 2D projected through them:

- `own bodies`: the training subjects' motion and bone lengths, only the cameras are ours;
- `own bodies, jittered`: each replica's bone lengths times a stature factor U(0.9, 1.1) and
  a factor N(1, 0.04) per bone (left and right alike): a population centred on the subjects;
- `NAME's bodies` (one per `--synthetic NAME=DIR`): each replica takes the mean bone lengths,
  in the real set's convention, of a random record of that synthetic dataset; every frame
  keeps the real bone directions and root position.
- `NAME's bodies, bone-length jitter SD` (with `--bone-jitter SD`): the same data, trained
  with `vp3dkeras.train --bone-jitter SD` (every window re-proportioned around those bodies).

Training uses the config's shared options (as the synthetic rows), evaluation ground-truth 2D
with flip TTA. The table (OUT/bodies.md, OUT/bodies.json) puts P1, P2, P3, the per-frame bone
error and the bone bias beside the config's real-trained row when its evaluation exists.
Real data is read with the restricted reader; folders are written under a temporary name and
renamed; every step resumes.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
from typing import Dict, List, Optional

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments"))

from posecontract.layouts import get_layout  # noqa: E402
from sim_to_real import DEFAULT_CONFIG, _run, _slug, bone_bias, evaluate_row  # noqa: E402

#: The evaluation every row gets: ground-truth 2D (`sim_to_real.evaluate_row`).
GT_2D = {"name": "gt 2D", "noise_2d": "off"}

#: Seed and replica-name suffix of each kind of row (as the first runs of this study used).
SEEDS = {"own": 0, "bodies": 1, "jitter": 2}
SUFFIX = {"own": "r", "bodies": "b", "jitter": "j"}


def repose(poses: np.ndarray, parents, lengths: np.ndarray) -> np.ndarray:
    """(T, K, 3) poses with every bone (joint k -> parents[k]) rescaled to `lengths[k]`
    (metres; the root's entry unused), directions and root kept
    (`vp3dkeras.data.bone_jitter.rescale_bones` with per-frame factors)."""
    from vp3dkeras.data.bone_jitter import rescale_bones
    p = np.asarray(parents)
    factors = np.ones(poses.shape[:2])
    factors[:, 1:] = lengths[1:] / np.linalg.norm(poses[:, 1:] - poses[:, p[1:]], axis=-1)
    return rescale_bones(poses, p, factors)


def mean_lengths(poses: np.ndarray, parents) -> np.ndarray:
    """(K,) mean length of each bone (0 for the root), metres, of (T, K, 3) poses."""
    p = np.asarray(parents)
    return np.r_[0.0, np.linalg.norm(poses[:, 1:] - poses[:, p[1:]], axis=-1).mean(0)]


def build(kind: str, real: dict, out: pathlib.Path, replicas: int,
          body_dir: Optional[pathlib.Path] = None) -> str:
    """Writes the row's folder `out`; returns its training subjects, comma-separated."""
    from synth.cameras import place_cameras
    from vp3dkeras.data.published_cameras import cameras_from_calibration, load_calibration
    from vp3dkeras.data.vp3d_format import restricted_load_npz
    name, src = real["vp3d_name"], pathlib.Path(real["dataset"])
    layout = get_layout(name)
    positions = restricted_load_npz(src / f"data_3d_{name}.npz")["positions_3d"]
    data_2d = restricted_load_npz(src / f"data_2d_{name}_gt.npz")
    cameras = cameras_from_calibration(load_calibration(name))
    train_subjects, test = (set(part.split("=", 1)[1].split(","))
                            for part in real["split"].split(":", 1)[1].split(";"))
    bodies = sorted(body_dir.glob("clips/*.npz")) if body_dir else []
    mirror = layout.flip_permutation()
    rng = np.random.default_rng(SEEDS[kind])
    out3, out2, outc, train = {}, {}, {}, []
    for subject, actions in positions.items():
        if subject in test:
            out3[subject], out2[subject] = actions, data_2d["positions_2d"][subject]
            outc[subject] = cameras[subject]
            continue
        if subject not in train_subjects:
            continue
        own = mean_lengths(np.concatenate([np.asarray(v, float) for v in actions.values()]),
                           layout.parents)
        for r in range(replicas):
            if kind == "bodies":
                path = bodies[rng.integers(len(bodies))]
                with np.load(path) as record:
                    if f"joints3d_world__{name}" not in record:
                        raise SystemExit(f"{path}: no {name} keypoints; render the dataset "
                                         f"with --keypoints {name}")
                    lengths = mean_lengths(record[f"joints3d_world__{name}"].astype(float),
                                           layout.parents)
            elif kind == "jitter":
                factors = rng.normal(1.0, 0.04, len(own))
                lengths = own * rng.uniform(0.9, 1.1) * (factors + factors[mirror]) / 2
            else:
                lengths = own
            moved = {a: repose(np.asarray(v, float), layout.parents, lengths)
                     if kind != "own" else np.asarray(v, float) for a, v in actions.items()}
            rig = place_cameras(np.concatenate(list(moved.values())), 3, rng)
            replica = f"{subject}{SUFFIX[kind]}{r}"
            train.append(replica)
            out3[replica] = {a: v.astype(np.float32) for a, v in moved.items()}
            out2[replica] = {a: [c.project_world(v).astype(np.float32) for c in rig]
                             for a, v in moved.items()}
            outc[replica] = [{"id": c.name, "intrinsics": [float(v) for v in c.intrinsics_vector()],
                              "image_size": [c.width, c.height],
                              "rotation": np.asarray(c.rotation).tolist(),
                              "translation": np.asarray(c.translation).tolist(),
                              "lens_model": "opencv"} for c in rig]
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.savez(tmp / f"data_3d_{name}.npz", positions_3d=out3)
    np.savez(tmp / f"data_2d_{name}_gt.npz", positions_2d=out2, metadata=data_2d["metadata"])
    (tmp / f"data_cameras_{name}.json").write_text(json.dumps(outc), encoding="utf-8")
    (tmp / "train_subjects.txt").write_text(",".join(train), encoding="utf-8")
    tmp.replace(out)
    return ",".join(train)


def table(rows: List[Dict], reference: Optional[dict]) -> str:
    ref = reference["metrics"]["P1"] if reference else None
    lines = ["| row | bone lengths from | P1 | P2 | P3 | bone err | bone bias | "
             "P1 / real-trained P1 |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        m, bones = r["result"]["metrics"], r["result"]["bones"]
        ratio = f"{m['P1'] / ref:.2f}" if ref else "-"
        lines.append(f"| {r['name']} | {r['bodies_from']} | {m['P1']:.1f} | {m['P2']:.1f} | {m['P3']:.1f} | "
                     f"{bones['error']:.1f} | {bone_bias(bones):.1f} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=pathlib.Path, default=DEFAULT_CONFIG)
    parser.add_argument("--synthetic", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--work", type=pathlib.Path, default=REPO / "datasets" / "sim_to_real_bodies")
    parser.add_argument("--runs", type=pathlib.Path, default=REPO / "runs" / "sim_to_real_bodies")
    parser.add_argument("--out", type=pathlib.Path,
                        default=REPO / "experiments" / "results" / "sim_to_real")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--bone-jitter", type=float, default=0.0, metavar="SD",
                        help="also train each synthetic bodies row with --bone-jitter SD "
                        "(vp3dkeras.data.bone_jitter), on the same data")
    parser.add_argument("--note", default="", help="a paragraph written under the table "
                        "(e.g. which code rendered the synthetic datasets)")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    real = config["real"]
    # (row label, kind, synthetic dataset, data folder's label, extra training options)
    specs = [("own bodies", "own", None, "own bodies", []),
             ("own bodies, jittered", "jitter", None, "own bodies, jittered", [])]
    for given in args.synthetic:
        label, _, folder = given.partition("=")
        specs.append((f"{label}'s bodies", "bodies", pathlib.Path(folder), f"{label}'s bodies",
                      []))
        if args.bone_jitter:
            specs.append((f"{label}'s bodies, bone-length jitter {args.bone_jitter:g}", "bodies",
                          pathlib.Path(folder), f"{label}'s bodies",
                          ["--bone-jitter", f"{args.bone_jitter:g}"]))
    logs = args.runs / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, kind, body_dir, data_label, extra in specs:
        slug = _slug(label)
        folder, run = args.work / _slug(data_label), args.runs / slug
        if not args.table_only:
            if not (folder / "train_subjects.txt").is_file():
                build(kind, real, folder, args.replicas, body_dir)
            subjects = (folder / "train_subjects.txt").read_text(encoding="utf-8")
            test = real["split"].split("test=")[1]
            if not (run / "summary.json").is_file():
                _run([sys.executable, "-m", "vp3dkeras.train", "--dataset", folder,
                      "--vp3d-name", real["vp3d_name"], "--keypoints-in", real["vp3d_name"],
                      "--keypoints-out", real["vp3d_name"],
                      "--split", f"subjects:train={subjects};test={test}",
                      *config["training"], *extra, "--out", run, "--quiet"],
                     logs / f"train_{slug}.log")
        if (run / "summary.json").is_file():
            rows.append({"name": f"real motion, our cameras, {label}", "run": str(run),
                         "bodies_from": str(body_dir) if body_dir else "the real subjects",
                         "result": evaluate_row(run, GT_2D, config, logs)})
    reference_path = (REPO / "runs" / "sim_to_real" / _slug(config["rows"][0]["name"])
                      / "eval_real_gt-2d.json")
    reference = (json.loads(reference_path.read_text(encoding="utf-8"))
                 if reference_path.is_file() else None)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bodies.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    header = (f"# Body proportions in the sim-to-real gap ({config['name']})\n\n"
              f"Written by `experiments/sim_to_real_bodies.py` (see its docstring): the real "
              f"training subjects' own motion, {args.replicas} replicas x 3 cameras from our "
              f"sampler, trained with the sim-to-real rows' options and scored on "
              f"`{real['split']}` (ground-truth 2D, flip TTA). mm.\n\n")
    note = f"\n{args.note}\n" if args.note else ""
    (args.out / "bodies.md").write_text(header + table(rows, reference) + "\n" + note,
                                        encoding="utf-8")
    print(f"-> {args.out / 'bodies.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
