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
            "format": "squeezekit-model-metadata", "version": 1, "squeezekit_version": __version__,
            "labels": [list(label) for label in self.labels], "label_set": self.label_set,
            "preprocessing": self.preprocessing.to_dict(), "source": self.source, "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "ModelMetadata":
        if values.get("format") != "squeezekit-model-metadata":
            raise ValueError("not a squeezekit model metadata file")
        return cls(
            labels=tuple((str(a), str(b)) for a, b in values["labels"]),
            preprocessing=Preprocessing.from_dict(values["preprocessing"]),
            source=values.get("source", ""), label_set=values.get("label_set", ""), extra=values.get("extra", {}),
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
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        return ModelMetadata.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: unreadable model metadata ({error})") from None


def imagenet_metadata(source: str, preprocessing: Preprocessing = CAFFE_PREPROCESSING) -> ModelMetadata:
    from squeezekit.labels import imagenet_labels

    return ModelMetadata(labels=imagenet_labels(), preprocessing=preprocessing, source=source, label_set="imagenet-1k")
