"""2D tracks from real detectors: every format is read into one person's (T, J, 2) track,
missing frames are interpolated and reported, bad files get one line naming the file.

Real detector output comes from ../shared/cases/real_inputs (folders 09, 10, 12, 14); OpenPose,
MMPose and VideoPose3D in-the-wild fixtures are written here from the formats' documentation.
"""
import json
import pathlib

import numpy as np
import pytest

from conftest import shared_dir
from posecontract.layouts import COCO_17
from vp3dkeras.data.keypoint_formats import TrackError, format_frames, read_track

CASES = shared_dir() / "cases" / "real_inputs"


def _case(path: str) -> pathlib.Path:
    path = CASES / path
    if not path.exists():
        pytest.fail(f"case file {path} not found; set VP3D_SHARED_DIR to the shared/ folder")
    return path


def test_coco_results_with_missing_frames_are_interpolated_and_reported():
    track = read_track(_case("09_coco_results_missing_frames/coco_results_missing_12-14.json"))
    full = read_track(_case("09_coco_results_missing_frames/coco_results_full.json"))
    assert track.keypoints.shape == (40, 17, 2) and track.layout == "coco17"
    assert track.filled_frames == (12, 13, 14) and full.filled_frames == ()
    assert "interpolated 3 frames: 12-14" in track.report()
    assert np.isfinite(track.keypoints).all()
    assert np.all(track.scores[12:15] == 0) and np.all(track.scores[11] > 0)
    # the interpolation lies close to what the detector saw in the control file
    error = np.linalg.norm(track.keypoints - full.keypoints, axis=-1)
    assert error[12:15].max() < 3.0 and error[:12].max() == 0 and error[15:].max() == 0


def test_alphapose_image_file_names_give_the_frame_numbers(tmp_path):
    path = _case("10_alphapose_results/alphapose-results.json")
    track = read_track(path)
    assert track.source == "alphapose" and track.keypoints.shape == (40, 17, 2)
    assert list(track.frames) == list(range(40)) and track.filled_frames == ()
    detections = json.loads(path.read_text())
    first = np.asarray(detections[0]["keypoints"]).reshape(17, 3)
    frame = int(detections[0]["image_id"].split(".")[0])
    np.testing.assert_allclose(track.keypoints[frame], first[:, :2], atol=1e-4)
    # shuffled order and names with a prefix give the same track
    renamed = [dict(d, image_id=f"frame_{int(d['image_id'][:-4]):06d}.png")
               for d in reversed(detections)]
    (tmp_path / "renamed.json").write_text(json.dumps(renamed))
    np.testing.assert_array_equal(read_track(tmp_path / "renamed.json").keypoints,
                                  track.keypoints)


def test_an_empty_detection_list_says_no_detections_in_the_file():
    path = _case("12_empty_detection_list/coco_results_empty.json")
    with pytest.raises(TrackError) as error:
        read_track(path)
    assert str(error.value) == f"no detections in {path}"


def test_nan_frames_are_interpolated_never_passed_on():
    track = read_track(_case("14_nan_frames_npz/track_nan_frames.npz"))
    assert track.filled_frames == (12, 13, 14) and track.image_size == (640, 480)
    assert np.isfinite(track.keypoints).all() and np.isfinite(track.scores).all()
    expected = (track.keypoints[11] * 3 + track.keypoints[15] * 1) / 4  # frame 12 of 11..15
    np.testing.assert_allclose(track.keypoints[12], expected, atol=1e-3)


def test_a_gap_longer_than_max_gap_is_refused_naming_the_frames():
    path = _case("14_nan_frames_npz/track_nan_frames.npz")
    with pytest.raises(TrackError, match=r"frames 12-14 have no usable keypoints"):
        read_track(path, max_gap=2)
    assert read_track(path, max_gap=3).filled_frames == (12, 13, 14)


def _people(points17, extra_points):
    """OpenPose person from COCO-17 (17, 3) points: the given format's order."""
    return {"person_id": [-1], "pose_keypoints_2d": extra_points(points17),
            "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
            "hand_right_keypoints_2d": []}


def _body25(points):
    """COCO-17 (17, 3) -> OpenPose BODY_25 flat list (doc/02_output.md order)."""
    p = {name: points[i] for i, name in enumerate(COCO_17.names)}
    neck = (p["l_shoulder"] + p["r_shoulder"]) / 2
    mid_hip = (p["l_hip"] + p["r_hip"]) / 2
    feet = [p["l_ankle"] + (0, 10, 0)] * 3 + [p["r_ankle"] + (0, 10, 0)] * 3
    order = [p["nose"], neck, p["r_shoulder"], p["r_elbow"], p["r_wrist"], p["l_shoulder"],
             p["l_elbow"], p["l_wrist"], mid_hip, p["r_hip"], p["r_knee"], p["r_ankle"],
             p["l_hip"], p["l_knee"], p["l_ankle"], p["r_eye"], p["l_eye"], p["r_ear"],
             p["l_ear"]] + feet
    return np.concatenate(order).tolist()


def _coco18(points):
    p = {name: points[i] for i, name in enumerate(COCO_17.names)}
    neck = (p["l_shoulder"] + p["r_shoulder"]) / 2
    order = [p["nose"], neck, p["r_shoulder"], p["r_elbow"], p["r_wrist"], p["l_shoulder"],
             p["l_elbow"], p["l_wrist"], p["r_hip"], p["r_knee"], p["r_ankle"], p["l_hip"],
             p["l_knee"], p["l_ankle"], p["r_eye"], p["l_eye"], p["r_ear"], p["l_ear"]]
    return np.concatenate(order).tolist()


def _coco_track(frames=10, seed=0):
    """A walking-ish COCO-17 track (T, 17, 3) with scores."""
    rng = np.random.default_rng(seed)
    base = np.asarray(json.loads(_case("09_coco_results_missing_frames/coco_results_full.json")
                                 .read_text())[0]["keypoints"]).reshape(17, 3)
    track = np.repeat(base[None], frames, axis=0)
    track[..., 0] += np.arange(frames)[:, None] * 4.0
    track[..., :2] += rng.normal(0, 0.5, (frames, 17, 2))
    track[..., 2] = rng.uniform(0.6, 0.99, (frames, 17))
    return track


@pytest.mark.parametrize("layout", ["body25", "coco18"])
def test_openpose_folders_map_to_coco17(tmp_path, layout):
    track = _coco_track()
    writer = _body25 if layout == "body25" else _coco18
    for t in range(len(track)):
        people = [] if t == 4 else [_people(track[t], writer)]
        if t == 6:  # a second, less confident person, and one missing keypoint (0, 0, 0)
            other = track[t].copy()
            other[:, 2] = 0.1
            people.append(_people(other + (300, 0, 0), writer))
            flat = np.asarray(people[0]["pose_keypoints_2d"]).reshape(-1, 3)
            flat[4] = 0  # the right wrist in both formats
            people[0]["pose_keypoints_2d"] = flat.ravel().tolist()
        name = f"walk_{t:012d}" if layout == "body25" else f"frame{t:04d}"  # video / images
        (tmp_path / f"{name}_keypoints.json").write_text(
            json.dumps({"version": 1.3, "people": people}))
    result = read_track(tmp_path)
    assert result.source == "openpose" and result.layout == "coco17"
    assert result.keypoints.shape == (10, 17, 2) and result.filled_frames == (4, 6)
    keep = [t for t in range(10) if t not in (4, 6)]
    np.testing.assert_allclose(result.keypoints[keep], track[keep, :, :2], atol=1e-3)
    np.testing.assert_allclose(result.keypoints[4], (track[3, :, :2] + track[5, :, :2]) / 2,
                               atol=1e-3)
    r_wrist = COCO_17.index("r_wrist")
    np.testing.assert_allclose(result.keypoints[6, r_wrist],
                               (track[5, r_wrist, :2] + track[7, r_wrist, :2]) / 2, atol=1e-3)
    np.testing.assert_allclose(result.keypoints[6, :r_wrist], track[6, :r_wrist, :2],
                               atol=1e-3)


def test_openpose_folder_without_anyone_says_no_detections(tmp_path):
    for t in range(3):
        (tmp_path / f"v_{t:012d}_keypoints.json").write_text('{"version":1.3,"people":[]}')
    with pytest.raises(TrackError, match=f"no detections in {tmp_path}"):
        read_track(tmp_path)


def test_mmpose_inferencer_predictions(tmp_path):
    track = _coco_track()
    frames = []
    for t in range(len(track)):
        instances = [] if t in (2, 3) else [{
            "keypoints": track[t, :, :2].tolist(), "keypoint_scores": track[t, :, 2].tolist(),
            "bbox": [[100.0, 50.0, 300.0, 400.0]], "bbox_score": 0.97}]
        if t == 5:
            instances.append({"keypoints": (track[t, :, :2] + 200).tolist(),
                              "keypoint_scores": [0.5] * 17, "bbox": [[0, 0, 1, 1]],
                              "bbox_score": 0.3})
        frames.append({"frame_id": t, "instances": instances})
    path = tmp_path / "walk.json"
    path.write_text(json.dumps(frames))
    result = read_track(path)
    assert result.source == "mmpose" and result.filled_frames == (2, 3)
    np.testing.assert_allclose(result.keypoints[5], track[5, :, :2], atol=1e-4)
    np.testing.assert_allclose(result.scores[5], track[5, :, 2], atol=1e-6)
    np.testing.assert_allclose(result.keypoints[2],
                               (2 * track[1, :, :2] + track[4, :, :2]) / 3, atol=1e-3)


def test_videopose3d_custom_npz_carries_track_layout_and_size(tmp_path):
    track = _coco_track(12)
    track[7, 3, :2] = np.nan
    metadata = {"layout_name": "coco", "num_joints": 17,
                "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15],
                                       [2, 4, 6, 8, 10, 12, 14, 16]],
                "video_metadata": {"walk.mp4": {"w": 1920, "h": 1080}}}
    positions = {"walk.mp4": {"custom": [track[..., :2].astype("float32")]}}
    path = tmp_path / "data_2d_custom_myvideos.npz"
    np.savez_compressed(path, positions_2d=positions, metadata=metadata)
    result = read_track(path)
    assert result.source == "vp3d-custom" and result.layout == "coco17"
    assert result.image_size == (1920, 1080) and result.filled_frames == (7,)
    np.testing.assert_allclose(result.keypoints[:7], track[:7, :, :2], atol=1e-4)


def test_unreadable_files_are_one_line_naming_the_file(tmp_path):
    bad = {"garbage.json": "{not json", "null.json": '{"keypoints": [[[null, 1]]]}',
           "empty.npz": "", "dict.json": '{"frames": []}',
           "one_frame.json": '{"version": 1.3, "people": []}',
           "strange_id.json": '[{"image_id": "cover.jpg", "keypoints": [1, 2, 1]}]',
           "far_apart.json": json.dumps([{"image_id": i, "keypoints": [1.0] * 51}
                                         for i in (0, 10 ** 12)]),
           "wrong_length.json": '[{"image_id": 0, "keypoints": [1, 2, 3, 4]}]',
           "not_a_track.json": "[1, 2, 3]"}
    for name, text in bad.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(TrackError) as error:
            read_track(path)
        message = str(error.value)
        assert str(path) in message and "\n" not in message, message
    blind = np.ones((3, 17, 2))
    blind[:, 5] = np.nan  # one keypoint never seen
    (tmp_path / "blind.json").write_text(json.dumps({"keypoints": blind.tolist()}))
    with pytest.raises(TrackError, match=r"keypoints \[5\] are missing in every frame"):
        read_track(tmp_path / "blind.json")
    (tmp_path / "dark.json").write_text(json.dumps({"keypoints": (blind * np.nan).tolist()}))
    with pytest.raises(TrackError, match="only 0 of 3 frames have keypoints"):
        read_track(tmp_path / "dark.json")


def test_frame_lists_are_written_as_ranges():
    assert format_frames([14, 3, 12, 13]) == "3, 12-14"


def test_mmpose_per_image_folder(tmp_path):
    track = _coco_track(6)
    for t in range(6):
        instances = [] if t == 3 else [{"keypoints": track[t, :, :2].tolist(),
                                        "keypoint_scores": track[t, :, 2].tolist(),
                                        "bbox": [[0, 0, 10, 10]], "bbox_score": 0.9}]
        (tmp_path / f"frame_{t:05d}.json").write_text(json.dumps(instances))
    result = read_track(tmp_path)
    assert result.source == "mmpose" and result.filled_frames == (3,)
    np.testing.assert_allclose(result.keypoints[5], track[5, :, :2], atol=1e-4)


def test_coco_annotation_file_gives_frames_and_image_size(tmp_path):
    track = _coco_track(5)
    images = [{"id": 100 + t, "file_name": f"clip/{t:04d}.jpg", "width": 1280, "height": 720}
              for t in range(5)]
    annotations = [{"id": t, "image_id": 100 + t, "category_id": 1, "num_keypoints": 17,
                    "keypoints": np.concatenate([track[t, :, :2], np.full((17, 1), 2)], 1)
                    .ravel().tolist()} for t in (4, 0, 1, 3)]  # image 2 not annotated
    path = tmp_path / "person_keypoints_clip.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "person"}]}))
    result = read_track(path)
    assert result.source == "coco-annotations" and result.image_size == (1280, 720)
    assert result.filled_frames == (2,)
    np.testing.assert_allclose(result.keypoints[4], track[4, :, :2], atol=1e-4)


def test_videopose3d_detectron_npz(tmp_path):
    track = _coco_track(6)
    boxes, keypoints = [], []
    for t in range(6):
        if t == 2:
            boxes.append([[], []])
            keypoints.append([[], []])
            continue
        rows = np.stack([track[t, :, 0], track[t, :, 1], np.zeros(17), track[t, :, 2]])
        other = rows + np.array([[300.0], [0], [0], [0]])
        boxes.append([[], np.array([[0, 0, 1, 1, 0.4], [0, 0, 1, 1, 0.99]])])
        keypoints.append([[], np.stack([other, rows])])
    path = tmp_path / "walk.mp4.npz"
    as_objects = lambda rows: np.array(rows + [None], dtype=object)[:-1]  # ragged lists
    np.savez_compressed(path, boxes=as_objects(boxes), segments=as_objects([None] * 6),
                        keypoints=as_objects(keypoints), metadata={"w": 1920, "h": 1080})
    result = read_track(path)
    assert result.source == "detectron-vp3d" and result.image_size == (1920, 1080)
    assert result.filled_frames == (2,)
    np.testing.assert_allclose(result.keypoints[3], track[3, :, :2], atol=1e-4)
    np.testing.assert_allclose(result.scores[3], track[3, :, 2], atol=1e-6)
