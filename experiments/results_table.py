"""Collect the evaluations of several runs into one Markdown table.

    python experiments/results_table.py OUT.md RUN_DIR [RUN_DIR ...] [--title TITLE]

Each run contributes its `summary.json` (epochs, training time) and its newest `eval_*.json`
(flip TTA). Lengths in mm, 3DPCK and AUC in %.
"""
import argparse
import json
import pathlib


def row(run_dir: pathlib.Path) -> str:
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    evaluations = sorted((p for p in run_dir.glob("eval_*.json") if "_noflip" not in p.name),
                         key=lambda p: p.stat().st_mtime)
    m = json.loads(evaluations[-1].read_text())["metrics"]
    rf = f" (rf {summary['receptive_field']})" if summary.get("receptive_field") else ""
    model = (f"temporal {'x'.join(map(str, config['filter_widths']))}{rf}"
             if config["model"] == "temporal" else
             f"refiner {config['num_layers']}+{config['num_layers']}"
             f"{' dilated' if config.get('dilated') else ''} layers{rf}")
    return (f"| {run_dir.name} | {model}, {config['channels']} ch | {summary['parameters']:,} | "
            f"{summary['epochs_done']}/{config['epochs']} | "
            f"{summary['train_seconds'] / 60:.1f} | {m['P1']:.1f} | {m['P2']:.1f} | "
            f"{m['P3']:.1f} | {m['MPJVE']:.2f} | {100 * m['PCK150']:.1f} | "
            f"{100 * m['PCK200']:.1f} | {100 * m['AUC']:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("runs", type=pathlib.Path, nargs="+")
    parser.add_argument("--title", default="Results")
    args = parser.parse_args()
    lines = [f"# {args.title}", "",
             "| run | model | parameters | epochs | train min | P1 | P2 | P3 | MPJVE | "
             "3DPCK150 | 3DPCK200 | AUC |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [row(run) for run in args.runs]
    lines += ["", "P1-P3 in mm (root-relative, camera space, flip TTA), MPJVE in mm/frame, "
              "3DPCK and AUC in %; train min = wall-clock training time."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
