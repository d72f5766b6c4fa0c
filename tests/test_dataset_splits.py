"""Dataset splits: disjoint, complete, reproducible, and stored as JSON."""
import csv
import json

import pytest

from synth.splits import (Split, UnknownSplitError, actor_split, classes_only, list_splits,
                          load_split, make_splits, random_split, write_splits)


def _clips():
    clips = []
    for actor in ("bd", "bk", "mm", "tr"):
        for motion_class in ("squat1Reps", "grabHighR", "kickLFront1Reps"):
            for i in range(3):
                clips.append({"clip_key": f"hdm05/HDM_{actor}_{motion_class}_{i:03d}",
                              "dataset": "hdm05", "actor": actor, "motion_class": motion_class})
    for subject, trials in (("02", ("walk", "run/jog", "walk")), ("bd", ("jump, balance",))):
        for i, description in enumerate(trials):
            clips.append({"clip_key": f"cmu/{subject}_{i + 1:02d}", "dataset": "cmu",
                          "actor": subject, "motion_class": description})
    clips.append({"clip_key": "bvh/01_01", "dataset": "bvh", "actor": "01", "motion_class": ""})
    return clips


def _keys(clips, **labels):
    return sorted(c["clip_key"] for c in clips
                  if all(c[field] == value for field, value in labels.items()))


def test_every_split_is_disjoint_and_sorted():
    for split in make_splits(_clips()).values():
        assert not set(split.train) & set(split.test), split.name
        assert split.train == sorted(split.train) and split.test == sorted(split.test)
        assert split.train and split.test


def test_random_actor_and_class_splits_cover_all_clips():
    clips = _clips()
    every = set(_keys(clips))
    splits = make_splits(clips)
    for name, split in splits.items():
        if not name.startswith("cross_dataset_"):
            assert set(split.train) | set(split.test) == every, name


def test_random_split_is_seeded_and_holds_out_the_fraction():
    clips = _clips()
    first, again = make_splits(clips, seed=3)["random"], make_splits(clips, seed=3)["random"]
    assert first == again
    assert make_splits(clips, seed=4)["random"] != first
    assert len(first.test) == round(0.2 * len(clips))
    assert len(random_split(clips, seed=3, test_fraction=0.5).test) == len(clips) // 2


def test_actor_out_holds_out_exactly_that_actors_clips():
    clips = _clips()
    splits = make_splits(clips)
    # Actors are qualified by dataset: HDM05's bd and CMU's bd are different people.
    assert splits["actor_out_hdm05_bd"].test == _keys(clips, dataset="hdm05", actor="bd")
    assert splits["actor_out_cmu_bd"].test == _keys(clips, dataset="cmu", actor="bd")
    assert splits["actor_out_cmu_02"].test == _keys(clips, dataset="cmu", actor="02")
    actor_names = sorted(n for n in splits if n.startswith("actor_out_"))
    assert actor_names == ["actor_out_bvh_01", "actor_out_cmu_02", "actor_out_cmu_bd",
                           "actor_out_hdm05_bd", "actor_out_hdm05_bk", "actor_out_hdm05_mm",
                           "actor_out_hdm05_tr"]


def test_custom_actor_split_holds_out_several_actors():
    clips = _clips()
    split = actor_split(clips, ["mm", "hdm05_tr"])
    assert split.name == "actor_out_hdm05_mm_hdm05_tr"
    assert split.test == sorted(_keys(clips, actor="mm") + _keys(clips, actor="tr"))
    assert set(split.train) == set(_keys(clips)) - set(split.test)
    assert actor_split(clips, [("cmu", "bd")], name="cmu_bd_out").test == ["cmu/bd_01"]
    with pytest.raises(ValueError, match="ambiguous"):
        actor_split(clips, ["bd"])
    with pytest.raises(ValueError, match="unknown.*hdm05_mm"):
        actor_split(clips, ["zz"])


def test_class_out_holds_out_exactly_that_class_with_safe_names():
    clips = _clips()
    splits = make_splits(clips)
    assert splits["class_out_squat1Reps"].test == _keys(clips, motion_class="squat1Reps")
    # "walk" spans two CMU clips; unsafe characters in class names are replaced.
    assert splits["class_out_walk"].test == ["cmu/02_01", "cmu/02_03"]
    assert splits["class_out_run_jog"].test == ["cmu/02_02"]
    assert splits["class_out_jump_balance"].test == ["cmu/bd_01"]
    # The unlabelled BVH clip is never held out as a class of its own.
    for name, split in splits.items():
        if name.startswith("class_out_"):
            assert "bvh/01_01" in split.train
    assert "class_out_" not in splits and "class_out__" not in splits


def test_classes_only_keeps_each_side_and_only_those_classes():
    clips = _clips()
    base = random_split(clips, seed=3, test_fraction=0.4)
    wanted = ["squat1Reps", "walk"]
    split = classes_only(base, clips, wanted)
    chosen = set(_keys(clips, motion_class="squat1Reps")) | set(_keys(clips, motion_class="walk"))
    assert split.name == "random_classes_squat1Reps_walk"
    assert set(split.train) == set(base.train) & chosen
    assert set(split.test) == set(base.test) & chosen
    with pytest.raises(ValueError, match=r"'random': motion classes \['swim'\] not in"):
        classes_only(base, clips, ["swim"])
    with pytest.raises(ValueError, match="leaves its (train|test) side empty"):
        classes_only(base, clips, ["jump, balance"])


def test_sanitised_names_that_collide_stay_distinct():
    clips = [{"clip_key": str(i), "dataset": "d", "actor": "a", "motion_class": c}
             for i, c in enumerate(["run/jog", "run jog", "Run-Jog", "run-jog"])]
    names = sorted(n for n in make_splits(clips) if n.startswith("class_out_"))
    assert len(names) == 4 and len({n.lower() for n in names}) == 4


def test_cross_dataset_splits_for_each_ordered_pair():
    clips = _clips()
    splits = make_splits(clips)
    cross = sorted(n for n in splits if n.startswith("cross_dataset_"))
    assert cross == ["cross_dataset_bvh_to_cmu", "cross_dataset_bvh_to_hdm05",
                     "cross_dataset_cmu_to_bvh", "cross_dataset_cmu_to_hdm05",
                     "cross_dataset_hdm05_to_bvh", "cross_dataset_hdm05_to_cmu"]
    split = splits["cross_dataset_hdm05_to_cmu"]
    assert split.train == _keys(clips, dataset="hdm05")
    assert split.test == _keys(clips, dataset="cmu")


def test_entries_of_one_clip_share_a_side_and_empty_splits_are_skipped():
    clips = [{"clip_key": "k1", "dataset": "hdm05", "actor": "bd", "motion_class": "squat",
              "avatar": avatar, "camera": camera} for avatar in range(3) for camera in range(4)]
    clips += [{"clip_key": "k2", "dataset": "hdm05", "actor": "bd", "motion_class": "kick"}]
    splits = make_splits(clips)
    # A single actor and a single dataset leave nothing to test on / train on.
    assert sorted(splits) == ["class_out_kick", "class_out_squat", "random"]
    assert splits["random"].train + splits["random"].test in (["k1", "k2"], ["k2", "k1"])
    with pytest.raises(ValueError, match="different labels"):
        make_splits(clips + [{"clip_key": "k1", "dataset": "cmu", "actor": "bd",
                              "motion_class": "squat"}])
    with pytest.raises(ValueError, match="lacks"):
        make_splits([{"clip_key": "k1", "dataset": "cmu"}])


def test_a_clip_on_both_sides_is_rejected():
    with pytest.raises(ValueError, match="both sides"):
        Split("bad", "", ["a", "b"], ["b"])
    with pytest.raises(ValueError, match="filesystem-safe"):
        Split("../bad", "", ["a"], ["b"])


def test_round_trip_through_disk(tmp_path):
    splits = make_splits(_clips(), seed=1)
    paths = write_splits(tmp_path, splits)
    assert sorted(p.name for p in paths) == sorted(f"{n}.json" for n in splits)
    assert list_splits(tmp_path) == sorted(splits)
    assert not [p for p in (tmp_path / "splits").iterdir() if p.suffix == ".tmp"]
    for name, split in splits.items():
        assert load_split(tmp_path, name) == split
    data = json.loads((tmp_path / "splits" / "random.json").read_text())
    assert set(data) == {"name", "description", "train", "test"}
    # Rewriting replaces the file in place.
    write_splits(tmp_path, [random_split(_clips(), seed=9)])
    assert load_split(tmp_path, "random") == random_split(_clips(), seed=9)


def test_unknown_split_name_lists_available_names(tmp_path):
    with pytest.raises(UnknownSplitError, match=r"\(none\)"):
        load_split(tmp_path, "random")
    write_splits(tmp_path, make_splits(_clips()))
    with pytest.raises(UnknownSplitError, match="actor_out_hdm05_mm.*random") as err:
        load_split(tmp_path, "actor_out_nobody")
    assert "class_out_walk" in str(err.value)
    with pytest.raises(UnknownSplitError):
        load_split(tmp_path, "../splits/random")


def test_splits_of_the_real_hdm05_and_cmu_clips(hdm05_dir, cmu_dir):
    clips = []
    for path in sorted(hdm05_dir.glob("*.amc")):
        _, actor, motion_class, index, _ = path.stem.split("_")
        clips.append({"clip_key": f"hdm05/{path.stem}", "dataset": "hdm05", "actor": actor,
                      "motion_class": motion_class})
    with open(cmu_dir / "trials.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            clips.append({"clip_key": f"cmu/{row['subject']}_{row['trial']}", "dataset": "cmu",
                          "actor": row["subject"], "motion_class": row["description"]})
    splits = make_splits(clips)
    hdm05_actors = {n for n in splits if n.startswith("actor_out_hdm05_")}
    assert hdm05_actors == {f"actor_out_hdm05_{a}" for a in ("bd", "bk", "dg", "mm", "tr")}
    assert sum(n.startswith("actor_out_cmu_") for n in splits) == 9
    assert {"cross_dataset_hdm05_to_cmu", "cross_dataset_cmu_to_hdm05"} <= set(splits)
    held_out = actor_split(clips, ["mm", "tr"])
    assert all(k.split("_")[1] in ("mm", "tr") for k in held_out.test)
    assert len(held_out.train) + len(held_out.test) == len(clips)
    for split in splits.values():
        assert not set(split.train) & set(split.test)
