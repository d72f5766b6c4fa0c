"""The body cache: one plain .npz per built body, checked by SHA-256 on every read.

Bodies are built by `synth.bodies.anny_build` in a process of their own (PyTorch and NVIDIA
Warp must not share a process with TensorFlow or the Mesa renderer) and read here, by any
process, with NumPy alone. A file is named by the body's content address
(`BodySpec.key(builder_version)`): ``<cache>/anny-<key>.npz``.

Arrays of a body file (rest pose, metres, the generator's rest frame: Z up, the person faces
-Y, their left at +X, soles on z = 0):

    joints          (19, 3) float64  canonical joint centres (`synth.avatars.CANONICAL_JOINTS`)
    vertices        (V, 3) float32   mesh vertices
    faces           (F, 3) int32     triangles
    weights         (V, 19) float32  skinning weights collapsed onto the canonical segments
                                     (column c: the segment ending at joint c; rows sum to 1)
    landmark_names  (L,) str         vocabulary landmarks (`posecontract.conventions`)
    landmarks       (L, 3) float64   their rest positions
    spec            () str           the `BodySpec` as JSON
    phenotype_labels (P,) str, phenotype (P,) float64: the body model's parameters
    measures        () str           JSON: stature, mass, BMI reached, model and versions
    checksum        () str           SHA-256 over every other array (`content_checksum`)
"""
from __future__ import annotations

import hashlib
import io
import json
import pathlib
import zipfile
from typing import Dict

import numpy as np

from ..avatars import CANONICAL_JOINTS
from ..dataset import atomic_path

#: Bump when the builder's output for a given spec changes (part of every body's address).
BUILDER_VERSION = "anny-bodies-2"
_ARRAYS = ("joints", "vertices", "faces", "weights", "landmark_names", "landmarks", "spec",
           "phenotype_labels", "phenotype", "measures")


def builder_version() -> str:
    """The builder and Anny versions, part of every body's content address. Reads the
    installed package's metadata only (no PyTorch import); ValueError when Anny is missing."""
    import importlib.metadata
    try:
        return f"{BUILDER_VERSION}+anny-{importlib.metadata.version('anny')}"
    except importlib.metadata.PackageNotFoundError:
        raise ValueError("Anny bodies need the anny package: pip install anny (or bash "
                         "scripts/setup_env.sh); --bodies capsule needs none") from None


class BodyCacheError(ValueError):
    """A body file that is missing, corrupt or inconsistent; the message names the file."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{self.path}: {problem}")


def body_file(cache_dir, key: str) -> pathlib.Path:
    return pathlib.Path(cache_dir) / f"anny-{key}.npz"


def content_checksum(arrays: Dict[str, np.ndarray]) -> str:
    """SHA-256 hex over the arrays' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        if name == "checksum":
            continue
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def write_body(path, arrays: Dict[str, np.ndarray]) -> pathlib.Path:
    """Writes one body file atomically (temporary name, then rename), with its checksum."""
    missing = [k for k in _ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: body arrays lack {missing}")
    arrays = {k: np.asarray(arrays[k]) for k in _ARRAYS}
    arrays["checksum"] = np.array(content_checksum(arrays))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_path(pathlib.Path(path)) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return pathlib.Path(path)


def read_body(path) -> Dict[str, np.ndarray]:
    """The arrays of a body file, after checking its checksum, shapes and values.

    Raises BodyCacheError (one line naming the file) for a missing, unreadable, truncated or
    altered file. Never unpickles (`allow_pickle=False`).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise BodyCacheError(path, "body file not found (build it with python -m synth.bodies "
                                   "build)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise BodyCacheError(path, f"corrupt body file ({type(error).__name__}: "
                                   f"{str(error).splitlines()[0] if str(error) else ''})")
    missing = [k for k in _ARRAYS + ("checksum",) if k not in arrays]
    if missing:
        raise BodyCacheError(path, f"corrupt body file: lacks {missing}")
    if str(arrays["checksum"]) != content_checksum(arrays):
        raise BodyCacheError(path, "corrupt body file: checksum mismatch (delete it to rebuild)")
    problem = _check_shapes(arrays)
    if problem:
        raise BodyCacheError(path, f"corrupt body file: {problem}")
    return arrays


def read_json_field(arrays: Dict[str, np.ndarray], name: str) -> dict:
    return json.loads(str(arrays[name]))


def _check_shapes(a: Dict[str, np.ndarray]) -> str:
    j = len(CANONICAL_JOINTS)
    v = a["vertices"]
    if a["joints"].shape != (j, 3):
        return f"joints have shape {a['joints'].shape}, expected ({j}, 3)"
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 4:
        return f"vertices have shape {v.shape}"
    if a["weights"].shape != (len(v), j):
        return f"weights have shape {a['weights'].shape}, expected ({len(v)}, {j})"
    f = a["faces"]
    if f.ndim != 2 or f.shape[1] != 3 or f.size == 0 or f.min() < 0 or f.max() >= len(v):
        return "faces index outside the vertices"
    if a["landmarks"].shape != (len(a["landmark_names"]), 3):
        return "landmarks and landmark_names disagree"
    for name in ("joints", "vertices", "weights", "landmarks"):
        if not np.all(np.isfinite(a[name])):
            return f"{name} not finite"
    if not np.allclose(a["weights"].sum(axis=1), 1.0, atol=1e-3):
        return "skinning weights do not sum to 1"
    return ""
