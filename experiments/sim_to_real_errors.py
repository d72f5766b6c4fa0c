"""Where a lifter's error on a real set comes from: a decomposition of P1 into definition,
bone-length and pose (bone-direction) parts, plus the in-domain error the run reached.

    .venv/bin/python experiments/sim_to_real_errors.py RUN_DIR [RUN_DIR ...]
        [--dataset ../shared/real/humaneva] [--vp3d-name humaneva15]
        [--split 'subjects:train=...;test=...'] [--json OUT.json] [--markdown OUT.md]
        [--coverage NAME=SYNTH_DATASET ...] [--cross-domain SYNTH_DATASET]

For each run (a `vp3dkeras.train` output folder) it predicts every test sequence of the real
set (ground-truth 2D, flip TTA, the run's keypoint conventions scored on the joints the set
shares, as `python -m vp3dkeras.evaluate` does) and reports, in mm:

- `P1`, `P2`: MPJPE and Procrustes-aligned MPJPE;
- `P1 - body-frame bias`: P1 after subtracting each joint's mean error expressed in the
  target's pelvis frame (x towards the right hip, z towards the thorax): what a fixed
  re-definition of the keypoints (a constant offset on the body) could at best remove;
- `P1 with true bone lengths`: the predicted bone directions, each bone rescaled to its true
  length and chained from the root: what a perfect body-size prior could at best remove;
- `optimal scale`: mean per-frame scale that best fits the prediction to the target (> 1:
  the predicted person is too small);
- `bone direction error`: mean angle between predicted and true bones, degrees, per bone and
  overall: the pose error that no definition or body fix removes;
- `in-domain validation`: the run's last `val_loss_mm` (history.json), the error on its own
  held-out windows: for a synthetic run, how well it learned the synthetic task at all.

With `--coverage NAME=DATASET` it also reports how far the real test poses lie from each
training set's poses, and how each set stands: knee flexion (hip-knee-ankle angle; its 1st
and 5th percentiles are the straightest knees the set holds) and the thighs' mean flexion
against the trunk axis (root -> thorax), per set and over all frames.

With `--cross-domain DATASET` it scores every run on that synthetic dataset's held-out clips
(`random` split, the real set's convention, each clip's first camera) per motion class,
beside its P1 per real action (from the `eval_real_gt-2d.json` that `sim_to_real.py` writes
in the run): where a synthetic-trained run fails on real walks it learned on synthetic ones,
or a real-trained run fails on synthetic walks, the two corpora disagree on how people move.

Only NumPy around `vp3dkeras.inference`; every number is computed here, from the predictions.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Dict, List

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import vp3dkeras.quiet_tf  # noqa: E402,F401  (TensorFlow without its start-up lines)

from posecontract.conventions import pelvis_axes  # noqa: E402
from vp3dkeras.data.sources import open_split  # noqa: E402
from vp3dkeras.evaluate import _read_json, match_joints, run_layout  # noqa: E402
from vp3dkeras.inference import load_lifter, predict_poses  # noqa: E402
from vp3dkeras.metrics import procrustes_align  # noqa: E402

HUMANEVA_SPLIT = "subjects:train=Train/S1,Train/S2,Train/S3;test=Validate/S1,Validate/S2,Validate/S3"


def pelvis_frames(poses: np.ndarray, names) -> np.ndarray:
    """(F, 3, 3) rotations whose columns are the pelvis-frame axes in camera space
    (`posecontract.conventions.pelvis_axes`, transposed), for root-relative (F, J, 3) poses."""
    axes = pelvis_axes(poses, 0, names.index("r_hip"), names.index("l_hip"),
                       names.index("thorax"))
    return np.swapaxes(axes, -1, -2)


def with_true_bone_lengths(pred: np.ndarray, target: np.ndarray, parents) -> np.ndarray:
    """(F, J, 3) the predicted bone directions chained from the root (placed at 0) with the
    true lengths (`vp3dkeras.data.bone_jitter.rescale_bones` with per-frame factors)."""
    from vp3dkeras.data.bone_jitter import rescale_bones
    p = np.asarray(parents)
    factors = np.ones(pred.shape[:2])
    factors[:, 1:] = (np.linalg.norm(target[:, 1:] - target[:, p[1:]], axis=-1)
                      / np.maximum(np.linalg.norm(pred[:, 1:] - pred[:, p[1:]], axis=-1), 1e-9))
    return rescale_bones(pred - pred[:, :1], p, factors)


def angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(...,) angle in degrees between (..., 3) vectors a and b."""
    cos = (a * b).sum(-1) / np.maximum(
        np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def decompose(pred: np.ndarray, target: np.ndarray, layout) -> Dict[str, object]:
    """The decomposition (module docstring) of (F, J, 3) predictions against targets, mm."""
    names, parents = list(layout.names), list(layout.parents)
    p1 = float(np.linalg.norm(pred - target, axis=-1).mean())
    p2 = float(np.linalg.norm(procrustes_align(pred, target) - target, axis=-1).mean())
    frames = pelvis_frames(target, names)
    bias = np.einsum("fij,fki->kj", frames, pred - target) / len(pred)  # (J, 3) body frame
    debiased = pred - np.einsum("fij,kj->fki", frames, bias)
    scale = (pred * target).sum((1, 2)) / np.maximum((pred * pred).sum((1, 2)), 1e-9)
    directions = {}
    for j in range(1, len(names)):
        directions[f"{names[parents[j]]}-{names[j]}"] = float(angles_deg(
            pred[:, j] - pred[:, parents[j]], target[:, j] - target[:, parents[j]]).mean())
    return {
        "P1": p1, "P2": p2,
        "P1_minus_body_frame_bias": float(np.linalg.norm(debiased - target, axis=-1).mean()),
        "P1_true_bone_lengths": float(np.linalg.norm(
            with_true_bone_lengths(pred, target, parents) - target, axis=-1).mean()),
        "optimal_scale": float(scale.mean()),
        "bone_direction_error_deg": float(np.mean(list(directions.values()))),
        "bone_direction_error_per_bone_deg": directions,
        "body_frame_bias_mm": {n: [round(float(v), 1) for v in b] for n, b in zip(names, bias)},
    }


def run_predictions(run: pathlib.Path, dataset: str, vp3d_name: str, split: str):
    """((F, J, 3) predictions, (F, J, 3) targets, scored layout), mm."""
    config, summary = _read_json(run / "config.json"), _read_json(run / "summary.json")
    _, source = open_split(dataset, split, vp3d_name=vp3d_name, keypoints="gt")
    source, codec, output_index, _ = match_joints(
        source, *run_layout(config, summary, source.codec.layout))
    lifter = load_lifter(run / "model.keras")
    preds, targets = [], []
    for index in range(len(source)):
        seq = source.load(index)
        pred = predict_poses(lifter, seq.keypoints_2d, codec or source.codec, True)
        preds.append(pred if output_index is None else pred[:, output_index])
        targets.append(source.codec.decode_3d(seq.poses_3d))
    return (np.concatenate(preds) * 1000.0, np.concatenate(targets) * 1000.0,
            source.codec.layout)


def bone_directions(poses: np.ndarray, layout) -> np.ndarray:
    """(F, B*3) unit bone directions in each pose's own pelvis frame (`pelvis_frames`):
    the pose without the camera's view, the body's size or its proportions."""
    names, parents = list(layout.names), list(layout.parents)
    frames = pelvis_frames(poses, names)
    bones = poses[:, 1:] - poses[:, [parents[j] for j in range(1, len(names))]]
    bones = np.einsum("fij,fbi->fbj", frames, bones)  # R^T b: into the pelvis frame
    bones /= np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), 1e-9)
    return bones.reshape(len(poses), -1)


def nearest_pose_angles(test: np.ndarray, train: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(N,) mean bone angle, degrees, from each test pose to its nearest training pose.

    test (N, B*3), train (M, B*3): `bone_directions`. The nearest is the one with the
    largest summed cosine over bones; its mean per-bone angle is returned."""
    num_bones = test.shape[1] // 3
    out = np.empty(len(test))
    for start in range(0, len(test), chunk):
        block = test[start:start + chunk]
        best = np.argmax(block @ train.T, axis=1)
        cos = (block.reshape(len(block), num_bones, 3)
               * train[best].reshape(len(block), num_bones, 3)).sum(-1)
        out[start:start + chunk] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean(-1)
    return out


def source_poses(source, max_frames: int) -> np.ndarray:
    """(F, J, 3) root-relative poses of a source's sequences, evenly thinned to about
    `max_frames` frames."""
    total = sum(source.load(i).poses_3d.shape[0] for i in range(len(source)))
    stride = max(1, int(np.ceil(total / max_frames)))
    return np.concatenate([source.codec.decode_3d(source.load(i).poses_3d)[::stride]
                           for i in range(len(source))])


def pose_coverage(dataset: str, vp3d_name: str, split: str, synthetic: Dict[str, str],
                  max_frames: int = 60000) -> List[dict]:
    """How far the real test poses lie from each training set's poses (module docstring).

    synthetic: name -> synth dataset folder (its `random` split's training side, read in the
    real set's convention). Returns one row per training set (the real set's own training
    subjects first): frames compared and quartiles of the nearest-pose angle, degrees."""
    train, test = open_split(dataset, split, vp3d_name=vp3d_name, keypoints="gt")
    layout = test.codec.layout
    sets = {f"real: {split.split(';')[0]}": train}
    for name, folder in synthetic.items():
        sets[f"synthetic: {name}"] = open_split(
            folder, "random", keypoints_in=layout.name, keypoints_out=layout.name)[0]
    test_poses = source_poses(test, 20000)
    test_dirs = bone_directions(test_poses, layout)
    rows = [{"training set": f"real test: {split.split(';')[-1]}", "frames": len(test_dirs),
             **posture(test_poses, layout)}]
    for name, source in sets.items():
        poses = source_poses(source, max_frames)
        dirs = bone_directions(poses, layout)
        angles = nearest_pose_angles(test_dirs, dirs)
        rows.append({"training set": name, "frames": len(dirs), "test frames": len(test_dirs),
                     "mean": float(angles.mean()),
                     "quartiles": [float(q) for q in np.percentile(angles, [25, 50, 75])],
                     **posture(poses, layout)})
    return rows


def knee_flexion(poses: np.ndarray, layout) -> np.ndarray:
    """(F, 2) left and right knee flexion, degrees: the angle between hip->knee and
    knee->ankle of (F, J, 3) poses (0: a straight leg)."""
    names = list(layout.names)
    out = []
    for side in "lr":
        hip, knee, ankle = (poses[:, names.index(f"{side}_{n}")] for n in ("hip", "knee", "ankle"))
        out.append(angles_deg(knee - hip, ankle - knee))
    return np.stack(out, axis=-1)


def thigh_flexion(poses: np.ndarray, layout) -> np.ndarray:
    """(F, 2) left and right thigh flexion against the trunk axis, degrees: the hip->knee
    direction's forward angle in the pose's own pelvis frame (`pelvis_frames`), 0 when the
    thigh hangs along the trunk axis, positive forward."""
    names = list(layout.names)
    frames = pelvis_frames(poses, names)
    out = []
    for side in "lr":
        thigh = poses[:, names.index(f"{side}_knee")] - poses[:, names.index(f"{side}_hip")]
        body = np.einsum("fij,fi->fj", frames, thigh)  # R^T v: into the pelvis frame
        out.append(np.degrees(np.arctan2(body[:, 1], -body[:, 2])))
    return np.stack(out, axis=-1)


def posture(poses: np.ndarray, layout) -> dict:
    """Knee and thigh statistics of (F, J, 3) poses (module docstring), degrees."""
    knees, thighs = knee_flexion(poses, layout), thigh_flexion(poses, layout)
    return {"knee_p1": float(np.percentile(knees, 1)), "knee_p5": float(np.percentile(knees, 5)),
            "knee_median": float(np.median(knees)), "thigh_mean": float(thighs.mean())}


def cross_domain(run: pathlib.Path, synthetic: str, layout_name: str, camera: int = 0
                 ) -> Dict[str, float]:
    """Motion class -> P1 (mm, flip TTA) of `run` on the held-out clips of a synthetic
    dataset (its `random` split, read in `layout_name`, the sequences filmed by `camera`, one
    of each clip's seeded cameras), and "all" over every frame."""
    _, test = open_split(synthetic, "random", keypoints_in=layout_name,
                         keypoints_out=layout_name)
    test = test.where(lambda ref: ref.camera == camera)
    lifter = load_lifter(run / "model.keras")
    sums: Dict[str, List[float]] = {}
    for index in range(len(test)):
        seq = test.load(index)
        pred = predict_poses(lifter, seq.keypoints_2d, test.codec, True)
        error = np.linalg.norm(pred - test.codec.decode_3d(seq.poses_3d), axis=-1).mean(-1)
        for key in (seq.ref.motion_class, "all"):
            total = sums.setdefault(key, [0.0, 0])
            total[0] += float(error.sum()) * 1000.0
            total[1] += len(error)
    return {key: total / count for key, (total, count) in sums.items()}


def in_domain_validation(run: pathlib.Path):
    history = _read_json(run / "history.json") or []
    return float(history[-1]["val_loss_mm"]) if history else None


def markdown(rows: List[dict]) -> str:
    head = ["run", "in-domain val", "P1", "P2", "P1 - body-frame bias",
            "P1 with true bone lengths", "optimal scale", "bone direction error (deg)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        val = "" if r["in_domain_val_mm"] is None else f"{r['in_domain_val_mm']:.1f}"
        lines.append(f"| {r['run']} | {val} | {r['P1']:.1f} | {r['P2']:.1f} | "
                     f"{r['P1_minus_body_frame_bias']:.1f} | {r['P1_true_bone_lengths']:.1f} | "
                     f"{r['optimal_scale']:.3f} | {r['bone_direction_error_deg']:.1f} |")
    return "\n".join(lines) + "\n"


def cross_domain_markdown(args, rows: List[dict]) -> str:
    """The `--cross-domain` table: each run's P1 per synthetic motion class (held-out clips)
    and per real action, mm. Also stores it in each row under "cross_domain"."""
    real_actions: Dict[str, Dict[str, float]] = {}
    for row, run in zip(rows, args.runs):  # synthetic keypoints in the real set's convention
        row["cross_domain"] = cross_domain(run, args.cross_domain, args.vp3d_name)
        result = _read_json(run / "eval_real_gt-2d.json") or {}
        real_actions[row["run"]] = {k: v["P1"] for k, v in result.get("per_class", {}).items()}
    classes = sorted({k for r in rows for k in r["cross_domain"] if k != "all"})
    actions = sorted({k for v in real_actions.values() for k in v})
    head = (["run", "synthetic: all"] + [f"synthetic: {c}" for c in classes]
            + [f"real: {a}" for a in actions])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        cells = [row["run"], f"{row['cross_domain']['all']:.1f}"]
        cells += [f"{row['cross_domain'][c]:.1f}" if c in row["cross_domain"] else "-"
                  for c in classes]
        cells += [f"{real_actions[row['run']][a]:.1f}" if a in real_actions[row["run"]] else "-"
                  for a in actions]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=pathlib.Path)
    parser.add_argument("--dataset", default=str(REPO.parent / "shared" / "real" / "humaneva"))
    parser.add_argument("--vp3d-name", default="humaneva15")
    parser.add_argument("--split", default=HUMANEVA_SPLIT)
    parser.add_argument("--json", type=pathlib.Path)
    parser.add_argument("--markdown", type=pathlib.Path)
    parser.add_argument("--coverage", action="append", default=[], metavar="NAME=DATASET",
                        help="also report how far the real test poses lie from the poses of "
                             "this synthetic dataset (and of the real training subjects), and "
                             "each set's knee and thigh posture")
    parser.add_argument("--cross-domain", metavar="DATASET",
                        help="also score every run on this synthetic dataset's held-out clips "
                             "per motion class")
    args = parser.parse_args(argv)
    if args.coverage:
        synthetic = dict(given.partition("=")[::2] for given in args.coverage)
        coverage = pose_coverage(args.dataset, args.vp3d_name, args.split, synthetic)
        lines = ["| set | frames | nearest-pose angle to the real test poses, mean (quartiles), "
                 "degrees | knee flexion p1 / p5 / median, degrees | thigh flexion against "
                 "the trunk, mean, degrees |", "| --- | --- | --- | --- | --- |"]
        for r in coverage:
            near = ("-" if "mean" not in r else f"{r['mean']:.1f} ("
                    + ", ".join(f"{q:.1f}" for q in r["quartiles"]) + ")")
            lines.append(f"| {r['training set']} | {r['frames']} | {near} | "
                         f"{r['knee_p1']:.1f} / {r['knee_p5']:.1f} / {r['knee_median']:.1f} | "
                         f"{r['thigh_mean']:.1f} |")
        print("\n".join(lines), flush=True)
        if args.markdown:
            args.markdown.with_name(args.markdown.stem + "_coverage.md").write_text(
                "\n".join(lines) + "\n", encoding="utf-8")
    rows = []
    for run in args.runs:
        if not (run / "model.keras").is_file():
            print(f"{run}: no model.keras (not a finished run)", file=sys.stderr)
            return 2
        pred, target, layout = run_predictions(run, args.dataset, args.vp3d_name, args.split)
        row = {"run": run.name, "in_domain_val_mm": in_domain_validation(run),
               **decompose(pred, target, layout)}
        rows.append(row)
        print(markdown([row]).splitlines()[-1], flush=True)
    if args.cross_domain and rows:
        lines = cross_domain_markdown(args, rows)
        print(lines, flush=True)
        if args.markdown:
            args.markdown.with_name(args.markdown.stem + "_cross_domain.md").write_text(
                lines, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(markdown(rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
