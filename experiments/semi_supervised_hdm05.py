"""Supervised-only vs semi-supervised (back-projection) training on HDM05, actors mm and tr
held out, for several labeled fractions of actor bd, with the bone-length term on and off.

    .venv/bin/python experiments/semi_supervised_hdm05.py --dataset DATA_DIR --out RESULTS_DIR
        [--mocap ../shared/mocap/hdm05] [--fractions 0.1,0.5,1.0] [--epochs 10]
        [--warmup-epochs 3] [--windows-per-epoch 25600] [--channels 256] [--batch-size 128]

Renders DATA_DIR first if it has no manifest (`python -m synth.render MOCAP --avatars
ava,dan --cameras 2 --fps 50`) and adds the split `actor_out_hdm05_mm_hdm05_tr`. Each run is
one `python -m vp3dkeras.train` process (`--labeled-actors bd`, supervision supervised or
semi-supervised) writing RESULTS_DIR/<name>/, evaluated without flip TTA by
`python -m vp3dkeras.evaluate`; finished runs are skipped and unfinished ones resumed. Writes
RESULTS_DIR/results.md (a table) and results.json. The newer study with the same design is
`experiments/run_study.py vp3d_semi_supervised`.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synth.dataset import read_manifest  # noqa: E402
from synth.splits import actor_split, list_splits, write_splits  # noqa: E402

SPLIT = "actor_out_hdm05_mm_hdm05_tr"
SEMI = ["--supervision", "semi-supervised"]
MODES = (("supervised", ["--supervision", "supervised"]),
         ("semi-bone", [*SEMI, "--bone-length-weight", "1"]),
         ("semi-nobone", [*SEMI, "--bone-length-weight", "0"]),
         # Bone-length term with the labeled side's bone lengths as a fixed target.
         ("semi-bonefixed", [*SEMI, "--bone-length-weight", "1", "--bone-target", "fixed"]))


def prepare_dataset(mocap: pathlib.Path, dataset: pathlib.Path) -> None:
    if not (dataset / "manifest.json").is_file():
        command = [sys.executable, "-m", "synth.render", str(mocap), "--out", str(dataset),
                   "--fps", "50", "--avatars", "ava,dan", "--cameras", "2", "--seed", "0",
                   "--quiet"]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=REPO)
    if SPLIT not in list_splits(dataset):
        clips = read_manifest(dataset)["records"]
        write_splits(dataset, [actor_split(clips, ["mm", "tr"], name=SPLIT)])


def run_name(mode: str, fraction: float, args) -> str:
    widths = "".join(args.filter_widths.split(","))
    return f"tcn{widths}-c{args.channels}-{mode}-bd{fraction:.2f}-hdm05-mm_tr_out"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--mocap", type=pathlib.Path,
                        default=REPO.parent / "shared" / "mocap" / "hdm05")
    parser.add_argument("--fractions", default="0.1,0.5,1.0")
    parser.add_argument("--modes", default="supervised,semi-bone,semi-nobone",
                        help=f"comma-separated, of {', '.join(m for m, _ in MODES)}")
    parser.add_argument("--filter-widths", default="3,3,3")
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--warmup-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--windows-per-epoch", type=int, default=25600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    prepare_dataset(args.mocap, args.dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    rows = []
    wanted_modes = args.modes.split(",")
    for fraction in (float(f) for f in args.fractions.split(",")):
        for mode, extra in MODES:
            if mode not in wanted_modes:
                continue
            name = run_name(mode, fraction, args)
            run_dir = args.out / name
            command = [
                sys.executable, "-m", "vp3dkeras.train", "--dataset", str(args.dataset),
                "--split", SPLIT, "--labeled-actors", "bd", "--labeled-fraction", str(fraction),
                "--filter-widths", args.filter_widths, "--channels", str(args.channels),
                "--epochs", str(args.epochs), "--warmup-epochs", str(args.warmup_epochs),
                "--batch-size", str(args.batch_size),
                "--max-windows-per-epoch", str(args.windows_per_epoch),
                "--seed", str(args.seed), "--out", str(run_dir), *extra]
            summary_path = run_dir / "summary.json"
            if not (summary_path.is_file() and json.loads(summary_path.read_text())["finished"]):
                if (run_dir / "checkpoint" / "state.json").is_file():
                    command_now = [sys.executable, "-m", "vp3dkeras.train", "--resume",
                                   str(run_dir)]
                else:
                    command_now = command
                print(" ".join(command_now), flush=True)
                start = time.perf_counter()
                with open(args.out / f"{name}.log", "a") as log:
                    subprocess.run(command_now, check=True, cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
                print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
            evaluation = run_dir / "eval_semi_noflip.json"
            if not evaluation.is_file():
                subprocess.run([sys.executable, "-m", "vp3dkeras.evaluate", str(run_dir),
                                "--no-flip-tta", "--name", "semi_noflip"], check=True, cwd=REPO,
                               env=env, stdout=subprocess.DEVNULL)
            results = json.loads(evaluation.read_text())["metrics"]
            summary = json.loads(summary_path.read_text())
            rows.append({"name": name, "mode": mode, "labeled_fraction": fraction,
                         "labeled_clips": summary["labeled_clips"],
                         "labeled_windows": summary["labeled_windows"],
                         "unlabeled_windows": summary["unlabeled_windows"],
                         "command": " ".join(command[1:]),
                         "trajectory_mm": summary["trajectory_mm"],
                         "train_seconds": summary["train_seconds"],
                         "num_frames": results["frames"],
                         **{k: results[k] for k in ("P1", "P2", "P3", "MPJVE")}})
            write_tables(args.out, rows)


def write_tables(out: pathlib.Path, rows) -> None:
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    lines = ["| labeled (bd) | clips | windows | mode | P1 mm | P2 mm | N-MPJPE mm | "
             "MPJVE mm | root mm | train s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['labeled_fraction']:.0%} | {r['labeled_clips']} | "
                     f"{r['labeled_windows']} | {r['mode']} | {r['P1']:.1f} | {r['P2']:.1f} | "
                     f"{r['P3']:.1f} | {r['MPJVE']:.1f} | {r['trajectory_mm']:.0f} | "
                     f"{r['train_seconds']:.0f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
