"""Find labelled images: class folders, zips of class folders, and their train/val/test splits.

A source is a folder or a zip file. Inside, images sit in one folder per class, either directly
(``DATA/<class>/*``) or under split folders (``DATA/train/<class>/*`` and ``DATA/test/<class>/*`` or
``val/``), possibly below one top folder, as in ``cifar10-jpeg.zip`` (``cifar10/train/airplane/...``)
and ``imagenette2-224-subset.zip`` (``imagenette2-224/val/n01440764/...``).
"""

from __future__ import annotations

import io
import os
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from squeezekit.preprocessing import is_image_name

TRAIN_SPLITS = ("train",)
EVAL_SPLITS = ("val", "test", "validation")


@dataclass
class LabelledFiles:
    """Image files with class indices; ``read(i)`` gives the bytes of file ``i``."""

    names: list[str]
    labels: list[int]
    class_names: list[str]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    _zip_path: str | None = None
    _root: str | None = None

    def __len__(self) -> int:
        return len(self.names)

    def read(self, index: int) -> bytes:
        if self._zip_path is not None:
            return _zip(self._zip_path).read(self.names[index])
        return Path(self._root, self.names[index]).read_bytes()

    def subset(self, indices) -> "LabelledFiles":
        return LabelledFiles([self.names[i] for i in indices], [self.labels[i] for i in indices], self.class_names,
                             self.source, [], self._zip_path, self._root)


_HANDLES = threading.local()


def _zip(path: str) -> zipfile.ZipFile:
    """A zip handle per thread and path: one ZipFile must not be read from two threads at once."""
    handles = getattr(_HANDLES, "zips", None)
    if handles is None:
        handles = _HANDLES.zips = {}
    if path not in handles:
        handles[path] = zipfile.ZipFile(path)
    return handles[path]


def _listing(source: Path, *, folders: bool = False):
    """All file paths relative to the source, and how to read them (zip path or folder root).

    With ``folders=True``, the folder paths are returned instead of the files.
    """
    if source.is_dir():
        entries = [PurePosixPath(p.relative_to(source).as_posix()) for p in sorted(source.rglob("*"))
                   if (p.is_dir() if folders else p.is_file())]
        return entries, None, str(source)
    if source.is_file() and zipfile.is_zipfile(source):
        infos = _zip(str(source)).infolist()
        if folders:
            # Zips list folders as entries of their own, or only implicitly through the files' paths.
            entries = {PurePosixPath(i.filename.rstrip("/")) for i in infos if i.is_dir()}
            entries |= {parent for i in infos for parent in PurePosixPath(i.filename).parents if str(parent) != "."}
            return sorted(entries), str(source), None
        members = [PurePosixPath(info.filename) for info in infos if not info.is_dir()]
        return sorted(members), str(source), None
    if source.exists():
        raise ValueError(f"{source}: neither a folder nor a zip file of images")
    raise ValueError(f"{source}: no such folder or zip file")


def _class_root(files: list[PurePosixPath], split: str | None) -> tuple[PurePosixPath | None, list[str]]:
    """The folder holding the class folders (for a split, if given), and the splits present."""
    parents = {f.parent for f in files if not any(part.startswith(".") or part == "__MACOSX" for part in f.parts)}
    splits_found: set[str] = set()
    candidates: dict[PurePosixPath, int] = {}
    for folder in parents:
        # .../<split>/<class>/file or .../<class>/file
        class_root = folder.parent
        if class_root.name in TRAIN_SPLITS + EVAL_SPLITS:
            splits_found.add(class_root.name)
        candidates[class_root] = candidates.get(class_root, 0) + 1
    if split is not None:
        roots = [r for r in candidates if r.name == split]
        return (min(roots, key=lambda r: len(r.parts)) if roots else None), sorted(splits_found)
    if splits_found:
        return None, sorted(splits_found)
    # No splits: the shallowest folder whose subfolders hold the files.
    return (min(candidates, key=lambda r: (len(r.parts), -candidates[r])) if candidates else None), []


def scan(source: str | os.PathLike, split: str | None = None) -> LabelledFiles:
    """The labelled images of ``source`` (a split of it if ``split`` is given)."""
    path = Path(source)
    files, zip_path, root = _listing(path)
    class_root, splits = _class_root(files, split)
    if class_root is None:
        if split is None and splits:
            raise ValueError(f"{source}: holds the splits {splits}; say which to use")
        where = f" split {split!r}" if split else ""
        raise ValueError(f"{source}{where}: no class folders with images found (expected DATA/<class>/<image>)")
    names, labels, skipped = [], [], []
    members = [f for f in files if len(f.parts) > len(class_root.parts) + 1 and f.parts[: len(class_root.parts)] == class_root.parts]
    classes = sorted({f.parts[len(class_root.parts)] for f in members if not f.parts[len(class_root.parts)].startswith(".")})
    index = {name: i for i, name in enumerate(classes)}
    for f in members:
        class_name = f.parts[len(class_root.parts)]
        if class_name not in index or f.name.startswith("."):
            continue
        if not is_image_name(f.name):
            skipped.append((str(f), "not an image file name"))
            continue
        names.append(str(f))
        labels.append(index[class_name])
    folders, _, _ = _listing(path, folders=True)
    class_folders = {f.name for f in folders if f.parent == class_root and not f.name.startswith(".")}
    counts = [labels.count(i) for i in range(len(classes))]
    empty = sorted(class_folders - set(classes)) + [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        raise ValueError(f"{source}: class folders without images: {empty[:10]}")
    if len(classes) < 2:
        raise ValueError(f"{source}: found {len(classes)} class ({classes}); a classifier needs at least 2")
    description = f"{source}" + (f" [{split}]" if split else "")
    return LabelledFiles(names, labels, classes, description, skipped, zip_path, root)


def splits_of(source: str | os.PathLike) -> list[str]:
    files, _, _ = _listing(Path(source))
    return _class_root(files, None)[1]


def open_image_bytes(data: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(data))
