"""Sequences of a synth dataset (`synth.render` output): one per record and camera.

The manifest gives every record's metadata, so the refs cost nothing to build; a record is
opened only when one of its sequences is first needed, and only the arrays the model side
uses are read from it (`keypoints2d`, `joints3d_camera`, camera intrinsics and image size).
"""
from __future__ import annotations

import pathlib
from typing import Dict

import numpy as np

from posecontract.dataset_format import read_manifest
from posecontract.dataset_format import Split, load_split
from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.data.sequences import Sequence, SequenceRef, SequenceSource, make_sequence
from posecontract.layouts import H36M_17

_KEYS = ("keypoints2d", "joints3d_camera", "camera_intrinsics", "camera_image_size",
         "joint_names")


def is_synth_dataset(path) -> bool:
    return (pathlib.Path(path) / "manifest.json").is_file()


class SynthSource(SequenceSource):
    """All sequences of a synth dataset in the 17-joint layout its records carry.

    dataset_dir: folder with manifest.json, clips/, splits/.
    """

    def __init__(self, dataset_dir, cache_bytes: int = SequenceSource.DEFAULT_CACHE_BYTES):
        self.dataset_dir = pathlib.Path(dataset_dir)
        self._init_refs(read_manifest(self.dataset_dir), str(self.dataset_dir), cache_bytes)

    def _init_refs(self, manifest: dict, name: str, cache_bytes: int) -> None:
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
        super().__init__(PoseCodec(H36M_17), refs, name=name, cache_bytes=cache_bytes)
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
        path = self.dataset_dir / item
        with np.load(path, allow_pickle=False) as record:
            data = {key: record[key] for key in _KEYS}
        return self._sequences_of(item, data, path)

    def _sequences_of(self, item, data: Dict[str, np.ndarray], where) -> Dict[int, Sequence]:
        """The sequences of one record's arrays (`data` holds at least `_KEYS`)."""
        names = tuple(str(n) for n in data["joint_names"])
        if names != self.codec.layout.names:
            raise ValueError(f"{where}: joint names {names} differ from layout "
                             f"{self.codec.layout.name}")
        refs = {r.camera: r for r in self._refs_by_item[item]}
        return {camera: make_sequence(self.codec, ref, data["keypoints2d"][camera],
                                      data["camera_image_size"][camera],
                                      data["joints3d_camera"][camera],
                                      data["camera_intrinsics"][camera])
                for camera, ref in refs.items()}
