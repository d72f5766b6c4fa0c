"""The streaming SavedModel reloads with TensorFlow alone, streams many cameras with an
explicit state and refuses wrong shapes with a clear error."""
import textwrap

import numpy as np
import pytest

from model_helpers import run_without_project
from test_streaming_model import trained_causal_model
from vp3dkeras.export_stream import export_stream_model
from vp3dkeras.inference import keras_lifter

# Runs in a fresh interpreter that can import TensorFlow and NumPy but not the project.
# Stream 0 starts at frame 0, stream 1 joins at frame 4 (fresh while stream 0 goes on).
LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    export_dir, inputs_path, outputs_path = sys.argv[1:]
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    tracks = np.load(inputs_path)["tracks"]
    size = int(loaded.state_size)
    state = np.zeros((2, size), "float32")
    poses = np.full(tracks.shape[:2] + (int(loaded.num_joints_out), 3), np.nan, "float32")
    for t in range(tracks.shape[1]):
        fresh = np.array([t == 0, t <= 4])
        out = serve(keypoints_2d=tracks[:, t], state=state, fresh=fresh)
        state = out["state"].numpy()
        poses[0, t] = out["poses_3d"].numpy()[0]
        if t >= 4:
            poses[1, t] = out["poses_3d"].numpy()[1]
    np.savez(outputs_path, poses=poses)

    good = dict(keypoints_2d=np.zeros((2, 17, 2), "float32"),
                state=np.zeros((2, size), "float32"), fresh=np.zeros(2, bool))
    bad = {"joints": dict(good, keypoints_2d=np.zeros((2, 16, 2), "float32")),
           "rank": dict(good, keypoints_2d=np.zeros((1, 2, 17, 2), "float32")),
           "state_size": dict(good, state=np.zeros((2, size + 1), "float32")),
           "batch": dict(good, fresh=np.zeros(3, bool)),
           "dtype": dict(good, fresh=np.zeros(2, "float32"))}
    errors = {}
    for kind, convert in (("numpy", np.asarray), ("tensor", tf.constant)):
        for name, inputs in bad.items():
            try:
                serve(**{key: convert(value) for key, value in inputs.items()})
                errors[f"{kind}_{name}"] = None
            except Exception as error:
                errors[f"{kind}_{name}"] = str(error)
    metadata = {key: int(getattr(loaded, key)) for key in
                ("receptive_field", "state_size", "num_joints_in", "in_features",
                 "num_joints_out")}
    print(json.dumps({"errors": errors, "metadata": metadata,
                      "project_imported": "vp3dkeras" in sys.modules}))
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = trained_causal_model((3, 3, 3))
    root = tmp_path_factory.mktemp("stream_export")
    lifter = export_stream_model(model, root / "saved_model")
    rng = np.random.default_rng(0)
    tracks = rng.normal(0, 0.5, (2, 35, 17, 2)).astype("float32")
    np.savez(root / "inputs.npz", tracks=tracks)
    report = run_without_project(LOADER, root / "saved_model", root / "inputs.npz",
                                 root / "outputs.npz", cwd=root)
    return model, lifter, tracks, np.load(root / "outputs.npz")["poses"], report


def test_loaded_without_the_project(exported):
    *_, report = exported
    assert report["project_imported"] is False


def test_served_streams_equal_offline_causal_inference(exported):
    model, _, tracks, poses, _ = exported
    offline = keras_lifter(model)
    np.testing.assert_allclose(poses[0], offline(tracks[:1])[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(poses[1, 4:], offline(tracks[1:, 4:])[0], rtol=0, atol=1e-5)


def test_metadata_is_readable(exported):
    model, lifter, *_, report = exported
    assert report["metadata"] == {
        "receptive_field": 27, "state_size": lifter.model.state_size, "num_joints_in": 17,
        "in_features": 2, "num_joints_out": 17}


def test_wrong_shapes_give_clear_errors(exported):
    *_, report = exported
    errors = report["errors"]
    size = report["metadata"]["state_size"]
    expected = f"wrong input shapes: expected keypoints_2d (B, 17, 2), state (B, {size}), " \
               f"fresh (B,)"
    # TensorFlow tensors reach the function's own check, which names every shape.
    for name, got in [("joints", "[2 16 2]"), ("rank", "[1 2 17 2]"),
                      ("state_size", f"[2 {size + 1}]"), ("batch", "[3]")]:
        assert expected in errors[f"tensor_{name}"], errors[f"tensor_{name}"]
        assert got in errors[f"tensor_{name}"]
    assert "bool tensor" in errors["tensor_dtype"]
    # NumPy arrays are first bound to the signature's specs, which refuse the shape.
    for name, got, spec in [("joints", "(2, 16, 2)", "(None, 17, 2)"),
                            ("rank", "(1, 2, 17, 2)", "(None, 17, 2)"),
                            ("state_size", f"(2, {size + 1})", f"(None, {size})")]:
        assert f"Can not cast TensorSpec(shape={got}" in errors[f"numpy_{name}"]
        assert spec in errors[f"numpy_{name}"]
    assert expected in errors["numpy_batch"]


def test_symmetric_model_is_not_exported(tmp_path):
    model = trained_causal_model((3, 3))
    model.causal = False
    with pytest.raises(ValueError, match="only a causal TemporalModel"):
        export_stream_model(model, tmp_path / "saved_model")
    assert not (tmp_path / "saved_model").exists()



def test_export_command_checks_the_reloaded_stream(tmp_path, capsys):
    from vp3dkeras import export_stream

    path = tmp_path / "causal.keras"
    trained_causal_model((3, 3)).save(path)
    assert export_stream.main([str(path), "--out", str(tmp_path / "served")]) == 0
    assert "streamed output differs from the offline model by" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="missing.keras"):
        export_stream.main([str(tmp_path / "missing.keras"), "--out", str(tmp_path / "x")])
