"""Opening data by path: a synth dataset folder or a folder of VideoPose3D-format files.

`open_split(path, split)` gives the (train, test) sources of a split:
- synth dataset: `split` names `splits/<name>.json` of the dataset;
- VideoPose3D files: `split` is `subjects:S1,S5,S6/S9,S11` (train subjects / test subjects),
  or names a `splits/<name>.json` beside the files whose clip keys are `<subject>/<action>`.
"""
from __future__ import annotations

import pathlib
from typing import Optional, Tuple

from posecontract.dataset_format import load_split
from vp3dkeras.data.sequences import SequenceSource
from vp3dkeras.data.synth_source import SynthSource, is_synth_dataset
from vp3dkeras.data.vp3d_format import is_vp3d_folder, open_vp3d


def open_source(path, vp3d_name: Optional[str] = None, keypoints: str = "gt", layout=None,
                image_size=None, cache_bytes: Optional[int] = None,
                keypoints_in: Optional[str] = None,
                keypoints_out: Optional[str] = None) -> SequenceSource:
    """All sequences of a synth dataset or a VideoPose3D-format folder. `keypoints_in` /
    `keypoints_out` choose a synth dataset's 2D and 3D keypoint conventions; VideoPose3D
    files have one layout for both (`layout`)."""
    path = pathlib.Path(path)
    extra = {} if cache_bytes is None else {"cache_bytes": int(cache_bytes)}
    if is_synth_dataset(path):
        return SynthSource(path, keypoints_in=keypoints_in, keypoints_out=keypoints_out,
                           **extra)
    if is_vp3d_folder(path):
        if keypoints_in and keypoints_out and keypoints_in != keypoints_out:
            raise ValueError(f"{path}: VideoPose3D-format files hold one layout for 2D and 3D; "
                             f"keypoints_in {keypoints_in!r} != keypoints_out "
                             f"{keypoints_out!r} needs a synth dataset")
        return open_vp3d(path, vp3d_name, keypoints, layout=layout, image_size=image_size,
                         **extra)
    raise FileNotFoundError(f"{path}: neither a synth dataset (manifest.json) nor a folder of "
                            f"VideoPose3D-format files (data_2d_*.npz)")


def split_source(source: SequenceSource, path, split: str) -> Tuple[SequenceSource,
                                                                     SequenceSource]:
    """(train, test) subsets of `source` for a split name or `subjects:TRAIN/TEST`."""
    if split.startswith("subjects:"):
        train, _, test = split[len("subjects:"):].partition("/")
        pick = [set(filter(None, side.split(","))) for side in (train, test)]
        if not pick[0] or not pick[1]:
            raise ValueError(f"--split {split!r}: expected subjects:TRAIN,.../TEST,...")
        return tuple(source.where(lambda r, s=s: r.subject in s) for s in pick)
    folder = pathlib.Path(path)
    the_split = load_split(folder, split)
    return source.select(the_split.train), source.select(the_split.test)


def open_split(path, split: str, **kwargs) -> Tuple[SequenceSource, SequenceSource]:
    """(train, test) sources; kwargs go to `open_source`."""
    return split_source(open_source(path, **kwargs), path, split)
