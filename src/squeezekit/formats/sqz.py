"""The ``.sqz`` file: a Deep-Compressed SqueezeNet in one self-describing, checksummed file.

Byte layout (version 2; all integers little-endian; docs/compression.md has the full description):

=========  =====================================================================================
magic      8 bytes ``89 53 51 5A 0D 0A 1A 0A`` (``\\x89SQZ\\r\\n\\x1a\\n``, PNG-style: catches text-mode
           copies and truncation at the first bytes)
version    u16 (2, or 1 for a file no layer of which lists its pruned weights), then u16 flags (0)
header     u32 ``n``, then ``n`` bytes of zlib-compressed UTF-8 JSON: ``{"config": {...},
           "metadata": {...}}`` (architecture config; labels, preprocessing, source). ImageNet
           models store ``"label_set": "imagenet-1k"`` instead of 1000 labels.
layers     u16 count, then one section per convolution (below)
checksum   32 bytes: SHA-256 of every byte before it
=========  =====================================================================================

Layer section: u8 name length, name (UTF-8, a Keras weight path prefix such as ``fire2/squeeze1x1``);
4 x u16 shape ``(out, in, kh, kw)``; u8 flags (bit 0: dense, no position stream; bit 1, version 2:
the position stream lists the pruned weights instead of the kept ones); u16 ``K``, the
codebook size (1..256), and ``K`` float32 shared values; ``out`` float32 biases; u32 ``n``, the kept
weights; the index stream (``ceil(K / 2)`` bytes of 4-bit Huffman code lengths, low nibble first;
u32 bit count; the bits); and unless dense the position stream (u8 ``M``, the escape gap; u32
symbol count; ``ceil((M + 1) / 2)`` bytes of code lengths; u32 bit count; the bits).

Positions are the kept weights' flat offsets in ``(out, in, kh, kw)`` order, written as gaps
(zeros skipped since the previous kept weight). A gap symbol ``g < M`` places the next weight ``g``
positions on; ``M`` is a filler that skips ``M`` positions and places nothing, so long runs of zeros
cost a few symbols, as the filler entries of the Deep Compression format do (without spending an
index on them). Huffman codes spend at least one bit a symbol, so a layer that keeps nearly every
weight (the release's 1x1 layers keep 99 %) would pay a bit per kept weight where the mask's entropy
is a tenth of that: such a layer lists the positions of its few pruned weights instead (bit 1), which
the encoder picks whenever it is shorter (the release: 11.7 KB less, bit for bit the same weights).

The decoder needs only numpy and the standard library. It verifies the checksum before parsing, and
checks every length against the bytes left and every shape against the architecture before it
allocates anything, so a damaged or hostile file raises :class:`SqzFormatError` and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezekit.formats import huffman
from squeezekit.errors import WeightFileError

__all__ = ["MAGIC", "VERSION", "CompressedLayer", "SqzFormatError", "SqzModel", "decode_sqz", "encode_sqz",
           "read_sqz", "write_sqz"]

MAGIC = b"\x89SQZ\r\n\x1a\n"
VERSION = 2  # written when a layer lists its pruned weights (FLAG_PRUNED_LISTED); else 1, as before
READ_VERSIONS = (1, 2)
CHECKSUM_BYTES = 32
MAX_HEADER_BYTES = 1 << 20  # decompressed JSON: labels of a few thousand classes fit easily
MAX_LAYERS = 512
MAX_TENSOR_SIZE = 1 << 26  # 64 M weights: far beyond any SqueezeNet layer
FLAG_DENSE = 1
FLAG_PRUNED_LISTED = 2


class SqzFormatError(WeightFileError):
    """A ``.sqz`` file that is damaged, truncated, foreign or inconsistent."""


@dataclass(frozen=True, eq=False)
class CompressedLayer:
    """One convolution after pruning and weight sharing.

    ``shape`` is ``(out, in, kh, kw)``; ``positions`` (int64, strictly increasing) are the kept
    weights' flat offsets in that order and ``indices`` their entries in ``codebook`` (float32).
    """

    name: str
    shape: tuple[int, int, int, int]
    codebook: np.ndarray
    bias: np.ndarray
    indices: np.ndarray
    positions: np.ndarray

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def density(self) -> float:
        return self.indices.size / self.size

    def dense_weights(self) -> np.ndarray:
        """The float32 ``(out, in, kh, kw)`` weights, zero where nothing is kept."""
        weights = np.zeros(self.size, dtype=np.float32)
        weights[self.positions] = self.codebook[self.indices]
        return weights.reshape(self.shape)

    def keras_kernel(self) -> np.ndarray:
        """The weights in Keras' ``(kh, kw, in, out)`` layout."""
        from squeezekit.graph import oihw_to_hwio

        return oihw_to_hwio(self.dense_weights())


@dataclass(frozen=True, eq=False)
class SqzModel:
    """A decoded ``.sqz`` file: architecture config, metadata and compressed layers."""

    config: dict
    metadata: dict
    layers: list[CompressedLayer]

    def arrays(self) -> dict[str, np.ndarray]:
        """Keras-layout ``{"fire2/squeeze1x1/kernel": ..., ".../bias": ...}`` arrays."""
        arrays = {}
        for layer in self.layers:
            arrays[f"{layer.name}/kernel"] = layer.keras_kernel()
            arrays[f"{layer.name}/bias"] = layer.bias.astype(np.float32)
        return arrays


# ---------------------------------------------------------------------------------------- encoder


def _nibbles(lengths: np.ndarray) -> bytes:
    padded = np.zeros(lengths.size + lengths.size % 2, dtype=np.uint8)
    padded[: lengths.size] = lengths
    return (padded[0::2] | (padded[1::2] << 4)).astype(np.uint8).tobytes()


def gap_symbols(positions: np.ndarray, escape: int) -> np.ndarray:
    """The gap stream of ``positions`` with escape (filler) symbol ``escape``."""
    gaps = np.diff(np.concatenate([[-1], positions.astype(np.int64)])) - 1
    fillers = gaps // escape
    remainders = gaps % escape
    # Each gap becomes `fillers` escape symbols followed by its remainder.
    counts = fillers + 1
    symbols = np.full(int(counts.sum()), escape, dtype=np.int64)
    symbols[np.cumsum(counts) - 1] = remainders
    return symbols


def _huffman_bytes(symbols: np.ndarray, alphabet: int) -> tuple[np.ndarray, bytes, int]:
    lengths = huffman.code_lengths(np.bincount(symbols, minlength=alphabet))
    data, n_bits = huffman.encode(symbols, lengths)
    return lengths, data, n_bits


def _best_escape(positions: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, bytes, int]:
    """The escape gap (among 2^b - 1) giving the shortest position stream, with its encoding."""
    best = None
    for bits in range(1, 9):
        escape = 2 ** bits - 1
        symbols = gap_symbols(positions, escape)
        counts = np.bincount(symbols, minlength=escape + 1)
        lengths = huffman.code_lengths(counts)
        cost = int((counts * lengths).sum()) + 8 * len(_nibbles(lengths))
        if best is None or cost < best[0]:
            best = (cost, escape, symbols, lengths)
    _, escape, symbols, lengths = best
    data, n_bits = huffman.encode(symbols, lengths)
    return escape, symbols, lengths, data, n_bits


def _position_stream(positions: np.ndarray) -> bytes:
    escape, symbols, gap_lengths, gap_data, gap_bits = _best_escape(positions)
    return struct.pack("<BI", escape, symbols.size) + _nibbles(gap_lengths) + struct.pack("<I", gap_bits) + gap_data


def encode_layer(layer: CompressedLayer) -> tuple[bytes, dict]:
    """The bytes of one layer section and how many of them each part takes."""
    section, sizes, _ = _layer_section(layer)
    return section, sizes


def _layer_section(layer: CompressedLayer) -> tuple[bytes, dict, int]:
    name = layer.name.encode("utf-8")
    if not 0 < len(name) < 256:
        raise ValueError(f"layer name {layer.name!r} must be 1..255 UTF-8 bytes")
    if any(not 0 < d < 65536 for d in layer.shape) or len(layer.shape) != 4:
        raise ValueError(f"layer {layer.name!r}: shape {layer.shape} must be 4 sizes in 1..65535")
    k = layer.codebook.size
    if not 1 <= k <= 256:
        raise ValueError(f"layer {layer.name!r}: codebook of {k} values, expected 1..256")
    if layer.bias.shape != (layer.shape[0],):
        raise ValueError(f"layer {layer.name!r}: bias must have shape ({layer.shape[0]},)")
    positions, indices = layer.positions.astype(np.int64), layer.indices.astype(np.int64)
    if positions.shape != indices.shape or positions.ndim != 1:
        raise ValueError(f"layer {layer.name!r}: positions and indices must be 1-D and of equal length")
    if positions.size and (np.diff(positions).min(initial=1) < 1 or positions[0] < 0 or positions[-1] >= layer.size):
        raise ValueError(f"layer {layer.name!r}: positions must be strictly increasing and inside the tensor")
    if indices.size and (indices.min() < 0 or indices.max() >= k):
        raise ValueError(f"layer {layer.name!r}: indices must be 0..{k - 1}")
    dense = positions.size == layer.size
    position_part, flags = b"", FLAG_DENSE if dense else 0
    if not dense:
        position_part = _position_stream(positions)
        if 2 * positions.size > layer.size:  # more kept than pruned: listing the pruned may be shorter
            pruned = np.ones(layer.size, dtype=bool)
            pruned[positions] = False
            listed = _position_stream(np.flatnonzero(pruned))
            if len(listed) < len(position_part):
                position_part, flags = listed, FLAG_PRUNED_LISTED
    head = struct.pack("<B", len(name)) + name + struct.pack("<4HBH", *layer.shape, flags, k)
    codebook = layer.codebook.astype("<f4").tobytes()
    bias = layer.bias.astype("<f4").tobytes()
    index_lengths, index_data, index_bits = _huffman_bytes(indices, k)
    index_part = struct.pack("<I", indices.size) + _nibbles(index_lengths) + struct.pack("<I", index_bits) + index_data
    sizes = {"header": len(head), "codebook": len(codebook), "bias": len(bias), "indices": len(index_part),
             "positions": len(position_part)}
    return head + codebook + bias + index_part + position_part, sizes, flags


def _header_json(config: dict, metadata: dict) -> bytes:
    metadata = dict(metadata)
    if metadata.get("label_set") == "imagenet-1k":
        metadata.pop("labels", None)  # resolved from the ImageNet class list on loading
    return zlib.compress(json.dumps({"config": config, "metadata": metadata}, separators=(",", ":")).encode(), 9)


def encode_sqz(config: dict, metadata: dict, layers: list[CompressedLayer]) -> tuple[bytes, dict]:
    """The bytes of a ``.sqz`` file and a size report ``{"header": n, "layers": {name: {...}}, ...}``."""
    if len(layers) > MAX_LAYERS:
        raise ValueError(f"{len(layers)} layers; the format holds at most {MAX_LAYERS}")
    header = _header_json(config, metadata)
    parts = [MAGIC, None, header, struct.pack("<H", len(layers))]
    report = {"header": 8 + 8 + len(header) + 2, "layers": {}, "checksum": CHECKSUM_BYTES}
    version = 1  # a file that needs nothing new stays readable by the squeezekits that read only version 1
    for layer in layers:
        section, sizes, flags = _layer_section(layer)
        parts.append(section)
        report["layers"][layer.name] = sizes
        if flags & FLAG_PRUNED_LISTED:
            version = VERSION
    parts[1] = struct.pack("<HHI", version, 0, len(header))
    body = b"".join(parts)
    report["total"] = len(body) + CHECKSUM_BYTES
    return body + hashlib.sha256(body).digest(), report


def write_sqz(path: str | os.PathLike, config: dict, metadata: dict, layers: list[CompressedLayer]) -> dict:
    """Write a ``.sqz`` file atomically; returns the size report of :func:`encode_sqz`."""
    from squeezekit._resources import atomic_write_bytes

    data, report = encode_sqz(config, metadata, layers)
    atomic_write_bytes(Path(path), data)
    return report


# ---------------------------------------------------------------------------------------- decoder


class _Reader:
    def __init__(self, data: memoryview, source: str):
        self.data, self.offset, self.source = data, 0, source

    def fail(self, message: str):
        raise SqzFormatError(self.source, message)

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.offset + n > len(self.data):
            self.fail(f"{what} needs {n} bytes at offset {self.offset}, only {len(self.data) - self.offset} are left")
        chunk = self.data[self.offset: self.offset + n]
        self.offset += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def floats(self, n: int, what: str) -> np.ndarray:
        values = np.frombuffer(self.take(4 * n, what), dtype="<f4").astype(np.float32)
        if not np.isfinite(values).all():
            self.fail(f"{what}: non-finite value")
        return values

    def stream(self, alphabet: int, count: int, what: str) -> np.ndarray:
        packed = np.frombuffer(self.take((alphabet + 1) // 2, f"{what} code lengths"), dtype=np.uint8)
        lengths = np.empty(2 * packed.size, dtype=np.uint8)
        lengths[0::2], lengths[1::2] = packed & 0x0F, packed >> 4
        if alphabet % 2 and lengths[-1]:
            self.fail(f"{what}: padding nibble of the code lengths is not 0")
        (n_bits,) = self.unpack("<I", f"{what} bit count")
        data = self.take((n_bits + 7) // 8, f"{what} stream")
        try:
            return huffman.decode(bytes(data), n_bits, lengths[:alphabet], count)
        except huffman.HuffmanError as error:
            self.fail(f"{what}: {error}")


def _layer(reader: _Reader, expected: dict[str, tuple[int, int, int, int]] | None, version: int) -> CompressedLayer:
    (name_length,) = reader.unpack("<B", "layer name length")
    try:
        name = bytes(reader.take(name_length, "layer name")).decode("utf-8")
    except UnicodeDecodeError:
        reader.fail("a layer name is not UTF-8")
    shape = reader.unpack("<4H", f"shape of {name!r}")
    size = math.prod(shape)  # Python ints: four u16 can overflow int64
    if min(shape) == 0 or size > MAX_TENSOR_SIZE:
        reader.fail(f"layer {name!r} has an impossible shape {shape}")
    if expected is not None and expected.get(name) != tuple(shape):
        want = expected.get(name)
        reader.fail(f"layer {name!r} has shape {shape}, the architecture "
                    + (f"needs {want}" if want else "has no such layer"))
    flags, k = reader.unpack("<BH", f"flags of {name!r}")
    known = FLAG_DENSE | (FLAG_PRUNED_LISTED if version >= 2 else 0)
    if flags & ~known or flags == FLAG_DENSE | FLAG_PRUNED_LISTED or not 1 <= k <= 256:
        reader.fail(f"layer {name!r}: unknown flags {flags} or codebook size {k} outside 1..256")
    codebook = reader.floats(k, f"codebook of {name!r}")
    bias = reader.floats(shape[0], f"bias of {name!r}")
    (count,) = reader.unpack("<I", f"kept weights of {name!r}")
    dense = bool(flags & FLAG_DENSE)
    if count > size or (dense and count != size):
        reader.fail(f"layer {name!r} claims {count} kept weights in a tensor of {size}")
    indices = reader.stream(k, count, f"indices of {name!r}")
    if dense:
        positions = np.arange(size, dtype=np.int64)
    else:
        listed_pruned = bool(flags & FLAG_PRUNED_LISTED)
        listed = _positions(reader, size - count if listed_pruned else count, size, name)
        if listed_pruned:
            kept = np.ones(size, dtype=bool)
            kept[listed] = False
            positions = np.flatnonzero(kept)
        else:
            positions = listed
    return CompressedLayer(name, tuple(shape), codebook, bias, indices.astype(np.int64), positions)


def _positions(reader: _Reader, count: int, size: int, name: str) -> np.ndarray:
    """``count`` strictly increasing offsets below ``size`` from a gap stream."""
    (escape,) = reader.unpack("<B", f"escape gap of {name!r}")
    if escape == 0:
        reader.fail(f"layer {name!r}: escape gap 0")
    (n_symbols,) = reader.unpack("<I", f"gap count of {name!r}")
    if n_symbols < count or n_symbols > count + size // escape + 1:
        reader.fail(f"layer {name!r}: {n_symbols} gap symbols cannot place {count} weights in {size}")
    symbols = reader.stream(escape + 1, n_symbols, f"positions of {name!r}")
    steps = np.where(symbols == escape, escape, symbols + 1)
    ends = np.cumsum(steps)  # one past each symbol's position
    placed = symbols != escape
    if int(placed.sum()) != count:
        reader.fail(f"layer {name!r}: the gap stream places {int(placed.sum())} weights, not {count}")
    positions = ends[placed] - 1
    if count and positions[-1] >= size:
        reader.fail(f"layer {name!r}: positions run to {positions[-1]}, past its {size} weights")
    return positions


def decode_sqz(data: bytes, source: str = "<bytes>", *, check_architecture: bool = True) -> SqzModel:
    """Decode (and fully validate) the bytes of a ``.sqz`` file."""
    view = memoryview(data).cast("B")
    minimum = len(MAGIC) + 8 + 2 + CHECKSUM_BYTES
    if len(view) < minimum:
        raise SqzFormatError(source, f"{len(view)} bytes is too short for a .sqz file (at least {minimum})")
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise SqzFormatError(source, "not a .sqz file (wrong magic bytes)")
    version, flags = struct.unpack("<HH", view[len(MAGIC): len(MAGIC) + 4])
    if version not in READ_VERSIONS:
        raise SqzFormatError(source, f"format version {version}; this squeezekit reads versions "
                                     f"{', '.join(map(str, READ_VERSIONS))} (a newer squeezekit wrote it?)")
    body, checksum = view[:-CHECKSUM_BYTES], bytes(view[-CHECKSUM_BYTES:])
    if hashlib.sha256(body).digest() != checksum:
        raise SqzFormatError(source, "checksum mismatch: the file is damaged or truncated")
    reader = _Reader(body, source)
    reader.take(len(MAGIC) + 4, "magic and version")
    if flags:
        reader.fail(f"unknown flags {flags}")
    (header_length,) = reader.unpack("<I", "header length")
    compressed = bytes(reader.take(header_length, "header"))
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(compressed, MAX_HEADER_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            reader.fail(f"the header is damaged or larger than {MAX_HEADER_BYTES} bytes")
        header = json.loads(text)
        config, metadata = header["config"], header["metadata"]
        if not isinstance(config, dict) or not isinstance(metadata, dict):
            raise TypeError("config and metadata must be objects")
    except (zlib.error, ValueError, KeyError, TypeError) as error:
        reader.fail(f"unreadable header ({error})")
    expected = None
    if check_architecture:
        expected = _expected_shapes(config, metadata, reader)
    (layer_count,) = reader.unpack("<H", "layer count")
    if layer_count > MAX_LAYERS or (expected is not None and layer_count != len(expected)):
        reader.fail(f"{layer_count} layers" + (f", the architecture has {len(expected)}" if expected else ""))
    layers, seen = [], set()
    for _ in range(layer_count):
        layer = _layer(reader, expected, version)
        if layer.name in seen:
            reader.fail(f"layer {layer.name!r} appears twice")
        seen.add(layer.name)
        layers.append(layer)
    if reader.offset != len(body):
        reader.fail(f"{len(body) - reader.offset} unexpected bytes after the last layer")
    return SqzModel(config, metadata, layers)


def _expected_shapes(config: dict, metadata: dict, reader: _Reader) -> dict[str, tuple[int, int, int, int]]:
    from squeezekit.config import SqueezeNetConfig
    from squeezekit.graph import build_plan

    try:
        architecture = SqueezeNetConfig.from_dict(config)
    except (ValueError, KeyError, TypeError) as error:
        reader.fail(f"invalid architecture config ({error})")
    if metadata.get("label_set") == "imagenet-1k":
        classes = 1000
    else:
        labels = metadata.get("labels")
        if not isinstance(labels, list) or not labels or len(labels) > 100_000:
            reader.fail("the metadata holds no labels")
        classes = len(labels)
    return build_plan(architecture, classes).kernel_shapes()


def check_file_size(path: str | os.PathLike) -> None:
    """Refuse, before reading it, a file far larger than any SqueezeNet."""
    size = Path(path).stat().st_size
    if size > 64 * MAX_TENSOR_SIZE:
        raise SqzFormatError(Path(path), f"{size} bytes is far larger than any SqueezeNet")


def read_sqz(path: str | os.PathLike) -> SqzModel:
    """Read and validate a ``.sqz`` file (see :func:`decode_sqz`)."""
    check_file_size(path)
    return decode_sqz(Path(path).read_bytes(), os.fspath(path))
