"""Evaluation, export and inference command lines on a tiny trained run."""
import json

import numpy as np
import pytest

from vp3dkeras.data import PoseCodec, open_split
from vp3dkeras.data.keypoint_formats import COCO_17, coco_to_h36m, fill_low_confidence
from vp3dkeras.evaluate import evaluate_source, main as evaluate_main
from vp3dkeras.export import main as export_main
from vp3dkeras.infer import main as infer_main
from vp3dkeras.inference import load_lifter, predict_poses
from posecontract.layouts import H36M_17


def test_evaluation_writes_every_metric(tiny_run):
    assert evaluate_main([str(tiny_run)]) == 0
    result = json.loads((tiny_run / "eval_actor_out_hdm05_mm_test.json").read_text())
    metrics = result["metrics"]
    assert {"P1", "P2", "P3", "MPJVE", "PCK150", "PCK200", "AUC", "per_group"} <= set(metrics)
    assert set(metrics["per_group"]) == set(H36M_17.groups)
    assert metrics["P2"] <= metrics["P1"] and 0 <= metrics["PCK150"] <= metrics["PCK200"] <= 1
    assert result["flip_tta"] and result["num_sequences"] == 4
    assert set(result["per_class"]) == {"kickLFront1Reps", "hopBothLegs1hops"}
    assert sum(m["frames"] for m in result["per_class"].values()) == result["num_frames"]
    assert {"P1", "P2"} <= set(result["class_mean"])
    table = (tiny_run / "eval_actor_out_hdm05_mm_test.md").read_text()
    assert "| P1 | P2 | P3 | MPJVE | PCK150 | PCK200 | AUC |" in table
    assert "kickLFront1Reps" in table


def test_flip_tta_averages_the_mirrored_prediction(tiny_run, tiny_synth_dataset):
    _, test = open_split(tiny_synth_dataset, "actor_out_hdm05_mm")
    codec = test.codec
    seq = test.load(0)
    # An exactly mirror-symmetric lifter gives the same poses with and without TTA.
    def lift_depth(x):
        return np.concatenate([x, 0.1 * x[..., :1] ** 2], axis=-1)

    np.testing.assert_allclose(predict_poses(lift_depth, seq.keypoints_2d, codec, True),
                               predict_poses(lift_depth, seq.keypoints_2d, codec, False),
                               atol=1e-6)
    # The trained model (flip-augmented) is nearly symmetric: TTA moves poses only a little.
    lifter = load_lifter(tiny_run)
    with_tta = predict_poses(lifter, seq.keypoints_2d, codec, True)
    without = predict_poses(lifter, seq.keypoints_2d, codec, False)
    mirrored = codec.flip(predict_poses(lifter, codec.flip(seq.keypoints_2d), codec, False))
    np.testing.assert_allclose(with_tta, (without + mirrored) / 2, atol=1e-5)
    assert np.linalg.norm(with_tta - without, axis=-1).mean() < 0.1  # metres
    no_tta = evaluate_source(lifter, test, flip_tta=False)["metrics"]["P1"]
    tta = evaluate_source(lifter, test, flip_tta=True)["metrics"]["P1"]
    assert tta < 1.05 * no_tta


def test_exported_saved_model_reloads_and_matches(tiny_run, tmp_path):
    out = tmp_path / "saved_model"
    assert export_main([str(tiny_run), "--out", str(out)]) == 0
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out))
    assert int(loaded.receptive_field) == 9
    x = np.random.default_rng(1).uniform(-1, 1, (2, 30, 17, 2)).astype(np.float32)
    served = loaded.signatures["serving_default"](keypoints_2d=x)["poses_3d"].numpy()
    keras_poses = load_lifter(tiny_run)(x)
    np.testing.assert_allclose(served, keras_poses, atol=1e-5)


def _coco_track(frames=12):
    """A standing person in COCO-17 order, pixels, with a little jitter and one bad joint."""
    base = {"nose": (320, 100), "l_eye": (328, 92), "r_eye": (312, 92), "l_ear": (336, 96),
            "r_ear": (304, 96), "l_shoulder": (350, 150), "r_shoulder": (290, 150),
            "l_elbow": (360, 200), "r_elbow": (280, 200), "l_wrist": (365, 250),
            "r_wrist": (275, 250), "l_hip": (340, 260), "r_hip": (300, 260),
            "l_knee": (340, 340), "r_knee": (300, 340), "l_ankle": (340, 420),
            "r_ankle": (300, 420)}
    points = np.array([base[name] for name in COCO_17], float)
    rng = np.random.default_rng(0)
    track = points + rng.normal(0, 1.5, (frames, 17, 2))
    scores = np.full((frames, 17), 0.9)
    scores[5, COCO_17.index("l_wrist")] = 0.05
    track[5, COCO_17.index("l_wrist")] = (0, 0)  # a detector miss
    return track, scores


def test_coco_keypoints_become_the_h36m_layout():
    track, scores = _coco_track()
    h36m, h36m_scores = coco_to_h36m(track, scores)
    index = H36M_17.index
    np.testing.assert_allclose(h36m[:, index("hip")], (track[:, COCO_17.index("l_hip")]
                                                       + track[:, COCO_17.index("r_hip")]) / 2,
                               rtol=1e-6)
    np.testing.assert_allclose(h36m[:, index("l_wrist")], track[:, COCO_17.index("l_wrist")],
                               rtol=1e-6)
    np.testing.assert_allclose(h36m[:, index("neck_nose")], track[:, COCO_17.index("nose")],
                               rtol=1e-6)
    thorax, spine = h36m[:, index("thorax")], h36m[:, index("spine")]
    np.testing.assert_allclose(spine, (h36m[:, index("hip")] + thorax) / 2, rtol=1e-6)
    assert np.all(h36m[:, index("head"), 1] < h36m[:, index("neck_nose"), 1])  # above the nose
    assert h36m_scores[5, index("l_wrist")] == pytest.approx(0.05)
    filled = fill_low_confidence(h36m, h36m_scores, 0.3)
    expected = (h36m[4, index("l_wrist")] + h36m[6, index("l_wrist")]) / 2
    np.testing.assert_allclose(filled[5, index("l_wrist")], expected, atol=1e-4)


def test_infer_lifts_a_coco_json_track(tiny_run, tmp_path):
    track, scores = _coco_track()
    detections = [{"image_id": t, "score": 0.95, "keypoints":
                   np.concatenate([track[t], scores[t, :, None]], 1).ravel().tolist()}
                  for t in range(len(track))]
    detections.append({"image_id": 3, "score": 0.2, "keypoints": [0.0] * 51})  # a weaker person
    path = tmp_path / "track.json"
    path.write_text(json.dumps(detections))
    out = tmp_path / "poses.npz"
    png, gif = tmp_path / "pose.png", tmp_path / "poses.gif"
    assert infer_main([str(tiny_run), "--keypoints", str(path), "--width", "640", "--height",
                       "480", "--min-score", "0.3", "--out", str(out), "--png", str(png),
                       "--gif", str(gif), "--frame", "3"]) == 0
    with np.load(out) as result:
        poses = result["poses_3d"]
        assert poses.shape == (12, 17, 3) and np.all(np.isfinite(poses))
        assert np.all(poses[:, 0] == 0)
        assert list(result["joint_names"]) == list(H36M_17.names)
        np.testing.assert_allclose(result["keypoints_2d"][3, 0], track[3, 11:13].mean(0),
                                   atol=1e-4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and gif.read_bytes()[:3] == b"GIF"
    # The same lifting through the library, without TTA, differs from the CLI's TTA output.
    codec = PoseCodec(H36M_17)
    h36m, _ = coco_to_h36m(track)
    assert predict_poses(load_lifter(tiny_run), codec.normalize_2d(h36m, (640, 480)), codec,
                         False).shape == (12, 17, 3)
