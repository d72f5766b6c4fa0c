"""Does defining the keypoints as HumanEva-I does help a synthetic-trained lifter on real people?

Renders the real CMU clips under ../shared/mocap/cmu (subjects given by `--subjects`) onto
the built-in avatars with two 15-joint conventions in HumanEva-I's order: `humaneva15`
(HumanEva-I's definitions, `posecontract.conventions`) and `humaneva15_centres` (the same
names on the canonical joint centres, what datasets held before conventions; registered
here only). Trains one small temporal model per convention with the same seed and settings,
and scores both on the real HumanEva-I Validate/ subjects (ground-truth 2D, 3 cameras,
HumanEva-I's published calibration), full sequences with flip TTA: P1 and P2 in mm.

    python experiments/humaneva_conventions.py [--shared ../shared] [--out /tmp/he_conv]
        [--subjects 02,05,16] [--epochs 6] [--windows 20000] [--time-budget-minutes 4]
        [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from posecontract import conventions as pc  # noqa: E402
from posecontract.layouts import HUMANEVA_15  # noqa: E402

CENTRES = pc.KeypointConvention(
    "humaneva15_centres", HUMANEVA_15, tuple(pc.Joint(n) for n in HUMANEVA_15.names),
    "HumanEva-I's names on the canonical joint centres (comparison only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("VP3D_SHARED_DIR", "../shared")))
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("/tmp/he_conv"))
    parser.add_argument("--subjects", default="02,05,16")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--windows", type=int, default=20000, help="windows per epoch")
    parser.add_argument("--time-budget-minutes", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pc.CONVENTIONS[CENTRES.name] = CENTRES  # this process only: a comparison, not a product

    from synth.render import RenderSettings, render_dataset
    from vp3dkeras.data import open_source
    from vp3dkeras.evaluate import evaluate_source
    from vp3dkeras.inference import keras_lifter
    from vp3dkeras.train import TrainConfig, train

    mocap = args.out / "mocap"
    if not mocap.is_dir():
        for subject in args.subjects.split(","):
            (mocap / subject).mkdir(parents=True)
            for f in (args.shared / "mocap" / "cmu" / subject).iterdir():
                (mocap / subject / f.name).symlink_to(f)
        (mocap / "trials.csv").symlink_to(args.shared / "mocap" / "cmu" / "trials.csv")
    dataset = args.out / "dataset"
    summary = render_dataset(mocap, dataset, RenderSettings(
        fps=60.0, num_cameras=3, keypoints=("humaneva15", CENTRES.name)), progress=False)
    print(f"dataset: {summary['records']} records, {summary['camera_frames']} camera frames")

    real = open_source(args.shared / "real" / "humaneva")
    validate = real.where(lambda r: r.subject.startswith("Validate/"))
    results = {}
    for name in ("humaneva15", CENTRES.name):
        config = TrainConfig(dataset=str(dataset), split="random", keypoints_in=name,
                             keypoints_out=name, filter_widths=[3, 3, 3], channels=256,
                             epochs=args.epochs, batch_size=512, seed=args.seed,
                             max_windows_per_epoch=args.windows, val_windows=0)
        run_dir = args.out / f"run_{name}_seed{args.seed}"
        run = train(config, run_dir, time_budget_s=args.time_budget_minutes * 60, verbose=0)
        import keras

        lifter = keras_lifter(keras.saving.load_model(run_dir / "model.keras"))
        scores = evaluate_source(lifter, validate, flip_tta=True)["metrics"]
        results[name] = {"P1": scores["P1"], "P2": scores["P2"],
                         "epochs_done": run["epochs_done"], "train_s": run["train_seconds"]}
        print(f"{name}: P1 {scores['P1']:.1f} mm, P2 {scores['P2']:.1f} mm on real HumanEva-I "
              f"Validate/ ({run['epochs_done']} epochs, {run['train_seconds']:.0f} s)",
              flush=True)
    (args.out / f"results_seed{args.seed}.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
