"""The streaming form of a causal TemporalModel gives the offline model's poses frame by frame."""
import numpy as np
import pytest

from model_helpers import randomize_batch_norm, save_and_reload
from vp3dkeras.inference import keras_lifter
from vp3dkeras.models import StreamingTemporalModel, TemporalModel
from vp3dkeras.stream_pool import StreamPool, keras_stream_step

# (filter widths, dense): 27 and 243 frames as in the paper, a width-1 block, uneven and even
# widths, the dense ablation, a single layer without any past.
ARCHITECTURES = [((3, 3, 3), False), ((3, 3, 3, 3, 3), False), ((3, 1, 5), False),
                 ((2, 4, 2), False), ((3, 3), True), ((1,), False)]


def trained_causal_model(widths, dense=False, channels=32, seed=0):
    model = TemporalModel(17, 2, 17, widths, causal=True, channels=channels, dense=dense)
    model.build((None, None, 17, 2))
    randomize_batch_norm(model, seed)
    return model


def stream(step, state_size, frames):
    """Feeds (B, T, J, 2) frame by frame, all streams starting at frame 0 -> (B, T, J, 3)."""
    pool = StreamPool(step, state_size)
    ids = list(range(len(frames)))
    for i in ids:
        pool.open(i)
    return np.stack([pool.push(ids, frames[:, t]) for t in range(frames.shape[1])], axis=1)


@pytest.mark.parametrize("widths, dense", ARCHITECTURES,
                         ids=[f"{'x'.join(map(str, w))}{'-dense' if d else ''}"
                              for w, d in ARCHITECTURES])
def test_stream_equals_offline_causal_inference_from_the_first_frame(widths, dense):
    model = trained_causal_model(widths, dense)
    streaming = StreamingTemporalModel.from_temporal_model(model)
    assert streaming.receptive_field() == model.receptive_field()
    rng = np.random.default_rng(1)
    length = model.receptive_field() + 8  # covers the padded start and the steady state
    frames = rng.normal(0, 0.5, (2, length, 17, 2)).astype("float32")
    offline = keras_lifter(model)(frames)  # left padding: rf - 1 copies of the first frame
    streamed = stream(keras_stream_step(streaming), streaming.state_size, frames)
    assert np.abs(offline).max() > 0.5  # not a comparison of near-zeros
    np.testing.assert_allclose(streamed, offline, rtol=0, atol=1e-5)


def test_each_layer_keeps_exactly_its_past_frames():
    model = trained_causal_model((3, 3, 3, 3, 3), channels=8)
    streaming = StreamingTemporalModel.from_temporal_model(model)
    # (W - 1) * D for dilations 1, 3, 9, 27, 81
    assert streaming.buffer_frames() == [2, 6, 18, 54, 162]
    assert sum(streaming.buffer_frames()) == model.receptive_field() - 1
    assert streaming.state_size == 2 * 34 + (6 + 18 + 54 + 162) * 8


def test_streams_start_reset_and_skip_independently():
    model = trained_causal_model((3, 3, 3))
    streaming = StreamingTemporalModel.from_temporal_model(model)
    offline = keras_lifter(model)
    rng = np.random.default_rng(2)
    tracks = rng.normal(0, 0.5, (3, 40, 17, 2)).astype("float32")
    pool = StreamPool(keras_stream_step(streaming), streaming.state_size)
    pool.open("a")
    pool.open("b")
    outputs = {"a": [], "b": [], "c": []}
    for t in range(40):
        if t == 5:
            pool.open("c")  # a camera joins while the others go on
        if t == 20:
            pool.reset("b")  # a new person in camera b
        ids = [s for s in pool.streams if not (s == "a" and t % 3 == 1)]  # "a" skips frames
        frames = np.stack([tracks["abc".index(s), t] for s in ids])
        for s, pose in zip(ids, pool.push(ids, frames)):
            outputs[s].append(pose)
    a_frames = [t for t in range(40) if t % 3 != 1]
    np.testing.assert_allclose(np.stack(outputs["a"]), offline(tracks[:1, a_frames])[0],
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.stack(outputs["b"][:20]), offline(tracks[1:2, :20])[0],
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.stack(outputs["b"][20:]), offline(tracks[1:2, 20:])[0],
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.stack(outputs["c"]), offline(tracks[2:3, 5:])[0],
                               rtol=0, atol=1e-5)
    pool.close("a")
    assert pool.streams == ["b", "c"]
    with pytest.raises(ValueError, match="one frame per call"):
        pool.push(["b", "b"], tracks[:2, 0])
    with pytest.raises(KeyError, match="not open"):
        pool.push(["a"], tracks[:1, 0])


def test_symmetric_model_is_refused():
    model = TemporalModel(17, 2, 17, (3, 3), causal=False, channels=8)
    with pytest.raises(ValueError, match="only a causal TemporalModel"):
        StreamingTemporalModel.from_temporal_model(model)


def test_round_trips_through_a_keras_file(tmp_path):
    streaming = StreamingTemporalModel.from_temporal_model(trained_causal_model((3, 3)))
    reloaded = save_and_reload(streaming, tmp_path / "streaming.keras")
    assert reloaded.get_config() == streaming.get_config()
    rng = np.random.default_rng(3)
    frame = rng.normal(size=(2, 17, 2)).astype("float32")
    state = rng.normal(size=(2, streaming.state_size)).astype("float32")
    fresh = np.array([True, False])
    for expected, got in zip(streaming.step(frame, state, fresh),
                             reloaded.step(frame, state, fresh)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


JAX_SCRIPT = """
import sys
import keras
import numpy as np
from vp3dkeras import models  # noqa: F401  (registers the classes for loading)
from vp3dkeras.stream_pool import StreamPool, keras_stream_step
assert keras.backend.backend() == "jax"
folder = sys.argv[1]
model = keras.saving.load_model(f"{folder}/streaming.keras", safe_mode=True)
frames = np.load(f"{folder}/frames.npy")
pool = StreamPool(keras_stream_step(model), model.state_size)
pool.open(0)
pool.open(1)
np.save(f"{folder}/jax.npy", np.stack([pool.push([0, 1], frames[:, t])
                                      for t in range(frames.shape[1])], axis=1))
"""


def test_streams_on_the_jax_backend(tmp_path):
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    model = trained_causal_model((3, 3, 3))
    streaming = StreamingTemporalModel.from_temporal_model(model)
    streaming.save(tmp_path / "streaming.keras")
    frames = np.random.default_rng(4).normal(0, 0.5, (2, 30, 17, 2)).astype("float32")
    np.save(tmp_path / "frames.npy", frames)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), keras_lifter(model)(frames),
                               rtol=0, atol=1e-5)
