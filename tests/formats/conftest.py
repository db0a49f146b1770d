"""Fixtures for the file-format tests."""

import pytest

from compression_helpers import SMALL, random_arrays, small_metadata
from squeezekit.compression.api import compress_arrays, prune_arrays


@pytest.fixture(scope="session")
def small_sqz():
    """(bytes, layers) of a small pruned 4-bit model with a complex bypass."""
    from squeezekit.formats.sqz import encode_sqz

    arrays = random_arrays()
    masks = prune_arrays(SMALL, arrays, "conv1=1,*=0.3")
    layers = compress_arrays(SMALL, arrays, bits=4, masks=masks)
    data, _ = encode_sqz(SMALL.to_dict(), small_metadata(), layers)
    return data, layers
