"""A few real photos to try models on, found locally or downloaded and hash-checked.

With ``SQUEEZEKIT_DATA_DIR`` set, the samples are photos of the shared ImageNet sample (one per class);
otherwise the classic Grace Hopper portrait that matplotlib ships (and that TensorFlow's tutorials
classify), downloaded from matplotlib's repository at a fixed release.
"""

from __future__ import annotations

from pathlib import Path

from squeezekit._resources import DataFile, data_dir, resolve

GRACE_HOPPER = DataFile(
    relative_path="samples/grace_hopper.jpg",
    url="https://raw.githubusercontent.com/matplotlib/matplotlib/v3.11.2/lib/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
    sha256="a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
)

# Photos of the shared sample that the pretrained models classify correctly, plus some they do not.
SHARED_SAMPLE_PHOTOS = (
    "n01440764_tench.JPEG", "n01860187_black_swan.JPEG", "n02105162_malinois.JPEG", "n02123045_tabby.JPEG",
    "n02793495_barn.JPEG", "n03662601_lifeboat.JPEG", "n04285008_sports_car.JPEG", "n04487394_trombone.JPEG",
)


def sample_images() -> list[Path]:
    """Paths of a few real photos (see the module docstring)."""
    root = data_dir()
    if root is not None:
        folder = root / "imagenet" / "sample-1000"
        found = [folder / name for name in SHARED_SAMPLE_PHOTOS if (folder / name).is_file()]
        if found:
            return found
    return [resolve(GRACE_HOPPER)]
