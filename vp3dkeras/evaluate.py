"""Evaluate a trained run on the test side of a split, full-sequence, with flip TTA.

    python -m vp3dkeras.evaluate RUN_DIR [--dataset DIR] [--split NAME] [--side test]
        [--model FILE] [--no-flip-tta] [--name NAME]

Dataset, split and data options, and the keypoint conventions of the 2D input and 3D output
(`keypoints_in` / `keypoints_out`), default to the run's config.json. Every test sequence
(clip x avatar x camera) is lifted whole; the metrics (`vp3dkeras.metrics.evaluate_poses`) are
computed over all frames, in mm, on root-relative camera-space poses: P1 (MPJPE), P2
(Procrustes), P3 (scale-normalised), MPJVE (mm per frame, within sequences), 3DPCK at 150 and
200 mm and AUC (fractions), MPJPE per joint group, and the same per motion class (plus the
mean over classes, VideoPose3D's per-action average). Results go to
`RUN_DIR/eval_<name>.json` and `RUN_DIR/eval_<name>.md` (name: `<split>_<side>`, the split
made file-name safe, with `_noflip` without TTA).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np

if __name__ == "__main__":  # TensorFlow without its start-up noise (vp3dkeras.quiet_tf)
    from vp3dkeras import quiet_tf  # noqa: F401

from posecontract.dataset_format import safe_name
from vp3dkeras.cli_errors import UsageError, run_main
from vp3dkeras.data import SequenceSource, open_split
from vp3dkeras.inference import Lifter, load_lifter, predict_poses
from vp3dkeras.metrics import evaluate_poses, mpjve

_SCALARS = ("P1", "P2", "P3", "MPJVE", "PCK150", "PCK200", "AUC")


def _velocity_error(preds: List[np.ndarray], targets: List[np.ndarray]) -> Optional[float]:
    """MPJVE over all sequences, weighted by their frame differences, in the input units."""
    weights, values = [], []
    for pred, target in zip(preds, targets):
        if len(pred) >= 2:
            values.append(mpjve(pred, target))
            weights.append(len(pred) - 1)
    return float(np.average(values, weights=weights)) if weights else None


def _metrics(preds, targets, layout) -> Dict[str, object]:
    result = evaluate_poses(np.concatenate(preds), np.concatenate(targets), layout,
                            time_axis=False)
    velocity = _velocity_error(preds, targets)
    if velocity is not None:
        result["MPJVE"] = velocity * 1000.0
    result["frames"] = int(sum(len(p) for p in preds))
    return result


def evaluate_source(lifter: Lifter, source: SequenceSource, flip_tta: bool = True,
                    progress: bool = False) -> Dict[str, object]:
    """All metrics of `lifter` on every sequence of `source` (which needs 3D targets).

    Returns {"metrics": {...}, "per_class": {class: {...}}, "class_mean": {...},
    "num_sequences", "num_frames"}; lengths in mm, PCK/AUC as fractions.
    """
    if not source.has_3d:
        raise ValueError(f"{source.name}: evaluation needs 3D targets")
    preds, targets, classes = [], [], []
    for index in range(len(source)):
        seq = source.load(index)
        preds.append(predict_poses(lifter, seq.keypoints_2d, source.codec, flip_tta))
        targets.append(source.codec.decode_3d(seq.poses_3d))
        classes.append(seq.ref.motion_class or "(none)")
        if progress and (index + 1) % 100 == 0:
            print(f"  {index + 1}/{len(source)} sequences", flush=True)
    layout = source.codec.layout
    by_class = defaultdict(list)
    for i, name in enumerate(classes):
        by_class[name].append(i)
    per_class = {name: _metrics([preds[i] for i in rows], [targets[i] for i in rows], None)
                 for name, rows in sorted(by_class.items())}
    class_mean = {key: float(np.mean([m[key] for m in per_class.values()]))
                  for key in _SCALARS if all(key in m for m in per_class.values())}
    return {"metrics": _metrics(preds, targets, layout), "per_class": per_class,
            "class_mean": class_mean, "num_sequences": len(source),
            "num_frames": int(sum(len(p) for p in preds))}


def _cell(key, value) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}" if key in ("PCK150", "PCK200", "AUC") else f"{value:.1f}"


def markdown_report(result: Dict[str, object], title: str) -> str:
    """The evaluation as Markdown tables (mm; PCK and AUC in %)."""
    metrics = result["metrics"]
    present = [k for k in _SCALARS if k in metrics]
    lines = [f"# {title}", "",
             f"{result['num_sequences']} sequences, {result['num_frames']} frames; "
             f"flip TTA: {'on' if result.get('flip_tta', True) else 'off'}. "
             "P1-P3 in mm, MPJVE in mm/frame, 3DPCK and AUC in %.", "",
             "| " + " | ".join(present) + " |", "|" + " --- |" * len(present),
             "| " + " | ".join(_cell(k, metrics[k]) for k in present) + " |", ""]
    if "per_group" in metrics:
        groups = metrics["per_group"]
        lines += ["MPJPE per joint group (mm):", "", "| " + " | ".join(groups) + " |",
                  "|" + " --- |" * len(groups),
                  "| " + " | ".join(f"{v:.1f}" for v in groups.values()) + " |", ""]
    columns = [k for k in ("P1", "P2", "P3", "MPJVE", "PCK150") if k in metrics]
    lines += ["Per class:", "", "| class | frames | " + " | ".join(columns) + " |",
              "| --- | --- |" + " --- |" * len(columns)]
    for name, m in result["per_class"].items():
        lines.append(f"| {name} | {m['frames']} | "
                     + " | ".join(_cell(k, m.get(k)) for k in columns) + " |")
    mean = result["class_mean"]
    lines.append("| **mean over classes** | | "
                 + " | ".join(_cell(k, mean.get(k)) for k in columns) + " |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.evaluate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=pathlib.Path)
    parser.add_argument("--dataset", help="default: the run's dataset")
    parser.add_argument("--split", help="default: the run's split")
    parser.add_argument("--side", choices=["test", "train"], default="test")
    parser.add_argument("--model", type=pathlib.Path,
                        help="model file or SavedModel (default RUN_DIR/model.keras)")
    parser.add_argument("--no-flip-tta", dest="flip_tta", action="store_false")
    parser.add_argument("--name", help="result file suffix (default <split>_<side>)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir}: no such run directory")
    config = {}
    if (args.run_dir / "config.json").is_file():
        config = json.loads((args.run_dir / "config.json").read_text(encoding="utf-8"))
    dataset = args.dataset or config.get("dataset")
    split = args.split or config.get("split")
    if not dataset or not split:
        raise SystemExit("--dataset and --split are needed (the run has no config.json)")
    train_source, test_source = open_split(
        dataset, split, vp3d_name=config.get("vp3d_name"),
        keypoints=config.get("keypoints", "gt"), layout=config.get("layout"),
        image_size=config.get("image_size"), keypoints_in=config.get("keypoints_in"),
        keypoints_out=config.get("keypoints_out"))
    source = test_source if args.side == "test" else train_source
    source.validate()  # a corrupt or non-finite record stops here, named
    lifter = load_lifter(args.model or args.run_dir / "model.keras")
    result = evaluate_source(lifter, source, flip_tta=args.flip_tta)
    result.update({"dataset": str(dataset), "split": split, "side": args.side,
                   "flip_tta": args.flip_tta,
                   "model": str(args.model or args.run_dir / "model.keras")})
    name = args.name or f"{safe_name(split)}_{args.side}" + ("" if args.flip_tta else "_noflip")
    json_path = args.run_dir / f"eval_{name}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    report = markdown_report(result, f"{args.run_dir.name} on {split} ({args.side})")
    (args.run_dir / f"eval_{name}.md").write_text(report, encoding="utf-8")
    m = result["metrics"]
    print(f"P1 {m['P1']:.1f} mm  P2 {m['P2']:.1f} mm  P3 {m['P3']:.1f} mm  "
          f"MPJVE {m.get('MPJVE', float('nan')):.2f} mm/frame  PCK150 {100 * m['PCK150']:.1f}%  "
          f"PCK200 {100 * m['PCK200']:.1f}%  AUC {100 * m['AUC']:.1f}%  -> {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
