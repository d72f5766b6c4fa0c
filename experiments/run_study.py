"""Run one study of `experiments/studies.py` and write its tables and plots.

    .venv/bin/python experiments/run_study.py STUDY [--full] [--minutes-per-run M]
        [--runs runs/studies] [--results experiments/results]
    .venv/bin/python experiments/run_study.py --write-configs
    .venv/bin/python experiments/run_study.py --list

Each row is one `python -m vp3dkeras.train --config ...` process on the study's config
(reduced for a 2-core CPU unless `--full`; `experiments/configs/<study>/` holds the full-scale
files), then `python -m vp3dkeras.evaluate` per evaluation. Every step resumes: an unfinished
run is continued with `--resume` (a run over its time budget stops at an epoch end and goes on
at the next call), a finished run is not retrained, an evaluation newer than its model is
kept. The datasets are rendered first when missing (`python -m synth.render`; rendering and
TensorFlow never share a process, PLATFORM.md).

Writes `experiments/results/<study>/results.json` (every row: config, summary, metrics,
per-epoch history, CPU seconds), `results.md` (tables with captions: scale, data, CPU time,
the paper's numbers beside ours) and PNG plots (`experiments/study_report.py`).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments"))

import studies as st  # noqa: E402
from study_report import write_index, write_report  # noqa: E402


def _shared() -> pathlib.Path:
    return pathlib.Path(os.environ.get("VP3D_SHARED_DIR", REPO.parent / "shared"))


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))


def _run(command, log) -> float:
    """Runs `command` (output appended to `log`); returns the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "a") as handle:
        handle.write("$ " + " ".join(map(str, command)) + "\n")
        handle.flush()
        done = subprocess.run([str(c) for c in command], cwd=REPO, env=_env(),
                              stdout=handle, stderr=subprocess.STDOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        tail = pathlib.Path(log).read_text().strip().splitlines()[-1:]
        raise SystemExit(f"failed ({done.returncode}): {' '.join(map(str, command))}: "
                         f"{tail[0] if tail else ''} (log {log})")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def ensure_dataset(dataset: str, splits, log: pathlib.Path) -> None:
    """Renders a study dataset from ../shared/mocap when it has no manifest, and writes the
    `splits` the study uses beyond `make_splits`' standard ones (random_hdm05: 20 % of the
    HDM05 clips, seed 0; actor_out_hdm05_mm_hdm05_tr)."""
    folder = REPO / dataset
    if not (folder / "manifest.json").is_file():
        for source in st.DATASETS[dataset]:
            _run([sys.executable, "-m", "synth.render", _shared() / "mocap" / source, "--out",
                  folder, *st.RENDER, "--quiet"], log)
    from posecontract.dataset_format import list_splits, read_manifest
    from synth.splits import actor_split, random_split, write_splits

    records = read_manifest(folder)["records"]
    builders = {
        "random_hdm05": lambda: random_split([r for r in records if r["dataset"] == "hdm05"],
                                             seed=0, test_fraction=0.2, name="random_hdm05"),
        "actor_out_hdm05_mm_hdm05_tr": lambda: actor_split(records, ["hdm05_mm", "hdm05_tr"]),
    }
    missing = [name for name in splits if name not in list_splits(folder)]
    unknown = [name for name in missing if name not in builders]
    if unknown:
        raise SystemExit(f"{folder}: no split {unknown[0]}")
    if missing:
        write_splits(folder, [builders[name]() for name in missing])


def _cpu_book(run_dir: pathlib.Path) -> dict:
    path = run_dir / "study_cpu.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _add_cpu(run_dir: pathlib.Path, key: str, seconds: float) -> None:
    book = _cpu_book(run_dir)
    book[key] = book.get(key, 0.0) + seconds
    tmp = run_dir / ".study_cpu.json.tmp"
    tmp.write_text(json.dumps(book, indent=1))
    tmp.replace(run_dir / "study_cpu.json")


def _same_run(stored, wanted) -> bool:
    """Whether a run's stored config is `wanted` (keys `wanted` leaves open, None, are
    resolved by training, e.g. the keypoint conventions; notes do not count)."""
    stored, wanted = stored.to_dict(), wanted.to_dict()
    return all(stored[k] == v for k, v in wanted.items() if v is not None and k != "notes")


def run_row(study, row, runs: pathlib.Path, full: bool, minutes: float) -> dict:
    from vp3dkeras.config import read_config, write_config

    config = st.full_config(row) if full else st.reduced(study, row)
    name = config.run_name()
    # Runs are shared between studies by name (the tcn27 row of one study is the baseline of
    # the next) when their configs agree; otherwise the study keeps its own.
    run_dir = runs / "shared" / name
    if (run_dir / "config.json").is_file() and not _same_run(
            read_config(run_dir / "config.json"), config):
        run_dir = runs / study.name / name
    log = run_dir.parent / f"{name}.log"
    run_dir.mkdir(parents=True, exist_ok=True)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    budget = ["--time-budget-minutes", str(minutes)] if minutes else []
    if not summary.get("finished"):
        if (run_dir / "checkpoint" / "state.json").is_file():
            command = [sys.executable, "-m", "vp3dkeras.train", "--resume", run_dir, "--quiet",
                       *budget]
        else:
            experiment = run_dir.parent / f"{name}.yaml"
            write_config(config, experiment)
            command = [sys.executable, "-m", "vp3dkeras.train", "--config", experiment,
                       "--out", run_dir, "--quiet", *budget]
        print(f"{study.name}: training {name}", flush=True)
        _add_cpu(run_dir, "train", _run(command, log))
        summary = json.loads(summary_path.read_text())
    evaluations = {}
    for label, options in row.evaluations.items():
        eval_name = f"study{'_' + label if label else ''}"
        path = run_dir / f"eval_{eval_name}.json"
        if not path.is_file() or path.stat().st_mtime < (run_dir / "model.keras").stat().st_mtime:
            print(f"{study.name}: evaluating {name} ({label or 'flip TTA'})", flush=True)
            _add_cpu(run_dir, "evaluate", _run([sys.executable, "-m", "vp3dkeras.evaluate",
                                                run_dir, "--name", eval_name, *options], log))
        evaluations[label] = json.loads(path.read_text())
    history = json.loads((run_dir / "history.json").read_text())
    return {"name": name, "label": row.label.format(**config.to_dict()),
            "config": config.to_dict(),
            "full_scale_config": str(st.config_path(study, row).relative_to(REPO)),
            "summary": summary, "history": history, "evaluations": evaluations,
            "cpu_seconds": _cpu_book(run_dir), "run_dir": str(run_dir)}


def run_study(name: str, runs: pathlib.Path, results: pathlib.Path, full: bool = False,
              minutes: float = None) -> dict:
    study = st.STUDIES[name]
    (runs / name).mkdir(parents=True, exist_ok=True)
    log = runs / name / "study.log"
    started = time.perf_counter()
    for dataset in sorted({r.settings["dataset"] for r in study.rows}):
        ensure_dataset(dataset, sorted({r.settings["split"] for r in study.rows
                                        if r.settings["dataset"] == dataset}), log)
    minutes = study.minutes_per_run if minutes is None else minutes
    rows = [run_row(study, row, runs, full, minutes) for row in study.rows]
    data = {"study": name, "title": study.title, "paper": study.paper,
            "scale": "full" if full else "reduced", "rows": rows,
            "minutes_per_run": minutes,
            "wall_seconds_this_call": time.perf_counter() - started,
            "command": f".venv/bin/python experiments/run_study.py {name}"
                       + (" --full" if full else "")}
    out = results / name
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".results.json.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp, out / "results.json")
    write_report(data, out)
    write_index(results)
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", nargs="?", choices=sorted(st.STUDIES))
    parser.add_argument("--full", action="store_true",
                        help="the papers' scale (the configs under experiments/configs)")
    parser.add_argument("--minutes-per-run", type=float,
                        help="training time per run and call (default: the study's budget)")
    parser.add_argument("--runs", type=pathlib.Path, default=REPO / "runs" / "studies")
    parser.add_argument("--results", type=pathlib.Path, default=st.RESULTS_DIR)
    parser.add_argument("--write-configs", action="store_true")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--index", action="store_true",
                        help="only rewrite the tables, plots and index from results.json")
    args = parser.parse_args(argv)
    if args.write_configs:
        for path in st.write_configs():
            print(path.relative_to(REPO))
        return 0
    if args.index:  # rewrite every study's tables and plots from its results.json
        for path in sorted(args.results.glob("*/results.json")):
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("study") not in st.STUDIES:
                continue  # another script's results
            study = st.STUDIES[data["study"]]
            data.setdefault("minutes_per_run", study.minutes_per_run)
            if len(study.rows) == len(data["rows"]):
                for definition, row in zip(study.rows, data["rows"]):
                    row["label"] = definition.label.format(**row["config"])
            tmp = path.with_name(".results.json.tmp")
            tmp.write_text(json.dumps(data, indent=1))
            tmp.replace(path)
            write_report(data, path.parent)
        write_index(args.results)
        return 0
    if args.list or not args.study:
        for study in st.STUDIES.values():
            print(f"{study.name}: {len(study.rows)} runs; {study.title}")
        return 0
    run_study(args.study, args.runs.resolve(), args.results.resolve(), args.full,
              args.minutes_per_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
