"""Image loading, preprocessing and decoding of predictions: numpy and Pillow only.

The Keras path (``squeezekit evaluate``) and the TensorFlow-free runtime both use these functions, so
a model sees the same pixels whichever engine runs it.
"""

from __future__ import annotations

import os
import warnings
from typing import Sequence

import numpy as np

from squeezekit.config import CAFFE_PREPROCESSING, Preprocessing

# Refuse images whose pixel count could exhaust memory (Pillow warns at 89 MP and errors at twice that;
# we turn its warning into an error as well).
MAX_IMAGE_PIXELS = 89_478_485
# File name endings taken as images wherever squeezekit walks a folder.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def is_image_name(name: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(name))[1].lower() in IMAGE_SUFFIXES


def image_files(folder: str | os.PathLike) -> list:
    """The image files under ``folder``, recursively, sorted; hidden files and non-images left out."""
    from pathlib import Path

    return sorted(p for p in Path(folder).rglob("*")
                  if p.is_file() and is_image_name(p) and not p.name.startswith("."))


def top_k(scores, k: int) -> np.ndarray:
    """Indices of the ``k`` best classes per row, best first; ties keep class order (a stable sort)."""
    scores = np.asarray(scores)
    return np.argsort(-scores, axis=1, kind="stable")[:, : max(1, min(int(k), scores.shape[1]))]


class ImageError(ValueError):
    """An input file is not an image that can be decoded: ``str()`` is ``"PATH: REASON"``."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class ImageBombError(ImageError):
    """An image whose declared size is a decompression bomb: refused before it is decoded."""


def why_unreadable(error: OSError | ImageError) -> str:
    """Why a file could not be read, without its name (listings put the name first, once)."""
    if isinstance(error, ImageError):
        return error.reason
    return error.strerror or str(error)


def load_image(path, preprocessing: Preprocessing = CAFFE_PREPROCESSING) -> np.ndarray:
    """Read an image file as an RGB uint8 array, resized and center-cropped as ``preprocessing`` says.

    Any mode Pillow reads (grayscale, palette, CMYK, RGBA, 16-bit) becomes 8-bit RGB; the EXIF
    orientation is applied; transparency is composited onto white. ``path`` may also be a binary
    file object.
    """
    from PIL import Image, ImageOps

    source = path
    path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "<stream>")
    _refuse_bombs_with_an_error(Image)
    try:
        with Image.open(source) as image:
            # Checked here as well: Pillow only warns between its two limits, and a caller's own
            # warnings filters (pytest's, say) can take precedence over the error filter.
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(
                    f"Image size ({image.width * image.height} pixels) exceeds limit of {MAX_IMAGE_PIXELS} pixels"
                )
            image.load()
            # In place, and no conversion of an RGB image: copying the whole photo twice cost 15 % of
            # a decode (500x375 JPEGs), which `predict FOLDER` pays on the cores the engine needs.
            ImageOps.exif_transpose(image, in_place=True)
            # Inside the block: closing the file releases the pixels of an image that was not copied.
            return resize_and_crop(_to_rgb(image), preprocessing)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageBombError(path, f"refused as a decompression bomb ({_reason(error, source)})") from None
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(path, f"not a readable image ({_reason(error, source)})") from None


def _refuse_bombs_with_an_error(Image) -> None:
    """Make Pillow's decompression-bomb warning an error, for the whole process, unless a filter names it.

    A ``catch_warnings`` block per call is not thread-safe before Python 3.14: the filters are
    process-wide, so a loader thread leaving its block restored them while another was decoding, and
    the warning reached stderr besides the error. One permanent filter, for this one category, has no
    such window.
    """
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    if any(category is Image.DecompressionBombWarning for _action, _message, category, *_ in warnings.filters):
        return  # ours, or the caller's own choice; the size check in load_image refuses bombs either way
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def _reason(error: BaseException, source) -> str:
    """Pillow's message without the file it names (ours names it once, first) or the repr of a stream."""
    message = str(error)
    for shown in (repr(os.fspath(source)), os.fspath(source)) if isinstance(source, (str, os.PathLike)) else (repr(source),):
        message = message.replace(f" {shown}", "").replace(shown, "")
    return message.strip() or type(error).__name__


def _to_rgb(image):
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit integer) grayscale: scale to 8 bits instead of clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image if image.mode == "RGB" else image.convert("RGB")


def resize_and_crop(image, preprocessing: Preprocessing = CAFFE_PREPROCESSING) -> np.ndarray:
    """Resize the shorter side to ``preprocessing.resize`` (bilinear), center-crop ``preprocessing.crop``.

    The longer side becomes ``round(long * resize / short)``; the crop's offset is
    ``(size - crop) // 2``, so an odd margin leaves its extra pixel at the right and bottom.
    """
    width, height = image.size
    short = min(width, height)
    if short != preprocessing.resize:
        from PIL import Image

        target = preprocessing.resize
        if width <= height:
            size = (target, max(target, round(height * target / width)))
        else:
            size = (max(target, round(width * target / height)), target)
        image = image.resize(size, Image.BILINEAR)
        width, height = image.size
    left, top = (width - preprocessing.crop) // 2, (height - preprocessing.crop) // 2
    image = image.crop((left, top, left + preprocessing.crop, top + preprocessing.crop))
    return np.asarray(image, dtype=np.uint8)


def preprocess_input(x, data_format: str | None = None, preprocessing: Preprocessing = CAFFE_PREPROCESSING) -> np.ndarray:
    """Turn RGB images with values in 0..255 into what the weights expect (keras.applications style).

    Args:
        x: array of shape (..., height, width, 3) for channels_last or (..., 3, height, width) for
            channels_first, RGB, 0..255.
        data_format: "channels_last" (default) or "channels_first".
        preprocessing: the weights' ``Preprocessing``; the default is the Caffe convention of the
            pretrained SqueezeNets (BGR, mean [104, 117, 123] subtracted, no scaling).

    Returns:
        A float32 numpy array of the same shape.
    """
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"Expected data_format 'channels_last' or 'channels_first'. Received: {data_format!r}")
    x = np.asarray(x)
    axis = -1 if data_format == "channels_last" else -3
    if x.ndim < 3 or x.shape[axis] != 3:
        raise ValueError(f"Expected RGB images with 3 channels on axis {axis}. Received shape: {x.shape}")
    # Channel by channel into a new float32 array, then the mean over whole rows: the same arithmetic
    # as (flip(x) - mean) * scale, 4x faster on uint8 batches (numpy's loops over a reversed innermost
    # axis of 3 are not vectorised), which matters where images are decoded beside an engine.
    out = np.empty(x.shape, np.float32)
    order = (2, 1, 0) if preprocessing.channel_order == "BGR" else (0, 1, 2)
    mean = np.asarray(preprocessing.mean, np.float32)
    for channel, source in enumerate(order):
        if axis == -1:
            out[..., channel] = x[..., source]
        else:
            np.subtract(x[..., source, :, :], mean[channel], out=out[..., channel, :, :], dtype=np.float32)
    if axis == -1:
        rows = out.reshape(-1, out.shape[-2] * 3)
        rows -= np.tile(mean, out.shape[-2])
    if preprocessing.scale != 1:
        out *= np.float32(preprocessing.scale)
    return out


def decode_predictions(preds, top: int = 5, labels: Sequence[tuple[str, str]] | None = None):
    """Top-``top`` classes per image as lists of ``(wnid, name, probability)``, best first.

    ``labels`` is a sequence of (wnid, name) in class-index order; by default the ImageNet-1k class
    list (resolved from ``SQUEEZEKIT_DATA_DIR`` or downloaded and hash-checked).
    """
    preds = np.asarray(preds)
    if preds.ndim != 2:
        raise ValueError(f"Expected a 2-D batch of class scores. Received shape: {preds.shape}")
    if labels is None:
        from squeezekit.labels import imagenet_labels

        labels = imagenet_labels()
    if preds.shape[1] != len(labels):
        raise ValueError(f"Expected {len(labels)} class scores per image. Received shape: {preds.shape}")
    return [[(labels[i][0], labels[i][1], float(row[i])) for i in best] for row, best in zip(preds, top_k(preds, top))]
