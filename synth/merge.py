"""Join the shards of a dataset rendered with `--shard K/N` into one manifest and splits.

    python -m synth.merge DATASET_DIR [OTHER_DIR ...] [--out DATASET_DIR]

Shards that wrote to one shared folder are joined in place. Shards rendered on different
machines into different folders are joined by naming every folder: their clip files (and
image folders, for `--images` runs) are moved into the first folder (or `--out`) before the
manifest is written.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
from typing import List, Optional, Sequence

from . import dataset as ds
from .splits import make_splits


def merge_shards(dataset_dirs: Sequence[pathlib.Path],
                 out_dir: Optional[pathlib.Path] = None) -> dict:
    """Joins shard manifests and failure reports of `dataset_dirs` into `out_dir`."""
    dataset_dirs = [pathlib.Path(d) for d in dataset_dirs]
    out_dir = pathlib.Path(out_dir or dataset_dirs[0])
    entries: List[dict] = []
    failures: List[dict] = []
    settings = None
    for folder in dataset_dirs:
        shard_files = sorted((folder / "manifests").glob("shard-*-of-*.json"))
        manifests = [p for p in shard_files if not p.name.endswith(".failures.json")]
        if not manifests:
            raise FileNotFoundError(f"{folder}: no shard manifests under manifests/")
        for path in manifests:
            manifest = ds.read_json(path)
            if settings is not None and manifest["settings"] != settings:
                raise ValueError(f"{path}: rendered with different settings than the other "
                                 f"shards; they cannot be merged")
            settings = manifest["settings"]
            for entry in manifest["records"]:
                source = folder / entry["file"]
                target = out_dir / entry["file"]
                if source.resolve() != target.resolve():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(source, target)
                    if entry.get("images"):  # rendered with --images: its image folder too
                        images = entry["images"]["dir"]
                        if (out_dir / images).exists():
                            shutil.rmtree(out_dir / images)
                        (out_dir / images).parent.mkdir(parents=True, exist_ok=True)
                        os.replace(folder / images, out_dir / images)
                    sidecar = ds.sidecar_path(folder, entry["clip_key"])
                    if sidecar.is_file():
                        os.replace(sidecar, ds.sidecar_path(out_dir, entry["clip_key"]))
                entries.append(entry)
        for path in (folder / "manifests").glob("*.failures.json"):
            failures.extend(ds.read_json(path))
    keys = [(e["clip_key"], e["avatar"]) for e in entries]
    if len(keys) != len(set(keys)):
        raise ValueError("the same clip appears in more than one shard")
    ds.write_manifest(out_dir, entries, settings)
    ds.write_json(out_dir / ds.FAILURES, sorted(failures, key=lambda f: f["path"]))
    splits = ds.replace_splits(out_dir, make_splits(entries, seed=settings.get("seed", 0)))
    return {"records": len(entries), "clips": len({k for k, _ in keys}),
            "failed": len(failures), "splits": sorted(splits)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.merge", description=__doc__)
    parser.add_argument("dataset_dirs", type=pathlib.Path, nargs="+")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    try:
        summary = merge_shards(args.dataset_dirs, args.out)
    except (OSError, ValueError) as error:  # no shards, a broken shard manifest: one line
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"merged {summary['clips']} clips ({summary['records']} records), "
          f"{summary['failed']} failures; splits: {', '.join(summary['splits'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
