"""A minimal reader and writer of Caffe ``.caffemodel`` files (protobuf wire format, no protobuf package).

DeepScale's original SqueezeNet weights are Caffe ``NetParameter`` messages. Decoding them needs
only a handful of fields, so instead of depending on ``protobuf`` plus a compiled ``caffe.proto``
this module walks the wire format directly:

* ``NetParameter``: ``name`` = 1 (string), ``layer`` = 100 (``LayerParameter``), and in legacy files
  ``layers`` = 2 (``V1LayerParameter``);
* ``LayerParameter``: ``name`` = 1, ``type`` = 2 (string), ``blobs`` = 7;
  ``V1LayerParameter``: ``name`` = 4, ``type`` = 5 (an enum), ``blobs`` = 6;
* ``BlobProto``: ``shape`` = 7 (``BlobShape``: ``dim`` = 1, int64), ``data`` = 5 (float),
  ``double_data`` = 8, and the legacy ``num``/``channels``/``height``/``width`` = 1..4.

Repeated numbers are accepted both packed and unpacked, as any protobuf parser must. Every other
field is skipped by its wire type. The parser never reads past a length it was given: truncated
input, lengths running past their enclosing message, bad wire types, and blobs whose data does not
fill their shape all raise :class:`~squeezekit.errors.WeightFileError`.

A limitation of protobuf itself, not of this reader: a file cut exactly between two top-level
fields is a valid, shorter ``NetParameter``. Callers that need the whole network must check the
layers they get (or, for downloads, the file's hash: see :func:`git_blob_sha1`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezekit.errors import WeightFileError

__all__ = [
    "CaffeLayer",
    "encode_caffemodel",
    "git_blob_sha1",
    "read_caffemodel",
    "read_net_blobs",
    "write_caffemodel",
]

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5

# V1LayerParameter.LayerType values of the layers that carry weights (caffe.proto); other legacy
# types are reported as "V1:<number>".
_V1_TYPES = {4: "Convolution", 14: "InnerProduct", 39: "Deconvolution"}


@dataclass(frozen=True, eq=False)
class CaffeLayer:
    """One layer of a ``NetParameter``: its name, type and parameter blobs in stored order.

    ``blobs`` are float32 arrays in the shape the file declares (legacy files declare 4-D
    ``(num, channels, height, width)`` shapes even for biases, e.g. ``(1, 1, 1, out)``).
    """

    name: str
    type: str
    blobs: list[np.ndarray]


_Span = tuple[int, int]
"""``(start, end)`` byte range of a non-varint field's payload inside the file."""


class _Wire:
    """Bounds-checked decoding of protobuf fields from one buffer; errors name the file."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source

    def error(self, message: str) -> WeightFileError:
        return WeightFileError(self.source, message)

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        """The varint at ``pos`` (which must end before ``end``) and the position after it."""
        value = shift = 0
        while True:
            if pos >= end:
                raise self.error(f"truncated varint at byte {pos}")
            byte = self.data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift >= 70:
                raise self.error(f"varint longer than 10 bytes ending at byte {pos}")
        if value >= 1 << 64:
            raise self.error(f"varint ending at byte {pos} overflows 64 bits")
        return value, pos

    def fields(self, span: _Span) -> Iterator[tuple[int, int, int | _Span]]:
        """Yield ``(field number, wire type, value)`` of the message in ``span``.

        ``value`` is the integer of a varint, else the ``(start, end)`` span of the payload.
        """
        pos, end = span
        while pos < end:
            key, pos = self.varint(pos, end)
            field, wire = key >> 3, key & 7
            if field == 0:
                raise self.error(f"field number 0 at byte {pos}")
            if wire == _VARINT:
                value, pos = self.varint(pos, end)
                yield field, wire, value
                continue
            if wire == _FIXED64:
                size = 8
            elif wire == _FIXED32:
                size = 4
            elif wire == _LENGTH:
                size, pos = self.varint(pos, end)
            elif wire in (_START_GROUP, _END_GROUP):
                raise self.error(f"field {field} at byte {pos} uses protobuf groups, which Caffe never writes")
            else:
                raise self.error(f"field {field} at byte {pos} has invalid wire type {wire}")
            if size > end - pos:
                raise self.error(f"field {field} at byte {pos} needs {size} bytes, but its message ends at byte {end}")
            yield field, wire, (pos, pos + size)
            pos += size

    def message(self, wire: int, value: int | _Span, what: str) -> _Span:
        """The span of an embedded message (or string), checking it is length-delimited."""
        if wire != _LENGTH:
            raise self.error(f"{what} has wire type {wire}, expected a length-delimited field")
        return value

    def string(self, wire: int, value: int | _Span, what: str) -> str:
        start, end = self.message(wire, value, what)
        try:
            return self.data[start:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"{what} at byte {start} is not valid UTF-8") from exc

    def varints(self, wire: int, value: int | _Span, what: str) -> list[int]:
        """Values of a repeated varint field, packed (length-delimited) or not."""
        if wire == _VARINT:
            return [value]
        pos, end = self.message(wire, value, what)
        values = []
        while pos < end:
            number, pos = self.varint(pos, end)
            values.append(number)
        return values

    def numbers(self, wire: int, value: int | _Span, dtype: str, what: str) -> np.ndarray:
        """Values of a repeated fixed-width number field, packed (length-delimited) or not."""
        itemsize = np.dtype(dtype).itemsize
        unpacked = _FIXED32 if itemsize == 4 else _FIXED64
        if wire not in (_LENGTH, unpacked):
            raise self.error(f"{what} has wire type {wire}, expected {_LENGTH} (packed) or {unpacked}")
        start, end = value
        if (end - start) % itemsize:
            raise self.error(f"{what} at byte {start} holds {end - start} bytes, not a multiple of {itemsize}")
        return np.frombuffer(self.data, dtype=dtype, count=(end - start) // itemsize, offset=start)


def _signed(value: int) -> int:
    """An int32/int64 field's varint as a signed number (negatives are 10-byte two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _blob(wire: _Wire, span: _Span, where: str) -> np.ndarray:
    """Decode a ``BlobProto`` into a float32 array of its declared shape.

    Like Caffe's ``Blob::FromProto``, the legacy ``num``/``channels``/``height``/``width`` fields
    win when any of them is present (absent ones count as 0), and ``double_data`` is used when it is
    not empty.
    """
    legacy: dict[int, int] = {}
    dims: list[int] = []
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    for field, kind, value in wire.fields(span):
        if field in (1, 2, 3, 4):
            if kind != _VARINT:
                raise wire.error(f"{where} legacy dimension {field} has wire type {kind}, expected a varint")
            legacy[field] = _signed(value)
        elif field == 5:
            floats.append(wire.numbers(kind, value, "<f4", f"{where} data"))
        elif field == 7:
            for shape_field, shape_kind, shape_value in wire.fields(wire.message(kind, value, f"{where} shape")):
                if shape_field == 1:
                    dims += [_signed(d) for d in wire.varints(shape_kind, shape_value, f"{where} shape.dim")]
        elif field == 8:
            doubles.append(wire.numbers(kind, value, "<f8", f"{where} double_data"))
    if legacy:
        dims = [legacy.get(field, 0) for field in (1, 2, 3, 4)]
    if any(d < 0 for d in dims):
        raise wire.error(f"{where} has a negative dimension in shape {dims}")
    chunks = doubles if any(chunk.size for chunk in doubles) else floats
    values = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if values.size != math.prod(dims):
        raise wire.error(f"{where} has {values.size} values, but its shape {dims} needs {math.prod(dims)}")
    return values.reshape(dims)


def _layer(wire: _Wire, span: _Span, legacy: bool, index: int) -> CaffeLayer:
    name_field, type_field, blobs_field = (4, 5, 6) if legacy else (1, 2, 7)
    name, kind, blob_spans = "", "", []
    where = f"layer #{index}"
    for field, wire_type, value in wire.fields(span):
        if field == name_field:
            name = wire.string(wire_type, value, f"{where} name")
            where = f"layer {name!r}"
        elif field == type_field and legacy:
            if wire_type != _VARINT:
                raise wire.error(f"{where} type has wire type {wire_type}, expected a varint enum")
            kind = _V1_TYPES.get(value, f"V1:{value}")
        elif field == type_field:
            kind = wire.string(wire_type, value, f"{where} type")
        elif field == blobs_field:
            blob_spans.append(wire.message(wire_type, value, f"{where} blob"))
    blobs = [_blob(wire, blob, f"{where} blob {k}") for k, blob in enumerate(blob_spans)]
    return CaffeLayer(name=name, type=kind, blobs=blobs)


def _load(path_or_bytes: str | os.PathLike[str] | bytes) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "<bytes>"
    return Path(path_or_bytes).read_bytes(), os.fspath(path_or_bytes)


def _read_layers(data: bytes, source: str) -> list[CaffeLayer]:
    wire = _Wire(data, source)
    layers = []
    for field, wire_type, value in wire.fields((0, len(data))):
        if field in (2, 100):
            span = wire.message(wire_type, value, "a layer")
            layers.append(_layer(wire, span, legacy=field == 2, index=len(layers)))
    return layers


def read_net_blobs(path_or_bytes: str | os.PathLike[str] | bytes) -> list[CaffeLayer]:
    """Every layer of a ``NetParameter`` (modern ``layer`` and legacy ``layers``), in file order.

    Legacy layer types are translated to their modern names for the weight-bearing types
    (``Convolution``, ``InnerProduct``, ``Deconvolution``) and reported as ``"V1:<enum>"`` otherwise.
    """
    return _read_layers(*_load(path_or_bytes))


def read_caffemodel(path_or_bytes: str | os.PathLike[str] | bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{caffe layer name: (weights (out, in, kh, kw), bias (out,))}`` float32 of every convolution.

    Layers are in file (network) order. A convolution must have exactly two blobs, a 4-D weight
    and ``out`` finite biases; a file without any convolution, or with two of the same name, is
    rejected too, since loading it could only produce an incomplete or ambiguous model.
    """
    data, source = _load(path_or_bytes)
    result: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for layer in _read_layers(data, source):
        if layer.type != "Convolution":
            continue
        if layer.name in result:
            raise WeightFileError(source, f"two convolution layers are named {layer.name!r}")
        shapes = [blob.shape for blob in layer.blobs]
        if len(shapes) != 2 or len(shapes[0]) != 4 or layer.blobs[1].size != shapes[0][0]:
            raise WeightFileError(
                source,
                f"convolution {layer.name!r} has blobs of shapes {shapes}; expected a 4-D weight "
                "(out, in, kh, kw) and out biases",
            )
        weights, bias = layer.blobs[0], layer.blobs[1].reshape(-1)
        if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
            raise WeightFileError(source, f"convolution {layer.name!r} has non-finite weights or biases")
        result[layer.name] = (weights, bias)
    if not result:
        raise WeightFileError(source, "no Convolution layers with weights found")
    return result


def _key(field: int, wire: int) -> bytes:
    return _encode_varint(field << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _key(field, _LENGTH) + _encode_varint(len(payload)) + payload


def _encode_blob(array: np.ndarray) -> bytes:
    # Field order follows Caffe's own serialisation: data (5) before shape (7).
    shape = _length_delimited(1, b"".join(_encode_varint(int(d)) for d in array.shape))
    return _length_delimited(5, np.ascontiguousarray(array, dtype="<f4").tobytes()) + _length_delimited(7, shape)


def encode_caffemodel(
    layers: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    net_name: str = "squeezekit",
    types: Mapping[str, str] | None = None,
) -> bytes:
    """The bytes of a modern-format ``NetParameter`` holding ``layers`` (name -> (weights, bias)).

    Each layer gets its name, its type (``types[name]``, default ``"Convolution"``) and its two
    blobs with explicit ``BlobShape``s and packed float32 data; values are stored as float32, as in
    every Caffe file. No topology (bottoms, tops, parameters) is written: the result is a weights
    file, which Caffe matches to a deploy prototxt by layer name.
    """
    types = types or {}
    parts = [_length_delimited(1, net_name.encode("utf-8"))]
    for name, blobs in layers.items():
        layer = _length_delimited(1, name.encode("utf-8"))
        layer += _length_delimited(2, types.get(name, "Convolution").encode("utf-8"))
        for blob in blobs:
            layer += _length_delimited(7, _encode_blob(np.asarray(blob)))
        parts.append(_length_delimited(100, layer))
    return b"".join(parts)


def write_caffemodel(
    path: str | os.PathLike[str],
    layers: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    net_name: str = "squeezekit",
    types: Mapping[str, str] | None = None,
) -> None:
    """Write :func:`encode_caffemodel` of ``layers`` to ``path``."""
    Path(path).write_bytes(encode_caffemodel(layers, net_name=net_name, types=types))


def git_blob_sha1(path: str | os.PathLike[str]) -> str:
    """Git's blob id of a file: SHA-1 of ``b"blob <size>\\0"`` followed by the content.

    GitHub lists this id for every file in a repository, which makes it a free, publisher-side
    checksum for downloads such as DeepScale's ``.caffemodel`` files.
    """
    path = Path(path)
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode("ascii"))
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
