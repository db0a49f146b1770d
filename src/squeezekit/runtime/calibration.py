"""Images for int8 calibration and export checks: folders, zips or the shared data, preprocessed in numpy."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from squeezekit.config import Preprocessing
from squeezekit.preprocessing import ImageError, image_files, is_image_name, load_image, preprocess_input

DEFAULT_CALIBRATION_COUNT = 200
# Photos outside the shared ImageNet sample, so that accuracy measured there stays independent.
IMAGENETTE_ZIP = "imagenette/imagenette2-224-subset.zip"


def _pick(names: list, count: int, seed: int) -> list:
    if len(names) <= count:
        return names
    rng = np.random.default_rng(seed)
    return [names[i] for i in sorted(rng.choice(len(names), size=count, replace=False))]


def default_calibration_source() -> Path | None:
    """The Imagenette train images of SQUEEZEKIT_DATA_DIR, when present."""
    root = os.environ.get("SQUEEZEKIT_DATA_DIR")
    if root and (Path(root) / IMAGENETTE_ZIP).is_file():
        return Path(root) / IMAGENETTE_ZIP
    return None


def calibration_images(
    source: str | os.PathLike | None,
    preprocessing: Preprocessing,
    *,
    count: int = DEFAULT_CALIBRATION_COUNT,
    seed: int = 0,
) -> np.ndarray:
    """Up to ``count`` preprocessed images (N, H, W, 3) float32 from a folder or a zip of images.

    ``None`` takes the default source (Imagenette train images of the shared data), else the sample
    photos. A seeded random subset keeps calibration reproducible. Unreadable files are skipped.
    """
    from squeezekit._progress import progress_bar

    if count < 1:
        raise ValueError(f"Expected a calibration count >= 1. Received: {count}")
    if source is None:
        source = default_calibration_source()
    arrays = []
    if source is None:
        from squeezekit.samples import sample_images

        loaders = [lambda p=p: load_image(p, preprocessing) for p in _pick(sample_images(), count, seed)]
    else:
        path = Path(source)
        if path.is_dir():
            files = image_files(path)
            loaders = [lambda p=p: load_image(p, preprocessing) for p in _pick(files, count, seed)]
        elif path.is_file() and zipfile.is_zipfile(path):
            archive = zipfile.ZipFile(path)
            names = sorted(n for n in archive.namelist() if is_image_name(n) and "/train/" in f"/{n}")
            names = names or sorted(n for n in archive.namelist() if is_image_name(n))
            loaders = [lambda n=n: load_image(io.BytesIO(archive.read(n)), preprocessing) for n in _pick(names, count, seed)]
        else:
            raise ValueError(f"{source}: expected a folder or a zip file of images for calibration")
    with progress_bar(total=len(loaders), desc="calibration images", unit="img") as bar:
        for load in loaders:
            try:
                arrays.append(load())
            except (ImageError, OSError):
                pass
            bar.update(1)
    if not arrays:
        raise ValueError(f"{source}: no readable images for calibration")
    return preprocess_input(np.stack(arrays), preprocessing=preprocessing)
