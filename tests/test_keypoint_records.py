"""`python -m synth.render --keypoints`: per-convention 2D and 3D in records, the manifest's
list, resume when conventions are added, export of one convention, clear errors."""
import dataclasses
import shutil

import numpy as np
import pytest

from posecontract.conventions import get_convention
from posecontract.dataset_format import convention_key, record_conventions, require_convention
from synth import dataset as ds
from synth.cameras import Camera
from synth.export_vp3d import export_videopose3d
from synth.render import RenderSettings, main, render_dataset


@pytest.fixture(scope="module")
def walk_corpus(tmp_path_factory, cmu_dir):
    root = tmp_path_factory.mktemp("walk") / "cmu" / "02"
    root.mkdir(parents=True)
    shutil.copy(cmu_dir / "02" / "02.asf", root)
    shutil.copy(cmu_dir / "02" / "02_01.amc", root)
    return root.parent.parent


@pytest.fixture(scope="module")
def rendered(walk_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset")
    settings = RenderSettings(fps=25.0, avatars=("ben",), num_cameras=2, seed=1,
                              keypoints=("h36m17", "coco17"))
    summary = render_dataset(walk_corpus, out, settings, progress=False)
    assert summary["records"] == 1 and not summary["failed"]
    return out


def _record(out):
    entry = ds.read_manifest(out)["records"][0]
    return entry, ds.load_record(out / entry["file"])


def test_records_hold_each_conventions_2d_and_3d(rendered):
    entry, record = _record(rendered)
    assert record_conventions(record) == ["h36m17", "coco17", "acclaim17"]
    assert entry["keypoint_conventions"] == ["h36m17", "coco17", "acclaim17"]
    assert ds.read_manifest(rendered)["keypoint_conventions"] == ["h36m17", "coco17",
                                                                   "acclaim17"]
    c, t = record["keypoints2d"].shape[:2]
    for name in ("h36m17", "coco17"):
        k = get_convention(name).num_keypoints
        world = record[convention_key("joints3d_world", name)]
        cam3d = record[convention_key("joints3d_camera", name)]
        kp2d = record[convention_key("keypoints2d", name)]
        assert world.shape == (t, k, 3) and cam3d.shape == (c, t, k, 3)
        assert kp2d.shape == (c, t, k, 2)
        assert tuple(record[convention_key("joint_names", name)]) == get_convention(name).names
        for i in range(c):
            camera = Camera.from_arrays({"intrinsics": record["camera_intrinsics"][i],
                                         "image_size": record["camera_image_size"][i],
                                         "rotation": record["camera_rotation"][i],
                                         "translation": record["camera_translation"][i]})
            np.testing.assert_allclose(camera.world_to_camera(world), cam3d[i], atol=1e-4)
            np.testing.assert_allclose(camera.project(cam3d[i]), kp2d[i], atol=0.05)
    # The conventions differ from the canonical joints where they should: Human3.6M's hips
    # are wider than the Acclaim hips, its knees are the same joints.
    h36m = record[convention_key("joints3d_world", "h36m17")]
    acclaim = record["joints3d_world"]
    width = lambda p: np.linalg.norm(p[:, 1] - p[:, 4], axis=-1).mean()  # noqa: E731
    assert width(h36m) > width(acclaim) + 0.08
    np.testing.assert_array_equal(h36m[:, 2], acclaim[:, 2])


def test_resume_rewrites_clips_that_lack_a_requested_convention(rendered, walk_corpus):
    settings = RenderSettings(fps=25.0, avatars=("ben",), num_cameras=2, seed=1,
                              keypoints=("h36m17",))
    summary = render_dataset(walk_corpus, rendered, settings, progress=False)
    assert summary["resumed_clips"] == 1  # h36m17 is already there
    settings = dataclasses.replace(settings, keypoints=("humaneva15",))
    summary = render_dataset(walk_corpus, rendered, settings, progress=False)
    assert summary["resumed_clips"] == 0
    _, record = _record(rendered)
    assert record_conventions(record) == ["humaneva15", "acclaim17"]
    assert ds.read_manifest(rendered)["keypoint_conventions"] == ["humaneva15", "acclaim17"]


def test_export_writes_the_chosen_convention_or_says_it_is_missing(walk_corpus, tmp_path):
    out = tmp_path / "ds"
    render_dataset(walk_corpus, out, RenderSettings(fps=25.0, avatars=("ben",), num_cameras=1,
                                                    keypoints=("coco17",)), progress=False)
    summary = export_videopose3d(out, tmp_path / "vp3d", keypoints="coco17")
    assert summary["keypoints"] == "coco17"
    with pytest.raises(ValueError, match="not 'h36m17'.*--keypoints h36m17"):
        export_videopose3d(out, tmp_path / "vp3d2", keypoints="h36m17")
    # Without --keypoints: h36m17 is absent, so the canonical joints are exported.
    assert export_videopose3d(out, tmp_path / "vp3d3")["keypoints"] == "acclaim17"


def test_unknown_convention_is_refused_before_any_clip(walk_corpus, tmp_path, capsys):
    assert main([str(walk_corpus), "--out", str(tmp_path / "x"), "--keypoints",
                 "h36m17,mpii16", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown keypoint convention 'mpii16'" in err
    assert not (tmp_path / "x").exists()


def test_old_records_are_read_as_the_canonical_joints():
    old = {"keypoints2d": np.zeros((1, 2, 17, 2))}
    assert record_conventions(old) == ["acclaim17"]
    with pytest.raises(ValueError, match="has keypoint conventions acclaim17, not 'h36m17'"):
        require_convention(record_conventions(old), "h36m17", "old.npz")
