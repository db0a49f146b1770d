"""The input pipelines: the NumPy one (no TensorFlow) against independent references and against tf.data."""

import numpy as np
import pytest

from squeezekit.config import Preprocessing
from squeezekit.data.augment import pad_crop_flip, preprocess, random_resized_crop, sample_box

CIFAR = Preprocessing(resize=32, crop=32, channel_order="RGB", mean=(125.3, 123.0, 113.9), scale=1 / 63.0)
CAFFE = Preprocessing(resize=40, crop=32)  # BGR, mean subtraction: the Caffe convention


def _images(count=12, size=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def _reflect(index, length):
    """numpy-free reflection (no edge repeat), as tf.pad(mode='REFLECT') defines it."""
    if index < 0:
        return -index
    if index >= length:
        return 2 * (length - 1) - index
    return index


def _candidates(image, crop=32, pad=4):
    """Every output pad-crop-flip may give for one image, built pixel by pixel."""
    size = image.shape[0]
    padded = np.empty((size + 2 * pad, size + 2 * pad, 3), np.uint8)
    for row in range(size + 2 * pad):
        for column in range(size + 2 * pad):
            padded[row, column] = image[_reflect(row - pad, size), _reflect(column - pad, size)]
    windows = [padded[r:r + crop, c:c + crop] for r in range(size + 2 * pad - crop + 1) for c in range(size + 2 * pad - crop + 1)]
    return windows + [w[:, ::-1] for w in windows]


def test_pad_crop_flip_gives_reflected_windows_and_every_offset_and_flip():
    images = _images(4, size=32)
    rng = np.random.default_rng(1)
    outputs = pad_crop_flip(images, 32, rng)
    assert outputs.shape == (4, 32, 32, 3) and outputs.dtype == np.uint8
    for image, output in zip(images, outputs):
        assert any(np.array_equal(output, candidate) for candidate in _candidates(image))
    # All 9 x 9 offsets and both flips occur: one image, many draws.
    candidates = _candidates(images[0])
    seen = set()
    for _ in range(40):
        for output in pad_crop_flip(np.repeat(images[:1], 32, axis=0), 32, rng):
            seen.add(next(i for i, c in enumerate(candidates) if np.array_equal(output, c)))
    assert len(seen) == len(candidates) == 162


def test_sample_box_respects_area_and_aspect_and_falls_back_to_the_whole_image():
    rng = np.random.default_rng(2)
    boxes = np.array([sample_box(256, 200, rng) for _ in range(2000)])
    top, left, height, width = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + height <= 256).all() and (left + width <= 200).all()
    share = height * width / (256 * 200)
    # Uniform in 25-100 %, less the large boxes of extreme aspect ratios that do not fit (redrawn).
    assert share.min() > 0.24 and share.max() <= 1.0 and 0.45 < share.mean() < 0.65
    aspect = width / height
    assert aspect.min() > 0.74 and aspect.max() < 1.35
    assert sample_box(30, 30, rng, area_range=(2.0, 3.0)) == (0, 0, 30, 30)


def test_random_resized_crop_resizes_the_box_like_tf_image_resize_when_it_enlarges(monkeypatch):
    tf = pytest.importorskip("tensorflow")
    from PIL import Image

    import squeezekit.data.augment as augment

    # A smooth photo-like image: bilinear interpolation differs from TF's only by rounding there.
    noise = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(noise).resize((128, 128), Image.Resampling.BICUBIC))
    monkeypatch.setattr(augment, "sample_box", lambda *args, **kwargs: (10, 5, 100, 120))

    class NoFlip:
        def random(self):
            return 0.9

    output = random_resized_crop(image[None], 227, NoFlip())[0].astype(float)
    expected = np.clip(np.round(tf.image.resize(image[10:110, 5:125], [227, 227]).numpy()), 0, 255)
    # Inside, only rounding differs; on the edge rows Pillow reads the pixels just outside the box.
    inside = np.abs(output - expected)[3:-3, 3:-3]
    assert inside.mean() < 0.3 and inside.max() <= 1


@pytest.mark.parametrize("preprocessing", [CIFAR, CAFFE], ids=["rgb-scaled", "bgr-mean"])
def test_evaluation_batches_equal_tf_data_bit_for_bit(preprocessing):
    pytest.importorskip("tensorflow")
    from squeezekit.data.pipeline import make_dataset

    images, labels = _images(10), np.arange(10) % 3
    options = dict(batch_size=4, preprocessing=preprocessing, training=False, num_classes=3)
    numpy_batches = list(make_dataset(images, labels, input_pipeline="numpy", **options))
    tf_batches = [(x.numpy(), y.numpy()) for x, y in make_dataset(images, labels, input_pipeline="tf.data", **options)]
    assert len(numpy_batches) == len(tf_batches) == 3
    for (x, y), (tx, ty) in zip(numpy_batches, tf_batches):
        assert x.dtype == tx.dtype == np.float32
        np.testing.assert_array_equal(x, tx)
        np.testing.assert_array_equal(y, ty)
    # And against the definition: center crop, channel order, (x - mean) * scale.
    offset = (40 - 32) // 2
    crop = images[:4, offset:offset + 32, offset:offset + 32].astype(np.float32)
    if preprocessing.channel_order == "BGR":
        crop = crop[..., ::-1]
    np.testing.assert_allclose(numpy_batches[0][0], (crop - np.float32(preprocessing.mean)) * preprocessing.scale, rtol=1e-6)


def test_training_batches_are_seeded_cover_every_image_once_and_reshuffle_each_epoch():
    pytest.importorskip("keras")
    from squeezekit.data.pipeline import make_dataset

    images = _images(50, size=32)
    labels = np.arange(50)  # a label per image: which images a batch holds
    make = lambda **kw: make_dataset(images, labels, batch_size=16, preprocessing=CIFAR, training=True,  # noqa: E731
                                     augmentation="pad-crop-flip", input_pipeline="numpy", **kw)
    data = make(seed=5)
    assert len(data) == 4
    first = [data[i] for i in range(len(data))]
    assert sorted(np.concatenate([y for _, y in first]).tolist()) == list(range(50))
    again = make(seed=5)
    for (x, y), (x2, y2) in zip(first, (again[i] for i in range(4))):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    data.on_epoch_end()
    second = np.concatenate([data[i][1] for i in range(4)])
    assert sorted(second.tolist()) == list(range(50)) and second.tolist() != np.concatenate([y for _, y in first]).tolist()
    # A resumed run at epoch 1 draws what epoch 1 of the uninterrupted run drew.
    resumed = make(seed=5, first_epoch=1)
    np.testing.assert_array_equal(np.concatenate([resumed[i][1] for i in range(4)]), second)
    np.testing.assert_array_equal(resumed[0][0], data[0][0])
    with pytest.raises(IndexError):
        data[4]
    one_hot = make_dataset(images, labels % 3, batch_size=16, preprocessing=CIFAR, training=False, num_classes=3,
                           input_pipeline="numpy")[0][1]
    np.testing.assert_array_equal(one_hot, np.eye(3, dtype=np.float32)[np.arange(16) % 3])


def test_unknown_pipeline_and_augmentation_are_refused():
    from squeezekit.data.pipeline import make_dataset

    images, labels = _images(2), np.zeros(2)
    with pytest.raises(ValueError, match="input pipeline"):
        make_dataset(images, labels, batch_size=2, preprocessing=CIFAR, training=True, input_pipeline="grain")
    with pytest.raises(ValueError, match="augmentation"):
        make_dataset(images, labels, batch_size=2, preprocessing=CIFAR, training=True, augmentation="mixup")
