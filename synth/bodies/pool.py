"""The bodies of a dataset: a seeded pool of built bodies, drawn per clip and avatar slot.

A dataset with `--bodies anny` samples `pool_size` bodies from the population
(`synth.bodies.population`, seeded by the dataset's seed), builds the missing ones into the
body cache in a separate process (`python -m synth.bodies build`: PyTorch and Warp never
enter the rendering or TensorFlow processes), and gives every clip `per_clip` different
bodies of the pool, drawn from a generator seeded by (seed, clip): the same clip gets the
same bodies in resumed, sharded and parallel runs.
"""
from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from typing import List, Sequence, Tuple

import numpy as np

from . import cache
from .body import AnnyBody, load_body
from .population import BodySpec, sample_bodies


@functools.lru_cache(maxsize=8)
def pool_specs(pool_size: int, seed: int, children: bool) -> Tuple[BodySpec, ...]:
    return tuple(sample_bodies(pool_size, seed, children=children))


def pool_files(cache_dir, specs: Sequence[BodySpec]) -> List[pathlib.Path]:
    version = cache.builder_version()
    return [cache.body_file(cache_dir, s.key(version)) for s in specs]


def ensure_built(cache_dir, specs: Sequence[BodySpec], timeout: float = 3600.0,
                 verbose: bool = False) -> List[pathlib.Path]:
    """Builds the bodies missing from `cache_dir` in a child process; returns every spec's
    file. Raises ValueError with the builder's one-line error when it fails. `verbose`:
    say on stderr what is being built."""
    files = pool_files(cache_dir, specs)
    missing = [s for s, f in zip(specs, files) if not f.is_file()]
    if missing:
        if verbose:
            print(f"building {len(missing)} Anny bodies into {cache_dir} (about 0.3 s each; "
                  f"the first build on a machine also compiles Warp kernels, about a minute)",
                  file=sys.stderr, flush=True)
        pathlib.Path(cache_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump([s.to_json() for s in missing], handle)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "synth.bodies", "build", "--cache", str(cache_dir),
                 "--specs", handle.name], capture_output=True, text=True, timeout=timeout,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(
                    [str(pathlib.Path(__file__).resolve().parents[2])]
                    + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))})
        finally:
            os.unlink(handle.name)
        if result.returncode != 0:
            lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
            message = lines[-1] if lines else f"exit status {result.returncode}"
            raise ValueError(f"building bodies into {cache_dir} failed: "
                             + message.removeprefix("error: "))
    return files


def clip_body_files(cache_dir, specs: Sequence[BodySpec], rng: np.random.Generator,
                    per_clip: int) -> List[pathlib.Path]:
    """The files of `per_clip` different bodies of the pool, drawn with `rng`."""
    files = pool_files(cache_dir, specs)
    chosen = rng.choice(len(files), size=min(per_clip, len(files)), replace=False)
    return [files[i] for i in chosen]


def clip_bodies(cache_dir, specs: Sequence[BodySpec], rng: np.random.Generator,
                per_clip: int) -> List[AnnyBody]:
    """`per_clip` different bodies of the pool (checksums verified), drawn with `rng`."""
    return [load_body(str(f)) for f in clip_body_files(cache_dir, specs, rng, per_clip)]
