"""Sim-to-real study: the same lifter trained on synthetic data and on a real set's training
subjects, both scored on the real set's test subjects.

    .venv/bin/python experiments/sim_to_real.py [--config experiments/configs/sim_to_real_humaneva.json]
        [--work datasets/sim_to_real] [--runs runs/sim_to_real]
        [--out experiments/results/sim_to_real] [--synthetic NAME=DATASET_DIR ...]
        [--rows N,M] [--data-only] [--table-only]

The config (JSON) names the real set (a VideoPose3D-format folder, its subject split, image
size), the synthetic datasets, the training options shared by every row, the rows (what each
trains on: "real" or a synthetic dataset's name; `joints`, `noise_2d`, `noise_2d_level`,
`training`: options added to the shared ones, e.g. more epochs for a smaller set;
`skeletons`: "real_train" re-proportions the synthetic motion to the real set's training
subjects' measured bone lengths, `real_skeletons`; `motion_classes`: train on those motion
classes of the synthetic set only, `classes_split`; `unlabeled_real`: true trains
semi-supervised, the synthetic set labeled and the real training subjects' 2D unlabeled,
no real 3D, `unlabeled_real_options`) and
the evaluations (ground-truth or noisy 2D); `real_training` options are added for rows
trained on the real set (smaller: more epochs for a similar number of steps). A synthetic dataset is either given
(`"dataset": DIR`, or `--synthetic NAME=DIR` on the command line, e.g. one rendered with new
keypoint conventions or bodies) or rendered here: a subset of ../shared/mocap chosen by the
config (HDM05 classes, CMU trials whose description matches a pattern; or `"mocap": "all"`
for the whole folder) is linked into WORK/mocap_<name>/ and rendered with `python -m synth.render` and the config's options
(60 fps: HumanEva-I is 60 Hz) into WORK/<name>/. Synthetic rows train on its `random` split
(the held-out 20 % only validate).

Every step is a separate process (`vp3dkeras.train`, `vp3dkeras.evaluate`) and every step
resumes: finished renders, runs (summary.json finished) and evaluations (their JSON) are
skipped, an interrupted run is resumed. Writes OUT/results.json, OUT/results.md (P1, P2, P3,
MPJVE, PCK, per joint group, per action, bone lengths) and OUT/bone_lengths.png.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import re
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "experiments" / "configs" / "sim_to_real_humaneva.json"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _run(command, log: pathlib.Path) -> None:
    """Runs a step in its own process (TF, renderers and Warp never share one), niced."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    print("$", " ".join(str(c) for c in command), flush=True)
    started = time.time()
    with open(log, "a", encoding="utf-8") as handle:
        code = subprocess.call(["nice", "-n", "5", *map(str, command)], cwd=REPO, env=env,
                               stdout=handle, stderr=subprocess.STDOUT)
    print(f"  exit {code} after {time.time() - started:.0f} s (log {log})", flush=True)
    if code:
        raise SystemExit(f"step failed (exit {code}); see {log}")


def _spread(paths: list, limit: int) -> list:
    """`limit` of the sorted `paths`, evenly spread (over actors, subjects, trials)."""
    if len(paths) <= limit:
        return paths
    step = len(paths) / limit
    return [paths[int(i * step)] for i in range(limit)]


def link_mocap_subset(selection: dict, mocap: pathlib.Path, target: pathlib.Path) -> int:
    """Symlinks the chosen clips (with their skeletons and CMU trials.csv) into `target`.

    selection: {"hdm05_classes": [...], "hdm05_per_class": N, "cmu_pattern": regex,
    "cmu_max": N}; clips are evenly spread over the sorted matches (so over actors and subjects).
    Returns the number of clips.
    """
    clips = []
    hdm05 = mocap / "hdm05"
    for motion_class in selection.get("hdm05_classes", []):
        found = sorted(hdm05.glob(f"HDM_*_{motion_class}_*.amc"))
        clips += _spread(found, int(selection.get("hdm05_per_class", len(found))))
    cmu = mocap / "cmu"
    pattern = selection.get("cmu_pattern")
    if pattern:
        with open(cmu / "trials.csv", encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle)
                    if re.search(pattern, r["description"], re.IGNORECASE)]
        paths = [cmu / r["subject"] / f"{r['subject']}_{r['trial']}.amc" for r in rows]
        paths = [p for p in paths if p.is_file()]
        clips += _spread(paths, int(selection.get("cmu_max", len(paths))))
    for clip in clips:
        relative = clip.relative_to(mocap)
        skeleton = clip.parent / (clip.name.split("_")[0] + ".asf") if relative.parts[0] == "cmu" \
            else clip.parent / ("_".join(clip.name.split("_")[:2]) + ".asf")
        for path in (clip, skeleton):
            link = target / path.relative_to(mocap)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(path.resolve())
    if pattern:
        link = target / "cmu" / "trials.csv"
        if not link.exists():
            link.symlink_to((cmu / "trials.csv").resolve())
    return len(clips)


def prepare_synthetic(name: str, spec: dict, work: pathlib.Path, mocap: pathlib.Path,
                      logs: pathlib.Path) -> pathlib.Path:
    """The dataset folder of synthetic set `name`, rendered if the spec asks for it."""
    if "dataset" in spec:
        return pathlib.Path(spec["dataset"])
    dataset = work / name
    if (dataset / "manifest.json").is_file() and (dataset / "render.done").is_file():
        return dataset
    if spec["mocap"] == "all":  # every clip of the mocap folder
        subset = mocap
    elif isinstance(spec["mocap"], str):  # the clips of another synthetic set
        subset = work / f"mocap_{spec['mocap']}"
        if not subset.is_dir():
            raise SystemExit(f"{name}: prepare synthetic set {spec['mocap']} first")
    else:
        subset = work / f"mocap_{name}"
        count = link_mocap_subset(spec["mocap"], mocap, subset)
        print(f"{name}: {count} clips linked into {subset}", flush=True)
    _run([sys.executable, "-m", "synth.render", subset, "--out", dataset, "--quiet",
          *spec.get("render", [])], logs / f"render_{name}.log")
    (dataset / "render.done").write_text("done\n", encoding="utf-8")
    return dataset


#: What a row's synthetic set needs from the code base, and how to tell it is there.
FEATURES = {
    "conventions": lambda: (REPO / "posecontract" / "conventions.py").is_file(),
    "bodies": lambda: (REPO / "synth" / "bodies").exists()
    or (REPO / "synth" / "bodies.py").is_file(),
}


def missing_feature(row: dict, config: dict):
    """The feature a row's synthetic set needs and this code base lacks, or None."""
    if row["train_on"] == "real":
        return None
    spec = config["synthetic"][row["train_on"]]
    needed = spec.get("requires")
    if needed and "dataset" not in spec and not FEATURES[needed]():
        return needed
    return None


def _real_options(real: dict) -> list:
    """Data options of the real set: its file name and 2D source, and for a set without
    cameras (file or shipped calibration) the image size and `--estimate-cameras`."""
    options = ["--vp3d-name", real["vp3d_name"], "--keypoints", real["keypoints"]]
    if real.get("image_size"):
        options += ["--image-size", real["image_size"]]
    if real.get("estimate_cameras"):
        options.append("--estimate-cameras")
    return options


def unlabeled_real_options(real: dict) -> list:
    """Training options of a row with `"unlabeled_real": true`: VideoPose3D's semi-supervised
    back-projection with the real set's training subjects' 2D (and cameras) as the unlabeled
    side; their 3D is never used."""
    options = ["--supervision", "semi-supervised", "--unlabeled-dataset", real["dataset"],
               "--unlabeled-split", real["split"], "--unlabeled-vp3d-name", real["vp3d_name"],
               "--unlabeled-keypoints", real["keypoints"]]
    if real.get("image_size") or real.get("estimate_cameras"):
        raise SystemExit("unlabeled_real needs a real set with cameras (a cameras file or a "
                         "shipped calibration)")
    return options


def real_skeletons(config: dict, work: pathlib.Path, logs: pathlib.Path) -> pathlib.Path:
    """The real set's training subjects' bone lengths (`python -m vp3dkeras.skeletons`),
    measured once into WORK/skeletons_<config name>_train.json: what a row with
    `"skeletons": "real_train"` trains its synthetic motion towards."""
    path = work / f"skeletons_{_slug(config['name'])}_train.json"
    if not path.is_file():
        real = config["real"]
        _run([sys.executable, "-m", "vp3dkeras.skeletons", real["dataset"], "--split",
              real["split"], "--side", "train", *_real_options(real), "--out", path],
             logs / f"skeletons_{_slug(config['name'])}.log")
    return path


def classes_split(dataset: pathlib.Path, classes: list) -> str:
    """Name of the dataset's `random` split restricted to the motion classes `classes`
    (`synth.splits.classes_only`), written into DATASET/splits/ once: a row with
    `"motion_classes": [...]` trains on the motions a benchmark's actions need."""
    from synth.splits import classes_only, load_split, write_splits
    records = json.loads((dataset / "manifest.json").read_text(encoding="utf-8"))["records"]
    split = classes_only(load_split(dataset, "random"), records, classes)
    if not (dataset / "splits" / f"{split.name}.json").is_file():
        write_splits(dataset, [split])
    return split.name


def train_row(row: dict, config: dict, datasets: dict, run_dir: pathlib.Path,
              logs: pathlib.Path, work: pathlib.Path) -> None:
    summary = run_dir / "summary.json"
    if summary.is_file() and json.loads(summary.read_text())["finished"]:
        return
    if (run_dir / "checkpoint").exists():
        command = ["--resume", run_dir]
    else:
        real = config["real"]
        if row["train_on"] == "real":
            data = ["--dataset", real["dataset"], "--split", real["split"], *_real_options(real)]
        else:
            split = "random"
            if row.get("motion_classes"):
                split = classes_split(pathlib.Path(datasets[row["train_on"]]),
                                      row["motion_classes"])
            data = ["--dataset", datasets[row["train_on"]], "--split", split]
        if row.get("joints"):
            data += ["--joints", row["joints"]]
        if row.get("noise_2d", "off") == "on":
            data += ["--noise-2d", "on", "--noise-2d-level", str(row.get("noise_2d_level", 1))]
        if row.get("unlabeled_real"):
            if row["train_on"] == "real":
                raise SystemExit(f"row {row['name']!r}: unlabeled_real needs a synthetic set")
            data += unlabeled_real_options(real)
        if row.get("skeletons") == "real_train":
            data += ["--skeletons", real_skeletons(config, work, logs)]
        elif row.get("skeletons"):
            raise SystemExit(f"row {row['name']!r}: skeletons {row['skeletons']!r} unknown "
                             f"(only \"real_train\")")
        # Later options win: the shared ones, then the real set's, then the row's own.
        shared = config["training"]
        if row["train_on"] == "real":
            shared = [*shared, *config.get("real_training", [])]
        command = [*data, *shared, *row.get("training", []), "--out", run_dir, "--quiet"]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "vp3dkeras.train", *command], logs / f"train_{run_dir.name}.log")


def evaluate_row(run_dir: pathlib.Path, evaluation: dict, config: dict,
                 logs: pathlib.Path) -> dict:
    name = "real_" + _slug(evaluation["name"])
    result = run_dir / f"eval_{name}.json"
    if not result.is_file():
        real = config["real"]
        command = [sys.executable, "-m", "vp3dkeras.evaluate", run_dir,
                   "--dataset", real["dataset"], "--split", real["split"],
                   *_real_options(real), "--name", name]
        if evaluation.get("noise_2d", "off") == "on":
            command += ["--noise-2d", "on", "--noise-2d-level",
                        str(evaluation.get("noise_2d_level", 1)),
                        "--noise-seed", str(evaluation.get("noise_seed", 0))]
        _run(command, logs / f"eval_{run_dir.name}.log")
    return json.loads(result.read_text(encoding="utf-8"))


def _f(value, percent=False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}" if percent else f"{value:.1f}"


def bone_bias(bones: dict) -> float:
    """Mean over bones of |mean predicted - mean true length|, mm (`bone_length_report`)."""
    per_bone = bones["per_bone"].values()
    return sum(abs(b["pred"] - b["true"]) for b in per_bone) / max(len(per_bone), 1)


def write_tables(results: list, config: dict, out: pathlib.Path, skipped=()) -> None:
    """results.json, results.md and bone_lengths.png from the collected rows."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    lines = [f"# Sim-to-real: {config['name']}", "",
             f"Real set: `{config['real']['dataset']}` ({config['real']['vp3d_name']}), "
             f"split `{config['real']['split']}`; cameras: "
             + ("estimated from the ground-truth 2D (`--estimate-cameras`)"
                if config["real"].get("estimate_cameras") else
                "the folder's cameras file or the calibration shipped for the set")
             + ". Training options: "
             f"`{' '.join(config['training'])}`. mm; PCK in %; flip TTA.", "",
             "`bone err`: mean over frames and bones of |predicted - true length|; `bone bias`: "
             "mean over bones of |mean predicted - mean true length| (the skeleton's size and "
             "proportions, without the frame-to-frame wobble).", "",
             "| row | 2D at test | train min | P1 | P2 | P3 | MPJVE | PCK150 | bone err | "
             "bone bias | P1 / real P1 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    # The ratio is to the config's first real-trained row without 2D noise (the baseline),
    # not to its variants (more channels, longer windows) further down.
    real_p1 = {}
    for r in results:
        if r["row"]["train_on"] == "real" and r["row"].get("noise_2d", "off") == "off":
            real_p1.setdefault(r["evaluation"], r["result"]["metrics"]["P1"])
    for r in results:
        m, res = r["result"]["metrics"], r["result"]
        ratio = m["P1"] / real_p1[r["evaluation"]] if r["evaluation"] in real_p1 else None
        lines.append(f"| {r['row']['name']} | {r['evaluation']} | "
                     f"{r['summary'].get('train_seconds', 0) / 60:.1f} | {_f(m['P1'])} | "
                     f"{_f(m['P2'])} | {_f(m['P3'])} | {_f(m.get('MPJVE'))} | "
                     f"{_f(m['PCK150'], True)} | {_f(res['bones']['error'])} | "
                     f"{_f(bone_bias(res['bones']))} | "
                     f"{'-' if ratio is None else f'{ratio:.2f}'} |")
    notes = sorted({r["result"]["joints"]["note"] for r in results if "joints" in r["result"]})
    notes += sorted({f"{r['row']['name']}: {r['row']['note']}" for r in results
                     if r["row"].get("note")})
    lines += [""] + [f"- {n}" for n in notes] + [f"- {s}" for s in skipped]
    lines += ["", "Sizes (2-core CPU shared with other jobs):", "",
              "| row | train sequences | train frames | steps x batch | parameters | "
              "receptive field | train min |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        if r["evaluation"] != config["evaluations"][0]["name"]:
            continue
        s = r["summary"]
        # Semi-supervised runs: batch_size windows labeled + as many unlabeled per step.
        batch = (f"({s['batch_size']} + {s['batch_size']})" if s.get("unlabeled_windows")
                 else s["batch_size"])
        lines.append(f"| {r['row']['name']} | {s['train_sequences']} | "
                     f"{s.get('train_frames', '-')} | "
                     f"{s['epochs_done'] * s['steps_per_epoch']} x {batch} | "
                     f"{s['parameters']} | {s['receptive_field']} | "
                     f"{s['train_seconds'] / 60:.1f} |")
    groups = list(results[0]["result"]["metrics"].get("per_group", {})) if results else []
    lines += ["", "MPJPE per joint group (mm):", "",
              "| row | 2D | " + " | ".join(groups) + " |", "| --- | --- |" + " --- |" * len(groups)]
    for r in results:
        per_group = r["result"]["metrics"].get("per_group", {})
        lines.append(f"| {r['row']['name']} | {r['evaluation']} | "
                     + " | ".join(_f(per_group.get(g)) for g in groups) + " |")
    actions = sorted({a for r in results for a in r["result"]["per_class"]})
    lines += ["", "P1 per action (mm; mean over actions last):", "",
              "| row | 2D | " + " | ".join(actions) + " | mean |",
              "| --- | --- |" + " --- |" * (len(actions) + 1)]
    for r in results:
        per_class = r["result"]["per_class"]
        lines.append(f"| {r['row']['name']} | {r['evaluation']} | "
                     + " | ".join(_f(per_class.get(a, {}).get("P1")) for a in actions)
                     + f" | {_f(r['result']['class_mean'].get('P1'))} |")
    bones = list(results[0]["result"]["bones"]["per_bone"]) if results else []
    lines += ["", "Bone lengths, predicted (true) in mm, ground-truth 2D at test:", "",
              "| row | " + " | ".join(bones) + " |", "| --- |" + " --- |" * len(bones)]
    for r in results:
        if r["evaluation"] != config["evaluations"][0]["name"]:
            continue
        per_bone = r["result"]["bones"]["per_bone"]
        lines.append(f"| {r['row']['name']} | " + " | ".join(
            f"{per_bone[b]['pred']:.0f} ({per_bone[b]['true']:.0f})" for b in bones) + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _bone_plot(results, config, out / "bone_lengths.png")


def _bone_plot(results, config, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    chosen = [r for r in results if r["evaluation"] == config["evaluations"][0]["name"]]
    if not chosen:
        return
    bones = list(chosen[0]["result"]["bones"]["per_bone"])
    x = np.arange(len(bones))
    width = 0.8 / (len(chosen) + 1)
    fig, ax = plt.subplots(figsize=(max(8, len(bones) * 0.7), 5.5))
    true = [chosen[0]["result"]["bones"]["per_bone"][b]["true"] for b in bones]
    ax.bar(x, true, width, label="true", color="black")
    for k, r in enumerate(chosen, start=1):
        ax.bar(x + k * width, [r["result"]["bones"]["per_bone"][b]["pred"] for b in bones],
               width, label=r["row"]["name"])
    ax.set_xticks(x + 0.4 - width / 2, bones, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("mean length (mm)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.38), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=pathlib.Path, default=DEFAULT_CONFIG)
    parser.add_argument("--work", type=pathlib.Path, default=REPO / "datasets" / "sim_to_real")
    parser.add_argument("--runs", type=pathlib.Path, default=REPO / "runs" / "sim_to_real")
    parser.add_argument("--out", type=pathlib.Path,
                        default=REPO / "experiments" / "results" / "sim_to_real")
    parser.add_argument("--mocap", type=pathlib.Path, default=REPO.parent / "shared" / "mocap")
    parser.add_argument("--synthetic", action="append", default=[], metavar="NAME=DIR",
                        help="use this dataset for synthetic set NAME (skips rendering)")
    parser.add_argument("--rows", help="comma-separated row numbers to run (default all)")
    parser.add_argument("--data-only", action="store_true", help="only render the data")
    parser.add_argument("--table-only", action="store_true",
                        help="only collect finished evaluations into the tables")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    for given in args.synthetic:
        name, _, folder = given.partition("=")
        config["synthetic"][name] = {"dataset": folder}
    logs = args.runs / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    wanted = None if not args.rows else {int(v) for v in args.rows.split(",")}
    rows = [(i, row) for i, row in enumerate(config["rows"]) if wanted is None or i in wanted]
    skipped = [(i, row, missing_feature(row, config)) for i, row in rows
               if missing_feature(row, config)]
    for index, row, feature in skipped:
        print(f"row {index} ({row['name']}): not run, this code base has no {feature} yet")
    rows = [(i, row) for i, row in rows if not missing_feature(row, config)]
    datasets = {}
    if not args.table_only:
        for name in sorted({row["train_on"] for _, row in rows} - {"real"}):
            datasets[name] = prepare_synthetic(name, config["synthetic"][name], args.work,
                                               args.mocap, logs)
    if args.data_only:
        return 0
    results = []
    runnable = {i for i, _ in rows}
    for index, row in enumerate(config["rows"]):
        if index not in runnable and not args.table_only:
            continue
        run_dir = args.runs / _slug(row["name"])
        if not args.table_only and (wanted is None or index in wanted):
            train_row(row, config, datasets, run_dir, logs, args.work)
        for evaluation in config["evaluations"]:
            if args.table_only or (wanted is not None and index not in wanted):
                path = run_dir / f"eval_real_{_slug(evaluation['name'])}.json"
                if not path.is_file():
                    continue
                result = json.loads(path.read_text(encoding="utf-8"))
            else:
                result = evaluate_row(run_dir, evaluation, config, logs)
            summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            results.append({"row": row, "evaluation": evaluation["name"], "run": str(run_dir),
                            "summary": summary, "result": result})
    write_tables(results, config, args.out,
                 [f"{row['name']}: not run, needs {feature}" for _, row, feature in skipped])
    print(f"-> {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
