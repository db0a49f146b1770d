"""Reader of convolution weights from an OpenVINO IR (versions up to 7: ``.xml`` + ``.bin``).

DeepScale's full-precision SqueezeNet v1.1 ``.caffemodel`` is not available offline, but an OpenVINO
IR converted from it (with no mean or scale folded in) is: the weights are the Caffe weights, rounded
to float16. In IR versions up to 7 each ``<layer type="Convolution">`` carries its hyper-parameters
in ``<data output=".." kernel="kh,kw" group="..">``, its input shape in ``<input><port><dim>``, and
its parameters as ``<blobs><weights offset size/><biases offset size/></blobs>``: byte ranges of the
``.bin`` holding raw little-endian values (precision from the layer's ``precision`` attribute),
weights in Caffe order ``(out, in / group, kh, kw)``. Layer names are the Caffe layer names.

IR version 10 and later moved weights into separate ``Const`` layers; such files are rejected with a
clear message rather than read wrongly. Byte ranges are checked against both the ``.bin`` and the
shape the XML declares, since an off-by-one there would otherwise shift every later weight.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from squeezekit.errors import WeightFileError

__all__ = ["read_openvino_ir"]

_DTYPES = {"FP16": np.dtype("<f2"), "FP32": np.dtype("<f4")}


def _ints(text: str | None, what: str, layer: str, source: str) -> list[int]:
    try:
        values = [int(v) for v in (text or "").split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise WeightFileError(source, f"layer {layer!r}: {what} must be non-negative integers, got {text!r}")
    return values


def _blob(
    layer: ET.Element, kind: str, count: int, dtype: np.dtype, binary: bytes, name: str, source: str
) -> np.ndarray:
    """``count`` values of the ``<blobs><kind>`` byte range, checked against the shape and the .bin."""
    element = layer.find(f"blobs/{kind}")
    if element is None:
        raise WeightFileError(source, f"layer {name!r} has no <blobs><{kind}>")
    offset = _ints(element.get("offset"), f"{kind} offset", name, source)[0]
    size = _ints(element.get("size"), f"{kind} size", name, source)[0]
    if size != count * dtype.itemsize:
        raise WeightFileError(
            source,
            f"layer {name!r}: {kind} are {size} bytes, but {count} {dtype.name} values need {count * dtype.itemsize}",
        )
    if offset + size > len(binary):
        raise WeightFileError(
            source,
            f"layer {name!r}: {kind} bytes {offset}..{offset + size} lie past the end of the "
            f"{len(binary)}-byte .bin",
        )
    values = np.frombuffer(binary, dtype=dtype, count=count, offset=offset).astype(np.float32)
    if not np.isfinite(values).all():
        raise WeightFileError(source, f"layer {name!r}: {kind} contain non-finite values")
    return values


def read_openvino_ir(
    xml_path: str | os.PathLike[str], bin_path: str | os.PathLike[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{caffe layer name: (weights (out, in, kh, kw), bias (out,))}`` float32, in network order.

    Raises :class:`WeightFileError` (naming the ``.xml``) when the XML is malformed or of an
    unsupported IR version, a convolution lacks its data, input shape or blobs, or a blob's byte
    range disagrees with its shape or lies outside the ``.bin``.
    """
    source = os.fspath(xml_path)
    binary = Path(bin_path).read_bytes()
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise WeightFileError(source, f"not well-formed XML ({exc})") from exc
    if root.tag != "net":
        raise WeightFileError(source, f"root element is <{root.tag}>, expected an OpenVINO <net>")
    version = root.get("version", "")
    if not version.isdigit() or int(version) >= 10:
        raise WeightFileError(
            source, f"IR version {version!r} is not supported (only versions up to 7 keep weights in <blobs>)"
        )
    result: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for layer in root.iterfind("layers/layer"):
        if layer.get("type") != "Convolution":
            continue
        name = layer.get("name", "")
        if name in result:
            raise WeightFileError(source, f"two convolution layers are named {name!r}")
        precision = layer.get("precision", root.get("precision", ""))
        if precision not in _DTYPES:
            raise WeightFileError(source, f"layer {name!r}: precision {precision!r} is not one of {sorted(_DTYPES)}")
        data = layer.find("data")
        dims = layer.findall("input/port/dim")
        if data is None or len(dims) != 4:
            raise WeightFileError(source, f"layer {name!r} needs <data> and a 4-D input port")
        out = _ints(data.get("output"), "output", name, source)[0]
        kernel = _ints(data.get("kernel"), "kernel", name, source)
        group = _ints(data.get("group", "1"), "group", name, source)[0]
        in_channels = _ints(dims[1].text, "input channels", name, source)[0]
        if len(kernel) != 2 or group == 0 or in_channels % group:
            raise WeightFileError(
                source, f"layer {name!r}: kernel {kernel} / group {group} / {in_channels} inputs are inconsistent"
            )
        shape = (out, in_channels // group, kernel[0], kernel[1])
        dtype = _DTYPES[precision]
        weights = _blob(layer, "weights", int(np.prod(shape)), dtype, binary, name, source)
        bias = _blob(layer, "biases", out, dtype, binary, name, source)
        result[name] = (weights.reshape(shape), bias)
    if not result:
        raise WeightFileError(source, "no Convolution layers with weights found")
    return result
