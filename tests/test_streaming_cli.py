"""`python -m vp3dkeras.stream` lifts real detector tracks frame by frame, as `infer` would."""
import io
import json

import numpy as np
import pytest

from conftest import shared_dir
from test_streaming_model import trained_causal_model
from vp3dkeras import infer, stream
from vp3dkeras.export_stream import export_stream_model
from vp3dkeras.models import TemporalModel

CASES = shared_dir() / "cases" / "real_inputs"
COCO_TRACK = CASES / "09_coco_results_missing_frames" / "coco_results_full.json"
NAN_TRACK = CASES / "14_nan_frames_npz" / "track_nan_frames.npz"
SIZE = ["--width", "640", "--height", "480"]


@pytest.fixture(scope="module")
def causal_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream_cli") / "causal.keras"
    model = trained_causal_model((3, 3, 3))
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def offline_poses(causal_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("offline") / "poses.npz"
    assert infer.main([str(causal_model[1]), "--keypoints", str(COCO_TRACK), *SIZE,
                       "--out", str(out)]) == 0
    return np.load(out)


def test_stream_command_equals_infer_on_a_real_track(causal_model, offline_poses, tmp_path,
                                                     capsys):
    out = tmp_path / "stream.npz"
    assert stream.main([str(causal_model[1]), "--keypoints", str(COCO_TRACK), *SIZE,
                        "--out", str(out)]) == 0
    assert "40 frames streamed" in capsys.readouterr().out
    result = np.load(out)
    np.testing.assert_allclose(result["poses_3d"], offline_poses["poses_3d"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(result["keypoints_2d"], offline_poses["keypoints_2d"], atol=1e-4)
    assert result["latency_ms"].shape == (40,)
    assert np.all(result["latency_ms"] > 0) and np.all(np.isfinite(result["latency_ms"]))


def test_streaming_saved_model_gives_the_same_poses(causal_model, offline_poses, tmp_path):
    export_stream_model(causal_model[0], tmp_path / "served")
    out = tmp_path / "stream.npz"
    assert stream.main([str(tmp_path / "served"), "--keypoints", str(COCO_TRACK), *SIZE,
                        "--out", str(out)]) == 0
    np.testing.assert_allclose(np.load(out)["poses_3d"], offline_poses["poses_3d"], rtol=0,
                               atol=1e-5)


def test_stdin_json_lines_stream_with_a_reset(causal_model, offline_poses, tmp_path,
                                              monkeypatch, capsys):
    detections = json.loads(COCO_TRACK.read_text())
    lines = [json.dumps({"keypoints": d["keypoints"], **({"reset": True} if i == 20 else {})})
             for i, d in enumerate(detections)]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert stream.main([str(causal_model[1]), "--stdin", *SIZE]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["frame"] for r in records] == list(range(40))
    poses = np.array([r["poses_3d"] for r in records], np.float32)
    np.testing.assert_allclose(poses[:20], offline_poses["poses_3d"][:20], rtol=0, atol=2e-5)
    # After the reset the stream starts again: as offline inference of frames 20..39 alone.
    second_half = tmp_path / "second_half.json"
    second_half.write_text(json.dumps(detections[20:]))
    out = tmp_path / "second_half.npz"
    assert infer.main([str(causal_model[1]), "--keypoints", str(second_half), *SIZE,
                       "--out", str(out)]) == 0
    np.testing.assert_allclose(poses[20:], np.load(out)["poses_3d"], rtol=0, atol=2e-5)
    assert not np.allclose(poses[20:], offline_poses["poses_3d"][20:], atol=1e-3)


def test_a_bad_stdin_line_is_a_one_line_error(causal_model, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO('[[1, 2]]\n{"keypoints": "oops"}\n'))
    assert stream.main([str(causal_model[1]), "--stdin", *SIZE]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: stdin line 1: a coco17 frame must be (17, 2) keypoints, got (1, 2)")
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(
        {"keypoints": [[1, 2]] * 17, "scores": [1] * 16}) + "\n"))
    assert stream.main([str(causal_model[1]), "--stdin", *SIZE]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: stdin line 1: a coco17 frame needs 17 scores, got (16,)")
    monkeypatch.setattr("sys.stdin", io.StringIO("not json\n"))
    assert stream.main([str(causal_model[1]), "--stdin", *SIZE]) == 2
    assert capsys.readouterr().err.startswith("error: stdin line 1: Expecting value")


def test_a_file_with_nan_frames_streams_as_infer_lifts_it(causal_model, tmp_path):
    offline, streamed = tmp_path / "offline.npz", tmp_path / "streamed.npz"
    assert infer.main([str(causal_model[1]), "--keypoints", str(NAN_TRACK),
                       "--out", str(offline)]) == 0
    assert stream.main([str(causal_model[1]), "--keypoints", str(NAN_TRACK),
                        "--out", str(streamed)]) == 0
    result = np.load(streamed)
    assert np.isfinite(result["poses_3d"]).all()
    assert result["interpolated_frames"].tolist() == [12, 13, 14]  # the reader fills them
    np.testing.assert_allclose(result["poses_3d"], np.load(offline)["poses_3d"], rtol=0,
                               atol=1e-5)


def test_live_keypoints_missing_or_below_min_score_are_held(causal_model):
    from vp3dkeras.stream_pool import load_stream_pool

    pool, _ = load_stream_pool(causal_model[1])
    streamer = stream.TrackStreamer(pool, 640, 480, layout="h36m17", min_score=0.5)
    first = np.random.default_rng(5).uniform(100, 400, (17, 2)).astype("float32")
    assert streamer.lift(first)[0] is not None
    second = first + 10
    second[3] = np.nan          # not found
    scores = np.ones(17, "float32")
    scores[5] = 0.1             # unsure
    held = streamer.prepare(second, scores)
    np.testing.assert_array_equal(held[[3, 5]], first[[3, 5]])
    np.testing.assert_array_equal(np.delete(held, [3, 5], 0), np.delete(second, [3, 5], 0))


def test_a_symmetric_model_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "symmetric.keras"
    model = TemporalModel(17, 2, 17, (3, 3), channels=8)
    model.build((None, None, 17, 2))
    model.save(path)
    assert stream.main([str(path), "--keypoints", str(COCO_TRACK), *SIZE]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {path}: only a causal TemporalModel can be streamed (its outputs use no "
        f"future frames); this model is symmetric")


def test_the_command_pipes_json_lines(causal_model, offline_poses):
    import os
    import subprocess
    import sys

    from conftest import REPO_ROOT

    detections = json.loads(COCO_TRACK.read_text())[:5]
    lines = "".join(json.dumps({"keypoints": d["keypoints"]}) + "\n" for d in detections)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "vp3dkeras.stream", str(causal_model[1]), "--stdin", *SIZE]
    result = subprocess.run(command, input=lines + "[1, 2\n", capture_output=True, text=True,
                            env=env, cwd=REPO_ROOT, timeout=300)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    poses = np.array([r["poses_3d"] for r in records], np.float32)
    np.testing.assert_allclose(poses, offline_poses["poses_3d"][:5], rtol=0, atol=2e-5)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: stdin line 6: ")
    assert "Traceback" not in result.stderr


def test_a_coco_input_model_streams_as_infer_lifts_it(causal_model, tmp_path):
    """VideoPose3D's in-the-wild convention: COCO-17 2D in, Human3.6M-17 3D out."""
    flags = ["--keypoints", str(COCO_TRACK), *SIZE, "--keypoints-in", "coco17"]
    offline, streamed = tmp_path / "offline.npz", tmp_path / "streamed.npz"
    assert infer.main([str(causal_model[1]), *flags, "--out", str(offline)]) == 0
    assert stream.main([str(causal_model[1]), *flags, "--out", str(streamed)]) == 0
    np.testing.assert_allclose(np.load(streamed)["poses_3d"], np.load(offline)["poses_3d"],
                               rtol=0, atol=1e-5)
    np.testing.assert_array_equal(np.load(streamed)["keypoints_2d"],
                                  np.load(offline)["keypoints_2d"])


def test_stdin_serves_several_streams_each_with_its_own_past(causal_model, offline_poses,
                                                             monkeypatch, capsys):
    detections = json.loads(COCO_TRACK.read_text())
    lines = []
    for t, detection in enumerate(detections):  # camera "b" joins at frame 10
        lines.append(json.dumps({"stream": "a", "keypoints": detection["keypoints"]}))
        if t >= 10:
            lines.append(json.dumps({"stream": "b", "keypoints": detections[t - 10]["keypoints"]}))
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert stream.main([str(causal_model[1]), "--stdin", *SIZE]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for name, count in (("a", 40), ("b", 30)):
        mine = [r for r in records if r["stream"] == name]
        assert [r["frame"] for r in mine] == list(range(count))
        np.testing.assert_allclose(np.array([r["poses_3d"] for r in mine], np.float32),
                                   offline_poses["poses_3d"][:count], rtol=0, atol=2e-5)
