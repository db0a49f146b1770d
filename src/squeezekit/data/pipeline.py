"""Input pipelines over decoded images, usable by every Keras backend: tf.data, or NumPy without TensorFlow.

``tf.data``: augmentation runs per image in parallel map calls; preprocessing (channel order, mean,
scale) runs once per batch. Keras' ``fit`` takes a ``tf.data.Dataset`` on the TensorFlow, JAX and
PyTorch backends. ``numpy`` (batches.py, augment.py): the same operations on whole batches in worker
threads, for JAX and PyTorch users without TensorFlow.
"""

from __future__ import annotations

import numpy as np

from squeezekit.config import Preprocessing

AUGMENTATIONS = ("none", "pad-crop-flip", "random-resized-crop")
INPUT_PIPELINES = ("auto", "tf.data", "numpy")


def resolve_input_pipeline(name: str = "auto") -> str:
    """``auto``: tf.data on the TensorFlow backend (where Keras feeds a PyDataset through a slower
    generator), NumPy on the others, which then need no TensorFlow (benchmarks/input_pipeline.py)."""
    if name not in INPUT_PIPELINES:
        raise ValueError(f"Expected an input pipeline in {INPUT_PIPELINES}. Received: {name!r}")
    if name != "auto":
        return name
    import keras

    return "tf.data" if keras.backend.backend() == "tensorflow" else "numpy"


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    preprocessing: Preprocessing,
    training: bool,
    augmentation: str = "none",
    num_classes: int | None = None,
    seed: int = 0,
    first_epoch: int = 0,
    input_pipeline: str = "auto",
):
    """Batches of (preprocessed float32 NHWC images, labels) — one-hot labels if ``num_classes`` is given.

    ``pad-crop-flip`` (32x32 data): 4-pixel reflection pad, random crop, horizontal flip.
    ``random-resized-crop`` (ImageNet-like): a random 25-100 % area, 3:4 to 4:3 box resized to the
    crop size, horizontal flip. Without augmentation (and for evaluation) the center crop is taken.
    ``first_epoch``: the epoch a resumed run starts at, so that it does not repeat the first epoch's draws.
    """
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"Expected augmentation in {AUGMENTATIONS}. Received: {augmentation!r}")
    options = dict(batch_size=batch_size, preprocessing=preprocessing, training=training,
                   augmentation=augmentation, num_classes=num_classes)
    if resolve_input_pipeline(input_pipeline) == "numpy":
        from squeezekit.data.batches import ImageBatches

        return ImageBatches(images, labels, seed=seed, first_epoch=first_epoch, **options)
    # tf.data's shuffle has no epoch counter of its own: a resumed run shifts the seed instead.
    return _tf_dataset(images, labels, seed=seed + first_epoch, **options)


def _tf_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    preprocessing: Preprocessing,
    training: bool,
    augmentation: str = "none",
    num_classes: int | None = None,
    seed: int = 0,
):
    import tensorflow as tf

    crop = preprocessing.crop
    stored = images.shape[1]
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if training:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

    def center(image, label):
        offset = (stored - crop) // 2
        return tf.image.crop_to_bounding_box(image, offset, offset, crop, crop), label

    def pad_crop_flip(image, label):
        padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]], mode="REFLECT")
        image = tf.image.random_crop(padded, [crop, crop, 3])
        return tf.image.random_flip_left_right(image), label

    def random_resized_crop(image, label):
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            tf.shape(image), tf.zeros([0, 0, 4], tf.float32), min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.25, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True,
        )
        image = tf.slice(image, begin, size)
        image = tf.image.resize(image, [crop, crop], method="bilinear")
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return tf.image.random_flip_left_right(image), label

    transform = {"none": center, "pad-crop-flip": pad_crop_flip, "random-resized-crop": random_resized_crop}
    dataset = dataset.map(transform[augmentation] if training else center, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size)

    order = [2, 1, 0] if preprocessing.channel_order == "BGR" else [0, 1, 2]
    mean = tf.constant(preprocessing.mean, tf.float32)
    scale = tf.constant(preprocessing.scale, tf.float32)

    def preprocess(batch, label):
        batch = tf.gather(tf.cast(batch, tf.float32), order, axis=-1)
        if num_classes is not None:
            label = tf.one_hot(label, num_classes)
        return (batch - mean) * scale, label

    return dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
