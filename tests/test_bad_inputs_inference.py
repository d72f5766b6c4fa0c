"""Bad tracks given to `python -m vp3dkeras.infer` and bad tensors fed to the exported
SavedModel's `serving_default` (as TF Serving feeds it): one message naming the problem,
never NaN poses with exit 0 or an error of some internal op."""
import json

import numpy as np
import pytest
import tensorflow as tf

from robustness import NAMED, try_main
from vp3dkeras import infer
from vp3dkeras.export import export_saved_model
from vp3dkeras.models import TemporalModel

T = 40


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = TemporalModel(17, 2, 17, [3, 3], channels=8)
    model.build((None, None, 17, 2))
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


def _track(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(200, 800, (T, 17, 2))).astype(np.float32)


def _json(tmp_path, keypoints, **extra):
    path = tmp_path / "track.json"
    path.write_text(json.dumps({"keypoints": keypoints, **extra}))
    return path


def _npz(tmp_path, **arrays):
    path = tmp_path / "track.npz"
    np.savez(path, **arrays)
    return path


def _with_nulls(tmp_path, frames=range(0, T, 5)):
    """A track whose joint 3 is null (a missed detection) in `frames`."""
    keypoints = _track().tolist()
    for frame in frames:
        keypoints[frame][3] = [None, None]
    return _json(tmp_path, keypoints, width=1000, height=1000), []


def _object_npz(tmp_path):
    path = tmp_path / "track.npz"
    np.savez(path, keypoints=np.array([{"x": 1}], dtype=object))
    return path, []


#: name -> (track file, extra options). Each must be refused naming the file or option.
CASES = {
    "null_gap_beyond_max_gap": lambda d: (_with_nulls(d, range(5, 30))[0],
                                          ["--max-gap", "5"]),
    "joint_never_detected": lambda d: (_npz(d, keypoints=np.where(
        np.arange(17)[None, :, None] == 3, np.nan, _track()), width=1000, height=1000), []),
    "negative_width": lambda d: (_npz(d, keypoints=_track()), ["--width", "-1000",
                                                               "--height", "1000"]),
    "zero_height": lambda d: (_npz(d, keypoints=_track()), ["--width", "1000",
                                                            "--height", "0"]),
    "nan_width": lambda d: (_npz(d, keypoints=_track()), ["--width", "nan", "--height", "900"]),
    "absurd_coordinates": lambda d: (_npz(d, keypoints=_track() * 1e9, width=1000,
                                          height=1000), []),
    "normalised_coordinates": lambda d: (_npz(d, keypoints=_track() / 1000, width=1920,
                                              height=1080), []),
    "sixteen_joints": lambda d: (_npz(d, keypoints=_track()[:, :16], width=1000,
                                      height=1000), []),
    "no_frames": lambda d: (_npz(d, keypoints=np.zeros((0, 17, 2), np.float32), width=1000,
                                 height=1000), []),
    "scores_wrong_shape": lambda d: (_npz(d, keypoints=_track(), scores=np.ones((T, 5)),
                                          width=1000, height=1000), []),
    "npz_without_keypoints": lambda d: (_npz(d, points=_track(), width=1000, height=1000),
                                        []),
    "malformed_json": lambda d: ((d / "track.json").write_text("{\"keypoints\": [[1, 2") and
                                 d / "track.json", ["--width", "10", "--height", "10"]),
    "pickled_object_npz": _object_npz,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_track_is_refused_in_one_line(model_path, tmp_path, case, capsys):
    path, options = CASES[case](tmp_path)
    out = tmp_path / "poses.npz"
    outcome = try_main(infer.main, [str(model_path), "--keypoints", str(path), "--out",
                                    str(out), *options], [path.name, "--width", "--height"],
                       capsys)
    assert outcome.kind == NAMED, f"OUTCOME={outcome.kind}: {outcome.message}"
    assert not out.exists()


def test_null_coordinates_within_the_gap_are_interpolated(model_path, tmp_path, capsys):
    """Short runs of missed detections (null or NaN) are filled, reported, never NaN poses."""
    path, _ = _with_nulls(tmp_path)
    out = tmp_path / "poses.npz"
    assert infer.main([str(model_path), "--keypoints", str(path), "--out", str(out)]) == 0
    with np.load(out) as data:
        assert data["poses_3d"].shape == (T, 17, 3)
        assert np.isfinite(data["poses_3d"]).all()


SERVING = {
    "rank_3": np.zeros((5, 17, 2), np.float32),
    "rank_5": np.zeros((1, 1, 5, 17, 2), np.float32),
    "sixteen_joints": np.zeros((1, 5, 16, 2), np.float32),
    "three_features": np.zeros((1, 5, 17, 3), np.float32),
    "no_frames": np.zeros((1, 0, 17, 2), np.float32),
    "nan_value": np.where(np.arange(5)[None, :, None, None] == 2, np.nan,
                          np.zeros((1, 5, 17, 2))).astype(np.float32),
}


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    model = TemporalModel(17, 2, 17, [3], channels=8)
    path = tmp_path_factory.mktemp("saved") / "lifter"
    export_saved_model(model, path)
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def serving_outcome(serve, tensor) -> str:
    """named: the error says what keypoints_2d should be (or that it holds NaN)."""
    try:
        poses = serve(keypoints_2d=tf.constant(tensor))["poses_3d"].numpy()
    except tf.errors.InvalidArgumentError as error:
        lines = [line for line in str(error).splitlines() if "keypoints_2d" in line]
        return NAMED if lines else f"crash: {str(error)[:300]}"
    except (TypeError, ValueError) as error:
        return f"crash: {str(error)[:300]}"
    return f"silent: finite={np.isfinite(poses).all()}"


@pytest.mark.parametrize("case", sorted(SERVING))
def test_serving_signature_refuses_bad_tensors_by_name(serving, case):
    outcome = serving_outcome(serving, SERVING[case])
    assert outcome == NAMED, f"OUTCOME={outcome}"


def test_serving_signature_still_serves_any_length(serving):
    for length in (1, 4, 30):
        poses = serving(keypoints_2d=tf.zeros((2, length, 17, 2)))["poses_3d"]
        assert poses.shape == (2, length, 17, 3)
