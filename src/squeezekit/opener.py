"""One way to open a model: any pretrained name or model file -> what the caller needs.

``open_model(spec, need)`` takes a pretrained name (``squeezenet1_1``, ``squeezenet1_0.imagenet_deep_compression``),
a ``.keras``, ``.onnx``, ``.tflite`` or ``.sqz`` file or a SavedModel folder, and returns

- ``need="classifier"``: a runtime :class:`~squeezekit.runtime.Classifier` (inference; every kind; the
  ``.keras`` and SavedModel kinds import Keras or TensorFlow, the others neither);
- ``need="keras"``: a :class:`KerasModel` (training, export; pretrained names, ``.keras`` and ``.sqz``);
- ``need="weights"``: a :class:`ModelWeights`, the architecture and its Keras-layout arrays with batch
  norm folded (compression; the same kinds).

Commands pass ``accept`` (a subset of what the need allows) and ``purpose``, so a refusal reads
"model.tflite: squeezekit export takes a pretrained name, a .keras file or a .sqz file, not a .tflite file".
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from squeezekit.config import SqueezeNetConfig
from squeezekit.formats.metadata import ModelMetadata, imagenet_metadata, read_sidecar
from squeezekit.runtime.sources import KINDS, RUNTIME_KINDS, ModelRef, identify_model

NEEDS = {
    "classifier": tuple(KINDS),
    "keras": ("pretrained", "keras", "sqz"),
    "weights": ("pretrained", "keras", "sqz"),
}


@dataclass
class KerasModel:
    model: object  # keras.Model
    metadata: ModelMetadata
    config: SqueezeNetConfig | None  # None for a .keras file saved without squeezekit's metadata
    ref: ModelRef


@dataclass
class ModelWeights:
    name: str
    config: SqueezeNetConfig
    arrays: dict[str, np.ndarray]  # Keras layout, batch norm folded
    metadata: ModelMetadata
    ref: ModelRef
    entry: object = None  # the PretrainedWeights of a pretrained name

    @property
    def input_size(self) -> int:
        return self.metadata.preprocessing.crop


def open_model(spec: str | os.PathLike, need: str = "classifier", *, accept=None, purpose: str = "this command",
               input_size: int | None = None, threads: int | None = None, precision: str = "auto"):
    """See the module docstring. ``input_size`` rebuilds a pretrained model for square inputs of that size
    (need "keras"); ``threads`` and ``precision`` ("auto", "float32", "int8" for pretrained names) go to
    the classifier."""
    if need not in NEEDS:
        raise ValueError(f"Expected need to be one of {sorted(NEEDS)}. Received: need={need!r}")
    accept = NEEDS[need] if accept is None else tuple(accept)
    if not set(accept) <= set(NEEDS[need]):
        raise ValueError(f"need={need!r} cannot open {sorted(set(accept) - set(NEEDS[need]))}")
    ref = identify_model(spec, accept, purpose=purpose)
    if input_size is not None and ref.kind != "pretrained":
        raise ValueError(f"{ref.spec}: an input size applies to pretrained names; a saved model keeps its own")
    if need == "classifier":
        return _classifier(ref, threads, precision)
    if need == "keras":
        return _keras(ref, input_size)
    return _weights(ref)


def _classifier(ref: ModelRef, threads, precision):
    from squeezekit.runtime import Classifier

    if ref.kind in RUNTIME_KINDS:
        return Classifier.load(ref.spec, threads=threads, precision=precision)
    if ref.kind == "keras":
        opened = _keras(ref, None)
        return Classifier(KerasEngine(opened.model), opened.metadata, ref.spec)
    metadata = read_sidecar(ref.path)
    if metadata is None:
        raise ValueError(f"{ref.spec}: no {ref.path.name}.json beside the SavedModel, so its labels are unknown")
    return Classifier(SavedModelEngine(ref.path), metadata, ref.spec)


def _keras(ref: ModelRef, input_size: int | None) -> KerasModel:
    if ref.kind == "pretrained":
        import dataclasses

        from squeezekit.models.squeezenet import pretrained_model
        from squeezekit.registry import get_pretrained, get_preset

        entry = get_pretrained(ref.spec)
        preprocessing = entry.preprocessing
        if input_size is not None:
            preprocessing = dataclasses.replace(preprocessing, crop=input_size, resize=max(preprocessing.resize, input_size))
        model = pretrained_model(entry, input_shape=(preprocessing.crop, preprocessing.crop, 3))
        config = get_preset(entry.arch).replace(**entry.config_overrides)
        return KerasModel(model, imagenet_metadata(entry.name, preprocessing), config, ref)
    if ref.kind == "sqz":
        from squeezekit.models.squeezenet import SqueezeNet
        from squeezekit.weights.convert import assign_arrays

        weights = _weights(ref)
        crop = weights.input_size
        model = SqueezeNet(weights.config, classes=len(weights.metadata.labels), input_shape=(crop, crop, 3),
                           name=ref.path.stem.replace(".", "_"))
        assign_arrays(model, weights.arrays, source=ref.spec)
        return KerasModel(model, weights.metadata, weights.config, ref)
    return _keras_file(ref)


def _keras_file(ref: ModelRef) -> KerasModel:
    import keras

    import squeezekit.models.fire  # noqa: F401  (registers the custom layers for deserialisation)
    import squeezekit.models.pooling  # noqa: F401

    try:
        # Without the training state: predicting, exporting and compressing never use the saved optimizer,
        # and its learning-rate schedule (squeezekit.training.schedules) belongs to a higher layer.
        model = keras.models.load_model(ref.path, compile=False)
    except Exception as error:  # Keras raises many types for a foreign or damaged file
        raise ValueError(f"{ref.spec}: not a loadable Keras model ({type(error).__name__}: {error})") from None
    metadata = read_sidecar(ref.path)
    if metadata is None:
        classes = model.output_shape[-1]
        if classes != 1000:
            raise ValueError(f"{ref.spec}: no metadata file {ref.path.name}.json beside it, so its {classes} labels are unknown")
        warnings.warn(f"{ref.spec}: no {ref.path.name}.json beside it; assuming ImageNet labels and Caffe preprocessing")
        metadata = imagenet_metadata(ref.spec)
    stored = metadata.extra.get("config")
    if stored:
        from squeezekit._schema import parse_document
        from squeezekit.formats.metadata import sidecar_path

        config = parse_document(sidecar_path(ref.path), stored, SqueezeNetConfig.from_dict, "architecture config")
    return KerasModel(model, metadata, config if stored else None, ref)


def _weights(ref: ModelRef) -> ModelWeights:
    if ref.kind == "pretrained":
        from squeezekit.registry import get_pretrained, get_preset
        from squeezekit.weights.convert import pretrained_arrays

        entry = get_pretrained(ref.spec)
        config = get_preset(entry.arch).replace(**entry.config_overrides)
        metadata = imagenet_metadata(entry.name, entry.preprocessing)
        return ModelWeights(entry.name, config, pretrained_arrays(entry), metadata, ref, entry)
    if ref.kind == "sqz":
        from squeezekit.formats.sqz import read_sqz
        from squeezekit.runtime.compressed import sqz_metadata

        compressed = read_sqz(ref.path)
        return ModelWeights(ref.path.name, SqueezeNetConfig.from_dict(compressed.config), compressed.arrays(),
                            sqz_metadata(compressed.metadata, ref.path), ref)
    import keras

    from squeezekit.graph import fold_batch_norm

    opened = _keras_file(ref)
    if opened.config is None:
        raise ValueError(f"{ref.spec}: its metadata ({ref.path.name}.json) holds no architecture config")
    arrays = fold_batch_norm({w.path: keras.ops.convert_to_numpy(w) for w in opened.model.weights})
    return ModelWeights(ref.path.name, opened.config, arrays, opened.metadata, ref)


class KerasEngine:
    """A Keras model behind the runtime's engine call (numpy in, numpy out)."""

    kind = "keras"
    metadata = None

    def __init__(self, model):
        self.model = model
        self.input_shape = tuple(model.input_shape)
        self.output_shape = tuple(model.output_shape)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(batch))


class SavedModelEngine:
    """A TensorFlow SavedModel's ``serve`` signature behind the engine call."""

    kind = "saved_model"
    metadata = None

    def __init__(self, path: str | os.PathLike):
        import tensorflow as tf

        self._tf = tf
        try:
            self._serve = tf.saved_model.load(os.fspath(path)).signatures["serve"]
        except Exception as error:  # TensorFlow raises many types for a damaged folder
            raise ValueError(f"{path}: not a loadable SavedModel ({type(error).__name__}: {str(error)[:200]})") from None
        spec = next(iter(self._serve.structured_input_signature[1].values()))
        self.input_shape = tuple(spec.shape)
        self.output_shape = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return next(iter(self._serve(self._tf.constant(batch)).values())).numpy()
