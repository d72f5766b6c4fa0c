"""Tables (Markdown) and plots (matplotlib PNG) of a study's results.json.

`write_report(data, out_dir)` writes `results.md` and the study's plots into `out_dir`.
Lengths in mm (root-relative camera-space poses), 3DPCK in %, CPU time in minutes (user +
system time of the training and evaluation processes, summed over resumed calls).
"""
from __future__ import annotations

import pathlib
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Seed paper 1 (the mocap-dataset paper), cross-dataset HDM05 -> CMU with its 1D CNN.
PAPER1_TABLE1 = {"basketball": (206.6, 54.59), "break dance": (264.6, 45.54),
                 "average": (235.6, 50.07)}
PAPER1_TABLE2 = {"hip": 75.6, "shoulder": 238.2, "head": 216.5, "elbow": 275.0,
                 "ankle": 295.4, "knee": 259.7, "wrist": 378.0}
# Seed paper 2 (VideoPose3D): Human3.6M protocol 1 with CPN detections, Table 1; velocity
# errors of Table 2; inference speed quoted by issue 12 (243 frames, one GP100).
PAPER2 = {"243 frames, symmetric": 46.8, "243 frames, causal": 49.0,
          "MPJVE single-frame": 11.6, "MPJVE temporal": 2.8,
          "inference frames/s": 150000}


def _metrics(row, evaluation: str = "") -> Dict:
    return row["evaluations"][evaluation]["metrics"]


def _cpu_minutes(row) -> float:
    return sum(row["cpu_seconds"].values()) / 60.0


def _scale_caption(data) -> str:
    rows = data["rows"]
    first = rows[0]["config"]
    cpu = sum(_cpu_minutes(r) for r in rows)
    if data["scale"] == "full":
        scale = "full scale (the configs under experiments/configs)"
    else:
        scale = ("reduced for a 2-core CPU shared with other jobs: "
                 + "; ".join(sorted({_scale_of(r["config"]) for r in rows})))
    return (f"Data: `{first['dataset']}` (real HDM05{' and CMU' if 'cmu' in first['dataset'] else ''}"
            f" mocap retargeted to avatar ava, one virtual camera per clip, 25 fps, "
            f"ground-truth 2D). Scale: {scale}. Budget: at most "
            f"{data.get('minutes_per_run') or 'unlimited'} training minutes per run and call "
            f"(a run over it stops at an epoch end and resumes on the next call). "
            f"CPU time: {cpu:.1f} min in all "
            f"(training + evaluation). Reproduce: `{data['command']}`.")


def _scale_of(config) -> str:
    if config["model"] == "refiner":
        return (f"refiner {config['channels']} channels, {config['epochs']} epochs of one "
                f"{config['max_frames']}-frame crop per sequence")
    windows = config.get("max_windows_per_epoch") or "all"
    return (f"temporal {config['channels']} channels, {config['epochs']} epochs of {windows} "
            f"windows")


def _main_table(data, extra_columns=()) -> List[str]:
    lines = ["| run | P1 mm | P2 mm | MPJVE mm | 3DPCK@200 % | epochs | train min | CPU min |"
             + "".join(f" {c} |" for c, _ in extra_columns),
             "|---|---|---|---|---|---|---|---|" + "---|" * len(extra_columns)]
    for row in data["rows"]:
        m, s = _metrics(row), row["summary"]
        lines.append(
            f"| {row['label']} (`{row['name']}`) | {m['P1']:.1f} | {m['P2']:.1f} | "
            f"{m.get('MPJVE', float('nan')):.2f} | {100 * m['PCK200']:.1f} | "
            f"{s['epochs_done']}/{s['epochs']} | {s['train_seconds'] / 60:.1f} | "
            f"{_cpu_minutes(row):.1f} |" + "".join(f" {f(row)} |" for _, f in extra_columns))
    return lines


def _curves(data, out: pathlib.Path, groups) -> str:
    """Train and test MPJPE per epoch, one panel per group (label -> rows)."""
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for axis, (title, rows) in zip(axes[0], groups.items()):
        for row, colour in zip(rows, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
            epochs = [h["epoch"] for h in row["history"]]
            model = row["config"]["model"]
            axis.plot(epochs, [h["loss"] * 1000 for h in row["history"]], "--", color=colour,
                      label=f"{model} train")
            if any("val_loss" in h for h in row["history"]):
                axis.plot(epochs, [h.get("val_loss", float("nan")) * 1000
                                   for h in row["history"]], "-", color=colour,
                          label=f"{model} test")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.set_ylabel("MPJPE (mm)")
        axis.set_ylim(0, None)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=90)
    plt.close(fig)
    return "curves.png"


def _bars(out: pathlib.Path, name: str, series: Dict[str, Dict[str, float]], ylabel) -> str:
    keys = list(next(iter(series.values())))
    fig, axis = plt.subplots(figsize=(max(6, 0.9 * len(keys) * len(series)), 4))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        axis.bar([k + i * width for k in range(len(keys))],
                 [values.get(k, float("nan")) for k in keys], width, label=label)
    axis.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))])
    axis.set_xticklabels(keys, rotation=30, ha="right")
    axis.set_ylabel(ylabel)
    axis.grid(axis="y", alpha=0.3)
    axis.legend()
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _line(out: pathlib.Path, name: str, xs, series: Dict[str, List[float]], xlabel, ylabel,
          logx=False) -> str:
    fig, axis = plt.subplots(figsize=(6, 4))
    for label, ys in series.items():
        axis.plot(xs, ys, "o-", label=label)
    if logx:
        axis.set_xscale("log")
        axis.set_xticks(xs)
        axis.set_xticklabels([str(x) for x in xs])
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend()
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _joint_groups(row) -> Dict[str, float]:
    return {k: v for k, v in _metrics(row).get("per_group", {}).items()}


def _study_sections(data, out: pathlib.Path) -> List[str]:
    rows, study = data["rows"], data["study"]
    lines: List[str] = []
    if study == "mocap_models":
        groups = {}
        for row in rows:
            split = row["config"]["split"]
            title = {"random_hdm05": "model A: random 80/20",
                     "class_out_hopBothLegs1hops": "model C: hopping held out"}.get(
                split, "model B: actor mm held out")
            groups.setdefault(title, []).append(row)
        lines += [f"![train and test MPJPE per epoch]({_curves(data, out, groups)})", "",
                  "Train MPJPE (dashed, with dropout, flip-augmented batches) and test MPJPE "
                  "(solid: the temporal model on a fixed set of test windows, the refiner on "
                  "every test sequence) per epoch. The paper's Figs 3-5 end near 200 mm for "
                  "its 1D CNN.", ""]
    if study == "cross_dataset":
        lines += ["Per CMU motion category (our CMU clips hold other categories than the "
                  "paper's basketball and break dance; its Table 1: basketball 206.6 mm / "
                  "54.59 %, break dance 264.6 mm / 45.54 %, average 235.6 mm / 50.07 %):", "",
                  "| category | frames | " + " | ".join(
                      f"{r['label']} MPJPE mm | {r['label']} 3DPCK@200 %" for r in rows) + " |",
                  "|---|---|" + "---|---|" * len(rows)]
        per_class = [r["evaluations"][""]["per_class"] for r in rows]
        for category in per_class[0]:
            lines.append(f"| {category} | {per_class[0][category]['frames']} | " + " | ".join(
                f"{pc[category]['P1']:.1f} | {100 * pc[category]['PCK200']:.1f}"
                for pc in per_class) + " |")
        means = [r["evaluations"][""]["class_mean"] for r in rows]
        lines.append("| **mean over categories** | | " + " | ".join(
            f"{m['P1']:.1f} | {100 * m['PCK200']:.1f}" for m in means) + " |")
        lines += ["", "MPJPE per joint group (mm), the paper's Table 2 beside ours:", ""]
        groups = {r["label"]: _joint_groups(r) for r in rows}
        names = list(next(iter(groups.values())))
        lines += ["| joint group | " + " | ".join(groups) + " | paper |",
                  "|---|" + "---|" * (len(groups) + 1)]
        for name in names:
            paper = PAPER1_TABLE2.get(name.rstrip("s"), PAPER1_TABLE2.get(name))
            lines.append(f"| {name} | " + " | ".join(f"{g[name]:.1f}" for g in groups.values())
                         + f" | {paper if paper is not None else '-'} |")
        series = dict(groups)
        series["paper (Table 2)"] = {n: PAPER1_TABLE2.get(n.rstrip("s"), PAPER1_TABLE2.get(
            n, float("nan"))) for n in names}
        lines += ["", f"![MPJPE per joint group]({_bars(out, 'joint_groups.png', series, 'MPJPE (mm)')})",
                  ""]
    if study in ("vp3d_receptive_field", "vp3d_channels"):
        key = "receptive_field" if study == "vp3d_receptive_field" else "channels"
        xs = [r["summary"]["receptive_field"] if key == "receptive_field"
              else r["config"]["channels"] for r in rows]
        name = _line(out, f"{key}.png", xs, {
            "P1 (MPJPE)": [_metrics(r)["P1"] for r in rows],
            "P2 (Procrustes)": [_metrics(r)["P2"] for r in rows]},
            "receptive field (frames)" if key == "receptive_field" else "channels",
            "error (mm)", logx=True)
        lines += [f"![error against {key}]({name})", ""]
        if study == "vp3d_receptive_field":
            lines += ["Our HDM05 clips average 52 frames at 25 fps (about 2 s), so a field "
                      "beyond 27-81 frames is mostly edge-replicated padding here, unlike "
                      "Human3.6M's long takes; the paper's error falls up to 243 frames.", ""]
        if study == "vp3d_receptive_field":
            single, best = rows[0], min(rows[1:], key=lambda r: _metrics(r)["P1"])
            lines += ["Single-frame against temporal (the paper's Table 2: MPJVE 11.6 mm "
                      "single-frame, 2.8 mm temporal, Human3.6M):", "",
                      "| model | P1 mm | MPJVE mm |", "|---|---|---|"]
            for label, row in (("single-frame (rf 1)", single),
                               (f"temporal (rf {best['summary']['receptive_field']})", best)):
                lines.append(f"| {label} | {_metrics(row)['P1']:.1f} | "
                             f"{_metrics(row)['MPJVE']:.2f} |")
            lines.append("")
    if study == "vp3d_flip":
        lines += ["Flip augmentation at train time (rows) and test time (columns), P1 mm:", "",
                  "| train | test flip TTA on | test flip TTA off |", "|---|---|---|"]
        for row in rows:
            lines.append(f"| {row['label']} | {_metrics(row)['P1']:.1f} | "
                         f"{_metrics(row, 'noflip')['P1']:.1f} |")
        lines.append("")
    if study == "vp3d_chunked":
        lines += ["Speed: training windows per second of wall time (targets per second), on "
                  "this loaded CPU:", "", "| mode | s per epoch | target frames per s |",
                  "|---|---|---|"]
        for row in rows:
            h = row["history"]
            seconds = sorted(x["seconds"] for x in h)[len(h) // 2]
            frames = row["summary"]["windows_per_epoch"] * (
                row["config"]["chunk_length"] if row["config"]["training_mode"] == "chunked"
                else 1)
            lines.append(f"| {row['label']} | {seconds:.1f} (median) | {frames / seconds:.0f} |")
        lines.append("")
    if study == "vp3d_semi_supervised":
        fractions = sorted({r["config"]["labeled_fraction"] for r in rows})
        series = {}
        for supervision in ("supervised", "semi-supervised"):
            series[supervision] = [next(_metrics(r)["P1"] for r in rows
                                        if r["config"]["supervision"] == supervision
                                        and r["config"]["labeled_fraction"] == f)
                                   for f in fractions]
        name = _line(out, "semi_supervised.png", [100 * f for f in fractions], series,
                     "labeled share of actor bd's training clips (%)", "P1 (mm)")
        lines += [f"![semi-supervised against supervised]({name})", "",
                  "| labeled | run | labeled clips | unlabeled clips | P1 mm | root mm |",
                  "|---|---|---|---|---|---|"]
        for row in rows:
            s = row["summary"]
            lines.append(f"| {row['config']['labeled_fraction']:.0%} | {row['label']} | "
                         f"{s['labeled_clips']} | {s['unlabeled_clips']} | "
                         f"{_metrics(row)['P1']:.1f} | {s.get('trajectory_mm', float('nan')):.0f} |")
        lines.append("")
    return lines


def write_report(data, out: pathlib.Path) -> None:
    out = pathlib.Path(out)
    lines = [f"# {data['title']}", "", f"Paper: {data['paper']}.", "",
             _scale_caption(data), ""]
    lines += _main_table(data)
    lines += ["", "P1 = MPJPE, P2 = after Procrustes alignment, MPJVE = velocity error (mm per "
              "frame), 3DPCK@200 = joints within 200 mm; test side of each run's split, whole "
              "sequences, flip test-time augmentation. Full-scale configs: "
              f"`experiments/configs/{data['study']}/`.", ""]
    lines += _study_sections(data, out)
    text = "\n".join(lines) + "\n"
    tmp = out / ".results.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out / "results.md")


def _headline(data) -> str:
    """Our main numbers of a study, for the index."""
    rows, study = data["rows"], data["study"]

    def p1(row, evaluation=""):
        return f"{_metrics(row, evaluation)['P1']:.0f}"

    if study == "cross_dataset":
        return "; ".join(f"{r['label']}: {r['evaluations']['']['class_mean']['P1']:.0f} mm / "
                         f"{100 * r['evaluations']['']['class_mean']['PCK200']:.1f} % (mean "
                         "over CMU categories)" for r in rows)
    if study == "vp3d_flip":
        return "; ".join(f"{r['label']}: P1 {p1(r)} mm with flip TTA, {p1(r, 'noflip')} "
                         "without" for r in rows)
    if study == "vp3d_chunked":
        return "; ".join(f"{r['label']}: P1 {p1(r)} mm, {r['summary']['train_seconds'] / 60:.1f}"
                         " train min" for r in rows)
    return "; ".join(f"{r['label']}: {p1(r)}" for r in rows) + " (P1 mm)"


PAPER_HEADLINES = {
    "mocap_models": "1D CNN, test MPJPE about 200 mm at the end of training (Figs 3-5)",
    "cross_dataset": "HDM05 -> CMU average 235.6 mm / 50.07 % (Table 1); per joint group "
                     "hip 75.6 ... wrist 378.0 mm (Table 2)",
    "vp3d_receptive_field": "error falls as the receptive field grows (Fig. 8b); 243 frames "
                            "46.8 mm P1 on Human3.6M with CPN 2D (Table 1); MPJVE 11.6 mm "
                            "single-frame against 2.8 mm temporal (Table 2)",
    "vp3d_channels": "error against channels, 128 to 1024 (Fig. 8a); 1024 is its default",
    "vp3d_causal": "243 frames: causal 49.0 mm against symmetric 46.8 mm (Table 1)",
    "vp3d_flip": "flip augmentation at train and test time, both used (Sec. 5)",
    "vp3d_chunked": "training on single frames through the strided twin against chunks of "
                    "frames (A.5); no number quoted here",
    "vp3d_semi_supervised": "semi-supervised beats supervised most when few labels (Fig. 5)",
}


def write_index(results_dir: pathlib.Path) -> None:
    """experiments/results/README.md: every study's table and plots, command, data, scale,
    CPU time and the paper's number beside ours (from each <study>/results.json)."""
    import json

    results_dir = pathlib.Path(results_dir)
    lines = ["# Experiment results", "",
             "The studies of the two papers the project is built on (seed paper 1: the "
             "mocap-dataset paper with its two-block 1D CNN, our `RefinerBaseline`; seed paper "
             "2: VideoPose3D, Pavllo et al. CVPR 2019), run by `experiments/run_study.py` on "
             "the configs under `experiments/configs/<study>/` (one file per row, full scale; "
             "`--full` runs them as written). Every committed result is the **reduced** CPU "
             "scale each table's caption states, on a 2-core CPU shared with other jobs: small "
             "channels and few short epochs, so the numbers are far from the papers' and "
             "several trends the papers show do not appear yet. No GPU was lent to the session "
             "that produced them; the 243-frame, 1024-channel rows (and the paper's 150k "
             "frames/s inference speed beside ours) are left for a session with one.",
             "", "Every study resumes: a killed or budget-stopped run continues with "
             "`--resume` on the next call, finished runs and evaluations are kept.", "",
             "| study | tables and plots | ours | paper | data | scale | CPU min | command |",
             "|---|---|---|---|---|---|---|---|"]
    for path in sorted(results_dir.glob("*/results.json")):
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "study" not in data or "rows" not in data:
            continue  # another script's results
        study = data["study"]
        files = [f"[table]({study}/results.md)"] + [
            f"[{p.stem}]({study}/{p.name})" for p in sorted(path.parent.glob("*.png"))]
        cpu = sum(_cpu_minutes(r) for r in data["rows"])
        datasets = sorted({r["config"]["dataset"].split("/")[-1] for r in data["rows"]})
        scales = sorted({_scale_of(r["config"]) for r in data["rows"]})
        lines.append(f"| {data['title']} | {', '.join(files)} | {_headline(data)} | "
                     f"{PAPER_HEADLINES.get(study, data['paper'])} | {', '.join(datasets)} | "
                     f"{data['scale']}: {'; '.join(scales)} | {cpu:.1f} | "
                     f"`{data['command']}` |")
    lines += ["", "Data: real HDM05 clips (CMU clips too for cross-dataset) from "
              "`../shared/mocap`, rendered by `python -m synth.render` (avatar ava, one camera "
              "per clip, 25 fps; h36m17 keypoints, ground-truth 2D) into "
              "`runs/studies/` by the study script when missing. Older tables in this folder "
              "(`hdm05_actor_out.md`, `semi_supervised_hdm05.md`) were made before the keypoint "
              "conventions change, on 2 avatars x 2 cameras at 50 fps.", "",
              "Other results in this folder, each written by its own script: "
              "[sim_to_real/](sim_to_real/results.md) (synthetic-only against real-trained "
              "lifters on HumanEva-I, same and unseen subjects, with the error decomposition, "
              "pose coverage and posture, and cross-domain scores in `sim_to_real/errors*.md`; "
              "`experiments/sim_to_real.py`, `experiments/sim_to_real_errors.py`; the "
              "session-3 rows with HumanEva-I's hips at the femoral heads in "
              "`sim_to_real/hips_at_femoral_heads/`; body proportions in "
              "`sim_to_real/bodies.md`, `experiments/sim_to_real_bodies.py`), "
              "[sim_to_real/geometry.md](sim_to_real/geometry.md) (keypoint conventions "
              "against real joint geometry, on the datasets the sim-to-real rows train on; "
              "`experiments/convention_bone_lengths.py`), "
              "[streaming_benchmark.md](streaming_benchmark.md) "
              "(`experiments/benchmark_streaming.py`) and the scale-out measurements "
              "behind `docs/SCALING.md` (`experiments/benchmark_scaleout.py`, "
              "`experiments/benchmark_outputs.py`).", ""]
    tmp = results_dir / ".README.md.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(results_dir / "README.md")
