"""Join the shards of a dataset rendered with `--shard K/N` into one manifest and splits.

    python -m synth.merge DATASET_DIR|URL [OTHER_DIR|URL ...] [--out DATASET_DIR|URL]
        [--shards-out SHARDS_DIR|URL]

Shards that wrote to one shared folder are joined in place. Shards rendered on different
machines into different folders are joined by naming every folder: their clip files (and
image folders, for `--images` runs) are moved into the first folder (or `--out`) before the
manifest is written. With `--shards-out`, the TFRecord shard sets the runs wrote
(`synth.render --shard K/N --shards-out SHARDS_DIR`: `SHARDS_DIR/part-K-of-N/`) are joined
by one index in SHARDS_DIR (`synth.job_shards.join_parts`).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import sys
import tempfile
from typing import List, Optional, Sequence

from . import dataset as ds
from . import storage
from .splits import make_splits


def _move(source: storage.Store, target: storage.Store, rel: str) -> None:
    """Moves the file or folder `rel` from one dataset to another (replacing it there)."""
    if source.is_local and target.is_local:
        if source.path(rel).is_dir():
            shutil.rmtree(target.path(rel), ignore_errors=True)
        target.path(rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(source.path(rel), target.path(rel))
        return
    if source.isdir(rel):
        with tempfile.TemporaryDirectory(prefix="synth-merge-") as folder:
            stage = pathlib.Path(folder)
            for name in _walk(source, rel):
                (stage / name).parent.mkdir(parents=True, exist_ok=True)
                (stage / name).write_bytes(source.read_bytes(name))
            target.put_tree(stage / rel, rel)
        source.remove_tree(rel)
        return
    target.write_bytes(rel, source.read_bytes(rel))
    source.remove(rel)


def _walk(store: storage.Store, rel: str) -> List[str]:
    """Paths of every file under the folder `rel`."""
    found = []
    for name in store.listdir(rel):
        path = f"{rel}/{name}"
        found.extend(_walk(store, path) if store.isdir(path) else [path])
    return found


def _same(a: storage.Store, b: storage.Store) -> bool:
    if a.is_local and b.is_local:
        return a.path().resolve() == b.path().resolve()
    return a.url() == b.url()


_SHARD_NAME = re.compile(r"shard-(\d+)-of-(\d+)\.json")


def _check_complete(found: dict) -> None:
    """ValueError unless the shard manifests found are every shard 0..N-1 of one N: a run
    that did not finish (or never ran) writes none, and merging without it would make an
    incomplete dataset look whole."""
    counts = sorted({count for _, count in found})
    if len(counts) > 1:
        raise ValueError(f"shard manifests of runs with different N: "
                         f"{', '.join(sorted(found.values()))}")
    missing = [k for k in range(counts[0]) if (k, counts[0]) not in found] if counts else []
    if missing:
        folders = sorted({url.rsplit("/manifests/", 1)[0] for url in found.values()})
        raise ValueError(f"no manifests/shard-{missing[0]}-of-{counts[0]}.json in "
                         f"{', '.join(folders)}: shard {missing[0]}/{counts[0]} has not "
                         f"finished (run it, then merge)"
                         + (f"; shards {', '.join(map(str, missing[1:]))} neither"
                            if len(missing) > 1 else ""))


def merge_shards(dataset_dirs: Sequence, out_dir=None, shards_out=None) -> dict:
    """Joins shard manifests and failure reports of `dataset_dirs` (folders or URLs,
    `synth.storage`) into `out_dir` (default the first). shards_out: also join the TFRecord
    shard sets the runs wrote there (`--shards-out`; `synth.job_shards.join_parts`)."""
    stores = [storage.open_store(d) for d in dataset_dirs]
    out = storage.open_store(out_dir) if out_dir is not None else stores[0]
    if shards_out is not None:  # the parts are checked before anything is moved or written
        from .job_shards import read_parts
        read_parts(shards_out)
    entries: List[dict] = []
    failures: List[dict] = []
    settings = None
    found = {}  # (K, N) -> the manifest's URL; checked before any file is moved
    for folder in stores:
        names = [n for n in folder.listdir("manifests") if _SHARD_NAME.fullmatch(n)]
        if not names:
            raise FileNotFoundError(f"{folder.url()}: no shard manifests under manifests/")
        for name in names:
            shard = _SHARD_NAME.fullmatch(name)
            found[int(shard[1]), int(shard[2])] = folder.url(f"manifests/{name}")
    _check_complete(found)
    # Every manifest is read and checked before the first file moves: a merge that stops
    # half-way would leave clips in two folders.
    plan = []  # (folder, its records)
    for folder in stores:
        shard_files = [n for n in folder.listdir("manifests")
                       if n.startswith("shard-") and n.endswith(".json")]
        manifests = [n for n in shard_files if not n.endswith(".failures.json")]
        if not manifests:
            raise FileNotFoundError(f"{folder.url()}: no shard manifests under manifests/")
        for name in manifests:
            manifest = folder.read_json(f"manifests/{name}")
            if settings is not None and manifest["settings"] != settings:
                raise ValueError(f"{folder.url(f'manifests/{name}')}: rendered with different "
                                 f"settings than the other shards; they cannot be merged")
            settings = manifest["settings"]
            plan.append((folder, manifest["records"]))
            entries.extend(manifest["records"])
        for name in shard_files:
            if name.endswith(".failures.json"):
                failures.extend(folder.read_json(f"manifests/{name}"))
    keys = [(e["clip_key"], e["avatar"]) for e in entries]
    if len(keys) != len(set(keys)):
        raise ValueError("the same clip appears in more than one shard")
    if out.isfile(""):
        raise ValueError(f"{out.url()}: a file, not a dataset folder")
    for folder, records in plan:
        if _same(folder, out):
            continue
        for entry in records:
            _move(folder, out, entry["file"])
            if entry.get("images"):  # rendered with --images: its image folder too
                _move(folder, out, entry["images"]["dir"])
            for sidecar in (ds.sidecar_file(entry["clip_key"]),
                            f"{ds.CLIPS}/{entry['clip_key']}.source"):  # its claim
                if folder.isfile(sidecar):
                    _move(folder, out, sidecar)
    ds.write_manifest(out, entries, settings)
    out.write_json(ds.FAILURES, sorted(failures, key=lambda f: f["path"]))
    splits = ds.replace_splits(out, make_splits(entries, seed=settings.get("seed", 0)))
    shards = None
    if shards_out is not None:
        from .job_shards import join_parts
        shards = len(join_parts(shards_out, ds.manifest_data(entries, settings), out)["shards"])
    return {"records": len(entries), "clips": len({k for k, _ in keys}),
            "failed": len(failures), "splits": sorted(splits), "shards": shards}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.merge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dirs", nargs="+", help="dataset folders or URLs")
    parser.add_argument("--out", default=None, metavar="DATASET_DIR|URL",
                        help="the merged dataset (default: the first folder)")
    parser.add_argument("--shards-out", default=None, metavar="SHARDS_DIR|URL",
                        help="also join the shard sets the runs wrote with --shards-out "
                             "(SHARDS_DIR/part-K-of-N/) into one index there")
    args = parser.parse_args(argv)
    try:
        summary = merge_shards(args.dataset_dirs, args.out, args.shards_out)
    except (OSError, ValueError) as error:  # no shards, a broken shard manifest: one line
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"merged {summary['clips']} clips ({summary['records']} records), "
          f"{summary['failed']} failures; splits: {', '.join(summary['splits'])}"
          + (f"; {summary['shards']} shards: {storage.join(args.shards_out, 'shards.json')}"
             if summary["shards"] is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
