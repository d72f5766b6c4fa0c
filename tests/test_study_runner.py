"""A study script on a tiny setting: it trains through the entry point, resumes where a
budget stopped it, does not retrain finished rows, and writes JSON, Markdown and plots."""
import json
import sys

import pytest

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "experiments"))

import run_study  # noqa: E402
import studies  # noqa: E402


@pytest.fixture
def tiny_study(tiny_synth_dataset, monkeypatch):
    tiny = dict(dataset=str(tiny_synth_dataset), split="actor_out_hdm05_mm")
    study = studies.Study(
        "tiny_models", "tiny: refiner and temporal model", "seed paper 1, Figs 3-5",
        [studies.Row({**tiny, **studies.REFINER}, label="refiner"),
         studies.Row({**tiny, **studies._tcn(9)}, label="tcn9")],
        reduced=dict(channels=8, epochs=3, batch_size=32, max_windows_per_epoch=64,
                     val_windows=32, lr=1e-2),
        reduced_refiner=dict(channels=8, epochs=3, num_layers=2, batch_size=4))
    monkeypatch.setitem(studies.STUDIES, "tiny_models", study)
    return study


def test_a_study_resumes_and_writes_tables_and_plots(tiny_study, tmp_path, monkeypatch):
    runs, results = tmp_path / "runs", tmp_path / "results"
    # A budget of ~0 stops every run after its first epoch, as a killed study would be.
    first = run_study.run_study("tiny_models", runs, results, minutes=1e-6)
    assert [r["summary"]["epochs_done"] for r in first["rows"]] == [1, 1]
    second = run_study.run_study("tiny_models", runs, results, minutes=None)
    rows = second["rows"]
    assert [r["summary"]["epochs_done"] for r in rows] == [3, 3]
    assert all(r["summary"]["finished"] for r in rows)
    assert [h["epoch"] for h in rows[1]["history"]] == [1, 2, 3]
    assert {r["config"]["model"] for r in rows} == {"refiner", "temporal"}
    for row in rows:
        assert row["name"].endswith("actorout-hdm05-mm") and row["cpu_seconds"]["train"] > 0
        assert row["evaluations"][""]["metrics"]["P1"] > 0
    # Finished rows are neither retrained nor re-evaluated.
    monkeypatch.setattr(run_study, "_run", lambda *a: pytest.fail(f"ran {a}"))
    third = run_study.run_study("tiny_models", runs, results)
    assert [r["history"] for r in third["rows"]] == [r["history"] for r in rows]
    saved = json.loads((results / "tiny_models" / "results.json").read_text())
    assert [r["name"] for r in saved["rows"]] == [r["name"] for r in rows]
    table = (results / "tiny_models" / "results.md").read_text()
    assert "| refiner (`refiner" in table and "CPU time" in table
    assert "reduced for a 2-core CPU" in table


def test_the_mocap_study_plots_train_and_test_curves(tmp_path):
    from study_report import write_report

    history = [{"epoch": e, "loss": 0.3 / e, "val_loss": 0.35 / e} for e in (1, 2, 3)]
    metrics = {"P1": 120.0, "P2": 90.0, "MPJVE": 4.0, "PCK200": 0.8}
    row = {"name": "tcn27-x", "label": "tcn27", "history": history,
           "config": {"model": "temporal", "split": "random_hdm05", "channels": 8,
                      "epochs": 3, "max_windows_per_epoch": 64, "dataset": "d"},
           "summary": {"epochs_done": 3, "epochs": 3, "train_seconds": 60.0},
           "evaluations": {"": {"metrics": metrics}}, "cpu_seconds": {"train": 90.0}}
    write_report({"study": "mocap_models", "title": "t", "paper": "p", "scale": "reduced",
                  "rows": [row], "command": "c"}, tmp_path)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "results.md").read_text()
    assert "| tcn27 (`tcn27-x`) | 120.0 | 90.0 | 4.00 | 80.0 | 3/3 | 1.0 | 1.5 |" in table
