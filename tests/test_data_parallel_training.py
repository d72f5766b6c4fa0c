"""Data-parallel training on the JAX backend gives the single-process weights: two worker
processes on localhost (`--distribute multiworker`, stopped and resumed half-way), and one
process with two host devices (`--distribute mirrored`).

Tolerance: both runs see the same global batches, initial weights and dropout masks; they
differ only in float32 summation order (gradients are summed per device, then all-reduced).
That moves a gradient by about 1e-7 relative; over 4 AMSGrad steps of lr 1e-3 the weights then
agree to well under 1e-5 unless a gradient component is so near zero that its normalised step
flips, which `atol=2e-5` (1/50 of one step) would still expose as a failure if rows were
dropped, duplicated or differently seeded: those change the weights by about one step, 1e-3.
"""
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from vp3dkeras import distributed

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SPLIT = "actor_out_hdm05_mm"


def _train_args(dataset, out):
    return [sys.executable, "-m", "vp3dkeras.train", "--dataset", str(dataset), "--split",
            SPLIT, "--out", str(out), "--epochs", "2", "--channels", "32", "--filter-widths",
            "3,3", "--batch-size", "64", "--max-windows-per-epoch", "128", "--val-windows",
            "0", "--seed", "5", "--lr", "1e-3", "--quiet"]


def _env(devices=1):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=str(REPO_ROOT))
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _run(commands, env):
    processes = [subprocess.Popen(c, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for c in commands]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    return outputs


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(run_dir):
    import keras

    import vp3dkeras.models  # noqa: F401  (registers the model classes)

    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    return model.get_weights()


@pytest.fixture(scope="module")
def reference_run(tiny_synth_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp") / "single"
    _run([_train_args(tiny_synth_dataset, out) + ["--distribute", "none"]], _env())
    return out


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert len(wa) == len(wb)
    moved = max(np.abs(x).max() for x in wa)
    assert moved > 0
    for x, y in zip(wa, wb):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=2e-5)


def test_two_workers_resumed_match_one_process(tiny_synth_dataset, reference_run, tmp_path):
    out = tmp_path / "two_workers"
    port = _free_port()
    workers = [["--distribute", "multiworker", "--coordinator", f"127.0.0.1:{port}",
                "--num-workers", "2", "--worker-id", str(i)] for i in range(2)]
    _run([_train_args(tiny_synth_dataset, out) + w + ["--stop-after-epochs", "1"]
          for w in workers], _env())
    assert (out / "checkpoint" / "model.keras").is_file()
    assert not (out / "checkpoint" / ".tmp-model.keras").exists()
    # Every worker restarts and resumes from the chief's checkpoint.
    port = _free_port()
    workers = [w[:3] + [f"127.0.0.1:{port}"] + w[4:] for w in workers]
    _run([[sys.executable, "-m", "vp3dkeras.train", "--resume", str(out), "--quiet"] + w
          for w in workers], _env())
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["workers"] == 2 and summary["replicas"] == 2 and summary["finished"]
    _assert_same_weights(out, reference_run)


def test_two_host_devices_match_one_device(tiny_synth_dataset, reference_run, tmp_path):
    out = tmp_path / "two_devices"
    _run([_train_args(tiny_synth_dataset, out) + ["--distribute", "mirrored"]], _env(2))
    import json

    assert json.loads((out / "summary.json").read_text())["replicas"] == 2
    _assert_same_weights(out, reference_run)


def test_workers_rows_tile_the_global_batch():
    assert [distributed.worker_rows(64, w, 2, 4) for w in range(2)] == [slice(0, 32),
                                                                        slice(32, 64)]
    with pytest.raises(ValueError, match="does not split evenly over 3 devices"):
        distributed.worker_rows(64, 0, 1, 3)
