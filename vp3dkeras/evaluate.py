"""Evaluate a trained run on the test side of a split, full-sequence, with flip TTA.

    python -m vp3dkeras.evaluate RUN_DIR [--dataset DIR] [--split NAME] [--side test]
        [--vp3d-name NAME] [--keypoints gt] [--layout NAME] [--image-size WxH]
        [--estimate-cameras] [--noise-2d off|on] [--noise-2d-level 1] [--noise-seed 0]
        [--model FILE] [--no-flip-tta] [--exclude-implausible] [--name NAME]

Dataset, split and data options, and the keypoint conventions of the 2D input and 3D output
(`keypoints_in` / `keypoints_out`), default to the run's config.json; with another `--dataset`
(any synth dataset or VideoPose3D-format folder, e.g. HumanEva-I with
`--split "subjects:Train/S1,Train/S2,Train/S3/Validate/S1,Validate/S2,Validate/S3"`) the data
options describe that folder and `--split` is required. When the run's joints (its layout,
summary.json) differ from the data's, the data's joints are picked by name and the run is
scored on the joints both share; the result says which (`joints`). A joint the run reads but
the data lacks is an error. `--noise-2d on` scores on detector-like 2D
(`vp3dkeras.data.detector_noise`, seeded by `--noise-seed` and the sequence index). Every test sequence
(clip x avatar x camera) is lifted whole; the metrics (`vp3dkeras.metrics.evaluate_poses`) are
computed over all frames, in mm, on root-relative camera-space poses: P1 (MPJPE), P2
(Procrustes), P3 (scale-normalised), MPJVE (mm per frame, within sequences), 3DPCK at 150 and
200 mm and AUC (fractions), MPJPE per joint group, predicted against true bone lengths, and
the same per motion class (plus the mean over classes, VideoPose3D's per-action average).
Ground-truth frames no body can take (the head more than 100 degrees off the trunk axis,
`vp3dkeras.data.target_checks`: HumanEva-I's S3 walks) are named in one warning line and
scored as given, or left out with `--exclude-implausible`. Results go to
`RUN_DIR/eval_<name>.json` and `RUN_DIR/eval_<name>.md` (name: `<split>_<side>`, the split
made file-name safe, with `_noflip` without TTA).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

if __name__ == "__main__":  # TensorFlow without its start-up noise (vp3dkeras.quiet_tf)
    from vp3dkeras import quiet_tf  # noqa: F401

from posecontract.dataset_format import safe_name
from posecontract.conventions import get_convention
from posecontract.layouts import LAYOUTS, JointLayout
from vp3dkeras.cli_errors import UsageError, run_main
from vp3dkeras.data import SequenceSource, open_split
from vp3dkeras.data.codec import PoseCodec, load_layout
from vp3dkeras.data.detector_noise import DetectorNoise, noise_from_config
from vp3dkeras.data.joint_subset import JointSubsetSource, subset_layout
from vp3dkeras.data.synth_source import is_synth_dataset
from vp3dkeras.data.target_checks import MAX_HEAD_ANGLE_DEG, implausible_frames
from vp3dkeras.inference import Lifter, load_lifter, predict_poses
from vp3dkeras.metrics import bone_length_report, evaluate_poses, mpjve
from vp3dkeras.train_config import parse_image_size

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


def _valid_runs(mask: np.ndarray) -> List[slice]:
    """Slices of the contiguous True runs of a (T,) bool mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def evaluate_source(lifter: Lifter, source: SequenceSource, flip_tta: bool = True,
                    progress: bool = False, noise: Optional[DetectorNoise] = None,
                    noise_seed: int = 0, run_codec: Optional[PoseCodec] = None,
                    output_index=None, exclude_implausible: bool = False
                    ) -> Dict[str, object]:
    """All metrics of `lifter` on every sequence of `source` (which needs 3D targets).

    noise: detector-like noise applied to each sequence's 2D input, seeded by
    (noise_seed, sequence index); None for the source's 2D as it is.
    run_codec, output_index: when the run's joints differ from the source's (`match_joints`):
    the run's codec (its flip pairs for the flip TTA) and which of its output joints are the
    source's.
    Ground-truth frames no body can take (`vp3dkeras.data.target_checks`) are counted per
    sequence under "implausible_targets"; `exclude_implausible` leaves them out of every
    metric (sequences are cut around them, so MPJVE never spans a gap).
    Returns {"metrics": {...}, "per_class": {class: {...}}, "class_mean": {...},
    "bones": {"error", "per_bone"}, "implausible_targets": {...}, "num_sequences",
    "num_frames"}; lengths in mm, PCK/AUC as fractions.
    """
    if not source.has_3d:
        raise ValueError(f"{source.name}: evaluation needs 3D targets (a VideoPose3D folder "
                         f"without cameras: pass --estimate-cameras or add a cameras file)")
    preds, targets, classes = [], [], []
    implausible: Dict[str, List[int]] = {}
    for index in range(len(source)):
        seq = source.load(index)
        keypoints = seq.keypoints_2d
        if noise is not None:
            keypoints = noise.apply(keypoints, np.random.default_rng([noise_seed, index]))
        pred = predict_poses(lifter, keypoints, run_codec or source.codec, flip_tta)
        pred = pred if output_index is None else pred[:, output_index]
        target = source.codec.decode_3d(seq.poses_3d)
        bad = implausible_frames(target, source.codec.layout)
        if bad.any():
            implausible[seq.ref.key] = [int(bad.sum()), len(bad)]
        pieces = _valid_runs(~bad) if exclude_implausible else [slice(None)]
        for piece in pieces:
            preds.append(pred[piece])
            targets.append(target[piece])
            classes.append(seq.ref.motion_class or "(none)")
        if progress and (index + 1) % 100 == 0:
            print(f"  {index + 1}/{len(source)} sequences", flush=True)
    if not preds:
        raise ValueError(f"{source.name}: every ground-truth frame is implausible "
                         f"(head more than {MAX_HEAD_ANGLE_DEG:g} deg off the trunk axis): "
                         f"nothing left to score without them")
    layout = source.codec.layout
    by_class = defaultdict(list)
    for i, name in enumerate(classes):
        by_class[name].append(i)
    per_class = {name: _metrics([preds[i] for i in rows], [targets[i] for i in rows], None)
                 for name, rows in sorted(by_class.items())}
    class_mean = {key: float(np.mean([m[key] for m in per_class.values()]))
                  for key in _SCALARS if all(key in m for m in per_class.values())}
    bones = bone_length_report(np.concatenate(preds), np.concatenate(targets), layout)
    return {"metrics": _metrics(preds, targets, layout), "per_class": per_class,
            "class_mean": class_mean, "bones": bones,
            "implausible_targets": {"check": f"head more than {MAX_HEAD_ANGLE_DEG:g} deg off "
                                             f"the trunk axis",
                                    "frames": int(sum(n for n, _ in implausible.values())),
                                    "sequences": implausible,
                                    "excluded": bool(exclude_implausible)},
            "num_sequences": len(source), "num_frames": int(sum(len(p) for p in preds))}


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
    if "bones" in result:
        bones = result["bones"]
        lines += [f"Bone lengths (mm), mean |predicted - true| {bones['error']:.1f}:", "",
                  "| bone | predicted | true | error |", "| --- | --- | --- | --- |"]
        lines += [f"| {name} | {b['pred']:.0f} | {b['true']:.0f} | {b['error']:.1f} |"
                  for name, b in bones["per_bone"].items()]
        lines.append("")
    if "joints" in result:
        lines += [result["joints"]["note"], ""]
    bad = result.get("implausible_targets") or {}
    if bad.get("frames"):
        lines += [f"Ground truth: {bad['frames']} frames in {len(bad['sequences'])} sequences "
                  f"have the {bad['check']} (a data defect; "
                  + ("left out of every metric" if bad["excluded"] else "scored as given")
                  + "): " + ", ".join(f"{k} ({n} of {t})"
                                      for k, (n, t) in bad["sequences"].items()) + ".", ""]
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
    add = parser.add_argument
    add("run_dir", type=pathlib.Path)
    add("--dataset", help="synth dataset or its shards (folder or URL), or a "
        "VideoPose3D-format folder (default: the run's)")
    add("--split", help="split name, or subjects:TRAIN/TEST or subjects:train=..;test=.. "
        "(default: the run's, when scoring the run's dataset)")
    add("--side", choices=["test", "train"], default="test")
    add("--vp3d-name", help="VideoPose3D file name part (data_2d_<name>_<keypoints>.npz)")
    add("--keypoints", help="2D source of VideoPose3D files (default gt)")
    add("--layout", help="the data's joint layout (VideoPose3D files; default: metadata)")
    add("--image-size", type=parse_image_size, help="WxH for VideoPose3D data without cameras")
    add("--estimate-cameras", action="store_true", default=None,
        help="no cameras file: estimate cameras from the 3D and the ground-truth 2D")
    add("--noise-2d", choices=["off", "on"], default="off",
        help="score on detector-like noisy 2D")
    add("--noise-2d-level", type=float, default=1.0)
    add("--noise-seed", type=int, default=0)
    add("--model", type=pathlib.Path,
        help="model file or SavedModel (default RUN_DIR/model.keras)")
    add("--no-flip-tta", dest="flip_tta", action="store_false")
    add("--exclude-implausible", action="store_true",
        help="leave out ground-truth frames no body can take (head more than "
             f"{MAX_HEAD_ANGLE_DEG:g} degrees off the trunk: a data defect; they are "
             "reported either way)")
    add("--name", help="result file suffix (default [<dataset>_]<split>_<side>)")
    return parser


def _read_json(path: pathlib.Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def run_layout(config: dict, summary: dict, data_layout: JointLayout
               ) -> Tuple[Optional[JointLayout], Optional[JointLayout]]:
    """(2D input, 3D output) joints of the run: its `joints` option (both), else its keypoint
    conventions (`keypoints_in` / `keypoints_out`), else summary.json's layout (a known
    name, or its joint names picked from the data's layout); (None, None) when the run does
    not say (older runs: assumed to match the data)."""
    if config.get("joints"):
        return (load_layout(config["joints"]),) * 2
    if config.get("keypoints_in") and config.get("keypoints_out"):
        return (get_convention(config["keypoints_in"]).layout,
                get_convention(config["keypoints_out"]).layout)
    names = summary.get("joint_names")
    if not names:
        return None, None
    name = summary.get("layout", "")
    if name in LAYOUTS and list(LAYOUTS[name].names) == list(names):
        return (LAYOUTS[name],) * 2
    missing = [n for n in names if n not in data_layout.names]
    if missing:
        raise ValueError(f"the run reads joints {missing} that the data's layout "
                         f"{data_layout.name} lacks")
    return (subset_layout(data_layout, names, name=name or "run"),) * 2


def match_joints(source: SequenceSource, input_layout: Optional[JointLayout],
                 layout: Optional[JointLayout]):
    """How to score a run whose 2D input is `input_layout` and 3D output `layout` on `source`.

    Returns (source restricted to the scored joints, the run's codec or None, index of the
    scored joints in the run's output or None, note dict or None). The run's 2D input joints
    must all be in the data (ValueError naming the missing ones); its output is scored on the
    joints whose names the data also has, which must include its root.
    """
    data_layout, data_input = source.codec.layout, source.codec.input_layout
    if layout is None or (tuple(layout.names) == tuple(data_layout.names)
                          and tuple(input_layout.names) == tuple(data_input.names)):
        return source, None, None, None
    missing = [n for n in input_layout.names if n not in data_input.names]
    if missing:
        raise ValueError(f"the run reads joints {missing} of layout {input_layout.name} that "
                         f"the data ({data_input.name}) lacks: it cannot be scored on this data")
    shared = [n for n in layout.names if n in data_layout.names]
    if layout.names[0] not in shared:
        raise ValueError(f"the data ({data_layout.name}) lacks the run's root joint "
                         f"{layout.names[0]!r}: it cannot be scored on this data")
    unscored = [n for n in data_layout.names if n not in layout.names]
    note = (f"Scored on the {len(shared)} joints that the run's layout {layout.name} "
            f"and the data's layout {data_layout.name} share by name: {', '.join(shared)}"
            + (f"; the data's {', '.join(unscored)} are not predicted" if unscored else "")
            + ". Shared names need not mean identical joint definitions.")
    scored = subset_layout(layout, shared, name=layout.name)
    return (JointSubsetSource(source, scored, input_layout),
            PoseCodec(layout, input_layout=input_layout),
            np.array([layout.index(n) for n in shared]),
            {"run_layout": layout.name, "data_layout": data_layout.name, "scored": shared,
             "not_scored": unscored, "note": note})


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir}: no such run directory")
    config = _read_json(args.run_dir / "config.json")
    summary = _read_json(args.run_dir / "summary.json")
    own = args.dataset is None or (config.get("dataset") and pathlib.Path(args.dataset).resolve()
                                   == pathlib.Path(config["dataset"]).resolve())
    dataset = args.dataset or config.get("dataset")
    split = args.split or (config.get("split") if own else None)
    if not dataset or not split:
        raise UsageError("--dataset and --split are needed (the run has no config.json, or "
                         "--dataset names another dataset)")

    def option(name, default=None):
        given = getattr(args, name)
        if given is not None:
            return given
        return config.get(name, default) if own else default

    try:
        # A synth dataset holds several conventions: read the run's (or, for a run that
        # picked joints by name, the ones it picked them from).
        conventions = {}
        if is_synth_dataset(dataset):
            conventions = {"keypoints_in": config.get("keypoints_in"),
                           "keypoints_out": config.get("keypoints_out")}
        train_source, test_source = open_split(
            dataset, split, vp3d_name=option("vp3d_name"), keypoints=option("keypoints", "gt"),
            layout=option("layout"), image_size=option("image_size"),
            estimate_cameras=bool(option("estimate_cameras", False)), **conventions)
        source = test_source if args.side == "test" else train_source
        source.validate()  # a corrupt or non-finite record stops here, named
        source, run_codec, output_index, joints = match_joints(
            source, *run_layout(config, summary, source.codec.layout))
        noise = noise_from_config((run_codec or source.codec).input_layout, args.noise_2d,
                                  args.noise_2d_level)
        if not source.has_3d:
            raise ValueError("no 3D targets to score against (without a cameras file pass "
                             "--estimate-cameras, or add data_cameras_<name>.json)")
    except (ValueError, KeyError, FileNotFoundError) as error:
        raise UsageError(f"{dataset}: {error}") from None
    lifter = load_lifter(args.model or args.run_dir / "model.keras")
    result = evaluate_source(lifter, source, flip_tta=args.flip_tta, noise=noise,
                             noise_seed=args.noise_seed, run_codec=run_codec,
                             output_index=output_index,
                             exclude_implausible=args.exclude_implausible)
    bad = result["implausible_targets"]
    if bad["frames"]:
        listed = ", ".join(f"{key} ({n} of {total})"
                           for key, (n, total) in list(bad["sequences"].items())[:3])
        more = len(bad["sequences"]) - 3
        print(f"warning: {bad['frames']} ground-truth frames in {len(bad['sequences'])} "
              f"sequences have the {bad['check']} (a data defect): {listed}"
              + (f" and {more} more" if more > 0 else "")
              + ("; left out (--exclude-implausible)" if bad["excluded"] else
                 "; scored as given (--exclude-implausible leaves them out)"), file=sys.stderr)
    result.update({"dataset": str(dataset), "split": split, "side": args.side,
                   "flip_tta": args.flip_tta, "noise_2d": args.noise_2d,
                   "noise_2d_level": args.noise_2d_level if noise else 0.0,
                   "model": str(args.model or args.run_dir / "model.keras")})
    if joints:
        result["joints"] = joints
        print(joints["note"])
    prefix = "" if own else safe_name(pathlib.Path(dataset).name) + "_"
    name = args.name or (prefix + f"{safe_name(split)}_{args.side}"
                         + (f"_noise{args.noise_2d_level:g}" if noise else "")
                         + ("_plausible" if args.exclude_implausible else "")
                         + ("" if args.flip_tta else "_noflip"))
    json_path = args.run_dir / f"eval_{name}.json"
    _write_atomic(json_path, json.dumps(result, indent=1) + "\n")
    report = markdown_report(result, f"{args.run_dir.name} on {split} ({args.side})")
    _write_atomic(args.run_dir / f"eval_{name}.md", report)
    m = result["metrics"]
    print(f"P1 {m['P1']:.1f} mm  P2 {m['P2']:.1f} mm  P3 {m['P3']:.1f} mm  "
          f"MPJVE {m.get('MPJVE', float('nan')):.2f} mm/frame  PCK150 {100 * m['PCK150']:.1f}%  "
          f"PCK200 {100 * m['PCK200']:.1f}%  AUC {100 * m['AUC']:.1f}%  "
          f"bones {result['bones']['error']:.1f} mm  -> {json_path}")
    return 0


def _write_atomic(path: pathlib.Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


if __name__ == "__main__":
    sys.exit(run_main(main))
