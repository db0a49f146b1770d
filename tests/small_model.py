"""A small random SqueezeNet saved as a .keras file with its metadata, and a labelled folder of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compression_helpers import LABELS, SMALL, random_arrays, small_metadata


def write_small_keras(path: Path, seed: int = 4) -> Path:
    from squeezekit.formats.metadata import ModelMetadata, write_sidecar
    from squeezekit.models.squeezenet import SqueezeNet
    from squeezekit.weights.convert import assign_arrays

    model = SqueezeNet(SMALL, classes=3, input_shape=(32, 32, 3))
    assign_arrays(model, random_arrays(SMALL, classes=3, seed=seed))
    model.save(path)
    write_sidecar(path, ModelMetadata.from_dict(dict(small_metadata(), extra={"config": SMALL.to_dict()})))
    return path


def write_images(folder: Path, per_class: int = 8) -> Path:
    """``folder/<class id>/<i>.png``: random 40x40 images, one folder per label of the small model."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for class_id, _ in LABELS:
        (folder / class_id).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / class_id / f"{i}.png")
    return folder
