"""Image loading as the runtime does it: in several threads at once."""

from __future__ import annotations

import warnings

import pytest
from PIL import Image

from squeezekit.preprocessing import MAX_IMAGE_PIXELS, ImageError, load_image


def test_bomb_is_refused_even_when_another_thread_has_reset_the_warning_filter(tmp_path, monkeypatch):
    # load_image makes Pillow's DecompressionBombWarning an error inside warnings.catch_warnings(), but the
    # filters are process-wide: a loading thread that leaves its block restores the filters another thread
    # is relying on. Before the explicit size check, about 1 bomb in 400 got through in 4 threads.
    path = tmp_path / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(path)
    assert MAX_IMAGE_PIXELS < 12_000 * 12_000 < 2 * MAX_IMAGE_PIXELS  # a warning for Pillow, not an error
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        monkeypatch.setattr(warnings, "simplefilter", lambda *args, **kwargs: None)  # the filter stays "ignore"
        with pytest.raises(ImageError, match="bomb.png: refused as a decompression bomb"):
            load_image(path)
