"""Image loading and preprocessing (numpy and Pillow only), against hand-made images."""

import numpy as np
import pytest
from PIL import Image

from squeezekit.config import Preprocessing
from squeezekit.preprocessing import ImageError, decode_predictions, load_image, preprocess_input, resize_and_crop

SMALL = Preprocessing(resize=8, crop=6)


def _save(tmp_path, image, name, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def test_resize_shorter_side_and_center_crop():
    # A 16x8 (w x h) gradient: shorter side 8 stays, crop 6 takes columns 5..10 and rows 1..6.
    array = np.arange(16, dtype=np.uint8)[None, :, None].repeat(8, 0).repeat(3, 2) * 10
    out = resize_and_crop(Image.fromarray(array), SMALL)
    assert out.shape == (6, 6, 3)
    np.testing.assert_array_equal(out[0, :, 0], array[0, 5:11, 0])


def test_resize_keeps_aspect_ratio():
    out = resize_and_crop(Image.new("RGB", (30, 20), (10, 20, 30)), SMALL)
    assert out.shape == (6, 6, 3) and (out == [10, 20, 30]).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("L", (10, 10), 128),
        lambda: Image.new("RGB", (10, 10), (128, 128, 128)).convert("P", palette=Image.Palette.ADAPTIVE),
        lambda: Image.new("CMYK", (10, 10), (0, 0, 0, 127)),
    ],
    ids=["grayscale", "palette", "cmyk"],
)
def test_modes_become_rgb(tmp_path, make):
    image = make()
    path = _save(tmp_path, image, "x.tiff" if image.mode == "CMYK" else "x.png")
    out = load_image(path, SMALL)
    assert out.shape == (6, 6, 3) and out.dtype == np.uint8
    assert np.all(np.abs(out.astype(int) - 128) <= 2)


def test_rgba_is_composited_on_white(tmp_path):
    path = _save(tmp_path, Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "clear.png")
    assert (load_image(path, SMALL) == 255).all()


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    path = _save(tmp_path, Image.fromarray(np.full((10, 10), 32768, np.uint16)), "deep.png")
    out = load_image(path, SMALL)
    assert np.all(np.abs(out.astype(int) - 128) <= 1)


def test_exif_orientation_is_applied(tmp_path):
    # Stored 20 wide x 10 high, left half black; orientation 6 means "rotate 90 degrees clockwise to view".
    array = np.full((10, 20, 3), 255, np.uint8)
    array[:, :10] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(tmp_path, Image.fromarray(array), "rotated.jpg", exif=exif, quality=95)
    out = load_image(path, Preprocessing(resize=10, crop=10))
    assert out.shape == (10, 10, 3)
    # Viewed upright the image is 10 wide x 20 high: after the crop of the middle rows the black half is on top.
    # The stored left half (black) ends up at the top after a clockwise rotation.
    assert out[:4].mean() < 60 and out[-4:].mean() > 200


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_unreadable_files_raise_image_error(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="bad.png"):
        load_image(path)


def test_decompression_bomb_is_refused(tmp_path):
    # A 1-bit image of 12,000 x 12,000 pixels (144 MP) is a few KB on disk.
    path = _save(tmp_path, Image.new("1", (12_000, 12_000)), "bomb.png")
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(path)


def test_preprocess_input_caffe_convention():
    rgb = np.array([[[[10.0, 20.0, 30.0]]]])
    out = preprocess_input(rgb)
    np.testing.assert_allclose(out[0, 0, 0], [30 - 104, 20 - 117, 10 - 123])
    first = preprocess_input(rgb.transpose(0, 3, 1, 2), data_format="channels_first")
    np.testing.assert_allclose(first[0, :, 0, 0], out[0, 0, 0])
    with pytest.raises(ValueError, match="3 channels"):
        preprocess_input(np.zeros((1, 4, 4, 4)))


@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.float32])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("preprocessing", [Preprocessing(), Preprocessing(channel_order="RGB", mean=(125.3, 123.0, 113.9),
                                                                          scale=1 / 63.0)], ids=["caffe", "cifar"])
def test_preprocess_input_is_exactly_the_formula(dtype, data_format, preprocessing):
    """Bit for bit (channels reordered - mean) * scale in float32, whatever the input type and layout,
    with and without a batch axis."""
    rng = np.random.default_rng(0)
    axis = -1 if data_format == "channels_last" else -3
    for shape in ((4, 9, 7, 3), (9, 7, 3)) if axis == -1 else ((4, 3, 9, 7), (3, 9, 7)):
        x = rng.uniform(0, 255, shape).astype(dtype)
        order = [2, 1, 0] if preprocessing.channel_order == "BGR" else [0, 1, 2]
        mean_shape = [1] * len(shape)
        mean_shape[axis] = 3
        expected = ((np.take(x.astype(np.float32), order, axis=axis) - np.float32(preprocessing.mean).reshape(mean_shape))
                    * np.float32(preprocessing.scale))
        out = preprocess_input(x, data_format, preprocessing)
        assert out.dtype == np.float32 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, expected)


def test_decode_predictions_orders_and_labels():
    labels = [("a", "alpha"), ("b", "beta"), ("c", "gamma")]
    decoded = decode_predictions(np.array([[0.1, 0.7, 0.2]]), top=2, labels=labels)
    assert decoded == [[("b", "beta", pytest.approx(0.7)), ("c", "gamma", pytest.approx(0.2))]]
    with pytest.raises(ValueError, match="3 class scores"):
        decode_predictions(np.zeros((1, 4)), labels=labels)
