"""`python -m synth.render` end to end on real clips plus broken ones."""
import hashlib
import pathlib
import re
import shutil

import numpy as np
import pytest

from synth import dataset as ds
from synth.export_vp3d import export_videopose3d
from synth.merge import merge_shards
from synth.render import RenderSettings, main, render_dataset
from synth.splits import list_splits, load_split

REPO = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = RenderSettings(fps=25.0, avatars=("ava", "eli"), num_cameras=2, seed=3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, hdm05_dir, cmu_dir, bvh_dir):
    """Four real clips (two HDM05 actors, a CMU walk, a BVH) and four broken ones."""
    root = tmp_path_factory.mktemp("mocap")
    for actor, clip in (("bd", "HDM_bd_hopBothLegs1hops_001_120"),
                        ("mm", "HDM_mm_squat1Reps_037_120")):
        shutil.copy(hdm05_dir / f"HDM_{actor}.asf", root)
        shutil.copy(hdm05_dir / f"{clip}.amc", root)
    (root / "cmu" / "02").mkdir(parents=True)
    shutil.copy(cmu_dir / "02" / "02.asf", root / "cmu" / "02")
    shutil.copy(cmu_dir / "02" / "02_01.amc", root / "cmu" / "02")
    shutil.copy(cmu_dir / "trials.csv", root / "cmu")
    shutil.copy(bvh_dir / "01_01.bvh", root)
    good = (root / "HDM_bd_hopBothLegs1hops_001_120.amc").read_text(encoding="latin-1")
    lines = good.splitlines()
    (root / "HDM_bd_truncated_001_120.amc").write_text(
        "\n".join(lines[: len(lines) // 2 - 3]), encoding="latin-1")
    (root / "HDM_bd_nan_001_120.amc").write_text(
        re.sub(r"(?m)^(rtibia) \S+", r"\1 nan", good, count=1),
        encoding="latin-1")
    (root / "HDM_bd_empty_001_120.amc").write_text("", encoding="latin-1")
    (root / "HDM_bd_short_001_120.amc").write_text(
        "\n".join(lines[: _header_and_frames(lines, 2)]), encoding="latin-1")
    return root


def _header_and_frames(lines, frames):
    """Line count covering the header and the first `frames` frames of an AMC file."""
    seen = 0
    for i, line in enumerate(lines):
        if line.strip().isdigit():
            seen += 1
            if seen == frames + 1:
                return i
    return len(lines)


@pytest.fixture(scope="module")
def rendered(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset")
    summary = render_dataset(corpus, out, SETTINGS, progress=False)
    return out, summary


def test_good_clips_are_written_and_bad_ones_reported(rendered, corpus):
    out, summary = rendered
    manifest = ds.read_manifest(out)
    assert summary["done_clips"] == 4 and manifest["num_clips"] == 4
    assert manifest["num_records"] == 4 * len(SETTINGS.avatars)
    failures = {pathlib.Path(f["path"]).name: f["problem"] for f in ds.read_json(out / ds.FAILURES)}
    assert set(failures) == {"HDM_bd_truncated_001_120.amc", "HDM_bd_nan_001_120.amc",
                             "HDM_bd_empty_001_120.amc", "HDM_bd_short_001_120.amc"}
    assert "nan" in failures["HDM_bd_nan_001_120.amc"].lower()
    assert "empty" in failures["HDM_bd_empty_001_120.amc"].lower()
    assert "too short" in failures["HDM_bd_short_001_120.amc"]
    assert ds.verify_dataset(out) == []
    datasets = {e["dataset"] for e in manifest["records"]}
    assert datasets == {"hdm05", "cmu"}


def test_records_are_consistent(rendered):
    out, _ = rendered
    from vp3dkeras.camera import project_to_2d_np

    for entry in ds.read_manifest(out)["records"]:
        record = ds.load_record(out / entry["file"])  # allow_pickle=False inside
        c, t = record["keypoints2d"].shape[:2]
        assert t == entry["num_frames"] and c == SETTINGS.num_cameras
        world, cam = record["joints3d_world"], record["joints3d_camera"]
        expected_cam = (np.einsum("cij,tkj->ctki", record["camera_rotation"], world)
                        + record["camera_translation"][:, None, None, :])
        np.testing.assert_allclose(cam, expected_cam, atol=1e-4)
        # 2D is the (distorted) projection of camera-space 3D, as the model side computes it.
        projected = project_to_2d_np(cam.astype(np.float64),
                                     record["camera_intrinsics"][:, None].astype(np.float64))
        np.testing.assert_allclose(record["keypoints2d"], projected, atol=0.05)
        size = record["camera_image_size"][:, None, None, :]
        assert np.all((record["keypoints2d"] >= 0) & (record["keypoints2d"] <= size))
        assert np.all(cam[..., 2] > 0.5)
        np.testing.assert_allclose(np.linalg.norm(record["rotations_local_quat"], axis=-1), 1,
                                   atol=1e-5)
        np.testing.assert_array_equal(record["joints3d_world_full"][:, record["layout_indices"]],
                                      world)
        assert str(record["avatar"]) == entry["avatar"]


def test_readme_documents_every_record_key(rendered):
    out, _ = rendered
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### What a clip record holds"):]
    documented = set(re.findall(r"^\| `([a-z0-9_<>]+)`", table, re.M))
    documented |= set(re.findall(r"`([a-z_]+)`", table.split("| str | () |")[0].splitlines()[-1]))
    entry = ds.read_manifest(out)["records"][0]
    # Per-convention keys are documented once, as `<key>__<convention>`.
    keys = {re.sub(r"__[a-z0-9]+$", "__<convention>", k)
            for k in ds.load_record(out / entry["file"])}
    assert keys <= documented, f"undocumented record keys: {sorted(keys - documented)}"


def test_splits_are_disjoint_and_complete(rendered):
    out, _ = rendered
    names = list_splits(out)
    assert {"random", "actor_out_hdm05_bd", "actor_out_hdm05_mm", "cross_dataset_hdm05_to_cmu",
            "cross_dataset_cmu_to_hdm05"} <= set(names)
    assert any(n.startswith("class_out_") for n in names)
    keys = {e["clip_key"] for e in ds.read_manifest(out)["records"]}
    for name in names:
        split = load_split(out, name)
        assert not set(split.train) & set(split.test)
        assert set(split.train) | set(split.test) == keys
    held_out = load_split(out, "actor_out_hdm05_mm")
    assert held_out.test == ["hdm05_HDM_mm_squat1Reps_037_120"]
    cross = load_split(out, "cross_dataset_hdm05_to_cmu")
    assert all(k.startswith("hdm05_") for k in cross.train)
    assert all(k.startswith("cmu_") for k in cross.test)


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "clips").glob("*.npz"))}


def test_resume_skips_finished_clips_and_rewrite_is_identical(rendered, corpus):
    out, _ = rendered
    before = _hashes(out)
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "clips").glob("*.npz")}
    summary = render_dataset(corpus, out, SETTINGS, progress=False)
    assert summary["resumed_clips"] == 4
    assert {p: p.stat().st_mtime_ns for p in (out / "clips").glob("*.npz")} == mtimes
    render_dataset(corpus, out, SETTINGS, resume=False, progress=False)
    assert _hashes(out) == before


def test_workers_and_shards_give_the_same_records(rendered, corpus, tmp_path):
    out, _ = rendered
    parallel = tmp_path / "parallel"
    render_dataset(corpus, parallel, SETTINGS, workers=2, progress=False)
    assert _hashes(parallel) == _hashes(out)
    shard_dirs = [tmp_path / "shard0", tmp_path / "shard1"]
    for k, folder in enumerate(shard_dirs):
        render_dataset(corpus, folder, SETTINGS, shard=(k, 2), progress=False)
    summary = merge_shards(shard_dirs)
    assert _hashes(shard_dirs[0]) == _hashes(out)
    assert summary["failed"] == 4
    merged = ds.read_manifest(shard_dirs[0])["records"]
    assert [e["sha256"] for e in merged] == [e["sha256"] for e in ds.read_manifest(out)["records"]]
    assert ds.verify_dataset(shard_dirs[0]) == []


def test_interrupted_write_leaves_no_file(tmp_path):
    target = tmp_path / "clips" / "x.npz"
    with pytest.raises(RuntimeError):
        with ds.atomic_path(target) as tmp:
            tmp.write_bytes(b"half a reco")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_videopose3d_export(rendered, tmp_path):
    out, _ = rendered
    summary = export_videopose3d(out, tmp_path, "synth")
    # Our own freshly written file; files from elsewhere need a restricted unpickler.
    data3d = np.load(tmp_path / "data_3d_synth.npz", allow_pickle=True)["positions_3d"].item()
    data2d = np.load(tmp_path / "data_2d_synth_gt.npz", allow_pickle=True)
    positions_2d = data2d["positions_2d"].item()
    metadata = data2d["metadata"].item()
    assert summary["subjects"] == len(data3d) and metadata["num_joints"] == 17
    assert "hdm05_bd_ava" in data3d
    action = data3d["hdm05_bd_ava"]["HDM_bd_hopBothLegs1hops_001_120"]
    assert action.shape[1:] == (17, 3)
    cams = positions_2d["hdm05_bd_ava"]["HDM_bd_hopBothLegs1hops_001_120"]
    assert len(cams) == SETTINGS.num_cameras and cams[0].shape == (action.shape[0], 17, 2)
    assert metadata["keypoints_symmetry"] == [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]


def test_command_line(corpus, tmp_path, capsys):
    code = main([str(corpus), "--out", str(tmp_path / "cli"), "--avatars", "ben",
                 "--cameras", "1", "--fps", "20", "--limit", "3", "--quiet"])
    assert code == 1  # the empty clip among the first three failed: documented exit code 1
    text = capsys.readouterr()
    assert "clips done" in text.out
    assert ds.read_manifest(tmp_path / "cli")["settings"]["avatars"] == ["ben"]
    with pytest.raises(SystemExit):
        main([str(corpus), "--out", str(tmp_path / "x"), "--shard", "2/2"])


def test_a_batch_of_only_bad_clips_reports_them(tmp_path):
    (tmp_path / "mocap").mkdir()
    (tmp_path / "mocap" / "HDM_bd_empty_001_120.amc").write_text("")
    summary = render_dataset(tmp_path / "mocap", tmp_path / "out", SETTINGS, progress=False)
    assert summary["failed"] == 1 and summary["done_clips"] == 0
    assert ds.read_manifest(tmp_path / "out")["num_records"] == 0


def test_an_unsound_record_is_reported_not_written(corpus, tmp_path, monkeypatch):
    import synth.render as render

    real_build = render.build_record

    def build_with_nan(*args, **kwargs):
        record = real_build(*args, **kwargs)
        record["keypoints2d"][0, 0, 0, 0] = np.nan
        return record

    monkeypatch.setattr(render, "build_record", build_with_nan)
    summary = render_dataset(corpus, tmp_path / "out", SETTINGS, limit=1, progress=False)
    assert summary["done_clips"] == 0 and summary["failed"] == 1
    assert "keypoints2d has non-finite values" in summary["failures"][0]["problem"]
    assert not list((tmp_path / "out" / "clips").glob("*.npz"))
