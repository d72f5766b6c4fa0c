"""Input pipeline: data sources -> sequences -> windows / sequence batches, in NumPy.

`tf.data` appears only in `vp3dkeras.data.tf_dataset`, the edge handed to `model.fit`.
"""
from vp3dkeras.data.codec import PoseCodec, load_layout
from vp3dkeras.data.sequences import ByteLRU, Sequence, SequenceRef, SequenceSource
from vp3dkeras.data.sources import open_source, open_split, split_source
from vp3dkeras.data.synth_source import SynthSource
from vp3dkeras.data.vp3d_format import (RestrictedUnpickler, VP3DSource, open_vp3d,
                                        restricted_load_npz)
from vp3dkeras.data.windows import SequenceBatcher, WindowSampler, epoch_order

__all__ = [
    "ByteLRU", "PoseCodec", "RestrictedUnpickler", "Sequence", "SequenceBatcher",
    "SequenceRef", "SequenceSource", "SynthSource", "VP3DSource", "WindowSampler",
    "epoch_order", "load_layout", "open_source", "open_split", "open_vp3d",
    "restricted_load_npz", "split_source",
]
