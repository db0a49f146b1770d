"""The Deep Compression release (SqueezeNet v1.0) through the .sqz format, on the real file."""

import numpy as np

from squeezekit.compression.api import from_deep_compression
from squeezekit.formats.sqz import decode_sqz, encode_sqz
from squeezekit.registry import get_preset
from squeezekit.weights.deep_compression import read_deep_compression, read_deep_compression_raw

RELEASE_BYTES = 675_763


def test_lossless_reencoding_is_bit_exact_and_smaller(data_dir):
    folder = data_dir / "weights" / "squeezenet_v1.0_deep_compression"
    net, prototxt = folder / "compressed_SqueezeNet.net", folder / "SqueezeNet_deploy.prototxt"
    assert net.stat().st_size == RELEASE_BYTES
    layers = from_deep_compression(read_deep_compression_raw(net, prototxt))
    metadata = {"format": "squeezekit-model-metadata", "label_set": "imagenet-1k", "labels": [],
                "preprocessing": {}, "source": "test", "extra": {}}
    data, report = encode_sqz(get_preset("squeezenet1_0").replace(classifier_pad=1).to_dict(), metadata, layers)
    decoded = decode_sqz(data)
    reference = read_deep_compression(net, prototxt)  # the release's own reader, dense
    assert len(decoded.layers) == len(reference) == 26
    for layer, (weights, bias) in zip(decoded.layers, reference.values()):
        assert np.array_equal(layer.dense_weights().view(np.uint32), weights.view(np.uint32)), layer.name
        assert np.array_equal(layer.bias.view(np.uint32), bias.view(np.uint32)), layer.name
    # Huffman coding of indices and gaps: about 557 KB against the release's 676 KB.
    assert len(data) == report["total"] < 0.85 * RELEASE_BYTES
