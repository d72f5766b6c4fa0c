"""Turn a folder of mocap clips into a dataset.

    python -m synth.render MOCAP_DIR --out DATASET_DIR|URL [--fps 50]
        [--bodies anny|capsule] [--bodies-per-clip 5] [--body-pool 100] [--children]
        [--body-cache DIR] [--avatars ava,ben]
        [--cameras 4] [--seed 0] [--workers 1] [--shard K/N] [--no-resume] [--force]
        [--limit N] [--engine local|ray] [--ray-address auto|HOST:PORT]
        [--shards-out SHARDS_DIR|URL [--shards-arrays all|training] [--shard-mb 128]]
        [--bvh-scale auto] [--bvh-up auto|y|z] [--joint-map MAP.json ...]
        [--keypoints h36m17,coco17]
        [--images [--image-scale S] [--frame-step N] [--depth] [--mask] [--no-preview]
         [--renderer auto|osmesa|egl]]

Each clip is read, resampled, retargeted onto each of its bodies (Anny bodies drawn per
clip from a seeded pool, `synth.bodies`; or the named capsule avatars, `synth.avatars`),
filmed by seeded virtual cameras and written as one record per body (`synth.dataset`
describes the layout). Each record holds the canonical joint centres (`acclaim17`) and the
2D and 3D keypoints of every convention named by `--keypoints` (`posecontract.conventions`;
default h36m17,coco17: the usual 3D output and the 2D detectors' input, so an in-the-wild
lifter can be trained from COCO 2D to Human3.6M 3D). A clip that
cannot be read is skipped and reported; finished clips are skipped on a re-run (resume),
and a finished clip stays in the manifest even when a later run cannot read it (another
joint map, a moved file). `--joint-map` may be given several times (several rigs in one
folder): each clip takes the first map that fits its skeleton, else a built-in one.
Leading frames that break continuity (a T-pose first frame) are dropped and counted.
Exit codes: 0 every clip done, 1 some clips failed, 2 nothing done (usage, a dataset made with
other settings: `--force` deletes it).
`--out` may be a URL fsspec opens (`s3://bucket/set`, `gs://...`, `file://...`; s3fs/gcsfs
are the user's install): every file goes through `synth.storage`, with the same atomic
writes, resume and settings check as a folder. `--shards-out` also writes the dataset as
TFRecord shards (`posecontract.shard_format`) as clips finish (`synth.job_shards`), so a
cluster needs no `python -m vp3dkeras.data.shards` step; with `--shard K/N` each run writes
its part (`SHARDS_DIR/part-K-of-N/`) and `python -m synth.merge ... --shards-out SHARDS_DIR`
joins them.
With `--shard K/N` a run takes every N-th clip starting at K and writes its entries under
`manifests/`; `python -m synth.merge DATASET_DIR` joins the shards into the manifest.
With `--images` every clip and avatar is also rendered (`synth.rendering`): images under
`images/<clip_key>__<avatar>/`, per-joint visibility in the record. Rendering uses OpenGL,
so it runs in this process or in "spawn" workers, never beside TensorFlow.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pathlib
import re
import shutil
import sys
import time
import traceback
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from . import dataset as ds
from . import storage
from .appearance import Appearance
from posecontract.conventions import DEFAULT_CONVENTIONS, get_convention, parse_conventions

from .avatars import CANONICAL_JOINTS, get_avatars
from .bodies.cache import BodyCacheError
from .cameras import place_cameras
from .engines import ENGINES, run_jobs
from .joint_maps import JointMap, choose_joint_map, get_joint_map, joint_indices
from .mocap_io import find_clips, load_motion
from .motion import MocapError, Motion
from posecontract.dataset_format import RecordError
from posecontract.shard_format import INDEX as SHARD_INDEX
from .record import build_record, local_rotation_arrays, record_metadata, validate_record
from .rendering import (RENDERER_ENV, ImageSettings, image_folder, manifest_images_entry,
                        record_arrays, render_clip_images)
from .resample import resample
from .retarget import Retargeter
from .splits import make_splits


@dataclasses.dataclass(frozen=True)
class RenderSettings:
    """Everything that decides a dataset's content (stored in its manifest)."""

    fps: float = 50.0
    avatars: Tuple[str, ...] = tuple(a.name for a in get_avatars())
    num_cameras: int = 4
    seed: int = 0
    min_frames: int = 10
    bvh_scale: str = "auto"
    bvh_up: str = "auto"  # "auto", "y" or "z" (`synth.bvh.read_bvh`)
    joint_maps: Tuple[str, ...] = ()  # JSON joint maps for rigs not built in, tried in order
    labels: Optional[str] = None  # CMU trials.csv, found automatically when None
    images: Optional[ImageSettings] = None  # render images too (`--images`)
    # "capsule": the built-in `avatars`; "anny": `bodies_per_clip` Anny bodies per clip drawn
    # from a seeded pool of `body_pool` (`synth.bodies.pool`), built into `body_cache`.
    bodies: str = "capsule"
    bodies_per_clip: int = 5
    body_pool: int = 100
    children: bool = False
    body_cache: Optional[str] = None  # default DATASET_DIR/bodies (content-addressed files)
    keypoints: Tuple[str, ...] = DEFAULT_CONVENTIONS  # keypoint conventions (`--keypoints`)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        if self.images is None:  # manifests of runs without images stay as they were
            del data["images"]
        del data["body_cache"]  # where bodies are cached does not change them
        if self.bodies == "capsule":  # nor do capsule manifests change
            for key in ("bodies", "bodies_per_clip", "body_pool", "children"):
                del data[key]
        else:
            del data["avatars"]
            from .bodies.cache import builder_version
            data["body_builder"] = builder_version()  # provenance: builder and Anny versions
        return data

    def content_json(self) -> dict:
        """The settings every record depends on (`synth.dataset.check_settings`). Left out:
        image settings (each record's images are checked and redone on their own), joint
        maps and labels (a rerun may add a map for another rig in the folder; finished clips
        are kept, see `synth.dataset.keep_finished_clips`) and keypoint conventions (a rerun
        may ask for more; clips that lack one are rendered again) and the body cache's
        location (bodies are content-addressed)."""
        data = self.to_json()
        for name in ("images", "joint_maps", "labels", "keypoints", "body_cache"):
            data.pop(name, None)
        if "avatars" in data:
            data["avatars"] = list(data["avatars"])
        return data


def clip_key_for(motion: Motion) -> str:
    """A file-name-safe key unique per source clip: `<dataset>_<clip id>`."""
    dataset = motion.source.get("dataset") or "clip"
    raw = f"{dataset}_{motion.clip_name()}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)


def clip_rng(seed: int, clip_key: str, avatar_index: int, stream: int = 0
             ) -> np.random.Generator:
    """Randomness that depends only on (seed, clip, avatar): independent of worker order,
    shard and resume. `stream` 0 places the cameras; 1 chooses the rendered appearance."""
    entropy = [seed, zlib.crc32(clip_key.encode()), avatar_index] + ([stream] if stream else [])
    return np.random.default_rng(entropy)


def clip_bodies(settings: RenderSettings, clip_key: str, names_only: bool = False) -> list:
    """The bodies a clip is put on (or their names): the named capsule avatars, or its Anny
    bodies (the same for a clip in every run with the same seed and pool)."""
    if settings.bodies == "capsule":
        return list(settings.avatars) if names_only else get_avatars(settings.avatars)
    if settings.body_cache is None:
        raise ValueError("Anny bodies need RenderSettings.body_cache (render_dataset sets "
                         "DATASET_DIR/bodies)")
    from .bodies import pool
    args = (settings.body_cache, pool.pool_specs(settings.body_pool, settings.seed,
                                                 settings.children),
            clip_rng(settings.seed, clip_key, 0, stream=2), settings.bodies_per_clip)
    if names_only:
        return [f.stem for f in pool.clip_body_files(*args)]
    return pool.clip_bodies(*args)


def canonical_indices(motion: Motion, joint_map_specs: Sequence[str] = ()) -> np.ndarray:
    """(19,) indices of `CANONICAL_JOINTS` in the clip's skeleton. The first given joint map
    whose joints the skeleton has is used, else the built-in map that fits; a rig without
    toes uses its ankles for floor contact."""
    skeleton = motion.skeleton
    if isinstance(joint_map_specs, (str, JointMap)):
        joint_map_specs = [joint_map_specs]
    joint_map = choose_joint_map(skeleton, [get_joint_map(s) for s in joint_map_specs or ()])
    if joint_map is None:
        raise MocapError(motion.source.get("path", ""),
                         "skeleton fits no built-in joint map; give one with --joint-map")
    keys = [k if k in joint_map.joints and joint_map.joints[k] in skeleton.names
            else k.replace("toe", "ankle") for k in CANONICAL_JOINTS]
    return joint_indices(skeleton, joint_map, keys)


@contextlib.contextmanager
def timed_stage(timings: Optional[Dict[str, float]], name: str):
    """Adds the block's CPU time to `timings[name]` (nothing when `timings` is None)."""
    if timings is None:
        yield
        return
    start = time.process_time()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.process_time() - start


_stage = timed_stage


def load_clip(path: pathlib.Path, settings: RenderSettings) -> Motion:
    """The clip at `path` as read with `settings` (BVH scale and up axis, joint maps,
    labels), at its own frame rate. MocapError for an unusable file."""
    return load_motion(path, labels=settings.labels, bvh_scale=settings.bvh_scale,
                       joint_map=settings.joint_maps, bvh_up=settings.bvh_up)


@dataclasses.dataclass
class FilmedBody:
    """One body of a clip, retargeted and filmed: `clip` (`synth.retarget.RetargetedClip`,
    world metres) and its seeded `cameras` (`synth.cameras.Camera`)."""

    index: int
    body: object
    clip: object
    cameras: list


class ClipChain:
    """The per-clip chain after reading: a resampled clip retargeted onto each of its bodies
    (`clip_bodies`) and filmed by seeded cameras, then turned into records. `process_clip`
    runs it for every engine; benchmarks run its stages on their own.

    motion: the clip at `settings.fps` (`load_clip`, `synth.resample.resample`); key: its
    `clip_key_for`. timings: when given, CPU seconds are added per stage ("per clip",
    "retarget", "cameras", "record"). MocapError when no joint map fits the skeleton.
    """

    def __init__(self, motion: Motion, key: str, settings: RenderSettings,
                 timings: Optional[Dict[str, float]] = None):
        self.motion, self.key, self.settings, self.timings = motion, key, settings, timings
        with _stage(timings, "per clip"):
            self.bodies = clip_bodies(settings, key)
            self.retargeter = Retargeter(motion, canonical_indices(motion, settings.joint_maps))
            self.rotations = local_rotation_arrays(motion)

    def film(self, index: int, image_sizes=None) -> FilmedBody:
        """Body `index` retargeted and filmed. image_sizes: the cameras' sizes in pixels
        (`synth.cameras.place_cameras`; default its mix of common sizes)."""
        body = self.bodies[index]
        with _stage(self.timings, "retarget"):
            clip = self.retargeter(body)
        options = {} if image_sizes is None else {"image_sizes": image_sizes}
        with _stage(self.timings, "cameras"):
            cameras = place_cameras(clip.positions, self.settings.num_cameras,
                                    rng=clip_rng(self.settings.seed, self.key, index), **options)
        return FilmedBody(index, body, clip, cameras)

    def appearance(self, index: int) -> Appearance:
        """The rendered look of body `index` (seeded per clip and body)."""
        return Appearance.sample(clip_rng(self.settings.seed, self.key, index, stream=1))

    def record(self, filmed: FilmedBody) -> Dict[str, np.ndarray]:
        """The clip record of a filmed body (`synth.record.build_record`)."""
        with _stage(self.timings, "record"):
            return build_record(self.motion, filmed.clip, filmed.cameras, self.key,
                                self.rotations, self.settings.keypoints)


def process_clip(path: pathlib.Path, out_dir, settings: RenderSettings,
                 resume: bool = True, source: Optional[str] = None,
                 timings: Optional[Dict[str, float]] = None,
                 records: Optional[Dict[str, Dict[str, np.ndarray]]] = None
                 ) -> Tuple[List[dict], bool]:
    """Reads one clip and writes its records; returns their manifest entries and whether
    the clip was already finished (resume). Raises MocapError for unusable clips and for a
    clip whose key another file already claimed (`synth.dataset.claim_clip_key`).

    The per-clip work of every engine (`synth.engines`) and of the benchmarks: load →
    resample → retarget onto each body → cameras → record → optional images → write
    (`load_clip`, `ClipChain`). out_dir: the dataset, a folder, fsspec URL or
    `synth.storage.Store`; on a store that is not local, images are rendered into a local
    temporary folder and uploaded before their record, and every file is one atomic write,
    so a clip is finished (its sidecar, written last) only once all of it is there.
    source: the clip's name for the key claim (its path relative to the mocap folder;
    default the path as given). timings: when given, CPU seconds per stage are added to it
    (parse, resample, per clip, retarget, cameras, record, images, write). records: when
    given, each record written is put there under its file name (for `--shards-out`).
    """
    store = storage.open_store(out_dir)
    with _stage(timings, "parse"):
        motion = load_clip(path, settings)
    key = clip_key_for(motion)
    try:
        ds.claim_clip_key(store, key, source or str(path))
    except ds.ClipKeyCollision as error:
        raise MocapError(path, str(error)) from None
    if resume:
        entries = ds.finished_entries(store, key, clip_bodies(settings, key, names_only=True))
        if entries is not None and all(
                set(settings.keypoints) <= set(e.get("keypoint_conventions", ["acclaim17"]))
                for e in entries) and (settings.images is None or all(
                _images_finished(store, e, settings.images) for e in entries)):
            return entries, True
    if settings.images is not None:
        # Rewriting a clip's images: until its sidecar is written again it is unfinished.
        store.remove(ds.sidecar_file(key))
    with _stage(timings, "resample"):
        motion = resample(motion, settings.fps)
    if motion.num_frames < settings.min_frames:
        raise MocapError(path, f"clip too short: {motion.num_frames} frames at "
                               f"{settings.fps:g} fps, need at least {settings.min_frames}")
    chain = ClipChain(motion, key, settings, timings)
    entries = []
    for avatar_index in range(len(chain.bodies)):
        filmed = chain.film(avatar_index)
        avatar = filmed.body
        record = chain.record(filmed)
        images = None
        if settings.images is not None:
            images, arrays = _write_images(store, chain, filmed, timings)
            record.update(arrays)
        problems = validate_record(record)
        if problems:  # never write a record a training run would choke on
            raise MocapError(path, f"avatar {avatar.name}: " + "; ".join(problems))
        record_file = ds.record_file(key, avatar.name)
        entry = record_metadata(record)
        entry["file"] = record_file
        if hasattr(avatar, "measures"):  # an Anny body: who it is, as built
            entry["body"] = {"model": "anny", "sex": avatar.spec["sex"],
                             "age": avatar.spec["age"], "stature": round(avatar.height, 4),
                             "bmi": round(avatar.measures["bmi"], 2)}
        if images is not None:
            entry["images"] = images
        with _stage(timings, "write"):
            entry["sha256"] = ds.write_record(store, record_file, record)
        if records is not None:
            records[record_file] = record
        entry.update(_source_notes(motion, chain.retargeter))
        entries.append(entry)
    store.write_json(ds.sidecar_file(key), entries)
    return entries, False


def _write_images(store: storage.Store, chain: ClipChain, filmed: FilmedBody,
                  timings: Optional[Dict[str, float]]) -> Tuple[dict, Dict[str, np.ndarray]]:
    """Renders a filmed body's images into the dataset (on a store that is not local: into a
    local temporary folder, then uploaded); returns the manifest's images entry and the
    record's image arrays."""
    settings = chain.settings
    with storage.local_staging(store) as stage:
        folder = image_folder(stage, chain.key, filmed.body.name)
        shutil.rmtree(folder, ignore_errors=True)  # no stale frames of other settings
        with _stage(timings, "images"):
            result = render_clip_images(filmed.clip, filmed.cameras,
                                        chain.appearance(filmed.index), folder,
                                        settings.images)
        entry = manifest_images_entry(stage, folder, settings.images, result)
        if not store.is_local:
            with _stage(timings, "write"):
                store.put_tree(folder, entry["dir"])
    return entry, record_arrays(result)


def _source_notes(motion: Motion, retargeter: Retargeter) -> dict:
    """The manifest entry's ``source_path`` and ``source_notes``: how the source was read
    where that was not plain (BVH up axis, joints dropped above the root, leading frames
    dropped, zero-length end sites extended)."""
    notes = {}
    if motion.source.get("up_axis"):
        notes["up_axis"] = motion.source["up_axis"]
    if motion.source.get("dropped_root_joints"):
        notes["dropped_root_joints"] = motion.source["dropped_root_joints"].split(",")
    if motion.source.get("dropped_leading_frames"):
        notes["dropped_leading_frames"] = int(motion.source["dropped_leading_frames"])
    if retargeter.extended_ends:
        notes["extended_ends"] = list(retargeter.extended_ends)
    entry = {"source_path": motion.source.get("path", "")}
    if notes:
        entry["source_notes"] = notes
    return entry


def _images_finished(store: storage.Store, entry: dict, settings: ImageSettings) -> bool:
    """Whether a finished record's images exist and were rendered with `settings`."""
    images = entry.get("images")
    return (bool(images) and store.isdir(images["dir"])
            and images["scale"] == settings.scale and images["frame_step"] == settings.frame_step
            and (images["depth"] is not None) == settings.depth
            and (images["mask"] is not None) == settings.mask
            and (images["preview"] is not None) == settings.preview)


def _process_safely(path, out_dir, settings, resume, source=None, shards_arrays=None):
    """Worker entry point: never raises, so one bad clip cannot stop the batch. Returns
    (path, entries, resumed, problem, shard payloads): payloads (`synth.job_shards`) only
    when `shards_arrays` ("all" or "training") asks for them."""
    try:
        records = {} if shards_arrays else None
        entries, resumed = process_clip(path, out_dir, settings, resume, source,
                                        records=records)
        payloads = None
        if shards_arrays:
            from .job_shards import clip_payloads
            payloads = clip_payloads(storage.open_store(out_dir), entries, shards_arrays,
                                     records)
        return str(path), entries, resumed, None, payloads
    except (MocapError, RecordError) as error:
        return str(path), None, False, getattr(error, "problem", str(error)), None
    except BodyCacheError as error:  # a body file that is missing or corrupt
        return str(path), None, False, str(error), None
    except OSError as error:  # a full disk, a folder made read-only: say which file
        where = f" ({error.filename})" if error.filename else ""
        return str(path), None, False, f"cannot write the dataset: " \
            f"{error.strerror or error}{where}", None
    except Exception as error:  # a bug or an unforeseen file: report it, keep going
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return str(path), None, False, f"unexpected error: {detail}", None


def parse_shard(text: Optional[str]) -> Optional[Tuple[int, int]]:
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"--shard wants K/N with 0 <= K < N, got {text!r}")
    return int(match[1]), int(match[2])


def render_dataset(mocap_dir: pathlib.Path, out_dir, settings: RenderSettings,
                   workers: int = 1, shard: Optional[Tuple[int, int]] = None,
                   resume: bool = True, limit: Optional[int] = None,
                   progress: bool = True, force: bool = False, engine: str = "local",
                   ray_address: Optional[str] = None, shards_out=None,
                   shards_arrays: str = "all", shard_mb: float = 128.0) -> dict:
    """Renders every clip under `mocap_dir` into the dataset `out_dir` (a folder or any
    fsspec URL: `synth.storage`); returns a summary dict.

    engine: "local" (`workers` processes) or "ray" (one Ray task per clip on the cluster at
    `ray_address`, or on a local Ray with `workers` CPUs); see `synth.engines`.
    shards_out: also write TFRecord shards of the dataset there (folder or URL), as clips
    finish (`synth.job_shards`): `shards_arrays` "all" or "training", about `shard_mb` MB
    each; with `shard`, this run's part under `part-K-of-N/` (`synth.merge` joins them).
    Raises `synth.dataset.SettingsMismatch` when `out_dir` holds a
    dataset made with other settings (`force`: delete it first), ValueError for options that
    do not go together. Temporary files of killed runs are removed first.
    """
    ray_started = False
    if engine == "ray":  # a Ray that cannot start or be joined stops the run before any write
        from .engines import start_ray
        ray_started = start_ray(ray_address, workers if workers > 1 else None)
    try:
        return _render_dataset(mocap_dir, out_dir, settings, workers, shard, resume, limit,
                               progress, force, engine, ray_address, shards_out,
                               shards_arrays, shard_mb)
    finally:
        if ray_started:
            import ray
            ray.shutdown()


def _render_dataset(mocap_dir, out_dir, settings, workers, shard, resume, limit, progress,
                    force, engine, ray_address, shards_out, shards_arrays, shard_mb) -> dict:
    started = time.perf_counter()
    store = storage.open_store(out_dir)
    target = out_dir if isinstance(out_dir, (str, pathlib.Path)) else store.url()
    if engine != "local" or workers > 1:  # workers would write into memory of their own
        for where in (out_dir, shards_out):
            if where is not None and storage.in_process(where):
                raise ValueError(f"{where}: an in-process file system; other processes "
                                 f"cannot write there (use --workers 1, engine local)")
    if shards_out is not None:  # a wrong shard folder stops the run before any write
        from .job_shards import check_target
        check_target(shards_out, store)
    if store.isfile(""):
        raise ValueError(f"{store.url()}: a file, not a dataset folder")
    if store.isfile(SHARD_INDEX):
        raise ValueError(f"{store.url()}: holds TFRecord shards ({SHARD_INDEX}); a dataset "
                         f"needs a folder of its own")
    store.makedirs()
    ds.check_settings(store, settings.content_json(), force=force)
    leftovers = ds.remove_leftovers(store)
    if settings.bodies == "anny":  # built once, in a process of their own, before any clip
        from .bodies import pool
        if settings.body_cache is None and not store.is_local:
            raise ValueError(f"{store.url()}: Anny bodies with a URL --out need --body-cache "
                             f"DIR, a folder every worker can read")
        cache_dir = settings.body_cache or str(store.path("bodies"))
        settings = dataclasses.replace(settings, body_cache=cache_dir)
        pool.ensure_built(cache_dir, pool.pool_specs(settings.body_pool, settings.seed,
                                                     settings.children), verbose=progress)
    elif settings.bodies != "capsule":
        raise ValueError(f"bodies must be 'anny' or 'capsule', not {settings.bodies!r}")
    paths = find_clips(mocap_dir)
    if shard is not None:
        paths = paths[shard[0]::shard[1]]
    if limit is not None:
        paths = paths[:limit]
    entries, failures, resumed_clips = [], [], 0
    root = pathlib.Path(mocap_dir)
    jobs = [(p, target, settings, resume, p.relative_to(root).as_posix(),
             shards_arrays if shards_out is not None else None) for p in paths]
    job_shards = None
    if shards_out is not None:
        from .job_shards import JobShards, part_name
        where = shards_out
        if shard is not None:  # a joined index over the parts is stale once one changes
            storage.open_store(shards_out).remove("shards.json")
            where = storage.join(shards_out, part_name(shard))
        job_shards = JobShards(where, [str(p) for p in paths], shards_arrays, shard_mb)
    bar = tqdm(total=len(jobs), unit="clip", disable=not progress, file=sys.stderr)
    results = run_jobs(_process_safely, jobs, engine, workers, ray_address,
                       failed=lambda job, problem: (str(job[0]), None, False, problem, None))
    try:
        for path, clip_entries, resumed, problem, payloads in results:
            if problem is None:
                entries.extend(clip_entries)
                resumed_clips += resumed
            else:
                failures.append({"path": path, "problem": problem})
                bar.write(f"skipped {path}: {problem}")
            if job_shards is not None:
                job_shards.add(path, payloads)
            bar.update(1)
    except BaseException:
        if job_shards is not None:
            job_shards.abort()
        raise
    finally:
        bar.close()
        results.close()

    seen = {}
    for entry in entries:  # claims make this impossible; a last guard before the manifest
        seen.setdefault((entry["clip_key"], entry["avatar"]), []).append(entry)
    if any(len(v) > 1 for v in seen.values()):
        raise RuntimeError(f"{store.url()}: duplicate manifest entries "
                           f"{[k for k, v in seen.items() if len(v) > 1][:3]}")
    failures.sort(key=lambda f: f["path"])
    done_clips = len({e["clip_key"] for e in entries})
    kept_clips: List[str] = []
    if shard is None:
        # A worker killed while writing (a lost Ray task is retried) leaves its temporary
        # file; every writer of this run has finished, so none is still in use.
        ds.remove_leftovers(store, all_writers_done=True)
        entries, failures, kept_clips = ds.keep_finished_clips(
            store, entries, failures, lambda key: clip_bodies(settings, key, names_only=True))
        ds.write_manifest(store, entries, settings.to_json())
        store.write_json(ds.FAILURES, failures)
        split_names = (ds.replace_splits(store, make_splits(entries, seed=settings.seed))
                       if entries else [])
        if job_shards is not None:
            job_shards.finish(ds.manifest_data(entries, settings.to_json()), store)
    else:
        name = f"shard-{shard[0]}-of-{shard[1]}"
        ds.write_manifest(store, entries, settings.to_json(), name=f"manifests/{name}.json")
        store.write_json(f"manifests/{name}.failures.json", failures)
        split_names = []
        if job_shards is not None:  # this run's part; synth.merge --shards-out joins them
            job_shards.finish(ds.manifest_data(entries, settings.to_json()), store,
                              splits=False)
    return {"clips": len(paths), "done_clips": done_clips,
            "resumed_clips": resumed_clips, "kept_clips": len(kept_clips),
            "dropped_leading": sorted({e["clip_key"] for e in entries
                                       if e.get("source_notes", {}).get("dropped_leading_frames")}),
            "records": len(entries), "failed": len(failures),
            "frames": sum(e["num_frames"] for e in entries),
            "camera_frames": sum(e["num_frames"] * e["num_cameras"] for e in entries),
            "splits": split_names, "seconds": time.perf_counter() - started,
            "failures": failures, "leftovers_removed": leftovers,
            "shards": None if job_shards is None else len(job_shards.writer.shards)}


#: Exit codes of `python -m synth.render`.
EXIT_OK = 0  # every clip is in the dataset
EXIT_FAILURES = 1  # some clips failed (each named in failures.json and on stderr)
EXIT_USAGE = 2  # nothing done: a wrong option, a missing folder, a dataset of other settings


def check_keypoints(text: str, avatars: Sequence[str], bodies: str = "capsule"
                    ) -> Tuple[str, ...]:
    """Validated `--keypoints` names; ValueError (one line) for an unknown convention or one
    that needs a landmark a body lacks (the capsule `avatars`, or every Anny body:
    `synth.bodies.body.ANNY_LANDMARKS`), before any clip is read or body built."""
    names = parse_conventions(text)
    if bodies == "anny":
        from .bodies.body import ANNY_LANDMARKS
        checks = [("anny", ANNY_LANDMARKS)]
    else:
        checks = [(body.name, body.landmarks()) for body in get_avatars(avatars)]
    for body_name, landmarks in checks:
        for name in names:
            get_convention(name).check_body(landmarks, body_name)
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m synth.render", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mocap_dir", type=pathlib.Path, help="folder of .amc/.asf or .bvh clips")
    parser.add_argument("--out", required=True,
                        help="dataset folder, or a URL fsspec opens (s3://, gs://, file://, "
                             "...; synth.storage)")
    parser.add_argument("--fps", type=float, default=50.0, help="output frame rate (50)")
    parser.add_argument("--bodies", choices=("anny", "capsule"), default=None,
                        help="Anny bodies (default; needs the anny package) or the built-in "
                             "capsule avatars (default when --avatars is given)")
    parser.add_argument("--avatars", default=None,
                        help="comma-separated capsule avatars (default: all)")
    parser.add_argument("--bodies-per-clip", type=int, default=5,
                        help="Anny bodies per clip (5)")
    parser.add_argument("--body-pool", type=int, default=100,
                        help="distinct Anny bodies sampled for the dataset (100)")
    parser.add_argument("--children", action="store_true",
                        help="Anny population includes children (5-17 years)")
    parser.add_argument("--body-cache", default=None,
                        help="folder of built Anny bodies (default: DATASET_DIR/bodies)")
    parser.add_argument("--cameras", type=int, default=4, help="cameras per clip and avatar")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (local engine), CPUs of a local Ray (ray; the "
                             "default 1 lets a local Ray take every CPU)")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: this machine's processes (default); ray: one Ray task "
                             "per clip (synth.engines)")
    parser.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                        help="Ray cluster to join (default: start a local Ray)")
    parser.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                        help="process clips K, K+N, K+2N, ... (0-based)")
    parser.add_argument("--shards-out", default=None, metavar="SHARDS_DIR|URL",
                        help="also write the dataset as TFRecord shards there as clips "
                             "finish (what python -m vp3dkeras.data.shards writes from the "
                             "folder)")
    parser.add_argument("--shards-arrays", choices=("all", "training"), default="all",
                        help="arrays the shards keep: all, or only what training reads")
    parser.add_argument("--shard-mb", type=float, default=128.0,
                        help="close a shard once it holds this many MB (128)")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="rewrite clips that are already finished")
    parser.add_argument("--force", action="store_true",
                        help="DATASET_DIR holds a dataset made with other settings: delete "
                             "it and start over (without this the run is refused)")
    parser.add_argument("--limit", type=int, default=None, help="first N clips only")
    parser.add_argument("--bvh-scale", default="auto",
                        help="BVH length unit in metres, or 'auto' (from the skeleton height)")
    parser.add_argument("--bvh-up", choices=("auto", "y", "z"), default="auto",
                        help="BVH up axis: 'auto' (head above feet), 'y' or 'z' (Blender)")
    parser.add_argument("--joint-map", action="append", default=[], metavar="MAP.json",
                        help="JSON joint map for other rigs; repeat for several rigs in one "
                             "folder (each clip takes the first map that fits)")
    parser.add_argument("--labels", default=None, help="CMU trials.csv (found automatically)")
    parser.add_argument("--keypoints", default=",".join(DEFAULT_CONVENTIONS),
                        help="comma-separated keypoint conventions to write, of "
                             "h36m17, coco17, humaneva15, acclaim17 (default: "
                             f"{','.join(DEFAULT_CONVENTIONS)}; acclaim17 is always kept)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    images = parser.add_argument_group("images (synth.rendering)")
    images.add_argument("--images", action="store_true",
                        help="also render RGB images and per-joint visibility")
    images.add_argument("--image-scale", type=float, default=1.0,
                        help="image size relative to the camera's (1.0)")
    images.add_argument("--frame-step", type=int, default=1, help="render every N-th frame")
    images.add_argument("--depth", action="store_true", help="also 16-bit depth PNGs (mm)")
    images.add_argument("--mask", action="store_true", help="also person-mask PNGs")
    images.add_argument("--no-preview", dest="preview", action="store_false",
                        help="no preview GIF per clip and avatar")
    images.add_argument("--renderer", choices=("auto", "osmesa", "egl"), default=None,
                        help="OpenGL platform (default: $SYNTH_RENDERER, else auto: EGL "
                             "with a GPU, OSMesa without)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.mocap_dir.is_dir():
        print(f"error: {args.mocap_dir} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    for where in (args.out, args.shards_out):
        if where is not None and storage.in_process(str(where)):
            # The library takes memory:// (tests, notebooks); a command's would vanish at exit.
            print(f"error: {where}: an in-process file system, gone when this command exits; "
                  f"write to a folder or a URL other processes reach", file=sys.stderr)
            return EXIT_USAGE
    bodies = args.bodies or ("capsule" if args.avatars else "anny")
    try:  # a broken map or a missing body model is one error now, not one per clip later
        for spec in args.joint_map:
            get_joint_map(spec)
        avatars = tuple(a.name for a in get_avatars(
            args.avatars.split(",") if args.avatars else None))
        if bodies == "anny" and args.avatars:
            raise ValueError("--avatars names capsule avatars: use it with --bodies capsule")
        if bodies == "anny":
            from .bodies.cache import builder_version
            builder_version()  # one line naming the missing package and --bodies capsule
            if args.bodies_per_clip < 1 or args.body_pool < args.bodies_per_clip:
                raise ValueError(f"need 1 <= --bodies-per-clip <= --body-pool, got "
                                 f"{args.bodies_per_clip} and {args.body_pool}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    images = None
    if args.images:
        try:
            images = ImageSettings(scale=args.image_scale, frame_step=args.frame_step,
                                   depth=args.depth, mask=args.mask, preview=args.preview,
                                   renderer=args.renderer or os.environ.get(RENDERER_ENV)
                                   or "auto")
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
    try:
        keypoints = check_keypoints(args.keypoints, avatars, bodies)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    settings = RenderSettings(fps=args.fps, avatars=avatars, num_cameras=args.cameras,
                              seed=args.seed, bvh_scale=args.bvh_scale, bvh_up=args.bvh_up,
                              joint_maps=tuple(args.joint_map), labels=args.labels,
                              images=images, keypoints=keypoints, bodies=bodies,
                              bodies_per_clip=args.bodies_per_clip, body_pool=args.body_pool,
                              children=args.children, body_cache=args.body_cache)
    if args.workers < 1 or args.cameras < 1 or not args.fps > 0 or not args.shard_mb > 0:
        print("error: --workers and --cameras must be at least 1, --fps and --shard-mb "
              "positive",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        summary = render_dataset(args.mocap_dir, args.out, settings, workers=args.workers,
                                 shard=args.shard, resume=args.resume, limit=args.limit,
                                 progress=not args.quiet, force=args.force,
                                 engine=args.engine, ray_address=args.ray_address,
                                 shards_out=args.shards_out, shards_arrays=args.shards_arrays,
                                 shard_mb=args.shard_mb)
    except ValueError as error:  # other settings in --out; bodies that cannot be built or read
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # the dataset's or the shards' storage: name the file
        print(f"error: {error.filename or args.out}: {error.strerror or error}",
              file=sys.stderr)
        return EXIT_USAGE
    failures_file = (f"manifests/shard-{args.shard[0]}-of-{args.shard[1]}.failures.json"
                     if args.shard else ds.FAILURES)
    print(f"{summary['done_clips']} of {summary['clips']} clips done "
          f"({summary['resumed_clips']} already finished before this run; "
          f"{summary['records']} records, {summary['frames']} frames, "
          f"{summary['camera_frames']} camera frames) in {summary['seconds']:.1f} s; "
          f"{summary['failed']} failed"
          + (f" (see {storage.join(args.out, failures_file)})" if summary["failed"] else ""))
    if summary["shards"] is not None:
        where = args.shards_out if not args.shard else storage.join(
            args.shards_out, f"part-{args.shard[0]}-of-{args.shard[1]}")
        print(f"{summary['records']} records in {summary['shards']} shards: "
              f"{storage.join(where, 'shards.json')}")
    if summary["kept_clips"]:
        print(f"{summary['kept_clips']} finished clips of earlier runs kept in the manifest "
              f"(this run did not produce them)")
    if summary["dropped_leading"]:
        print(f"{len(summary['dropped_leading'])} clips started with frames that break "
              f"continuity (a T-pose), dropped: {', '.join(summary['dropped_leading'][:5])}"
              + (" ..." if len(summary["dropped_leading"]) > 5 else ""))
    if args.shard:  # splits need every shard's clips: synth.merge writes them
        join = f" --shards-out {args.shards_out}" if args.shards_out else ""
        print(f"manifest and splits: python -m synth.merge {args.out}{join} once every shard "
              f"of {args.shard[1]} has finished")
    elif summary["splits"]:
        print(f"splits: {', '.join(summary['splits'])}")
    elif summary["records"]:
        print("splits: none (a split needs at least two clips on its two sides)")
    if summary["failed"]:
        return EXIT_FAILURES
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
