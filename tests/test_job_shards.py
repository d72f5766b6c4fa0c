"""`synth.render --shards-out` writes, from the generation job and without TensorFlow, the
TFRecord shards `python -m vp3dkeras.data.shards` writes from the dataset folder: the same
index manifest and records, the same training batches; the same bytes for any worker count
and after a resume; never an index naming a missing or half-written shard."""
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY_CLIPS, assert_same_batches, copy_hdm05_clips

REPO = pathlib.Path(__file__).resolve().parents[1]
ARGS = ["--avatars", "ava", "--cameras", "2", "--fps", "25", "--quiet"]


@pytest.fixture(scope="module")
def corpus(hdm05_dir, tmp_path_factory):
    return copy_hdm05_clips(hdm05_dir, tmp_path_factory.mktemp("job_shards_mocap"), TINY_CLIPS)


def _render(corpus, out, *extra):
    """The generation CLI in its own process (no TensorFlow beside it, PLATFORM.md)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "synth.render", str(corpus), "--out",
                           str(out), *ARGS, *extra], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def _files(folder: pathlib.Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def job(corpus, tmp_path_factory):
    """(dataset, shards) of one job, 0.3 MB shards: a few records in each of several."""
    root = tmp_path_factory.mktemp("job")
    result = _render(corpus, root / "dataset", "--shards-out", root / "shards",
                     "--shard-mb", "0.3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 records in" in result.stdout
    return root / "dataset", root / "shards"


def test_the_generation_side_never_imports_tensorflow():
    code = ("import sys, synth.render, synth.job_shards, posecontract.shard_format; "
            "assert not [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'vp3dkeras', 'keras')], 'TensorFlow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_job_shards_read_back_as_the_folders_shards(job, tmp_path):
    from vp3dkeras.data import open_split, shards

    dataset, job_shards = job
    folder_shards = tmp_path / "from_folder"
    shards.write_shards(dataset, str(folder_shards), shard_mb=0.3)
    a, b = shards.read_index(job_shards), shards.read_index(folder_shards)
    assert a["manifest"] == b["manifest"] and a["arrays"] == b["arrays"] == "all"
    assert len(a["shards"]) > 1 and len(b["shards"]) > 1

    def payloads(index):  # the payloads byte for byte (length and CRC-32)
        return {r["file"]: (r["length"], r["crc32"]) for r in index["records"]}
    assert payloads(a) == payloads(b) and len(payloads(a)) == 5
    assert _files(job_shards / "splits") == _files(folder_shards / "splits") != {}
    for location in a["records"]:  # every record is the dataset's, array for array
        from posecontract.dataset_format import load_record
        original = load_record(dataset / location["file"])
        read = shards.read_record(job_shards, location)
        assert sorted(read) == sorted(original)
        for key in original:
            assert read[key].dtype == original[key].dtype
            np.testing.assert_array_equal(read[key], original[key])

    split = "actor_out_hdm05_mm"
    job_train, _ = open_split(job_shards, split)
    folder_train, _ = open_split(folder_shards, split)
    assert_same_batches(job_train, folder_train)
    # And tf.data's own reader accepts the job's framing (CRC32C checked).
    assert sum(1 for _ in shards.record_dataset(job_shards)) == 5


def test_job_shards_are_the_same_bytes_for_any_worker_count(corpus, job, tmp_path):
    result = _render(corpus, tmp_path / "dataset", "--shards-out", tmp_path / "shards",
                     "--shard-mb", "0.3", "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _files(tmp_path / "shards") == _files(job[1])


def test_a_resumed_job_writes_the_shards_of_one_run(corpus, job, tmp_path):
    dataset, shards_dir = tmp_path / "dataset", tmp_path / "shards"
    shutil.copytree(job[0], dataset)
    (dataset / "clips" / "hdm05_HDM_bd_grabHighR_001_120.json").unlink()  # redone
    shards_dir.mkdir()
    (shards_dir / "records-00007.tfrecord").write_bytes(b"of an earlier, larger run")
    result = _render(corpus, dataset, "--shards-out", shards_dir, "--shard-mb", "0.3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(4 already finished before this run" in result.stdout
    assert _files(shards_dir) == _files(job[1])  # the stale shard is gone, nothing else left

    # A run of 2 clips keeps the 3 others finished before: their records are read back.
    result = _render(corpus, dataset, "--shards-out", shards_dir, "--limit", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 finished clips of earlier runs kept" in result.stdout
    from posecontract.shard_format import parse_index
    kept = parse_index((shards_dir / "shards.json").read_bytes(), "kept")
    whole = parse_index((job[1] / "shards.json").read_bytes(), "whole")
    assert kept["manifest"] == whole["manifest"]
    assert ({r["file"]: (r["length"], r["crc32"]) for r in kept["records"]}
            == {r["file"]: (r["length"], r["crc32"]) for r in whole["records"]})


def test_a_job_that_dies_mid_shards_leaves_no_index(corpus, job, tmp_path, monkeypatch):
    """A job that fails after its first shard: no index (so no reader sees the shards),
    every shard file there whole; the rerun writes the full set."""
    from synth import storage
    from synth.render import RenderSettings, render_dataset

    shards_dir = tmp_path / "shards"
    shutil.copytree(job[1], shards_dir)  # an earlier run's shards and index
    write_bytes = storage.LocalStore.write_bytes

    def dies_on_the_second(self, rel, data):  # a shard write (in its thread) fails
        if rel == "records-00001.tfrecord":
            raise OSError(28, "No space left on device", self.url(rel))
        write_bytes(self, rel, data)
    monkeypatch.setattr(storage.LocalStore, "write_bytes", dies_on_the_second)
    settings = RenderSettings(fps=25.0, avatars=("ava",), num_cameras=2)
    with pytest.raises(OSError, match="No space left"):
        render_dataset(corpus, tmp_path / "dataset", settings, progress=False,
                       shards_out=shards_dir, shard_mb=0.3)
    assert not (shards_dir / "shards.json").exists()
    assert not [p for p in shards_dir.iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(storage.LocalStore, "write_bytes", write_bytes)
    render_dataset(corpus, tmp_path / "dataset", settings, progress=False,
                   shards_out=shards_dir, shard_mb=0.3)
    assert _files(shards_dir) == _files(job[1])


def test_shard_runs_write_parts_that_merge_joins(corpus, job, tmp_path):
    """`--shard K/N --shards-out` runs (a batch scheduler's tasks) each write a part;
    `synth.merge --shards-out` joins them into one set that reads as the job's."""
    from synth.merge import main as merge_main
    from vp3dkeras.data import WindowSampler, open_split, shards

    dataset, shards_dir = tmp_path / "dataset", tmp_path / "shards"
    for k in range(2):
        result = _render(corpus, dataset, "--shard", f"{k}/2", "--shards-out", shards_dir,
                         "--shard-mb", "0.3")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"shards: {shards_dir}/part-{k}-of-2/shards.json" in result.stdout
        assert (f"python -m synth.merge {dataset} --shards-out {shards_dir} once every shard"
                in result.stdout)
    assert not (shards_dir / "shards.json").exists()
    assert merge_main([str(dataset), "--shards-out", str(shards_dir)]) == 0
    joined, whole = shards.read_index(shards_dir), shards.read_index(job[1])
    assert joined["manifest"] == whole["manifest"]
    assert ({r["file"]: (r["length"], r["crc32"]) for r in joined["records"]}
            == {r["file"]: (r["length"], r["crc32"]) for r in whole["records"]})
    assert _files(shards_dir / "splits") == _files(job[1] / "splits")
    shards.ShardSource(shards_dir).validate()
    x = WindowSampler(open_split(shards_dir, "random")[0], (13, 13), batch_size=64, seed=2)
    y = WindowSampler(open_split(job[1], "random")[0], (13, 13), batch_size=64, seed=2)
    for number in (0, 1):
        for u, v in zip(x.batch(number), y.batch(number)):
            np.testing.assert_array_equal(u, v)
    assert sum(1 for _ in shards.record_dataset(shards_dir)) == 5

    (shards_dir / "part-1-of-2" / "shards.json").unlink()  # as if task 1 had died
    (dataset / "manifest.json").unlink()
    assert merge_main([str(dataset), "--shards-out", str(shards_dir)]) == 2
    assert not (dataset / "manifest.json").exists()  # refused before the dataset is merged


@pytest.mark.parametrize("memory_bytes", [0, 1 << 30])
def test_clips_finishing_out_of_order_give_the_same_shards(tmp_path, memory_bytes,
                                                           monkeypatch):
    """Results held back for an earlier clip, in memory or spilled to local files, are
    written in the clip list's order."""
    from posecontract.shard_format import encode_record, framed_record
    from synth.job_shards import JobShards

    monkeypatch.setattr(JobShards, "MEMORY_BYTES", memory_bytes)
    rng = np.random.default_rng(0)
    clips = [f"clip{i}" for i in range(6)]
    payloads = {c: [framed_record(f"clips/{c}__{b}.npz", encode_record(
        f"clips/{c}__{b}.npz", {"x": rng.normal(size=(50, 17, 2)).astype(np.float32)}))
        for b in ("ava", "ben")] for c in clips}
    manifest = {"records": [{"file": f} for c in clips for f, _, _ in payloads[c]]}
    written = []
    for name, finishing in (("ordered", clips), ("shuffled", [clips[i] for i in
                                                             (3, 5, 1, 0, 4, 2)])):
        job = JobShards(tmp_path / name, clips, shard_mb=0.02)
        for clip in finishing:
            job.add(clip, payloads[clip] if clip != "clip4" else None)  # clip4 failed
        manifest_ok = {"records": [e for e in manifest["records"] if "clip4" not in e["file"]]}
        job.finish(manifest_ok, tmp_path, splits=False)
        assert job._spill is None  # spill files removed once written
        written.append(_files(tmp_path / name))
    assert written[0] == written[1] and len(written[0]) > 2


def test_a_job_writes_its_shards_to_a_url_that_training_reads(corpus, job, tmp_path):
    """Dataset and shards at URLs (fsspec's memory file system, in this process): the same
    shard bytes as the job's into folders, and training reads them through fsspec."""
    import uuid

    import fsspec
    from synth.render import RenderSettings, render_dataset
    from vp3dkeras.data import WindowSampler, open_split

    root = f"memory://job-shards-{uuid.uuid4().hex[:8]}"
    try:
        render_dataset(corpus, f"{root}/dataset",
                       RenderSettings(fps=25.0, avatars=("ava",), num_cameras=2),
                       progress=False, shards_out=f"{root}/shards", shard_mb=0.3)
        fs, base = fsspec.core.url_to_fs(f"{root}/shards")
        at_url = {path[len(base) + 1:]: hashlib.sha256(fs.cat_file(path)).hexdigest()
                  for path in fs.find(base)}
        assert at_url == _files(job[1])
        url_train, _ = open_split(f"{root}/shards", "random")
        assert type(url_train).__name__ == "ShardSource"
        x = WindowSampler(url_train, (13, 13), batch_size=64, seed=4)
        y = WindowSampler(open_split(job[1], "random")[0], (13, 13), batch_size=64, seed=4)
        for u, v in zip(x.batch(0), y.batch(0)):
            np.testing.assert_array_equal(u, v)
    finally:
        fsspec.filesystem("memory").rm(root.split("://")[1], recursive=True)


def _one_line_error(result, *names):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for name in names:
        assert str(name) in lines[0], result.stderr
    return lines[0]


def test_a_wrong_shards_folder_stops_the_run_before_any_write(corpus, job, tmp_path):
    """`--shards-out` naming the dataset itself, another dataset, a file or a URL nothing
    opens is one line and exit 2, and neither the new dataset folder nor the other
    dataset's files (its splits/ would be replaced by the shards' copy) are touched."""
    dataset = job[0]
    before = _files(dataset)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [(tmp_path / "d1", tmp_path / "d1", "the dataset folder itself"),
             (f"file://{tmp_path}/d2", tmp_path / "d2", "the dataset folder itself"),
             (tmp_path / "d3", dataset, "holds a synth dataset"),
             (tmp_path / "d4", f"file://{dataset}", "holds a synth dataset"),
             (tmp_path / "d5", a_file, "a file, not a folder"),
             (tmp_path / "d6", "nosuchprotocol://bucket/x", "Protocol not known")]
    for out, shards_out, problem in cases:
        result = _render(corpus, out, "--shards-out", shards_out)
        _one_line_error(result, shards_out, problem)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
    assert a_file.read_text() == "x" and _files(dataset) == before
    shards_before = _files(job[1])
    _one_line_error(_render(corpus, job[1]), job[1], "holds TFRecord shards")
    assert _files(job[1]) == shards_before


def test_merge_refuses_a_missing_shard_before_moving_anything(corpus, tmp_path):
    """A `--shard K/N` run that never finished writes no manifest: merging without it would
    make an incomplete dataset look whole. Once every shard is there, the clips (and their
    key claims) of separate folders are moved into the first."""
    a, b = tmp_path / "a", tmp_path / "b"
    result = _render(corpus, a, "--shard", "0/2")
    assert result.returncode == 0
    assert "splits: none" not in result.stdout and "synth.merge" in result.stdout
    before = _files(a)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "synth.merge", str(a)], cwd=REPO, env=env,
                            capture_output=True, text=True)
    _one_line_error(result, "shard-1-of-2.json", "shard 1/2 has not finished")
    assert _files(a) == before and not (a / "manifest.json").exists()

    assert _render(corpus, b, "--shard", "1/2").returncode == 0
    merge = [sys.executable, "-m", "synth.merge", str(a), str(b)]
    result = subprocess.run(merge, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    keys = {e["clip_key"] for e in __import__("json").loads(
        (a / "manifest.json").read_text())["records"]}
    assert len(keys) == 5
    assert {p.stem for p in (a / "clips").glob("*.source")} == keys
    assert not list((b / "clips").iterdir())


def test_merge_of_folders_with_different_settings_moves_nothing(corpus, tmp_path):
    """The second folder's shard was rendered with other settings: merge says so in one
    line before the first clip moves, so no folder is left half-merged."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert _render(corpus, a, "--shard", "0/2").returncode == 0
    assert _render(corpus, b, "--shard", "1/2", "--seed", "7").returncode == 0
    before_a, before_b = _files(a), _files(b)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "synth.merge", str(a), str(b), "--out",
                             str(c)], cwd=REPO, env=env, capture_output=True, text=True)
    _one_line_error(result, "shard-1-of-2.json", "rendered with different settings")
    assert _files(a) == before_a and _files(b) == before_b
    assert not c.exists() or not list(c.rglob("*.npz"))
