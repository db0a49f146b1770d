"""What a runtime needs to use a model besides its weights: labels, preprocessing, provenance.

Pretrained models get it from their registry entry. Exported ``.onnx`` and ``.tflite`` files carry it
inside; ``.keras`` files and SavedModels in a JSON file beside them (``model.keras`` ->
``model.keras.json``), read without any framework.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from squeezekit.config import CAFFE_PREPROCESSING, Preprocessing


METADATA_VERSION = 1
MAX_LABELS = 100_000  # ImageNet-21k has 21,841 classes


@dataclass(frozen=True)
class ModelMetadata:
    labels: tuple[tuple[str, str], ...]  # (class id, human name) in output order
    preprocessing: Preprocessing = CAFFE_PREPROCESSING
    source: str = ""
    label_set: str = ""  # "imagenet-1k" when labels are the ImageNet synsets
    extra: dict = field(default_factory=dict)

    @property
    def is_imagenet(self) -> bool:
        return self.label_set == "imagenet-1k"

    def to_dict(self) -> dict:
        from squeezekit import __version__

        return {
            "format": "squeezekit-model-metadata", "version": METADATA_VERSION, "squeezekit_version": __version__,
            "labels": [list(label) for label in self.labels], "label_set": self.label_set,
            "preprocessing": self.preprocessing.to_dict(), "source": self.source, "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "ModelMetadata":
        """Metadata as read back from a file; every field is checked (``_schema.FieldError`` names it)."""
        from squeezekit._schema import FieldError, integer, mapping, required, sequence, text

        values = mapping(values, "metadata")
        if values.get("format") != "squeezekit-model-metadata":
            raise FieldError("format", "is not 'squeezekit-model-metadata': not squeezekit's model metadata")
        if "version" in values and integer(values["version"], "version", 0, 1 << 30) > METADATA_VERSION:
            raise FieldError("version", f"is {values['version']}: written by a newer squeezekit (this one reads "
                             f"version {METADATA_VERSION})")
        labels = []
        for i, pair in enumerate(sequence(required(values, "labels"), "labels", min_length=1, max_length=MAX_LABELS)):
            pair = sequence(pair, f"labels[{i}]", min_length=2, max_length=2)
            labels.append((text(pair[0], f"labels[{i}][0]", 1000), text(pair[1], f"labels[{i}][1]", 1000)))
        return cls(
            labels=tuple(labels),
            preprocessing=Preprocessing.from_dict(required(values, "preprocessing")),
            source=text(values.get("source", ""), "source"),
            label_set=text(values.get("label_set", ""), "label_set", 100),
            extra=mapping(values.get("extra", {}), "extra"),
        )


def sidecar_path(model_path: str | os.PathLike) -> Path:
    path = Path(model_path)
    return path.with_name(path.name + ".json")


def write_sidecar(model_path: str | os.PathLike, metadata: ModelMetadata) -> Path:
    from squeezekit._resources import atomic_write_bytes

    path = sidecar_path(model_path)
    atomic_write_bytes(path, json.dumps(metadata.to_dict(), indent=1).encode())
    return path


def read_sidecar(model_path: str | os.PathLike) -> ModelMetadata | None:
    """The metadata file beside a model, checked; None when there is none."""
    from squeezekit._schema import read_document

    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    return read_document(path, ModelMetadata.from_dict, "model metadata")


def imagenet_metadata(source: str, preprocessing: Preprocessing = CAFFE_PREPROCESSING) -> ModelMetadata:
    from squeezekit.labels import imagenet_labels

    return ModelMetadata(labels=imagenet_labels(), preprocessing=preprocessing, source=source, label_set="imagenet-1k")
