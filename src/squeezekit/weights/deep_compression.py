"""Reader (and lossless writer) of Song Han's Deep Compression SqueezeNet file.

``compressed_SqueezeNet.net`` is the 660 KB SqueezeNet v1.0 of the SqueezeNet paper: pruned weights
stored sparsely as 4-bit relative positions ("gaps") plus 8-bit indices into a per-layer codebook of
256 shared float32 values. The file carries no shapes or names, so the network definition
(``SqueezeNet_deploy.prototxt``) supplies the layer order and every tensor's shape.

Byte layout (little-endian; ``L`` convolution layers in prototxt order):

1. ``L`` x uint32: ``n_i``, the number of stored entries of layer ``i``;
2. per layer: codebook (256 x float32), bias (``out`` x float32), codes (``n_i`` x uint8),
   gaps (``ceil(n_i / 2)`` bytes, two 4-bit gaps per byte, low nibble first).

Entry ``k`` sits at flat position ``p_k = sum_{j<=k}(gap_j + 1) - 1`` of the weight tensor in Caffe
order ``(out, in, kh, kw)``; all other positions are zero. Runs of more than 15 zeros are bridged by
filler entries whose code points at a codebook value of 0.0.

Two levels are exposed because a Deep Compression re-encoder needs the stored entries themselves,
not just the dense tensors: :func:`read_deep_compression_raw` returns one
:class:`DeepCompressionLayer` per layer exactly as stored, :func:`encode_deep_compression` turns
those back into identical bytes, and :func:`read_deep_compression` expands them to dense arrays.

The reader is strict, because a wrong shape or a misaligned stream still "decodes" into a model
that silently predicts garbage: the file must be consumed exactly to its last byte, no position may
run past its tensor, the unused high nibble after an odd number of gaps must be zero (so every
accepted file re-encodes to the same bytes) and codebooks and biases must be finite.
Every violation raises :class:`~squeezekit.errors.WeightFileError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezekit.errors import WeightFileError
from squeezekit.weights.prototxt import conv_layers, parse_prototxt

__all__ = [
    "CODEBOOK_SIZE",
    "DeepCompressionLayer",
    "conv_shapes",
    "decode_layer_entries",
    "encode_deep_compression",
    "read_deep_compression",
    "read_deep_compression_raw",
]

CODEBOOK_SIZE = 256
"""Entries of each layer's codebook: the codes are 8-bit."""

MAX_GAP = 15
"""Largest gap one 4-bit nibble can hold."""

Shape4 = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class DeepCompressionLayer:
    """One convolution layer exactly as the ``.net`` file stores it.

    ``shape`` is the dense weight shape in Caffe order ``(out, in, kh, kw)``; ``codebook`` holds the
    256 float32 shared values, ``bias`` the ``out`` float32 biases, and ``codes`` (uint8) and
    ``gaps`` (uint8, each 0..15) one value per stored entry, fillers included.
    """

    name: str
    shape: Shape4
    codebook: np.ndarray
    bias: np.ndarray
    codes: np.ndarray
    gaps: np.ndarray

    @property
    def stored_entries(self) -> int:
        """Number of stored entries (kept weights plus zero fillers)."""
        return int(self.codes.size)

    def positions(self) -> np.ndarray:
        """Flat positions (int64, strictly increasing) of the stored entries in the weight tensor."""
        return np.cumsum(self.gaps.astype(np.int64) + 1) - 1

    def dense_weights(self) -> np.ndarray:
        """The float32 weight tensor of ``shape``, zero wherever no entry is stored."""
        weights = np.zeros(int(np.prod(self.shape)), dtype=np.float32)
        weights[self.positions()] = self.codebook[self.codes]
        return weights.reshape(self.shape)


def conv_shapes(prototxt_path: str | os.PathLike[str]) -> list[tuple[str, Shape4]]:
    """``(name, (out, in, kh, kw))`` of every Convolution layer of a deploy prototxt, in order.

    Input channels are not written in a prototxt; they follow from the graph (through Concat
    layers), which :func:`~squeezekit.weights.prototxt.conv_layers` resolves.
    """
    source = os.fspath(prototxt_path)
    try:
        text = Path(prototxt_path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise WeightFileError(source, f"not a UTF-8 text prototxt ({exc})") from exc
    shapes = []
    for layer in conv_layers(parse_prototxt(text, source), source):
        name, group, in_channels = layer["name"], layer["group"], layer["in_channels"]
        if in_channels is None:
            raise WeightFileError(
                source, f"cannot tell the input channels of {name!r}: declare the net's input shape"
            )
        if group == 0 or in_channels % group:
            raise WeightFileError(source, f"{name!r}: group {group} does not divide {in_channels} inputs")
        k = layer["kernel_size"]
        shapes.append((name, (layer["num_output"], in_channels // group, k, k)))
    return shapes


def decode_layer_entries(
    data: bytes, shapes: Sequence[tuple[str, Shape4]], source: str | os.PathLike[str] = "<bytes>"
) -> list[DeepCompressionLayer]:
    """Split the bytes of a ``.net`` file into per-layer stored entries.

    ``shapes`` gives ``(name, (out, in, kh, kw))`` for every convolution layer in file order (see
    :func:`conv_shapes`); ``source`` names the file in error messages. The returned arrays are
    copies, so they do not keep ``data`` alive.
    """
    buffer = memoryview(data).cast("B")
    header = 4 * len(shapes)
    if len(buffer) < header:
        raise WeightFileError(
            source, f"{len(buffer)} bytes is shorter than the {header}-byte header of {len(shapes)} layer counts"
        )
    counts = np.frombuffer(buffer, dtype="<u4", count=len(shapes)).astype(np.int64)
    offset = header
    layers = []
    for (name, shape), count in zip(shapes, counts):
        out, size = shape[0], int(np.prod(shape))
        if count > size:
            raise WeightFileError(
                source, f"layer {name!r} claims {count} stored entries but its {shape} tensor has only {size}"
            )
        gap_bytes = (int(count) + 1) // 2
        needed = 4 * CODEBOOK_SIZE + 4 * out + int(count) + gap_bytes
        if offset + needed > len(buffer):
            raise WeightFileError(
                source,
                f"truncated in layer {name!r}: it needs {needed} bytes from offset {offset}, "
                f"the file has {len(buffer) - offset} left",
            )
        codebook = np.frombuffer(buffer, dtype="<f4", count=CODEBOOK_SIZE, offset=offset)
        offset += 4 * CODEBOOK_SIZE
        bias = np.frombuffer(buffer, dtype="<f4", count=out, offset=offset)
        offset += 4 * out
        codes = np.frombuffer(buffer, dtype=np.uint8, count=int(count), offset=offset)
        offset += int(count)
        packed = np.frombuffer(buffer, dtype=np.uint8, count=gap_bytes, offset=offset)
        offset += gap_bytes

        if not (np.isfinite(codebook).all() and np.isfinite(bias).all()):
            raise WeightFileError(source, f"layer {name!r} has a non-finite codebook value or bias")
        nibbles = np.empty(2 * gap_bytes, dtype=np.uint8)
        nibbles[0::2] = packed & 0x0F
        nibbles[1::2] = packed >> 4
        if count % 2 and nibbles[-1] != 0:
            raise WeightFileError(
                source, f"layer {name!r}: the unused high nibble of its last gap byte is {nibbles[-1]}, not 0"
            )
        layer = DeepCompressionLayer(
            name=name,
            shape=tuple(int(d) for d in shape),
            codebook=codebook.astype(np.float32),
            bias=bias.astype(np.float32),
            codes=codes.copy(),
            gaps=nibbles[: int(count)],
        )
        if count and layer.positions()[-1] >= size:
            raise WeightFileError(
                source,
                f"layer {name!r}: its gaps reach position {layer.positions()[-1]}, "
                f"past the end of its {shape} tensor ({size} weights)",
            )
        layers.append(layer)
    if offset != len(buffer):
        raise WeightFileError(
            source, f"{len(buffer) - offset} unexpected trailing bytes after the last layer (at offset {offset})"
        )
    return layers


def read_deep_compression_raw(
    net_path: str | os.PathLike[str], prototxt_path: str | os.PathLike[str]
) -> list[DeepCompressionLayer]:
    """The stored entries of every convolution layer of a ``.net`` file, in network order."""
    return decode_layer_entries(Path(net_path).read_bytes(), conv_shapes(prototxt_path), source=net_path)


def read_deep_compression(
    net_path: str | os.PathLike[str], prototxt_path: str | os.PathLike[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Dense ``{caffe layer name: (weights (out, in, kh, kw), bias (out,))}`` float32, in network order."""
    return {
        layer.name: (layer.dense_weights(), layer.bias)
        for layer in read_deep_compression_raw(net_path, prototxt_path)
    }


def encode_deep_compression(layers: Sequence[DeepCompressionLayer]) -> bytes:
    """The ``.net`` bytes of ``layers``; the exact inverse of :func:`decode_layer_entries`.

    Raises ``ValueError`` for layers the format cannot hold (wrong codebook or bias length, codes and
    gaps of different lengths, a gap above 15, positions past the tensor).
    """
    parts = [np.array([layer.stored_entries for layer in layers], dtype="<u4").tobytes()]
    for layer in layers:
        size = int(np.prod(layer.shape))
        if layer.codebook.shape != (CODEBOOK_SIZE,):
            raise ValueError(f"layer {layer.name!r}: codebook must have shape ({CODEBOOK_SIZE},)")
        if layer.bias.shape != (layer.shape[0],):
            raise ValueError(f"layer {layer.name!r}: bias must have shape ({layer.shape[0]},)")
        if layer.codes.shape != layer.gaps.shape or layer.codes.ndim != 1:
            raise ValueError(f"layer {layer.name!r}: codes and gaps must be 1-D and of equal length")
        if layer.codes.size and (layer.codes.min() < 0 or layer.codes.max() >= CODEBOOK_SIZE):
            raise ValueError(f"layer {layer.name!r}: codes must be 0..{CODEBOOK_SIZE - 1}")
        if layer.gaps.size and (
            layer.gaps.min() < 0 or layer.gaps.max() > MAX_GAP or layer.positions()[-1] >= size
        ):
            raise ValueError(f"layer {layer.name!r}: gaps must be 0..{MAX_GAP} and stay inside {size} weights")
        nibbles = np.zeros(layer.gaps.size + layer.gaps.size % 2, dtype=np.uint8)
        nibbles[: layer.gaps.size] = layer.gaps
        parts += [
            layer.codebook.astype("<f4").tobytes(),
            layer.bias.astype("<f4").tobytes(),
            layer.codes.astype(np.uint8).tobytes(),
            (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes(),
        ]
    return b"".join(parts)
