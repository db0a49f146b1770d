"""A tiny real dataset for training tests: CIFAR-10 photos of three classes, written as class folders."""

import zipfile

import pytest


def _write_subset(source_zip, root, classes, per_split):
    archive = zipfile.ZipFile(source_zip)
    counts = {}
    for name in archive.namelist():
        parts = name.split("/")
        if len(parts) != 4 or not name.endswith(".jpg") or parts[2] not in classes:
            continue
        split, label = parts[1], parts[2]
        key = (split, label)
        if counts.get(key, 0) >= per_split[split]:
            continue
        counts[key] = counts.get(key, 0) + 1
        target = root / split / label / parts[3]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(name))


@pytest.fixture(scope="session")
def tiny_cifar(data_dir, tmp_path_factory):
    """tiny/{train,test}/{airplane,cat,ship}/*.jpg: 24 training and 8 test photos per class."""
    root = tmp_path_factory.mktemp("tiny-cifar")
    _write_subset(data_dir / "cifar10" / "cifar10-jpeg.zip", root, ("airplane", "cat", "ship"), {"train": 24, "test": 8})
    return root


@pytest.fixture(scope="session")
def tiny_imagenette(data_dir, tmp_path_factory):
    """{train,val}/<wnid>/*.JPEG: 30 training and 10 validation Imagenette photos of three classes."""
    root = tmp_path_factory.mktemp("tiny-imagenette")
    archive = zipfile.ZipFile(data_dir / "imagenette" / "imagenette2-224-subset.zip")
    classes = ("n01440764", "n03417042", "n03888257")  # tench, garbage truck, parachute
    wanted = {"train": 30, "val": 10}
    counts = {}
    for name in sorted(archive.namelist()):
        parts = name.split("/")
        if len(parts) != 4 or parts[2] not in classes or not name.endswith(".JPEG"):
            continue
        key = (parts[1], parts[2])
        if counts.get(key, 0) < wanted.get(parts[1], 0):
            counts[key] = counts.get(key, 0) + 1
            target = root / parts[1] / parts[2] / parts[3]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
    return root
