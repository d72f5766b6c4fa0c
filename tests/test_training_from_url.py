"""A synth dataset folder at a URL (fsspec: what `synth.render --out URL` writes) gives the
training side the folder's sources, splits and batches."""
import uuid

import fsspec
import pytest

from posecontract.dataset_format import RecordError, list_splits, load_record, read_manifest
from conftest import assert_same_batches
from vp3dkeras.data import open_split

SPLIT = "actor_out_hdm05_mm"


@pytest.fixture()
def memory_copy(tiny_synth_dataset):
    """The tiny dataset copied into fsspec's in-process memory file system."""
    fs = fsspec.filesystem("memory")
    root = f"/vp3d-test-{uuid.uuid4().hex[:8]}"
    fs.put(str(tiny_synth_dataset), root, recursive=True)
    yield f"memory://{root}"
    fs.rm(root, recursive=True)


@pytest.mark.parametrize("where", ["file", "memory"])
def test_a_dataset_at_a_url_gives_the_folders_batches(tiny_synth_dataset, memory_copy, where):
    url = tiny_synth_dataset.as_uri() if where == "file" else memory_copy
    assert read_manifest(url) == read_manifest(tiny_synth_dataset)
    assert list_splits(url) == list_splits(tiny_synth_dataset)
    folder_train, folder_test = open_split(tiny_synth_dataset, SPLIT)
    url_train, url_test = open_split(url, SPLIT)
    assert type(url_train).__name__ == "SynthSource"
    assert [r.key for r in url_test.refs] == [r.key for r in folder_test.refs]
    assert_same_batches(folder_train, url_train)
    assert_same_batches(folder_test, url_test)


def test_a_broken_record_at_a_url_is_a_one_line_error(memory_copy):
    entry = read_manifest(memory_copy)["records"][0]
    fs = fsspec.filesystem("memory")
    path = f"{memory_copy[len('memory://'):]}/{entry['file']}"
    fs.pipe_file(path, fs.cat_file(path)[:-100])
    with pytest.raises(RecordError, match=f"^memory://.*{entry['file']}: checksum differs"):
        load_record(f"{memory_copy}/{entry['file']}", sha256=entry["sha256"])
    with pytest.raises(FileNotFoundError, match="no manifest"):
        read_manifest(f"{memory_copy}/nothing-here")


def test_shards_are_written_from_a_dataset_at_a_url(tiny_synth_dataset, memory_copy,
                                                    tmp_path):
    from vp3dkeras.data import shards

    from_url = shards.write_shards(memory_copy, f"{memory_copy}-shards", shard_mb=0.3)
    from_folder = shards.write_shards(tiny_synth_dataset, str(tmp_path / "s"), shard_mb=0.3)
    assert from_url == from_folder
    assert shards.ShardSource(f"{memory_copy}-shards").split(SPLIT).test
    fsspec.filesystem("memory").rm(f"{memory_copy[len('memory://'):]}-shards", recursive=True)
