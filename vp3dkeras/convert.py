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

Checkpoints are read without unpickling arbitrary objects. VideoPose3D's training script saves
`{"epoch", "lr", "random_state", "optimizer", "model_pos", "model_traj", ...}`, where
`random_state` is a NumPy `RandomState.get_state()` tuple, so a plain `torch.load(...,
weights_only=True)` refuses it. `read_torch_checkpoint` reads PyTorch's zip archive
(torch >= 1.6) itself, without PyTorch: its unpickler rebuilds only dicts, lists, tuples,
numbers, strings, `collections.OrderedDict`, tensors (from the archive's raw storages) and the
NumPy array/dtype/scalar reconstructors; anything else is refused. Files in PyTorch's older
(pre-1.6, non-zip) format need PyTorch and are read with `weights_only=True`, allowing only
those same NumPy globals.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from typing import Dict, Union

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
    checkpoint = source if isinstance(source, Mapping) else read_torch_checkpoint(source)
    if key in checkpoint and isinstance(checkpoint[key], Mapping):
        checkpoint = checkpoint[key]
    elif key in checkpoint:
        raise KeyError(f"the checkpoint's {key!r} holds no weights ({checkpoint[key]!r})")
    elif "expand_conv.weight" not in checkpoint and "module.expand_conv.weight" not in checkpoint:
        raise KeyError(f"no state dict under {key!r}; checkpoint keys: {sorted(checkpoint)}")
    return {name.removeprefix("module."): _to_numpy(value) for name, value in checkpoint.items()}


#: PyTorch storage class -> NumPy dtype of its raw little-endian bytes.
_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                   "HalfStorage": np.float16, "BFloat16Storage": np.uint16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                   "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class _Storage:
    def __init__(self, name: str):
        self.name = name


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                    metadata=None):
    """torch._utils._rebuild_tensor_v2 on a NumPy storage: a strided view, copied."""
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride))
    return np.array(view)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


class _CheckpointUnpickler(pickle.Unpickler):
    """Unpickles a PyTorch archive's data.pkl into NumPy arrays (see module docstring)."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path):
        super().__init__(file)
        self._archive, self._prefix, self._path = archive, prefix, path
        from vp3dkeras.data.vp3d_format import _allowed_globals

        self._allowed = dict(_allowed_globals())
        self._allowed.update({
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        })

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(name)
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"{self._path}: refusing to unpickle {module}.{name}: a checkpoint may only "
                f"hold tensors, containers, numbers, strings and NumPy arrays") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"{self._path}: unknown persistent id {pid!r}")
        storage_type, key = pid[1], pid[2]
        if not isinstance(storage_type, _Storage):
            raise pickle.UnpicklingError(f"{self._path}: unknown storage {storage_type!r}")
        raw = self._archive.read(f"{self._prefix}/data/{key}")
        array = np.frombuffer(raw, dtype=np.dtype(_STORAGE_DTYPES[storage_type.name])
                              .newbyteorder("<"))
        if storage_type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def read_torch_checkpoint(path) -> Dict[str, object]:
    """A `torch.save` file as nested dicts / lists of NumPy arrays, without running any
    code the file names (module docstring). Raises ValueError naming the file when it is
    no checkpoint, or `pickle.UnpicklingError` when it holds anything but data."""
    path = os.fspath(path)
    if not zipfile.is_zipfile(path):
        return _read_legacy_checkpoint(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if len(pickles) != 1:
                raise ValueError(f"{path}: not a PyTorch checkpoint (no single data.pkl)")
            prefix = pickles[0][: -len("data.pkl")].rstrip("/")
            order = archive.read(f"{prefix}/byteorder").decode().strip() \
                if f"{prefix}/byteorder" in archive.namelist() else "little"
            if order != "little":
                raise ValueError(f"{path}: {order}-endian checkpoints are not supported")
            data = io.BytesIO(archive.read(pickles[0]))
            return _CheckpointUnpickler(data, archive, prefix, path).load()
    except (KeyError, EOFError, IndexError, TypeError, zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path}: damaged PyTorch checkpoint ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''})") from None


def _read_legacy_checkpoint(path) -> Dict[str, object]:
    try:
        import torch
    except ImportError as error:
        raise ImportError(f"{path} is in PyTorch's pre-1.6 format, which needs PyTorch: "
                          f"pip install torch") from error
    from vp3dkeras.data.vp3d_format import _allowed_globals

    numpy_globals = list({id(f): f for f in _allowed_globals().values()}.values())
    numpy_globals += [type(np.dtype(t)) for t in ("uint32", "float32", "float64", "int64")]
    try:
        with torch.serialization.safe_globals(numpy_globals):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise pickle.UnpicklingError(f"{path}: {str(error).splitlines()[0]}") from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: not a PyTorch checkpoint, or a damaged one "
                         f"({type(error).__name__}: {str(error).splitlines()[0]})") from None


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
