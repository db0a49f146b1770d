"""Tests of the pure-numpy weight readers on the real files and on synthesized, corrupted ones.

The real files come from ``SQUEEZEKIT_DATA_DIR`` through the ``data_dir`` fixture. Corruption tests
use small synthesized files so that *every* truncation point and many random bit flips can be tried
quickly; the contract is that a reader either returns a result or raises ``WeightFileError``, never
any other exception.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezekit.weights.caffemodel import (
    encode_caffemodel,
    git_blob_sha1,
    read_caffemodel,
    read_net_blobs,
    write_caffemodel,
)
from squeezekit.weights.deep_compression import (
    CODEBOOK_SIZE,
    DeepCompressionLayer,
    conv_shapes,
    decode_layer_entries,
    encode_deep_compression,
    read_deep_compression,
    read_deep_compression_raw,
)
from squeezekit.errors import WeightFileError
from squeezekit.weights.openvino_ir import read_openvino_ir
from squeezekit.weights.prototxt import conv_layers, parse_prototxt, pool_layers

V10 = Path("weights/squeezenet_v1.0_deep_compression")
V11 = Path("weights/squeezenet_v1.1_openvino_ir_fp16")
V10_PARAMS = 1_248_424
V10_STORED_ENTRIES = 422_083
V11_PARAMS = 1_235_496

# ---------------------------------------------------------------------------------------------
# prototxt


def _parse_file(path: Path) -> dict:
    return parse_prototxt(path.read_text(), str(path))


@pytest.mark.data
def test_prototxt_v10_layers(data_dir: Path) -> None:
    parsed = _parse_file(data_dir / V10 / "SqueezeNet_deploy.prototxt")
    assert parsed["input_dim"] == [1, 3, 227, 227]
    convs = conv_layers(parsed)
    assert len(convs) == 26
    assert convs[0] == {
        "name": "conv1", "bottom": "data", "top": "conv1", "num_output": 96, "kernel_size": 7,
        "stride": 2, "pad": 0, "group": 1, "in_channels": 3,
    }  # fmt: skip
    final = convs[-1]
    assert (final["name"], final["kernel_size"], final["pad"], final["in_channels"]) == ("conv_final", 1, 1, 512)
    # Input channels are resolved through the Concat layers: fire3's squeeze reads 64 + 64.
    assert convs[4]["name"] == "fire3/conv1x1_1" and convs[4]["in_channels"] == 128
    pools = pool_layers(parsed)
    assert [(p["name"], p["pool"], p["kernel_size"], p["stride"], p["global_pooling"]) for p in pools] == [
        ("pool1", "MAX", 3, 2, False),
        ("pool4", "MAX", 3, 2, False),
        ("pool8", "MAX", 3, 2, False),
        ("pool_final", "AVE", None, 1, True),
    ]


@pytest.mark.data
def test_prototxt_v11_layers(data_dir: Path) -> None:
    parsed = _parse_file(data_dir / V11 / "deepscale_v1.1_deploy.prototxt")
    convs = conv_layers(parsed)
    assert len(convs) == 26
    assert [c["name"] for c in convs[:4]] == ["conv1", "fire2/squeeze1x1", "fire2/expand1x1", "fire2/expand3x3"]
    assert (convs[0]["num_output"], convs[0]["kernel_size"], convs[0]["stride"], convs[0]["in_channels"]) == (64, 3, 2, 3)
    assert convs[3]["pad"] == 1
    assert convs[-1]["name"] == "conv10" and convs[-1]["pad"] == 0
    assert [p["name"] for p in pool_layers(parsed)] == ["pool1", "pool3", "pool5", "pool10"]


def test_parse_prototxt_scalars_messages_and_repeats() -> None:
    text = """
    # a comment
    name: "a \\"quoted\\" name"   # trailing comment
    layer { name: 'x' type: "Input" top: "data" input_param: { shape { dim: 2 dim: 5 dim: 8 dim: 8 } } }
    layer {
      name: "c" type: "Convolution" bottom: "data" top: "c"
      convolution_param { num_output: 4 kernel_h: 3 kernel_w: 3 stride: 2 bias_term: false }
      param { lr_mult: 1.5e-1 }
    }
    layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { pool: AVE kernel_size: 2 } }
    """
    parsed = parse_prototxt(text)
    assert parsed["name"] == 'a "quoted" name'
    assert isinstance(parsed["layer"], list) and len(parsed["layer"]) == 3
    conv = parsed["layer"][1]
    assert conv["convolution_param"]["bias_term"] is False
    assert conv["param"]["lr_mult"] == pytest.approx(0.15)
    assert parsed["layer"][0]["input_param"]["shape"]["dim"] == [2, 5, 8, 8]
    [c] = conv_layers(parsed)
    assert (c["kernel_size"], c["stride"], c["pad"], c["in_channels"]) == (3, 2, 0, 5)
    [p] = pool_layers(parsed)
    assert (p["pool"], p["kernel_size"], p["stride"], p["global_pooling"]) == ("AVE", 2, 1, False)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("layer { name: 'x'", "unclosed"),
        ("}", "line 1"),
        ("a: 1\nb: @", "line 2"),
        ("a:", "no value"),
        ("a: 1 2", "line 1"),
        ("layer { type: 'Convolution' convolution_param { num_output: 1 kernel_h: 1 kernel_w: 3 } }", "non-square"),
        ("layer { type: 'Convolution' convolution_param { num_output: 1 } }", "kernel_size"),
        ("layer { type: 'Convolution' convolution_param { num_output: 'many' kernel_size: 1 } }", "num_output"),
        ("layer { type: 'Convolution' convolution_param: 3 }", "block"),
        ("layer { type: 'Convolution' type: 'Pooling' }", "single strings"),
    ],
)
def test_prototxt_errors_name_source_and_place(text: str, fragment: str) -> None:
    with pytest.raises(WeightFileError, match=fragment) as info:
        conv_layers(parse_prototxt(text, "net.prototxt"), "net.prototxt")
    assert str(info.value).startswith("net.prototxt: ")


# ---------------------------------------------------------------------------------------------
# Deep Compression .net (v1.0)


@pytest.mark.data
def test_deep_compression_real_file(data_dir: Path) -> None:
    net, prototxt = data_dir / V10 / "compressed_SqueezeNet.net", data_dir / V10 / "SqueezeNet_deploy.prototxt"
    raw = read_deep_compression_raw(net, prototxt)
    weights = read_deep_compression(net, prototxt)
    shapes = conv_shapes(prototxt)
    assert [layer.name for layer in raw] == list(weights) == [name for name, _ in shapes]
    assert len(weights) == 26
    assert sum(layer.stored_entries for layer in raw) == V10_STORED_ENTRIES
    assert sum(w.size + b.size for w, b in weights.values()) == V10_PARAMS
    for (name, shape), (w, b) in zip(shapes, weights.values()):
        assert w.shape == shape and b.shape == (shape[0],), name
        assert w.dtype == b.dtype == np.float32
        assert len(np.unique(w)) <= CODEBOOK_SIZE, name  # 8-bit weight sharing, 0.0 included
    assert weights["conv1"][0].shape == (96, 3, 7, 7)
    assert weights["conv_final"][0].shape == (1000, 512, 1, 1)
    kept = sum(np.count_nonzero(w) for w, _ in weights.values())
    density = kept / sum(w.size for w, _ in weights.values())
    assert 0.32 < density < 0.35  # "about 33 % of weights kept"
    # Lossless: the stored entries re-encode to the very same bytes.
    assert encode_deep_compression(raw) == net.read_bytes()


@pytest.mark.data
@pytest.mark.parametrize("change", ["one byte more", "one byte less"])
def test_deep_compression_rejects_wrong_length(data_dir: Path, tmp_path: Path, change: str) -> None:
    data = (data_dir / V10 / "compressed_SqueezeNet.net").read_bytes()
    bad = tmp_path / "bad.net"
    bad.write_bytes(data + b"\0" if change == "one byte more" else data[:-1])
    with pytest.raises(WeightFileError, match="trailing" if change == "one byte more" else "truncated") as info:
        read_deep_compression(bad, data_dir / V10 / "SqueezeNet_deploy.prototxt")
    assert str(bad) in str(info.value)


SMALL_SHAPES = [("a", (3, 2, 3, 3)), ("b", (4, 3, 1, 1)), ("c", (2, 4, 1, 1))]


def _small_net() -> tuple[list[DeepCompressionLayer], bytes]:
    """Three layers with pruned, weight-shared weights, encoded; gaps up to 15 and an odd count."""
    rng = np.random.default_rng(0)
    layers = []
    for name, shape in SMALL_SHAPES:
        size = int(np.prod(shape))
        gaps = rng.integers(0, 4, size=size).astype(np.uint8)
        gaps = gaps[: np.searchsorted(np.cumsum(gaps.astype(int) + 1), size, side="right")]
        codebook = np.sort(rng.normal(size=CODEBOOK_SIZE)).astype(np.float32)
        codebook[0] = 0.0
        layers.append(
            DeepCompressionLayer(
                name=name,
                shape=shape,
                codebook=codebook,
                bias=rng.normal(size=shape[0]).astype(np.float32),
                codes=rng.integers(1, CODEBOOK_SIZE, size=gaps.size).astype(np.uint8),
                gaps=gaps,
            )
        )
    return layers, encode_deep_compression(layers)


def test_deep_compression_synthetic_round_trip() -> None:
    layers, data = _small_net()
    assert any(layer.stored_entries % 2 for layer in layers)  # exercises the unused high nibble
    decoded = decode_layer_entries(data, SMALL_SHAPES)
    for before, after in zip(layers, decoded):
        np.testing.assert_array_equal(before.dense_weights(), after.dense_weights())
        np.testing.assert_array_equal(before.gaps, after.gaps)
    assert encode_deep_compression(decoded) == data


def test_deep_compression_every_truncation_fails() -> None:
    _, data = _small_net()
    for cut in range(len(data)):
        with pytest.raises(WeightFileError):
            decode_layer_entries(data[:cut], SMALL_SHAPES, "small.net")


def test_deep_compression_specific_corruptions() -> None:
    layers, data = _small_net()
    too_many = struct.pack("<I", 10_000) + data[4:]
    with pytest.raises(WeightFileError, match="claims 10000 stored entries"):
        decode_layer_entries(too_many, SMALL_SHAPES, "small.net")
    # All gaps 15: positions run past the 8-weight tensor of layer "c".
    runaway = [("c", (2, 4, 1, 1))]
    layer = DeepCompressionLayer("c", (2, 4, 1, 1), layers[2].codebook, layers[2].bias, np.ones(2, np.uint8), np.zeros(2, np.uint8))
    good = encode_deep_compression([layer])
    bad = bytearray(good)
    bad[-1] = 0xFF
    with pytest.raises(WeightFileError, match="past the end"):
        decode_layer_entries(bytes(bad), runaway, "small.net")
    # An odd entry count leaves the last high nibble unused; it must be zero.
    odd = DeepCompressionLayer("c", (2, 4, 1, 1), layers[2].codebook, layers[2].bias, np.ones(1, np.uint8), np.zeros(1, np.uint8))
    bad = bytearray(encode_deep_compression([odd]))
    bad[-1] |= 0x10
    with pytest.raises(WeightFileError, match="high nibble"):
        decode_layer_entries(bytes(bad), runaway, "small.net")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.integers(min_value=0), min_size=1, max_size=4))
def test_deep_compression_bit_flips_fail_cleanly(flips: list[int]) -> None:
    _, data = _small_net()
    corrupted = bytearray(data)
    for flip in flips:
        corrupted[(flip // 8) % len(data)] ^= 1 << (flip % 8)
    try:
        layers = decode_layer_entries(bytes(corrupted), SMALL_SHAPES, "small.net")
    except WeightFileError:
        return
    for layer, (_, shape) in zip(layers, SMALL_SHAPES):
        assert layer.dense_weights().shape == shape


# ---------------------------------------------------------------------------------------------
# OpenVINO IR (v1.1)


@pytest.mark.data
def test_openvino_ir_real_file(data_dir: Path) -> None:
    xml, binary = data_dir / V11 / "squeezenet1.1.xml", data_dir / V11 / "squeezenet1.1.bin"
    weights = read_openvino_ir(xml, binary)
    assert len(weights) == 26
    assert sum(w.size + b.size for w, b in weights.values()) == V11_PARAMS
    assert 2 * V11_PARAMS == binary.stat().st_size  # the FP16 blobs tile the .bin exactly
    # Names and shapes agree with DeepScale's own deploy prototxt.
    assert [(name, w.shape) for name, (w, _) in weights.items()] == conv_shapes(
        data_dir / V11 / "deepscale_v1.1_deploy.prototxt"
    )
    for name, (w, b) in weights.items():
        assert w.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(w, w.astype(np.float16).astype(np.float32), err_msg=name)
        assert b.shape == (w.shape[0],)
    assert weights["conv1"][0].shape == (64, 3, 3, 3)
    assert weights["conv10"][0].shape == (1000, 512, 1, 1)


@pytest.mark.data
@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda x: x.replace('<weights offset="0" size="3456"/>', '<weights offset="0" size="3458"/>'), "need 3456"),
        (lambda x: x.replace('<biases offset="3456" size="128"/>', '<biases offset="2470900" size="128"/>'), "past the end"),
        (lambda x: x.replace('version="6"', 'version="10"'), "not supported"),
        (lambda x: x.replace("</net>", ""), "not well-formed"),
        (lambda x: x.replace('kernel="3,3"', 'kernel="3,x"', 1), "kernel"),
    ],
)
def test_openvino_ir_rejects_inconsistent_files(data_dir: Path, tmp_path: Path, edit, fragment: str) -> None:
    xml = tmp_path / "bad.xml"
    xml.write_text(edit((data_dir / V11 / "squeezenet1.1.xml").read_text()))
    with pytest.raises(WeightFileError, match=fragment) as info:
        read_openvino_ir(xml, data_dir / V11 / "squeezenet1.1.bin")
    assert str(xml) in str(info.value)


@pytest.mark.data
def test_openvino_ir_rejects_short_bin(data_dir: Path, tmp_path: Path) -> None:
    binary = tmp_path / "short.bin"
    binary.write_bytes((data_dir / V11 / "squeezenet1.1.bin").read_bytes()[:-2])
    with pytest.raises(WeightFileError, match="past the end"):
        read_openvino_ir(data_dir / V11 / "squeezenet1.1.xml", binary)


# ---------------------------------------------------------------------------------------------
# caffemodel (protobuf wire format)


@pytest.mark.data
def test_caffemodel_round_trip_of_v11_weights_is_bit_exact(data_dir: Path, tmp_path: Path) -> None:
    weights = read_openvino_ir(data_dir / V11 / "squeezenet1.1.xml", data_dir / V11 / "squeezenet1.1.bin")
    path = tmp_path / "squeezenet_v1.1.caffemodel"
    write_caffemodel(path, weights)
    loaded = read_caffemodel(path)
    assert list(loaded) == list(weights)
    for name, (w, b) in weights.items():
        assert loaded[name][0].dtype == loaded[name][1].dtype == np.float32
        assert loaded[name][0].tobytes() == w.tobytes() and loaded[name][1].tobytes() == b.tobytes(), name


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(payload)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    return key + payload  # fixed 32/64: payload already has its width


def test_caffemodel_legacy_v1_format_with_unpacked_and_unknown_fields() -> None:
    """A hand-built V1 ``layers`` message: legacy dims, unpacked floats, doubles, unknown fields."""
    weights = np.arange(2 * 1 * 2 * 2, dtype=np.float32).reshape(2, 1, 2, 2) - 3.5
    unpacked = b"".join(_field(5, 5, struct.pack("<f", v)) for v in weights.ravel())
    weight_blob = _field(1, 0, 2) + _field(2, 0, 1) + _field(3, 0, 2) + _field(4, 0, 2) + unpacked
    bias_blob = (
        _field(1, 0, 1) + _field(2, 0, 1) + _field(3, 0, 1) + _field(4, 0, 2)
        + _field(8, 2, struct.pack("<2d", 0.25, -1.0))  # double_data, packed
        + _field(6, 2, struct.pack("<2f", 9.0, 9.0))  # diff: ignored
    )  # fmt: skip
    unknown = _field(99, 0, 1 << 40) + _field(98, 1, b"\1" * 8) + _field(97, 5, b"\2" * 4) + _field(96, 2, b"xyz")
    conv = _field(4, 2, b"conv1") + _field(5, 0, 4) + unknown + _field(6, 2, weight_blob) + _field(6, 2, bias_blob)
    relu = _field(4, 2, b"relu1") + _field(5, 0, 18)
    data = _field(1, 2, b"legacy") + unknown + _field(2, 2, conv) + _field(2, 2, relu)

    layers = read_net_blobs(data)
    assert [(layer.name, layer.type, len(layer.blobs)) for layer in layers] == [
        ("conv1", "Convolution", 2),
        ("relu1", "V1:18", 0),
    ]
    assert layers[0].blobs[1].shape == (1, 1, 1, 2)  # legacy biases are 4-D
    [(name, (w, b))] = read_caffemodel(data).items()
    assert name == "conv1"
    np.testing.assert_array_equal(w, weights)
    np.testing.assert_array_equal(b, np.array([0.25, -1.0], np.float32))


def test_caffemodel_unpacked_dims_and_other_layer_types() -> None:
    shape = _field(7, 2, _field(1, 0, 3) + _field(1, 0, 1) + _field(1, 0, 1) + _field(1, 0, 1))
    blob = _field(5, 2, np.ones(3, "<f4").tobytes()) + shape
    layer = _field(1, 2, b"fc") + _field(2, 2, b"InnerProduct") + _field(7, 2, blob)
    data = encode_caffemodel({"c": (np.ones((1, 1, 1, 1)), np.zeros(1))}) + _field(100, 2, layer)
    layers = read_net_blobs(data)
    assert [(layer.name, layer.type) for layer in layers] == [("c", "Convolution"), ("fc", "InnerProduct")]
    assert layers[1].blobs[0].shape == (3, 1, 1, 1)
    assert list(read_caffemodel(data)) == ["c"]


def _small_caffemodel() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    return {
        "conv1": (rng.normal(size=(3, 2, 3, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)),
        "fire2/squeeze1x1": (rng.normal(size=(2, 3, 1, 1)).astype(np.float32), rng.normal(size=2).astype(np.float32)),
    }


def test_caffemodel_every_truncation_fails_or_drops_whole_layers() -> None:
    """Protobuf cannot tell a file cut between two layers from a shorter net; anything else must fail."""
    layers = _small_caffemodel()
    data = encode_caffemodel(layers)
    boundaries = {len(encode_caffemodel(dict(list(layers.items())[:k]))) for k in range(1, len(layers))}
    assert all(data.startswith(encode_caffemodel(dict(list(layers.items())[:k]))) for k in range(len(layers)))
    for cut in range(len(data)):
        if cut in boundaries:
            assert list(read_caffemodel(data[:cut])) == list(layers)[: len(read_caffemodel(data[:cut]))]
            continue
        with pytest.raises(WeightFileError, match="^<bytes>: "):
            read_caffemodel(data[:cut])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.integers(min_value=0), min_size=1, max_size=4))
def test_caffemodel_bit_flips_fail_cleanly(flips: list[int]) -> None:
    data = bytearray(encode_caffemodel(_small_caffemodel()))
    for flip in flips:
        data[(flip // 8) % len(data)] ^= 1 << (flip % 8)
    try:
        result = read_caffemodel(bytes(data))
    except WeightFileError:
        return
    for w, b in result.values():
        assert w.ndim == 4 and b.shape == (w.shape[0],) and np.isfinite(w).all()


@pytest.mark.parametrize(
    "data, fragment",
    [
        (_field(100, 2, b"") + b"\x0a\x05ab", "needs 5 bytes"),
        (b"\x0b", "groups"),
        (b"\x0e", "invalid wire type"),
        (b"\x00\x01", "field number 0"),
        (b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
        (_field(100, 2, _field(1, 2, b"\xff")), "UTF-8"),
        (_field(100, 2, _field(1, 2, b"c") + _field(2, 2, b"Convolution")), "blobs of shapes"),
        (_field(1, 2, b"net"), "no Convolution"),
        (_field(100, 2, _field(7, 2, _field(5, 2, b"\0" * 6))), "not a multiple of 4"),
        (_field(100, 2, _field(7, 2, _field(5, 2, b"\0" * 8) + _field(7, 2, _field(1, 0, 3)))), "needs 3"),
        (_field(100, 2, _field(7, 2, _field(7, 2, _field(1, 0, (1 << 64) - 1)))), "negative dimension"),
        (_field(100, 0, 5), "length-delimited"),
    ],
)
def test_caffemodel_specific_corruptions(data: bytes, fragment: str) -> None:
    with pytest.raises(WeightFileError, match=fragment):
        read_caffemodel(data)


def test_caffemodel_rejects_duplicate_convolution_names() -> None:
    one = encode_caffemodel({"c": (np.ones((1, 1, 1, 1)), np.zeros(1))})
    twice = one + one[len(encode_caffemodel({})) :]
    with pytest.raises(WeightFileError, match="two convolution layers"):
        read_caffemodel(twice)


def test_git_blob_sha1(tmp_path: Path) -> None:
    empty, hello = tmp_path / "empty", tmp_path / "hello"
    empty.write_bytes(b"")
    hello.write_bytes(b"hello\n")
    # Ids printed by `git hash-object` for these contents.
    assert git_blob_sha1(empty) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_sha1(hello) == "ce013625030ba8dba906f756967f9e9ca394464a"

