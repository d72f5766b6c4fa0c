"""VideoPose3D checkpoints load into a TemporalModel that reproduces the PyTorch outputs.

The reference below is our own small PyTorch version of the paper's architecture, named like
the original's state dict, with random weights and running statistics.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from vp3dkeras.convert import load_videopose3d

J_IN, J_OUT = 6, 5


def random_state_dict(widths=(3, 3), channels=8, seed=0):
    """A state dict in the original's names and PyTorch layouts, as NumPy arrays."""
    rng = np.random.default_rng(seed)
    state = {}

    def conv(name, c_out, c_in, width):
        state[f"{name}.weight"] = rng.normal(0, 0.3, (c_out, c_in, width)).astype("float32")

    def bn(name):
        state[f"{name}.weight"] = rng.uniform(0.5, 1.5, channels).astype("float32")
        state[f"{name}.bias"] = rng.normal(0, 0.2, channels).astype("float32")
        state[f"{name}.running_mean"] = rng.normal(0, 0.5, channels).astype("float32")
        state[f"{name}.running_var"] = rng.uniform(0.5, 2.0, channels).astype("float32")
        state[f"{name}.num_batches_tracked"] = np.array(100)

    conv("expand_conv", channels, J_IN * 2, widths[0])
    bn("expand_bn")
    for k, width in enumerate(widths[1:]):
        conv(f"layers_conv.{2 * k}", channels, channels, width)
        bn(f"layers_bn.{2 * k}")
        conv(f"layers_conv.{2 * k + 1}", channels, channels, 1)
        bn(f"layers_bn.{2 * k + 1}")
    conv("shrink", J_OUT * 3, channels, 1)
    state["shrink.bias"] = rng.normal(0, 0.1, J_OUT * 3).astype("float32")
    return state


def test_architecture_and_weights_come_from_the_shapes():
    state = random_state_dict(widths=(3, 5, 3), channels=8)
    model = load_videopose3d(state, causal=True)
    assert (model.num_joints_in, model.in_features, model.num_joints_out) == (J_IN, 2, J_OUT)
    assert model.filter_widths == (3, 5, 3) and model.channels == 8 and model.causal
    assert model.receptive_field() == 45
    np.testing.assert_array_equal(model.blocks[1].dilated.conv.kernel.numpy(),
                                  state["layers_conv.2.weight"].transpose(2, 1, 0))
    np.testing.assert_array_equal(model.blocks[1].dilated.bn.moving_variance.numpy(),
                                  state["layers_bn.2.running_var"])


def test_unknown_tensors_are_an_error():
    state = random_state_dict()
    state["extra.weight"] = np.zeros(3, "float32")
    with pytest.raises(ValueError, match="extra.weight"):
        load_videopose3d(state)
    with pytest.raises(KeyError, match="model_pos"):
        load_videopose3d({"model_traj": random_state_dict(), "epoch": 3})


def torch_reference(state, widths, causal):
    """Our PyTorch reading of the paper, loaded with `state`: (B, T, J, 2) -> (B, T', J, 3)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Reference(nn.Module):
        def __init__(self, widths, channels):
            super().__init__()
            self.expand_conv = nn.Conv1d(J_IN * 2, channels, widths[0], bias=False)
            self.expand_bn = nn.BatchNorm1d(channels)
            convs, norms, dilation = [], [], widths[0]
            for width in widths[1:]:
                convs += [nn.Conv1d(channels, channels, width, dilation=dilation, bias=False),
                          nn.Conv1d(channels, channels, 1, bias=False)]
                norms += [nn.BatchNorm1d(channels), nn.BatchNorm1d(channels)]
                dilation *= width
            self.layers_conv, self.layers_bn = nn.ModuleList(convs), nn.ModuleList(norms)
            self.shrink = nn.Conv1d(channels, J_OUT * 3, 1)

        def forward(self, keypoints):
            batch, frames = keypoints.shape[:2]
            x = keypoints.reshape(batch, frames, -1).permute(0, 2, 1)
            x = torch.relu(self.expand_bn(self.expand_conv(x)))
            for i in range(0, len(self.layers_conv), 2):
                dilated = self.layers_conv[i]
                y = torch.relu(self.layers_bn[i](dilated(x)))
                y = torch.relu(self.layers_bn[i + 1](self.layers_conv[i + 1](y)))
                span = (dilated.kernel_size[0] - 1) * dilated.dilation[0]
                start = span if causal else span // 2
                x = x[:, :, start:start + y.shape[2]] + y
            out = self.shrink(x).permute(0, 2, 1)
            return out.reshape(batch, out.shape[1], J_OUT, 3)

    reference = Reference(widths, state["expand_conv.weight"].shape[0])
    reference.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    return reference.eval()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("widths", [(3, 3, 3), (5, 3)])
def test_outputs_match_pytorch_reference(widths, causal):
    torch = pytest.importorskip("torch")
    state = random_state_dict(widths, channels=32, seed=len(widths))
    reference = torch_reference(state, widths, causal)
    model = load_videopose3d(state, causal=causal)
    x = np.random.default_rng(1).normal(size=(2, model.receptive_field() + 20, J_IN, 2))
    x = x.astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    actual = model(x, training=False).numpy()
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-4


def test_loads_a_saved_checkpoint_file(tmp_path):
    torch = pytest.importorskip("torch")
    state = random_state_dict((3, 3, 3), channels=16)
    reference = torch_reference(state, (3, 3, 3), causal=False)
    path = tmp_path / "pretrained_h36m_cpn.bin"
    torch.save({"epoch": 80, "lr": 1e-3, "model_pos": reference.state_dict()}, path)
    model = load_videopose3d(path)
    x = np.random.default_rng(2).normal(size=(1, 40, J_IN, 2)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    assert np.abs(model(x, training=False).numpy() - expected).max() <= 1e-4
    twin = model.single_frame_twin()
    assert np.abs(twin(x[:, :27], training=False).numpy()[:, 0] - expected[:, 0]).max() <= 1e-4
