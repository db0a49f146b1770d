"""What a model argument names: a pretrained name, a model file or a SavedModel folder, in one wording.

Every command that takes a model passes it through :func:`identify_model` with the kinds it accepts,
so all of them accept the same spellings and refuse the same mistakes with the same words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from squeezekit.registry import is_pretrained_name, pretrained_names

# kind -> how messages name it
KINDS = {
    "pretrained": "a pretrained name",
    "keras": "a .keras file",
    "onnx": "a .onnx file",
    "tflite": "a .tflite file",
    "sqz": "a .sqz file",
    "openvino": "an OpenVINO .xml file",
    "saved_model": "a SavedModel folder",
}
SUFFIXES = {".keras": "keras", ".onnx": "onnx", ".tflite": "tflite", ".sqz": "sqz", ".xml": "openvino"}
RUNTIME_KINDS = ("pretrained", "onnx", "tflite", "sqz", "openvino")  # what runs without TensorFlow or Keras


@dataclass(frozen=True)
class ModelRef:
    """A model argument, identified: ``kind`` is a key of ``KINDS``; ``path`` is None for pretrained names."""

    spec: str
    kind: str
    path: Path | None = None


def describe(kinds) -> str:
    """``"a pretrained name, a .keras file or a .sqz file"``."""
    words = [KINDS[kind] for kind in kinds]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def identify_model(spec: str | os.PathLike, accept=tuple(KINDS), *, purpose: str = "this command") -> ModelRef:
    """Identify ``spec`` and check that ``purpose`` (``"squeezekit export"``, say) ``accept`` s its kind.

    An existing path wins over a pretrained name of the same spelling. Raises ValueError naming
    ``spec`` once, and what would have been accepted.
    """
    text = os.fspath(spec)
    path = Path(text)
    if not path.exists():
        if not is_pretrained_name(text):
            raise ValueError(f"{text}: no such model file or folder, and not a pretrained name "
                             f"({', '.join(pretrained_names())})")
        ref = ModelRef(text, "pretrained")
    elif path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ValueError(f"{text}: a folder, but not a SavedModel (no saved_model.pb in it); "
                             f"expected {describe(accept)}")
        ref = ModelRef(text, "saved_model", path)
    elif not path.is_file():
        raise ValueError(f"{text}: not a regular file")  # FIFOs and devices could block a reader forever
    elif path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{text}: unknown model format ({path.suffix or 'no suffix'}); expected {describe(accept)}")
    else:
        ref = ModelRef(text, SUFFIXES[path.suffix.lower()], path)
    if ref.kind not in accept:
        raise ValueError(f"{text}: {purpose} takes {describe(accept)}, not {KINDS[ref.kind]}")
    return ref
