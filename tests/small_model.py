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


def write_batch_norm_keras(path: Path, config, labels=("apple", "pear", "plum"), seed: int = 0) -> Path:
    """A .keras model of ``config`` with batch norm and non-trivial batch norm statistics (so that folding
    them is exercised), RGB preprocessing for 32x32 images, and its metadata."""
    from squeezekit.config import Preprocessing
    from squeezekit.formats.metadata import ModelMetadata, write_sidecar
    from squeezekit.models.squeezenet import SqueezeNet

    config = config.replace(batch_norm=True)
    model = SqueezeNet(config, input_shape=(32, 32, 3), classes=len(labels))
    rng = np.random.default_rng(seed)
    kernels = random_arrays(config.replace(batch_norm=False), classes=len(labels), seed=seed)
    bn_values = {"gamma": lambda n: rng.uniform(0.5, 1.5, n), "beta": lambda n: rng.uniform(0, 0.1, n),
                 "moving_mean": lambda n: rng.normal(0, 0.1, n), "moving_variance": lambda n: rng.uniform(0.5, 1.5, n)}
    for weight in model.weights:
        kind = weight.path.rsplit("/", 1)[1]
        if kind in bn_values:
            weight.assign(bn_values[kind](weight.shape[0]).astype("float32"))
        else:
            weight.assign(kernels[weight.path])
    model.save(path)
    write_sidecar(path, ModelMetadata(labels=tuple((c, c) for c in labels), preprocessing=Preprocessing(
        resize=32, crop=32, channel_order="RGB", mean=(127.5,) * 3, scale=1 / 64), source="test",
        extra={"config": config.to_dict()}))
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
