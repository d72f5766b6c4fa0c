"""Load VideoPose3D (PyTorch) checkpoints into a `TemporalModel`.

The original stores a `torch.save` dict whose `model_pos` (or `model_traj`) entry is a state
dict with these tensors (PyTorch layouts, channels first):

    expand_conv.weight            (C, J_in * 2, W0)   no bias
    expand_bn.{weight, bias, running_mean, running_var, num_batches_tracked}
    layers_conv.{2k}.weight       (C, C, W_{k+1})     dilated convolution of block k
    layers_conv.{2k+1}.weight     (C, C, 1)
    layers_bn.{i}.*               as expand_bn
    shrink.weight, shrink.bias    (J_out * 3, C, 1), (J_out * 3,)

Its inputs `(B, T, J, 2)` are flattened joint-major (x, y minor) to `J * 2` channels, as ours
are, so kernels only need transposing to `(W, C_in, C_out)`. The architecture (filter widths,
channels, joints) is read from the shapes; causality and dense mode are not stored.
Reading a `.bin` needs PyTorch (an optional extra); a mapping of NumPy arrays does not.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Union

import numpy as np

from vp3dkeras.models import TemporalModel

_BN_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
             "running_var": "moving_variance"}


def load_videopose3d(source: Union[str, os.PathLike, Mapping], causal: bool = False,
                     key: str = "model_pos", in_features: int = 2,
                     dense: bool = False) -> TemporalModel:
    """A built `TemporalModel` holding a VideoPose3D checkpoint's weights.

    source: path to a checkpoint `.bin`, a checkpoint dict, or a state dict
        (name -> array or CPU tensor).
    causal, dense: the architecture variants the checkpoint was trained with.
    key: the checkpoint entry to read ("model_pos", or "model_traj" for the trajectory model).
    in_features: features per input joint (2 for 2D keypoints).
    """
    state = _state_dict(source, key)
    expand = state.pop("expand_conv.weight")
    channels, in_channels, first_width = expand.shape
    if in_channels % in_features:
        raise ValueError(f"{in_channels} input channels do not split into {in_features} "
                         f"features per joint")
    num_blocks = len([name for name in state if name.startswith("layers_conv.")]) // 2
    widths = [first_width] + [state[f"layers_conv.{2 * k}.weight"].shape[2]
                              for k in range(num_blocks)]
    shrink = state.pop("shrink.weight")
    model = TemporalModel(in_channels // in_features, in_features, shrink.shape[0] // 3, widths,
                          causal=causal, channels=channels, dense=dense)
    model.build((None, None, in_channels // in_features, in_features))

    _assign(model.expand.conv.kernel, expand.transpose(2, 1, 0))
    _assign_bn(model.expand.bn, state, "expand_bn")
    for k, block in enumerate(model.blocks):
        for i, unit in ((2 * k, block.dilated), (2 * k + 1, block.pointwise)):
            _assign(unit.conv.kernel, state.pop(f"layers_conv.{i}.weight").transpose(2, 1, 0))
            _assign_bn(unit.bn, state, f"layers_bn.{i}")
    _assign(model.shrink.kernel, shrink.transpose(2, 1, 0))
    _assign(model.shrink.bias, state.pop("shrink.bias"))

    leftover = sorted(name for name in state if not name.endswith("num_batches_tracked"))
    if leftover:
        raise ValueError(f"checkpoint tensors not used by the model: {leftover}")
    return model


def _state_dict(source, key) -> dict:
    if isinstance(source, Mapping):
        checkpoint = source
    else:
        try:
            import torch
        except ImportError as error:
            raise ImportError("reading a VideoPose3D .bin needs PyTorch: pip install torch, "
                              "or pass a mapping of NumPy arrays") from error
        checkpoint = torch.load(os.fspath(source), map_location="cpu", weights_only=True)
    if key in checkpoint and isinstance(checkpoint[key], Mapping):
        checkpoint = checkpoint[key]
    elif "expand_conv.weight" not in checkpoint and "module.expand_conv.weight" not in checkpoint:
        raise KeyError(f"no state dict under {key!r}; checkpoint keys: {sorted(checkpoint)}")
    return {name.removeprefix("module."): _to_numpy(value) for name, value in checkpoint.items()}


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _assign(variable, value):
    if tuple(variable.shape) != value.shape:
        raise ValueError(f"{variable.path}: shape {tuple(variable.shape)}, "
                         f"checkpoint has {value.shape}")
    variable.assign(value.astype(np.float32))


def _assign_bn(layer, state, prefix):
    for torch_name, ours in _BN_NAMES.items():
        _assign(getattr(layer, ours), state.pop(f"{prefix}.{torch_name}"))
