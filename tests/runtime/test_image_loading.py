"""Image loading as the runtime does it: in several threads at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest
from PIL import Image

from squeezekit.preprocessing import MAX_IMAGE_PIXELS, ImageError, load_image


@pytest.fixture
def bomb(tmp_path):
    """144 megapixels in a few KB: over Pillow's warning limit (which squeezekit refuses), under its error limit."""
    path = tmp_path / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(path)
    assert MAX_IMAGE_PIXELS < 12_000 * 12_000 < 2 * MAX_IMAGE_PIXELS
    return path


def test_a_bomb_is_refused_even_when_the_caller_ignores_pillows_warning(bomb):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        with pytest.raises(ImageError, match="bomb.png: refused as a decompression bomb"):
            load_image(bomb)


def test_bombs_loaded_in_parallel_are_refused_without_printing_pillows_warning(bomb):
    # load_image used to turn the warning into an error inside warnings.catch_warnings(); the filters are
    # process-wide before Python 3.14, so a thread leaving its block reset them for another thread, which
    # printed the warning besides refusing the file (CI's `squeezekit predict` printed it on stderr).
    script = textwrap.dedent(f"""
        from concurrent.futures import ThreadPoolExecutor
        from squeezekit.preprocessing import ImageError, load_image

        def load(_):
            try:
                load_image({str(bomb)!r})
            except ImageError as error:
                return "refused as a decompression bomb" in error.reason
            return False

        with ThreadPoolExecutor(4) as pool:
            refused = list(pool.map(load, range(2000)))
        print(sum(refused))
    """)
    proc = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2000"]
    assert proc.stderr == ""
