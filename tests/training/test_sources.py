"""Finding labelled images in folders and zips, with and without split folders (no TensorFlow)."""

import zipfile

import pytest

from squeezekit.data.sources import scan, splits_of


def _make(root, layout):
    for name in layout:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_plain_class_folders(tmp_path):
    _make(tmp_path, ["a/1.jpg", "a/2.png", "b/3.jpg", "b/notes.txt", ".hidden/4.jpg"])
    found = scan(tmp_path)
    assert found.class_names == ["a", "b"] and sorted(found.labels) == [0, 0, 1]
    assert [name for name, _ in found.skipped] == ["b/notes.txt"]
    assert splits_of(tmp_path) == []


def test_zip_with_top_folder_and_splits(tmp_path):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ["top/train/cat/1.jpg", "top/train/dog/2.jpg", "top/val/cat/3.jpg", "top/val/dog/4.jpg"]:
            z.writestr(name, b"x")
    assert splits_of(archive) == ["train", "val"]
    train, val = scan(archive, "train"), scan(archive, "val")
    assert train.class_names == val.class_names == ["cat", "dog"]
    assert train.read(0) == b"x" and len(val) == 2
    with pytest.raises(ValueError, match="say which"):
        scan(archive)


@pytest.mark.parametrize(
    "layout, fragment",
    [(["a/1.jpg"], "at least 2"), (["a/1.jpg", "b/"], "without images"), ([], "no class folders")],
)
def test_refusals(tmp_path, layout, fragment):
    for name in layout:
        if name.endswith("/"):
            (tmp_path / name).mkdir(parents=True)
        else:
            _make(tmp_path, [name])
    with pytest.raises(ValueError, match=fragment):
        scan(tmp_path)


def test_missing_source(tmp_path):
    with pytest.raises(ValueError, match="no such folder"):
        scan(tmp_path / "nope")
