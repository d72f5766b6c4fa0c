"""Opening data by path: a synth dataset folder or a folder of VideoPose3D-format files.

`open_split(path, split)` gives the (train, test) sources of a split:
- synth dataset, as a folder (local, or a URL fsspec opens: `s3://`, `gs://`, ...) or as
  TFRecord shards (`vp3dkeras.data.shards`, local or a `tf.io.gfile` URL): `split` names
  `splits/<name>.json` of the dataset;
- VideoPose3D files: `split` is a subject split (`parse_subject_split`), or names a `splits/<name>.json` beside the files whose clip keys are `<subject>/<action>`.
"""
from __future__ import annotations

import pathlib
from typing import List, Optional, Sequence as Seq, Tuple

from posecontract.dataset_format import is_file, load_split
from vp3dkeras.data.joint_subset import JointSubsetSource
from vp3dkeras.data.sequences import SequenceSource
from vp3dkeras.data.synth_source import SynthSource, is_synth_dataset
from vp3dkeras.data.vp3d_format import is_vp3d_folder, open_vp3d


def open_source(path, vp3d_name: Optional[str] = None, keypoints: str = "gt", layout=None,
                image_size=None, cache_bytes: Optional[int] = None,
                keypoints_in: Optional[str] = None, keypoints_out: Optional[str] = None,
                joints=None, estimate_cameras: bool = False,
                require_cameras: bool = False) -> SequenceSource:
    """All sequences of a synth dataset or a VideoPose3D-format folder.

    keypoints_in / keypoints_out: a synth dataset's 2D and 3D keypoint conventions;
    VideoPose3D files have one layout for both (`layout`).
    joints: a layout (name, JointLayout or JSON) whose joints are picked by name from the
    data's own layouts, 2D and 3D (`JointSubsetSource`); None keeps the data's layouts.
    estimate_cameras, require_cameras: see `open_vp3d` (VideoPose3D folders without cameras).
    """
    extra = {} if cache_bytes is None else {"cache_bytes": int(cache_bytes)}
    url = "://" in str(path)
    if url and is_synth_dataset(str(path)) and not is_file(f"{str(path).rstrip('/')}/shards.json"):
        source = SynthSource(str(path), keypoints_in=keypoints_in, keypoints_out=keypoints_out,
                             **extra)  # a dataset folder at a URL (fsspec)
        return source if joints is None else JointSubsetSource(source, joints)
    if url or (pathlib.Path(path) / "shards.json").is_file():
        from vp3dkeras.data.shards import ShardSource  # imports TensorFlow (tf.io.gfile)
        source = ShardSource(str(path), keypoints_in=keypoints_in, keypoints_out=keypoints_out,
                             **extra)
        return source if joints is None else JointSubsetSource(source, joints)
    path = pathlib.Path(path)
    if is_synth_dataset(path):
        source = SynthSource(path, keypoints_in=keypoints_in, keypoints_out=keypoints_out,
                             **extra)
    elif is_vp3d_folder(path):
        if keypoints_in and keypoints_out and keypoints_in != keypoints_out:
            raise ValueError(f"{path}: VideoPose3D-format files hold one layout for 2D and 3D; "
                             f"keypoints_in {keypoints_in!r} != keypoints_out "
                             f"{keypoints_out!r} needs a synth dataset")
        source = open_vp3d(path, vp3d_name, keypoints, layout=layout, image_size=image_size,
                           estimate_cameras=estimate_cameras,
                           require_cameras=require_cameras, **extra)
    else:
        raise FileNotFoundError(f"{path}: neither a synth dataset (manifest.json), nor its "
                                f"shards (shards.json), nor a folder of VideoPose3D-format "
                                f"files (data_2d_*.npz)")
    if joints is not None:
        source = JointSubsetSource(source, joints)
    return source


def _names(text: str) -> List[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def parse_subject_split(spec: str, subjects: Seq[str], option: str = "--split"
                        ) -> Tuple[List[str], List[str]]:
    """(train subjects, test subjects) of a subject split.

    Two forms:
    - `subjects:train=A,B;test=C,D`: always unambiguous (names may contain "/", e.g.
      HumanEva's `Train/S1`);
    - `subjects:A,B/C,D`: the "/" that separates train from test is found among the known
      `subjects`: exactly one "/" must leave a list of known subjects on both sides
      (`subjects:Train/S1,Train/S2/Validate/S1` works). Otherwise ValueError: naming the
      unknown subjects, or, when several readings fit, saying the input is ambiguous.
    Unknown subject names raise ValueError listing the known ones. `option`: the command-line
    option the messages name (the spec came from it).
    """
    if not spec.startswith("subjects:"):
        raise ValueError(f"{option} {spec!r}: not a subject split (subjects:...)")
    body = spec[len("subjects:"):]
    known = set(subjects)
    if "=" in body:
        parts = dict(part.split("=", 1) for part in body.split(";") if "=" in part)
        if set(parts) != {"train", "test"} or body.count("=") != 2:
            raise ValueError(f"{option} {spec!r}: expected subjects:train=A,B;test=C,D")
        train, test = _names(parts["train"]), _names(parts["test"])
    else:
        readings = []
        for i, char in enumerate(body):
            if char == "/":
                left, right = _names(body[:i]), _names(body[i + 1:])
                if left and right and set(left) <= known and set(right) <= known:
                    readings.append((left, right))
        if len(readings) > 1:
            options = " or ".join(f"train={','.join(a)};test={','.join(b)}"
                                  for a, b in readings[:2])
            raise ValueError(f"{option} {spec!r} is ambiguous (subject names contain '/'): "
                             f"write subjects:{options}")
        if not readings:
            if "/" not in body:
                raise ValueError(f"{option} {spec!r}: expected subjects:TRAIN,.../TEST,... or "
                                 f"subjects:train=...;test=...")
            raise ValueError(f"{option} {spec!r}: no '/' splits it into two lists of the "
                             f"data's subjects {sorted(known)}")
        train, test = readings[0]
    unknown = sorted((set(train) | set(test)) - known)
    if unknown:
        raise ValueError(f"{option} {spec!r}: unknown subjects {unknown}; the data has "
                         f"{sorted(known)}")
    if not train or not test:
        raise ValueError(f"{option} {spec!r}: both train and test subjects are needed")
    return train, test


def split_source(source: SequenceSource, path, split: str, option: str = "--split"
                 ) -> Tuple[SequenceSource, SequenceSource]:
    """(train, test) subsets of `source` for a split name or a subject split; `option` is the
    command-line option error messages name."""
    if split.startswith("subjects:"):
        train, test = parse_subject_split(split, sorted({r.subject for r in source.refs}),
                                          option)
        return tuple(source.where(lambda r, s=frozenset(s): r.subject in s)
                     for s in (train, test))
    if isinstance(source, SynthSource):
        the_split = source.split(split)
    else:
        the_split = load_split(pathlib.Path(path), split)
    return source.select(the_split.train), source.select(the_split.test)


def open_split(path, split: str, **kwargs) -> Tuple[SequenceSource, SequenceSource]:
    """(train, test) sources; kwargs go to `open_source`."""
    return split_source(open_source(path, **kwargs), path, split)
