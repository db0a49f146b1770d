"""The input pipeline's image operations in NumPy and Pillow, for training without TensorFlow.

Each function takes a batch of uint8 NHWC images and a ``numpy.random.Generator`` and returns uint8
images of the crop size; ``preprocess`` then makes the model's float32 input. They do what the
tf.data pipeline (pipeline.py) does, draw for draw in distribution though not in random stream:
center crop and preprocessing give the same floats bit for bit; pad-crop-flip the same set of
possible outputs; random-resized-crop samples boxes the same way but resizes with Pillow's bilinear
filter, which (unlike ``tf.image.resize``) averages over the source pixels when it shrinks.
"""

from __future__ import annotations

import math

import numpy as np

from squeezekit.config import Preprocessing

PAD = 4  # pad-crop-flip's reflection border, in pixels


def center_crop(images: np.ndarray, crop: int) -> np.ndarray:
    offset = (images.shape[1] - crop) // 2
    return images[:, offset:offset + crop, offset:offset + crop]


def pad_crop_flip(images: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A 4-pixel reflection pad, a random crop of ``crop`` pixels, a horizontal flip half of the time."""
    padded = np.pad(images, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)), mode="reflect")
    count = len(images)
    span = padded.shape[1] - crop + 1
    rows = rng.integers(0, span, count)[:, None] + np.arange(crop)
    columns = rng.integers(0, padded.shape[2] - crop + 1, count)[:, None] + np.arange(crop)
    flip = rng.random(count) < 0.5
    columns[flip] = columns[flip, ::-1]
    # One gather for the whole batch: image i takes rows[i] x columns[i].
    return padded[np.arange(count)[:, None, None], rows[:, :, None], columns[:, None, :]]


def sample_box(height: int, width: int, rng: np.random.Generator, *, area_range=(0.25, 1.0),
               aspect_range=(3 / 4, 4 / 3), attempts: int = 10) -> tuple[int, int, int, int]:
    """(top, left, box height, box width): a box of a random share of the area and a random aspect
    ratio (width / height) that fits the image, as ``tf.image.sample_distorted_bounding_box`` draws
    them; the whole image when ``attempts`` draws do not fit."""
    for _ in range(attempts):
        area = rng.uniform(*area_range) * height * width
        aspect = rng.uniform(*aspect_range)
        box_height = int(round(math.sqrt(area / aspect)))
        box_width = int(round(math.sqrt(area * aspect)))
        if 0 < box_height <= height and 0 < box_width <= width:
            top = int(rng.integers(0, height - box_height + 1))
            left = int(rng.integers(0, width - box_width + 1))
            return top, left, box_height, box_width
    return 0, 0, height, width


def random_resized_crop(images: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A random 25-100 % area, 3:4 to 4:3 box of each image resized to ``crop`` pixels, flipped half of the time."""
    from PIL import Image

    out = np.empty((len(images), crop, crop, images.shape[3]), np.uint8)
    for index, image in enumerate(images):
        top, left, box_height, box_width = sample_box(image.shape[0], image.shape[1], rng)
        resized = Image.fromarray(image).resize((crop, crop), Image.Resampling.BILINEAR,
                                                box=(left, top, left + box_width, top + box_height))
        out[index] = np.asarray(resized)[:, ::-1] if rng.random() < 0.5 else np.asarray(resized)
    return out


def preprocess(images: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """uint8 RGB crops -> the model's float32 input: channel order, then (x - mean) * scale, in float32
    as the tf.data pipeline computes it."""
    batch = images.astype(np.float32)
    if preprocessing.channel_order == "BGR":
        batch = batch[..., ::-1]
    mean = np.asarray(preprocessing.mean, np.float32)
    return (batch - mean) * np.float32(preprocessing.scale)


AUGMENT = {
    "none": lambda images, crop, rng: center_crop(images, crop),
    "pad-crop-flip": pad_crop_flip,
    "random-resized-crop": random_resized_crop,
}
