"""Decode a set of labelled images once into a uint8 array, cached on disk.

Small datasets (CIFAR-10's 60,000 32x32 photos are 184 MB decoded; 5,000 Imagenette photos at 224 are
750 MB) fit in memory, and decoding JPEGs again every epoch would keep two cores busy with nothing
else. Files that cannot be decoded are skipped; their names and reasons are kept for the run's log.
The cache heals (``squeezekit._cache``): a damaged or altered copy is decoded again once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from squeezekit.config import Preprocessing
from squeezekit.data.sources import LabelledFiles


@dataclass
class DecodedImages:
    images: np.ndarray  # (N, size, size, 3) uint8 RGB
    labels: np.ndarray  # (N,) int32
    class_names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def _cache_key(files: LabelledFiles, size: int) -> str:
    digest = hashlib.sha256()
    origin = files._zip_path or files._root or ""
    stat = os.stat(origin) if origin and os.path.isfile(origin) else None
    digest.update(json.dumps([origin, stat.st_size if stat else None, stat.st_mtime_ns if stat else None, size,
                              files.class_names]).encode())
    for name, label in zip(files.names, files.labels):
        digest.update(f"{name}\0{label}\n".encode())
    return digest.hexdigest()[:24]


def decode_all(files: LabelledFiles, size: int, *, cache: bool = True, desc: str = "decoding") -> DecodedImages:
    """Every image resized (shorter side) and center-cropped to ``size`` x ``size``, as uint8 RGB."""
    from squeezekit._progress import progress_bar
    from squeezekit._resources import cache_dir
    from squeezekit.preprocessing import ImageError, load_image, why_unreadable

    key = _cache_key(files, size)
    if cache:
        from squeezekit._cache import cached_file

        built = []

        def build(path):
            built.append(decode_all(files, size, cache=False, desc=desc))
            buffer = io.BytesIO()
            np.savez(buffer, images=built[0].images, labels=built[0].labels, skipped=json.dumps(built[0].skipped))
            path.write_bytes(buffer.getvalue())

        path, _ = cached_file(cache_dir() / "datasets" / f"{key}.npz", f"decoded images {key}", build,
                              what="cache of decoded images")
        if built:
            return built[0]
        try:
            with np.load(path, allow_pickle=False) as stored:
                skipped = [tuple(item) for item in json.loads(str(stored["skipped"]))]
                return DecodedImages(stored["images"], stored["labels"], list(files.class_names), skipped)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # changed since its checksum was read
            return decode_all(files, size, cache=False, desc=desc)
    preprocessing = Preprocessing(resize=size, crop=size, mean=(0.0, 0.0, 0.0))

    def load(index: int):
        try:
            return load_image(io.BytesIO(files.read(index)), preprocessing), None
        except (ImageError, OSError) as error:
            return None, why_unreadable(error)

    images = np.empty((len(files), size, size, 3), np.uint8)
    keep = np.zeros(len(files), bool)
    skipped = list(files.skipped)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool, progress_bar(
        total=len(files), desc=desc, unit="img"
    ) as bar:
        for index, (array, error) in enumerate(pool.map(load, range(len(files)), chunksize=64)):
            if array is None:
                skipped.append((files.names[index], error))
            else:
                images[index] = array
                keep[index] = True
            bar.update(1)
    if not keep.any():
        raise ValueError(f"{files.source}: none of the {len(files)} files could be decoded as an image")
    decoded = DecodedImages(images[keep], np.asarray(files.labels, np.int32)[keep], list(files.class_names), skipped)
    return decoded
