"""Checking what a file says before anything uses it: one small set of typed field readers.

Every document squeezekit reads back (model metadata inside ``.onnx``/``.tflite``/``.sqz`` files and in
sidecar JSON, a checkpoint's ``state.json``, a run's saved settings, an exploration's trial records)
is parsed by a function built from these readers. A field of the wrong type or out of range raises
:class:`FieldError` naming the field; :func:`parse_document` turns that into one
:class:`~squeezekit.errors.WeightFileError` naming the file, so a damaged or hostile file gives one
line and exit status 2, never a traceback deep inside numpy or an attempt to allocate gigabytes.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, TypeVar

from squeezekit.errors import WeightFileError

T = TypeVar("T")
MAX_DOCUMENT_BYTES = 64 << 20  # no squeezekit document comes near this (ImageNet labels: 40 KB)


class FieldError(ValueError):
    """A field of a parsed document has the wrong type or an impossible value."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"field {field!r} {problem}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def mapping(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise FieldError(field, f"must be a JSON object, not {_shown(value)}")
    return value


def required(values: dict, key: str, field: str = "") -> Any:
    if key not in values:
        raise FieldError(f"{field}{key}", "is missing")
    return values[key]


def integer(value: Any, field: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise FieldError(field, f"must be an integer in {minimum}..{maximum}, not {_shown(value)}")
    return value


def real(value: Any, field: str, minimum: float = -math.inf, maximum: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not minimum <= value <= maximum:
        bounds = f" in [{minimum}, {maximum}]" if math.isfinite(minimum) or math.isfinite(maximum) else ""
        raise FieldError(field, f"must be a finite number{bounds}, not {_shown(value)}")
    return float(value)


def text(value: Any, field: str, max_length: int = 10_000) -> str:
    if not isinstance(value, str) or len(value) > max_length:
        raise FieldError(field, f"must be a string of at most {max_length} characters, not {_shown(value)}")
    return value


def sequence(value: Any, field: str, *, max_length: int, min_length: int = 0) -> list:
    if not isinstance(value, list) or not min_length <= len(value) <= max_length:
        raise FieldError(field, f"must be a list of {min_length}..{max_length} items, not {_shown(value)}")
    return value


def choice(value: Any, field: str, choices: tuple) -> Any:
    if isinstance(value, (dict, list)) or value not in choices:
        raise FieldError(field, f"must be one of {list(choices)}, not {_shown(value)}")
    return value


def file_name(value: Any, field: str) -> str:
    """A plain file name (no folder part): a document may name a file beside it, never one elsewhere."""
    name = text(value, field, 255)
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise FieldError(field, f"must be a plain file name, not {_shown(value)}")
    return name


def parse_document(source: str | os.PathLike, data: Any, parse: Callable[[Any], T], what: str) -> T:
    """``parse(data)``, with any :class:`FieldError` or invalid value reported as one error naming ``source``."""
    try:
        return parse(data)
    except (FieldError, ValueError) as error:  # config classes raise ValueError naming their parameter
        if isinstance(error, WeightFileError):
            raise
        raise WeightFileError(source, f"invalid {what}: {error}") from None


def decode_json(source: str | os.PathLike, raw: bytes | str, what: str) -> Any:
    """JSON text as Python values; bad JSON (or a huge document) is a WeightFileError naming ``source``."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise WeightFileError(source, f"{what} of {len(raw):,} bytes is larger than any squeezekit writes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise WeightFileError(source, f"{what} is not valid JSON ({str(error)[:120]})") from None


def read_document(path: str | os.PathLike, parse: Callable[[Any], T], what: str) -> T:
    """Read a JSON file and parse it (see :func:`parse_document`)."""
    try:
        size = os.path.getsize(path)
        if size > MAX_DOCUMENT_BYTES:
            raise WeightFileError(path, f"{what} of {size:,} bytes is larger than any squeezekit writes")
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise WeightFileError(path, f"cannot read the {what} ({error.strerror or error})") from None
    return parse_document(path, decode_json(path, raw, what), parse, what)
