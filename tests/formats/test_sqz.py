"""The .sqz file: exact round trips, the Deep Compression release re-encoded bit for bit, and a
decoder that refuses every damaged, truncated, foreign or hostile file with SqzFormatError."""

import hashlib
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from squeezekit.config import SqueezeNetConfig
from squeezekit.formats.sqz import MAGIC, SqzFormatError, decode_sqz, encode_sqz, gap_symbols

from compression_helpers import SMALL, random_arrays, small_metadata


def _reseal(body: bytes) -> bytes:
    """A file with a valid checksum over (possibly hostile) content: tests the parser, not the hash."""
    return body + hashlib.sha256(body).digest()


def test_round_trip_is_exact(small_sqz):
    data, layers = small_sqz
    model = decode_sqz(data)
    assert [layer.name for layer in model.layers] == [layer.name for layer in layers]
    for got, want in zip(model.layers, layers):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got.dense_weights(), want.dense_weights())
        np.testing.assert_array_equal(got.bias, want.bias)
    assert SqueezeNetConfig.from_dict(model.config) == SMALL
    assert model.metadata["labels"] == small_metadata()["labels"]


def test_sparse_and_dense_layers_and_long_gaps():
    # conv1 dense (no position stream), a layer with one weight at its very end (a long filler run).
    from squeezekit.compression.api import compress_arrays

    arrays = random_arrays()
    masks = {key: np.ones(value.shape, bool) for key, value in arrays.items() if key.endswith("/kernel")}
    lonely = np.zeros(arrays["conv10/kernel"].shape, bool)
    lonely.flat[-1] = True
    masks["conv10/kernel"] = lonely
    layers = compress_arrays(SMALL, arrays, bits=4, masks=masks)
    model = decode_sqz(encode_sqz(SMALL.to_dict(), small_metadata(), layers)[0])
    for got, want in zip(model.layers, layers):
        np.testing.assert_array_equal(got.positions, want.positions)
        np.testing.assert_array_equal(got.dense_weights(), want.dense_weights())
    assert model.layers[-1].positions.tolist() == [lonely.size - 1]


def _nearly_dense_file(density=0.99):
    from squeezekit.compression.api import compress_arrays

    arrays = random_arrays()
    rng = np.random.default_rng(1)
    masks = {key: rng.random(value.shape) < density for key, value in arrays.items() if key.endswith("/kernel")}
    layers = compress_arrays(SMALL, arrays, bits=4, masks=masks)
    data, report = encode_sqz(SMALL.to_dict(), small_metadata(), layers)
    return data, report, layers


def test_a_nearly_dense_layer_lists_its_pruned_weights():
    # Listing the kept weights costs at least a Huffman bit each; listing the 1 % pruned ones costs
    # a small fraction of that, and the decoded layer must be the same bit for bit.
    data, report, layers = _nearly_dense_file()
    assert struct.unpack_from("<H", data, 8)[0] == 2  # the version that knows the flag
    for layer in layers:
        if layer.size >= 1000:
            assert 8 * report["layers"][layer.name]["positions"] < 0.25 * layer.indices.size, layer.name
    for got, want in zip(decode_sqz(data).layers, layers):
        np.testing.assert_array_equal(got.positions, want.positions)
        np.testing.assert_array_equal(got.dense_weights(), want.dense_weights())


def test_sparse_files_keep_version_1(small_sqz):
    # 30 % density lists the kept weights, as version 1 did: older readers still open such a file.
    assert struct.unpack_from("<H", small_sqz[0], 8)[0] == 1


def test_the_pruned_list_flag_is_refused_in_a_version_1_file():
    data, _, _ = _nearly_dense_file()
    body = bytearray(data[:-32])
    struct.pack_into("<H", body, 8, 1)
    with pytest.raises(SqzFormatError, match="unknown flags 2"):
        decode_sqz(_reseal(bytes(body)))


@pytest.mark.parametrize("escape", [1, 3, 15, 255])
def test_gap_symbols_with_fillers(escape):
    positions = np.array([0, 1, 5, 40, 41, 300])
    symbols = gap_symbols(positions, escape)
    steps = np.where(symbols == escape, escape, symbols + 1)
    placed = symbols != escape
    np.testing.assert_array_equal(np.cumsum(steps)[placed] - 1, positions)


def test_architecture_mismatch_is_refused(small_sqz):
    data, layers = small_sqz
    other = SMALL.replace(squeeze_ratio=0.25)
    forged = encode_sqz(other.to_dict(), small_metadata(), layers)[0]
    with pytest.raises(SqzFormatError, match="shape"):
        decode_sqz(forged)


def _body(data):
    return bytearray(data[:-32])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d[:-1], "checksum"),
        (lambda d: d[: len(d) // 2], "checksum"),
        (lambda d: d[:20], "too short"),
        (lambda d: b"PK\x03\x04" + d[4:], "magic"),
        (lambda d: d[:8] + struct.pack("<H", 3) + d[10:], "version 3"),
        (lambda d: d[:100] + bytes([d[100] ^ 0x10]) + d[101:], "checksum"),
        (lambda d: d + b"\0", "checksum"),
    ],
    ids=["one-byte-short", "half", "tiny", "zip-magic", "future-version", "flipped-bit", "trailing-byte"],
)
def test_damaged_files(small_sqz, damage, message):
    with pytest.raises(SqzFormatError, match=message):
        decode_sqz(bytes(damage(small_sqz[0])))


def _first_layer_offset(data):
    (header_length,) = struct.unpack_from("<I", data, 12)
    return 16 + header_length + 2


@pytest.mark.parametrize("case", ["header-past-end", "absurd-shape", "count-past-tensor", "bits-past-end",
                                  "layer-count", "bad-json"])
def test_hostile_lengths_with_valid_checksum(small_sqz, case):
    body = _body(small_sqz[0])
    start = _first_layer_offset(body)
    name_length = body[start]
    shape_at = start + 1 + name_length
    if case == "header-past-end":
        struct.pack_into("<I", body, 12, 10 ** 9)
    elif case == "absurd-shape":
        struct.pack_into("<4H", body, shape_at, 65535, 65535, 65535, 65535)
    elif case == "count-past-tensor":
        out = struct.unpack_from("<H", body, shape_at)[0]
        k = struct.unpack_from("<H", body, shape_at + 9)[0]
        count_at = shape_at + 8 + 3 + 4 * k + 4 * out
        struct.pack_into("<I", body, count_at, 2 ** 31)
    elif case == "bits-past-end":
        k = struct.unpack_from("<H", body, shape_at + 9)[0]
        out = struct.unpack_from("<H", body, shape_at)[0]
        bits_at = shape_at + 8 + 3 + 4 * k + 4 * out + 4 + (k + 1) // 2
        struct.pack_into("<I", body, bits_at, 2 ** 32 - 1)
    elif case == "layer-count":
        struct.pack_into("<H", body, start - 2, 60000)
    else:
        struct.pack_into("<I", body, 12, 3)
    expected = {"header-past-end": "header needs", "absurd-shape": "impossible shape",
                "count-past-tensor": "claims", "bits-past-end": "stream needs", "layer-count": "60000 layers",
                "bad-json": "unreadable header"}[case]
    with pytest.raises(SqzFormatError, match=expected):
        decode_sqz(_reseal(bytes(body)))


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_fuzz_random_bytes(data):
    for candidate in (data, MAGIC + data, _reseal(MAGIC + b"\x01\x00\x00\x00" + data)):
        with pytest.raises(SqzFormatError):
            decode_sqz(candidate)


@given(st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_mutated_files(small_sqz, data):
    """Random overwrites, deletions and insertions in a valid file, resealed so the parser sees them:
    either the decoder refuses the file with SqzFormatError or (for a mutation in slack such as an
    unused code length) it decodes to a well-formed model; it never raises anything else."""
    body = _body(small_sqz[0])
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(8, len(body) - 1))
        action = data.draw(st.sampled_from(["set", "delete", "insert"]))
        if action == "set":
            body[position] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del body[position]
        else:
            body.insert(position, data.draw(st.integers(0, 255)))
    resealed = data.draw(st.booleans())
    candidate = _reseal(bytes(body)) if resealed else bytes(body) + small_sqz[0][-32:]
    try:
        model = decode_sqz(candidate)
    except SqzFormatError:
        return
    assert resealed or bytes(body) == small_sqz[0][:-32]
    for layer in model.layers:
        assert layer.dense_weights().shape == layer.shape
        assert np.isfinite(layer.dense_weights()).all()


def test_the_runtime_builds_a_files_onnx_graph_once_keyed_by_its_checksum(small_sqz, tmp_path, monkeypatch):
    """A second start reads the cached ONNX model (no decoding), with the same outputs and metadata;
    another file, even of the same name, is decoded and built anew."""
    import squeezekit.formats.sqz as sqz_format
    from squeezekit.compression.api import compress_arrays
    from squeezekit.runtime import Classifier

    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    path = tmp_path / "model.sqz"
    path.write_bytes(small_sqz[0])
    images = np.random.default_rng(3).normal(size=(2, 40, 40, 3)).astype(np.float32)
    first = Classifier.load(path)
    expected = first.predict(images)

    def no_decoding(*args):
        raise AssertionError("the .sqz file was decoded again")

    monkeypatch.setattr(sqz_format, "read_sqz", no_decoding)
    second = Classifier.load(path)
    np.testing.assert_array_equal(second.predict(images), expected)
    assert second.metadata.to_dict() == first.metadata.to_dict()
    assert len(list((tmp_path / "home" / "artefacts" / "sqz").glob("*.onnx"))) == 1

    other, _ = encode_sqz(SMALL.to_dict(), small_metadata(), compress_arrays(SMALL, random_arrays(seed=1), bits=4))
    path.write_bytes(other)
    with pytest.raises(AssertionError, match="decoded again"):
        Classifier.load(path)
