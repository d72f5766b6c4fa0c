"""The exported SavedModel loads with TensorFlow alone and serves sequences of any length."""
import textwrap

import numpy as np
import pytest

from model_helpers import run_without_project
from vp3dkeras.export import export_saved_model
from vp3dkeras.models import TemporalModel
from vp3dkeras.padding import model_padding, pad_replicate

LENGTHS = (1, 5, 20)  # one frame, shorter than the receptive field (9), longer

# Runs in a fresh interpreter that can import TensorFlow and NumPy but not the project.
LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    export_dir, inputs_path, outputs_path = sys.argv[1:]
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    inputs = np.load(inputs_path)
    outputs = {name: serve(keypoints_2d=inputs[name])["poses_3d"].numpy() for name in inputs}
    outputs["predict_T5"] = loaded.predict(inputs["T5"]).numpy()
    np.savez(outputs_path, **outputs)

    errors = {}
    for name, bad in [("joints", np.zeros((1, 5, 16, 2), "float32")),
                      ("rank", np.zeros((5, 17, 2), "float32")),
                      ("empty", np.zeros((1, 0, 17, 2), "float32"))]:
        try:
            serve(keypoints_2d=bad)
            errors[name] = None
        except Exception as error:
            errors[name] = str(error)
    metadata = {key: int(getattr(loaded, key)) for key in
                ("receptive_field", "pad_left", "pad_right", "num_joints_in", "in_features",
                 "num_joints_out")}
    print(json.dumps({"errors": errors, "metadata": metadata,
                      "project_imported": "vp3dkeras" in sys.modules}))
""")


def trained_like(model, rng):
    """Moves the batch-norm statistics away from their initial values."""
    model(rng.normal(size=(4, 30, 17, 2)).astype("float32"), training=True)
    return model


@pytest.fixture(scope="module", params=[False, True], ids=["symmetric", "causal"])
def exported(request, tmp_path_factory):
    rng = np.random.default_rng(0)
    model = trained_like(TemporalModel(17, 2, 17, (3, 3), causal=request.param, channels=32),
                         rng)
    root = tmp_path_factory.mktemp("causal" if request.param else "symmetric")
    export_saved_model(model, root / "saved_model")
    inputs = {f"T{t}": rng.normal(size=(2, t, 17, 2)).astype("float32") for t in LENGTHS}
    np.savez(root / "inputs.npz", **inputs)
    report = run_without_project(LOADER, root / "saved_model", root / "inputs.npz",
                                 root / "outputs.npz", cwd=root)
    return model, inputs, dict(np.load(root / "outputs.npz")), report


def test_loaded_without_the_project(exported):
    *_, report = exported
    assert report["project_imported"] is False


@pytest.mark.parametrize("length", LENGTHS)
def test_outputs_match_model_on_replicate_padded_input(exported, length):
    model, inputs, outputs, _ = exported
    x = inputs[f"T{length}"]
    left, right = model_padding(model)
    expected = np.asarray(model(pad_replicate(x, left, right), training=False))
    assert outputs[f"T{length}"].shape == (2, length, 17, 3)
    np.testing.assert_allclose(outputs[f"T{length}"], expected, rtol=0, atol=1e-5)


def test_predict_function_equals_signature(exported):
    _, _, outputs, _ = exported
    np.testing.assert_array_equal(outputs["predict_T5"], outputs["T5"])


def test_metadata_is_readable(exported):
    model, *_, report = exported
    left, right = model_padding(model)
    assert report["metadata"] == {
        "receptive_field": 9, "pad_left": left, "pad_right": right, "num_joints_in": 17,
        "in_features": 2, "num_joints_out": 17}
    assert (left, right) == ((8, 0) if model.causal else (4, 4))


def test_wrong_shapes_give_clear_errors(exported):
    *_, report = exported
    errors = report["errors"]
    for name in ("joints", "rank"):
        assert errors[name] is not None
        assert "(None, None, 17, 2)" in errors[name]  # the expected (batch, T, J, C)
    assert "(1, 5, 16, 2)" in errors["joints"]
    assert "(5, 17, 2)" in errors["rank"]
    assert "at least one frame" in errors["empty"]
    assert "(batch, T >= 1, 17, 2)" in errors["empty"]


def test_missing_joint_count_is_reported():
    class Bare:
        num_joints_out = 17
    with pytest.raises(ValueError, match="pass num_joints"):
        export_saved_model(Bare(), "unused")
