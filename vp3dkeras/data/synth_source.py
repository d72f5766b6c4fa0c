"""Sequences of a synth dataset (`synth.render` output): one per record and camera.

The manifest gives every record's metadata, so the refs cost nothing to build; a record is
opened only when one of its sequences is first needed, and only the arrays the model side
uses are read from it (2D keypoints, camera-space 3D joints, camera intrinsics and image size).

Records hold several keypoint conventions (`posecontract.conventions`, record keys from
`posecontract.dataset_format.convention_key`); the 2D input and the 3D output are each read
in a chosen convention: by default `h36m17` for both when the dataset has it, else the
canonical joints `acclaim17` (datasets rendered before conventions existed).
"""
from __future__ import annotations

import pathlib
from typing import Dict, Optional, Tuple

import numpy as np

from posecontract.conventions import get_convention
from posecontract.dataset_format import (BASE_CONVENTION, RecordError, Split, check_finite,
                                         convention_key, dataset_path, is_file, is_url,
                                         load_record, load_split, manifest_conventions,
                                         read_manifest, require_convention)
from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.data.sequences import Sequence, SequenceRef, SequenceSource, make_sequence

_CAMERA_KEYS = ("camera_intrinsics", "camera_image_size")
DEFAULT_OUTPUT_CONVENTION = "h36m17"


def default_conventions(available, keypoints_in: Optional[str] = None,
                        keypoints_out: Optional[str] = None) -> Tuple[str, str]:
    """(input, output) convention names: the output defaults to h36m17 when available, else
    the canonical joints; the input defaults to the output."""
    if keypoints_out is None:
        keypoints_out = (DEFAULT_OUTPUT_CONVENTION if DEFAULT_OUTPUT_CONVENTION in available
                         else BASE_CONVENTION)
    return keypoints_in or keypoints_out, keypoints_out


def is_synth_dataset(path) -> bool:
    """Whether `path` (a folder, or a URL fsspec opens) holds a synth dataset's manifest."""
    return is_file(dataset_path(path, "manifest.json"))


class SynthSource(SequenceSource):
    """All sequences of a synth dataset, 2D in one keypoint convention, 3D in another.

    dataset_dir:   folder with manifest.json, clips/, splits/; or its URL (any fsspec
                   protocol: `synth.render --out URL` writes there; records are then read
                   over the network when first needed, as from the folder).
    keypoints_in:  convention of the 2D input (default: the output's).
    keypoints_out: convention of the 3D output (default: h36m17 if the dataset has it, else
                   acclaim17). ValueError (one line) when the dataset lacks either.
    """

    def __init__(self, dataset_dir, cache_bytes: int = SequenceSource.DEFAULT_CACHE_BYTES,
                 keypoints_in: Optional[str] = None, keypoints_out: Optional[str] = None):
        self.dataset_dir = (str(dataset_dir).rstrip("/") if is_url(str(dataset_dir))
                            else pathlib.Path(dataset_dir))
        self._init_refs(read_manifest(self.dataset_dir), str(self.dataset_dir), cache_bytes,
                        keypoints_in, keypoints_out)

    def _init_refs(self, manifest: dict, name: str, cache_bytes: int,
                   keypoints_in: Optional[str], keypoints_out: Optional[str]) -> None:
        """Refs, conventions and codec from a manifest (also `ShardSource`'s)."""
        available = manifest_conventions(manifest)
        self.keypoints_in, self.keypoints_out = default_conventions(
            available, keypoints_in, keypoints_out)
        for name in (self.keypoints_in, self.keypoints_out):
            get_convention(name)
            require_convention(available, name, self.dataset_dir)
        refs = []
        for entry in manifest["records"]:
            for camera in range(int(entry["num_cameras"])):
                refs.append(SequenceRef(
                    key=f"{entry['clip_key']}/{entry['avatar']}/cam{camera}",
                    clip_key=entry["clip_key"],
                    subject=f"{entry['dataset']}_{entry['actor']}" if entry["actor"]
                    else entry["dataset"],
                    action=str(entry["clip_id"]), motion_class=str(entry["motion_class"]),
                    camera=camera, item=entry["file"], num_frames=int(entry["num_frames"]),
                    fps=float(entry["fps"])))
        codec = PoseCodec(get_convention(self.keypoints_out).layout,
                          input_layout=get_convention(self.keypoints_in).layout)
        self._sha256 = {entry["file"]: entry.get("sha256") for entry in manifest["records"]}
        super().__init__(codec, refs, name=name, cache_bytes=cache_bytes)
        # Every camera of a record is decoded when the record is read, so subsets sharing
        # the cache keep the full dataset's refs per record.
        self._refs_by_item: Dict[str, list] = {}
        for ref in refs:
            self._refs_by_item.setdefault(ref.item, []).append(ref)

    def split(self, name: str) -> Split:
        """The named split of the dataset (`synth.splits.load_split`)."""
        return load_split(self.dataset_dir, name)

    def split_sources(self, name: str):
        """(train, test) sources of the named split."""
        split = self.split(name)
        return self.select(split.train), self.select(split.test)

    def _load_item(self, item) -> Dict[int, Sequence]:
        path = dataset_path(self.dataset_dir, item)
        try:
            data = load_record(path, sha256=self._sha256.get(item), keys=self._record_keys())
        except RecordError as error:
            if "lacks" in str(error):
                raise RecordError(f"{error} (rendered without that keypoint convention)"
                                  ) from None
            raise
        return self._sequences_of(item, data, path)

    def _record_keys(self) -> Tuple[str, ...]:
        """The arrays of a record that the model side reads."""
        names = {convention_key("joint_names", c) for c in (self.keypoints_in,
                                                            self.keypoints_out)}
        return (convention_key("keypoints2d", self.keypoints_in),
                convention_key("joints3d_camera", self.keypoints_out)) + _CAMERA_KEYS \
            + tuple(sorted(names))

    def _sequences_of(self, item, data: Dict[str, np.ndarray], path) -> Dict[int, Sequence]:
        """The sequences of one record's arrays (`_record_keys()` at least), checked: finite
        values, shapes, joint names. `path` names the record in errors (`RecordError`)."""
        key_2d = convention_key("keypoints2d", self.keypoints_in)
        key_3d = convention_key("joints3d_camera", self.keypoints_out)
        names_keys = {convention: convention_key("joint_names", convention)
                      for convention in (self.keypoints_in, self.keypoints_out)}
        for key in (key_2d, key_3d) + _CAMERA_KEYS:
            check_finite(path, key, data[key])
        if np.any(data["camera_image_size"] <= 0):
            raise RecordError(f"{path}: camera_image_size must be positive, got "
                              f"{data['camera_image_size'].tolist()}")
        cameras = max(r.camera for r in self._refs_by_item[item]) + 1
        for key, joints, tail in ((key_2d, self.codec.num_joints_in, 2),
                                  (key_3d, self.codec.num_joints, 3)):
            shape = data[key].shape
            if len(shape) != 4 or shape[0] < cameras or shape[2:] != (joints, tail):
                raise RecordError(f"{path}: {key} must be (>= {cameras} cameras, T, {joints}, "
                                  f"{tail}), got {shape}")
        if data["camera_intrinsics"].shape[0] < cameras or \
                data["camera_image_size"].shape[0] < cameras:
            raise RecordError(f"{path}: camera arrays hold fewer than {cameras} cameras")
        for convention, layout in ((self.keypoints_in, self.codec.input_layout),
                                   (self.keypoints_out, self.codec.layout)):
            names = tuple(str(n) for n in data[names_keys[convention]])
            if names != layout.names:
                raise RecordError(f"{path}: {convention} joint names {names} differ from "
                                  f"layout {layout.name}")
        refs = {r.camera: r for r in self._refs_by_item[item]}
        return {camera: make_sequence(self.codec, ref, data[key_2d][camera],
                                      data["camera_image_size"][camera],
                                      data[key_3d][camera],
                                      data["camera_intrinsics"][camera])
                for camera, ref in refs.items()}
