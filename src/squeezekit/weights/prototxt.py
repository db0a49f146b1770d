"""A minimal reader of Caffe's prototxt (protobuf text format) network definitions.

The Deep Compression ``.net`` file stores no shapes at all: layer order, output channels and kernel
sizes come from the accompanying ``deploy.prototxt``, and input channels follow from its graph. Pulling
in the ``protobuf`` package and Caffe's ``.proto`` schema just for that would be a heavy dependency, so
this module parses the text format directly, schema-free:

* ``name { ... }`` (and ``name: { ... }``) is a nested message, parsed into a ``dict``;
* ``key: value`` is a scalar: quoted strings become ``str``, integers ``int``, other numbers
  ``float``, ``true``/``false`` ``bool``, and bare identifiers (enum values such as ``MAX``) ``str``;
* a key that occurs more than once becomes a ``list`` of its values in file order. A key that occurs
  once keeps its bare value (the parser has no schema to know which fields are repeated); use
  :func:`repeated` to read a field that may be either.

On top of the parse tree, :func:`conv_layers` and :func:`pool_layers` give the per-layer
hyper-parameters the weight readers and model builders need, with Caffe's defaults filled in.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from squeezekit.errors import WeightFileError

__all__ = ["parse_prototxt", "repeated", "conv_layers", "pool_layers"]

_TOKEN = re.compile(
    r"""
    (?P<skip>[ \t\r\f\v]+|\#[^\n]*|[;,])
  | (?P<newline>\n)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<punct>[{}:])
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[fF]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)

# Layer type names of the modern format and the enum names of the legacy (V1) ``layers`` format.
_CONVOLUTION = {"Convolution", "CONVOLUTION"}
_POOLING = {"Pooling", "POOLING"}
_CONCAT = {"Concat", "CONCAT"}
_INPUT = {"Input"}


def _tokenize(text: str, source: str) -> list[tuple[str, str, int]]:
    tokens = []
    line = 1
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise WeightFileError(source, f"line {line}: unexpected character {text[pos]!r}")
        kind = match.lastgroup
        if kind == "newline":
            line += 1
        elif kind != "skip":
            tokens.append((kind, match.group(), line))
        pos = match.end()
    return tokens


def _scalar(kind: str, token: str, line: int, source: str) -> Any:
    if kind == "string":
        try:
            return ast.literal_eval(token)  # C-style escapes, as protobuf's text format uses
        except (ValueError, SyntaxError) as exc:
            raise WeightFileError(source, f"line {line}: bad string literal {token}") from exc
    if kind == "number":
        body = token.rstrip("fF")
        if re.fullmatch(r"[-+]?\d+", body):
            return int(body)
        return float(body)
    if token == "true":
        return True
    if token == "false":
        return False
    return token  # an enum value such as MAX or AVE


def parse_prototxt(text: str, source: str = "<prototxt>") -> dict[str, Any]:
    """Parse protobuf text format into nested dicts (see the module docstring for the mapping).

    ``source`` names the file in error messages. Raises :class:`WeightFileError` on any syntax error,
    with the line number.
    """
    tokens = _tokenize(text, source)
    root: dict[str, Any] = {}
    stack = [root]
    i = 0

    def add(message: dict[str, Any], key: str, value: Any) -> None:
        if key not in message:
            message[key] = value
        elif isinstance(message[key], list):
            message[key].append(value)
        else:
            message[key] = [message[key], value]

    while i < len(tokens):
        kind, token, line = tokens[i]
        if token == "}" and kind == "punct":
            if len(stack) == 1:
                raise WeightFileError(source, f"line {line}: '}}' without a matching '{{'")
            stack.pop()
            i += 1
            continue
        if kind != "ident":
            raise WeightFileError(source, f"line {line}: expected a field name, found {token!r}")
        j = i + 1
        if j < len(tokens) and tokens[j][1] == ":" and tokens[j][0] == "punct":
            j += 1
        if j >= len(tokens):
            raise WeightFileError(source, f"line {line}: field {token!r} has no value")
        value_kind, value, value_line = tokens[j]
        if value_kind == "punct" and value == "{":
            child: dict[str, Any] = {}
            add(stack[-1], token, child)
            stack.append(child)
        elif value_kind in ("string", "number", "ident") and j == i + 2:
            add(stack[-1], token, _scalar(value_kind, value, value_line, source))
        else:
            raise WeightFileError(
                source, f"line {value_line}: expected ': value' or '{{' after {token!r}, found {value!r}"
            )
        i = j + 1
    if len(stack) != 1:
        raise WeightFileError(source, f"{len(stack) - 1} unclosed '{{' at end of file")
    return root


def repeated(message: dict[str, Any], key: str) -> list[Any]:
    """The values of a possibly repeated field as a list (empty when the field is absent)."""
    value = message.get(key, [])
    return value if isinstance(value, list) else [value]


def _messages(message: dict[str, Any], key: str, source: str) -> list[dict[str, Any]]:
    """The values of a repeated message field, checking they are ``{ ... }`` blocks."""
    values = repeated(message, key)
    if not all(isinstance(value, dict) for value in values):
        raise WeightFileError(source, f"{key!r} must be a {{ ... }} block")
    return values


def _message(message: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    """An optional, non-repeated message field (``{}`` when absent)."""
    values = _messages(message, key, source)
    if len(values) > 1:
        raise WeightFileError(source, f"layer {message.get('name')!r}: {key!r} is given {len(values)} times")
    return values[0] if values else {}


def _layers(parsed: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """The layers in order, checking the fields every layer helper relies on are strings."""
    # Modern files use ``layer``, legacy (V1) files ``layers``; a file uses one or the other.
    layers = _messages(parsed, "layer", source) + _messages(parsed, "layers", source)
    for layer in layers:
        if not all(isinstance(layer.get(key, ""), str) for key in ("name", "type")):
            raise WeightFileError(source, f"layer {layer.get('name')!r}: name and type must be single strings")
        if not all(isinstance(value, str) for key in ("bottom", "top") for value in repeated(layer, key)):
            raise WeightFileError(source, f"layer {layer.get('name')!r}: bottom and top must be strings")
    return layers


def _one(layer: dict[str, Any], key: str, source: str) -> str:
    values = repeated(layer, key)
    if len(values) != 1:
        raise WeightFileError(
            source, f"layer {layer.get('name')!r}: expected exactly one {key!r}, found {len(values)}"
        )
    return values[0]


def _int(value: Any, key: str, layer: str | None, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        where = "" if layer is None else f"layer {layer!r}: "
        raise WeightFileError(source, f"{where}{key} must be a non-negative integer, got {value!r}")
    return value


def _square(param: dict[str, Any], key: str, default: int | None, layer: str, source: str) -> int | None:
    """One int for a Caffe spatial parameter given as ``key`` (repeated) or as ``<prefix>_h``/``_w``.

    The per-side names are ``kernel_h``/``kernel_w`` for ``kernel_size`` and ``stride_h``,
    ``pad_h`` (and ``_w``) for ``stride`` and ``pad``.
    SqueezeNet and the Keras layers built from it only use square kernels, strides and pads, so a
    non-square value is reported instead of being silently collapsed to one of its sides.
    """
    values = [_int(v, key, layer, source) for v in repeated(param, key)]
    prefix = key.removesuffix("_size")
    if f"{prefix}_h" in param or f"{prefix}_w" in param:
        sides = [param.get(f"{prefix}_h", default), param.get(f"{prefix}_w", default)]
        if None in sides:
            raise WeightFileError(source, f"layer {layer!r}: {prefix}_h and {prefix}_w must be given together")
        values += [_int(v, key, layer, source) for v in sides]
    if not values:
        return default
    if len(set(values)) != 1:
        raise WeightFileError(source, f"layer {layer!r}: non-square {key} {values} is not supported")
    return values[0]


def _input_channels(parsed: dict[str, Any], source: str) -> dict[str, int | None]:
    """Channels of the net-level inputs (``input`` with ``input_dim`` or ``input_shape``)."""
    names = repeated(parsed, "input")
    if not all(isinstance(name, str) for name in names):
        raise WeightFileError(source, "net input names must be strings")
    dims = [_int(d, "input_dim", None, source) for d in repeated(parsed, "input_dim")]
    shapes = [
        [_int(d, "input_shape.dim", None, source) for d in repeated(s, "dim")]
        for s in _messages(parsed, "input_shape", source)
    ]
    if not shapes:
        shapes = [dims[k : k + 4] for k in range(0, len(dims), 4)]
    return {
        name: (shapes[k][1] if k < len(shapes) and len(shapes[k]) > 1 else None)
        for k, name in enumerate(names)
    }


def _in_channels(parsed: dict[str, Any], source: str) -> list[int | None]:
    """Follow bottom/top through the graph: the channel count of each layer's first bottom.

    Returns one entry per layer of :func:`_layers`. Convolutions output their ``num_output``,
    Concat layers along axis 1 sum their inputs, ``Input`` layers take ``dim[1]`` of their shape,
    and every other layer (ReLU, Pooling, Dropout, LRN, Softmax, ...) keeps its input's channel
    count. A count that cannot be known (a data layer reading from a database) is ``None``.
    """
    channels = _input_channels(parsed, source)
    result: list[int | None] = []
    for layer in _layers(parsed, source):
        kind = layer.get("type")
        name = layer.get("name")
        tops = repeated(layer, "top")
        ins = [channels.get(b) for b in repeated(layer, "bottom")]
        result.append(ins[0] if ins else None)
        if kind in _INPUT:
            shapes = _messages(_message(layer, "input_param", source), "shape", source)
            for top, shape in zip(tops, shapes):
                dims = [_int(d, "shape.dim", name, source) for d in repeated(shape, "dim")]
                channels[top] = dims[1] if len(dims) > 1 else None
            continue
        if kind in _CONVOLUTION:
            param = _message(layer, "convolution_param", source)
            out = _int(param.get("num_output"), "num_output", name, source)
        elif kind in _CONCAT:
            param = _message(layer, "concat_param", source)
            axis = param.get("axis", param.get("concat_dim", 1))
            out = (None if None in ins else sum(ins)) if axis == 1 else ins[0] if ins else None
        else:
            out = ins[0] if ins else None
        for top in tops:
            channels[top] = out
    return result


def conv_layers(parsed: dict[str, Any], source: str = "<prototxt>") -> list[dict[str, Any]]:
    """Every Convolution layer in network order, with Caffe's defaults filled in.

    Each entry has ``name``, ``bottom``, ``top``, ``num_output``, ``kernel_size``, ``stride``
    (default 1), ``pad`` (default 0), ``group`` (default 1) and ``in_channels``: the channel count
    of the bottom blob found by following the graph (``None`` when the net's input channels are not
    declared). Weights of such a layer have Caffe shape
    ``(num_output, in_channels // group, kernel_size, kernel_size)``.
    """
    result = []
    for layer, in_channels in zip(_layers(parsed, source), _in_channels(parsed, source)):
        if layer.get("type") not in _CONVOLUTION:
            continue
        name = layer.get("name")
        param = _message(layer, "convolution_param", source)
        kernel = _square(param, "kernel_size", None, name, source)
        if kernel is None:
            raise WeightFileError(source, f"convolution {name!r} has no kernel_size")
        stride = _square(param, "stride", 1, name, source)
        pad = _square(param, "pad", 0, name, source)
        result.append(
            {
                "name": name,
                "bottom": _one(layer, "bottom", source),
                "top": _one(layer, "top", source),
                "num_output": _int(param.get("num_output"), "num_output", name, source),
                "kernel_size": kernel,
                "stride": stride,
                "pad": pad,
                "group": _int(param.get("group", 1), "group", name, source),
                "in_channels": in_channels,
            }
        )
    return result


def pool_layers(parsed: dict[str, Any], source: str = "<prototxt>") -> list[dict[str, Any]]:
    """Every Pooling layer in network order, with Caffe's defaults filled in.

    Each entry has ``name``, ``bottom``, ``top``, ``pool`` (``"MAX"``, ``"AVE"`` or
    ``"STOCHASTIC"``; default ``"MAX"``), ``kernel_size`` (``None`` for global pooling),
    ``stride`` (default 1), ``pad`` (default 0) and ``global_pooling`` (default ``False``).
    Caffe rounds pooled output sizes *up* (``ceil``), unlike Keras' default ``floor``; builders must
    account for that, which is why the raw hyper-parameters are exposed here.
    """
    result = []
    for layer in _layers(parsed, source):
        if layer.get("type") not in _POOLING:
            continue
        name = layer.get("name")
        param = _message(layer, "pooling_param", source)
        global_pooling = param.get("global_pooling", False)
        pool = param.get("pool", "MAX")
        if not isinstance(global_pooling, bool) or not isinstance(pool, str):
            raise WeightFileError(source, f"pooling {name!r}: pool must be an enum and global_pooling a bool")
        kernel = _square(param, "kernel_size", None, name, source)
        if kernel is None and not global_pooling:
            raise WeightFileError(source, f"pooling {name!r} has neither kernel_size nor global_pooling")
        result.append(
            {
                "name": name,
                "bottom": _one(layer, "bottom", source),
                "top": _one(layer, "top", source),
                "pool": pool,
                "kernel_size": kernel,
                "stride": _square(param, "stride", 1, name, source),
                "pad": _square(param, "pad", 0, name, source),
                "global_pooling": global_pooling,
            }
        )
    return result
