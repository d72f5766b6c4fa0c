"""Edge padding in time and the padding a model needs."""
import numpy as np
import pytest

from vp3dkeras.padding import model_padding, pad_replicate


def test_pad_replicate_repeats_end_frames():
    x = np.arange(2 * 3 * 2 * 1, dtype=np.float32).reshape(2, 3, 2, 1)
    padded = pad_replicate(x, 2, 1)
    assert padded.shape == (2, 6, 2, 1) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:, :2], np.repeat(x[:, :1], 2, axis=1))
    np.testing.assert_array_equal(padded[:, 2:5], x)
    np.testing.assert_array_equal(padded[:, 5], x[:, -1])
    np.testing.assert_array_equal(pad_replicate(x[0], 0, 0), x[0])


def test_pad_replicate_rejects_bad_input():
    with pytest.raises(ValueError, match="T >= 1"):
        pad_replicate(np.zeros((0, 17, 2)), 1, 1)
    with pytest.raises(ValueError, match="non-negative"):
        pad_replicate(np.zeros((3, 17, 2)), -1, 1)


class StandIn:
    """Anything with a receptive field and a causal flag."""

    def __init__(self, receptive_field, causal):
        self._rf, self.causal = receptive_field, causal

    def receptive_field(self):
        return self._rf


def test_model_padding_from_receptive_field():
    assert model_padding(StandIn(27, causal=False)) == (13, 13)
    assert model_padding(StandIn(27, causal=True)) == (26, 0)
    assert model_padding(object()) == (0, 0)
    with pytest.raises(ValueError, match="odd"):
        model_padding(StandIn(4, causal=False))


def test_model_padding_prefers_total_pad():
    class Shifted(StandIn):
        def total_pad(self):
            return 3, 1
    assert model_padding(Shifted(5, causal=False)) == (3, 1)
