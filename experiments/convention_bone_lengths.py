"""Bone lengths and pelvis-frame positions of a keypoint convention: synthetic records against
real HumanEva-I.

For each convention (default `humaneva15`; `h36m17` is printed against the bone lengths of
VideoPose3D's Human3.6M skeleton and `BODY_FRAME_TARGETS`) prints, per synthetic dataset and
for the real HumanEva-I Train/ subjects:

- the mean length of every bone of the layout (keypoint -> its parent), millimetres, and how
  much it varies *within* a clip (mean over clips of the per-clip standard deviation): a real
  marker-based skeleton such as HumanEva-I's is rigid, so this should be ~0;
- derived measures the sim-to-real study compared (trunk = pelvis -> thorax, shoulder width,
  hip-joint-centres -> shoulders height, upper arm, stature of the bodies);
- the mean keypoint positions in the convention's own pelvis frame
  (`synth.keypoints.pelvis_frame`: x towards the right hip, y forward, z up towards the
  thorax), millimetres.

Synthetic records are read from dataset folders written by `python -m synth.render`
(`--dataset NAME=DIR`, records' `joints3d_world__<convention>`), or rendered here from a few
real clips of ../shared/mocap (`--render NAME=capsule|anny`, into a temporary folder; the
renderer runs in its own process). Real HumanEva-I 3D is read with the restricted reader
`vp3dkeras.data.vp3d_format.restricted_load_npz`, Train/ chunks only (Validate/ is the test
set of the sim-to-real study; nothing is fitted to it).

    PYTHONPATH=$PWD .venv/bin/python experiments/convention_bone_lengths.py \
        --render anny=anny --render capsule=capsule [--dataset NAME=DIR ...] \
        [--conventions humaneva15,h36m17] [--max-records 60] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from typing import Dict, List

import numpy as np

from posecontract.conventions import BODY_FRAME_TARGETS, get_convention
from posecontract.dataset_format import convention_key, load_record, record_conventions
from synth.keypoints import pelvis_frame

REPO = pathlib.Path(__file__).resolve().parents[1]

#: Mean bone lengths (mm) of VideoPose3D's Human3.6M skeleton (mean over S1-S11 of the
#: dataset's ground-truth bone lengths, as issue 9 lists them): keypoint -> length to parent.
H36M_BONES_MM = {
    "r_hip": 133, "r_knee": 454, "r_ankle": 451, "l_hip": 133, "l_knee": 454, "l_ankle": 451,
    "spine": 233, "thorax": 257, "neck_nose": 121, "head": 115,
    "l_shoulder": 151, "l_elbow": 279, "l_wrist": 250,
    "r_shoulder": 151, "r_elbow": 279, "r_wrist": 250,
}

#: A few real clips of ../shared/mocap rendered by `--render` (walks, a run/jog, a run).
RENDER_CLIPS = ("cmu/02/02_01.amc", "cmu/02/02_03.amc", "cmu/09/09_01.amc", "cmu/16/16_35.amc")


def bones(convention: str):
    layout = get_convention(convention).layout
    return [(k, p) for k, p in enumerate(layout.parents) if p >= 0]


def summarise(clips: List[np.ndarray], convention: str) -> Dict[str, object]:
    """clips: (T, K, 3) metres each -> bone means/within-clip std (mm), pelvis-frame means."""
    layout = get_convention(convention).layout
    pairs = bones(convention)
    per_clip_mean, per_clip_std, frames = [], [], []
    for positions in clips:
        positions = np.asarray(positions, dtype=np.float64)
        lengths = np.stack([np.linalg.norm(positions[:, k] - positions[:, p], axis=-1)
                            for k, p in pairs], axis=1) * 1000
        per_clip_mean.append(lengths.mean(0))
        per_clip_std.append(lengths.std(0))
        frames.append(pelvis_frame(positions, 0, layout.index("r_hip"), layout.index("l_hip"),
                                   layout.index("thorax")) * 1000)
    frame_mean = np.concatenate(frames).mean(0)
    return {"bones": {layout.names[k]: float(v) for (k, _), v in
                      zip(pairs, np.mean(per_clip_mean, 0))},
            "bone_spread_between_clips": {layout.names[k]: float(v) for (k, _), v in
                                          zip(pairs, np.std(per_clip_mean, 0))},
            "bone_std_within_clip": {layout.names[k]: float(v) for (k, _), v in
                                     zip(pairs, np.mean(per_clip_std, 0))},
            "pelvis_frame": {n: [float(x) for x in frame_mean[i]]
                             for i, n in enumerate(layout.names)},
            "clips": len(clips), "frames": int(sum(len(c) for c in clips))}


def derived(summary: Dict[str, object]) -> Dict[str, float]:
    """Measures the sim-to-real study compared, from pelvis-frame means (mm)."""
    f = {k: np.array(v) for k, v in summary["pelvis_frame"].items()}
    out = {"trunk (pelvis-thorax)": float(np.linalg.norm(f["thorax"]))}
    if "l_shoulder" in f:
        out["shoulder width"] = float(np.linalg.norm(f["l_shoulder"] - f["r_shoulder"]))
        hips = 0.5 * (f["l_hip"] + f["r_hip"])
        out["hips-shoulders height"] = float(
            (0.5 * (f["l_shoulder"] + f["r_shoulder"]) - hips)[2])
        out["upper arm"] = 0.5 * (summary["bones"]["l_elbow"] + summary["bones"]["r_elbow"])
        out["forearm"] = 0.5 * (summary["bones"]["l_wrist"] + summary["bones"]["r_wrist"])
    return out


def synthetic_clips(dataset: pathlib.Path, convention: str, limit: int) -> List[np.ndarray]:
    paths = sorted((dataset / "clips").glob("*.npz"))
    if limit and len(paths) > limit:  # evenly spread over clips and bodies
        paths = [paths[int(i * len(paths) / limit)] for i in range(limit)]
    out = []
    for path in paths:
        record = load_record(path)
        if convention not in record_conventions(record):
            raise ValueError(f"{path}: record lacks keypoint convention {convention!r}")
        out.append(np.asarray(record[convention_key("joints3d_world", convention)]))
    if not out:
        raise ValueError(f"{dataset}: no records under clips/")
    return out


def render(bodies: str, shared: pathlib.Path, out: pathlib.Path, conventions: str) -> None:
    """Renders `RENDER_CLIPS` with `--bodies` into `out` (its own process: Warp/TF apart)."""
    mocap = out.parent / f"mocap_{out.name}"
    mocap.mkdir(parents=True, exist_ok=True)
    for clip in RENDER_CLIPS:
        source = shared / "mocap" / clip
        if not source.is_file():
            raise ValueError(f"{source}: mocap clip missing")
        subject = source.parent
        for item in [source, *subject.glob("*.asf")]:
            link = mocap / item.name
            if not link.exists():
                link.symlink_to(item.resolve())
    command = [sys.executable, "-m", "synth.render", str(mocap), "--out", str(out),
               "--fps", "60", "--bodies", bodies, "--cameras", "1", "--seed", "0",
               "--keypoints", conventions, "--quiet"]
    if bodies == "anny":
        command += ["--bodies-per-clip", "5", "--body-pool", "25"]
    else:
        command += ["--avatars", "ava,ben,cleo,dan,eli"]
    subprocess.run(["nice", "-n", "5", *command], check=True, cwd=REPO,
                   env=dict(os.environ, PYTHONPATH=str(REPO)))


def humaneva_train(shared: pathlib.Path) -> List[np.ndarray]:
    from vp3dkeras.data.vp3d_format import restricted_load_npz  # reads pickles safely

    path = shared / "real" / "humaneva" / "data_3d_humaneva15.npz"
    data = restricted_load_npz(path)["positions_3d"]
    return [np.asarray(a, dtype=np.float64) for name, subject in data.items()
            if name.startswith("Train/") for a in subject.values()]


def print_table(convention: str, results: Dict[str, Dict[str, object]]) -> None:
    names = list(results)
    layout = get_convention(convention).layout
    print(f"\n## {convention}: mean bone length, mm (within-clip std)")
    print("| bone | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for k, p in bones(convention):
        child = layout.names[k]
        cells = []
        for n in names:
            r = results[n]
            if "bones" in r:
                cells.append(f"{r['bones'][child]:.0f} ({r['bone_std_within_clip'][child]:.1f})")
            else:
                cells.append(str(r.get("bones_target", {}).get(child, "")))
        print(f"| {layout.names[p]}-{child} | " + " | ".join(cells) + " |")
    print(f"\n## {convention}: derived measures, mm")
    rows = {n: derived(r) for n, r in results.items() if "pelvis_frame" in r}
    keys = list(next(iter(rows.values())))
    print("| measure | " + " | ".join(rows) + " |")
    print("| --- |" + " --- |" * len(rows))
    reference = next((r["bones"] for r in results.values() if "bones" in r and r is
                      results.get("HumanEva-I Train/")), None)
    if reference is None:
        reference = next((r["bones_target"] for r in results.values() if "bones_target" in r),
                         None)
    if reference is not None:
        for n in rows:
            ours = results[n]["bones"]
            rows[n]["mean |bone - real|"] = float(np.mean(
                [abs(ours[k] - reference[k]) for k in ours if k in reference]))
        keys.append("mean |bone - real|")
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{rows[n][key]:.0f}" for n in rows) + " |")
    print(f"\n## {convention}: mean position in its pelvis frame, mm (x right, y forward, z up)")
    print("| keypoint | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for name in layout.names:
        cells = []
        for n in names:
            r = results[n]
            v = r.get("pelvis_frame", {}).get(name) or r.get("frame_target", {}).get(name)
            cells.append("" if v is None else "(" + ", ".join(f"{x:.0f}" for x in v) + ")")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("VP3D_SHARED_DIR", "../shared")))
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--render", action="append", default=[], metavar="NAME=anny|capsule")
    parser.add_argument("--conventions", default="humaneva15,h36m17")
    parser.add_argument("--max-records", type=int, default=60)
    parser.add_argument("--json", type=pathlib.Path, default=None)
    args = parser.parse_args()
    conventions = [c.strip() for c in args.conventions.split(",") if c.strip()]
    datasets = {}
    for item in args.dataset:
        name, _, path = item.partition("=")
        datasets[name] = pathlib.Path(path)
    work = pathlib.Path(tempfile.mkdtemp(prefix="bone_lengths_"))
    for item in args.render:
        name, _, bodies = item.partition("=")
        out = work / name
        render(bodies, args.shared, out, ",".join(conventions))
        datasets[name] = out
    everything = {}
    for convention in conventions:
        results: Dict[str, Dict[str, object]] = {}
        for name, path in datasets.items():
            results[name] = summarise(synthetic_clips(path, convention, args.max_records),
                                      convention)
        if convention == "humaneva15":
            results["HumanEva-I Train/"] = summarise(humaneva_train(args.shared), convention)
        elif convention == "h36m17":
            targets = {k: [v * 1000 for v in xyz]
                       for k, xyz in BODY_FRAME_TARGETS["h36m17"].items()}
            results["Human3.6M (targets)"] = {"bones_target": H36M_BONES_MM,
                                              "frame_target": targets}
        print_table(convention, results)
        everything[convention] = results
    if args.json:
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(everything, indent=1))
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
