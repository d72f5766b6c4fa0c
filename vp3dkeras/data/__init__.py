"""Input pipeline: data sources -> sequences -> windows / sequence batches, in NumPy.

`tf.data` appears only in `vp3dkeras.data.tf_dataset`, the edge handed to `model.fit`.

The names below are imported on first use (PEP 562), so `python -m vp3dkeras.data.shards`
can filter TensorFlow's start-up lines (`vp3dkeras.quiet_tf`) before anything imports it.
"""
import importlib

_WHERE = {
    "PoseCodec": "codec", "load_layout": "codec",
    "ByteLRU": "sequences", "Sequence": "sequences", "SequenceRef": "sequences",
    "SequenceSource": "sequences",
    "open_source": "sources", "open_split": "sources", "split_source": "sources",
    "SynthSource": "synth_source",
    "RestrictedUnpickler": "vp3d_format", "VP3DSource": "vp3d_format",
    "open_vp3d": "vp3d_format", "restricted_load_npz": "vp3d_format",
    "SequenceBatcher": "windows", "WindowSampler": "windows", "epoch_order": "windows",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
