"""Open a model by pretrained name or file, with the metadata (labels, preprocessing) that goes with it."""

from __future__ import annotations

import warnings
from pathlib import Path

from squeezekit.metadata import ModelMetadata, imagenet_metadata, read_sidecar


def load_model(spec: str, input_size: int | None = None):
    """``(keras model, ModelMetadata)`` for a pretrained name (``squeezenet1_1``, ``squeezenet1_0.imagenet_caffe``)
    or a saved ``.keras`` file (metadata from the JSON file beside it).

    ``input_size`` builds a pretrained model for square inputs of that size (default: the size the
    weights were trained at, 227) and makes the preprocessing crop that size.
    """
    from squeezekit.weights import default_pretrained_names, get_weights_entry, list_pretrained

    if spec in default_pretrained_names() or spec in list_pretrained():
        entry = get_weights_entry(spec)
        from squeezekit.models import squeezenet

        import dataclasses

        builder = getattr(squeezenet, entry.arch)
        preprocessing = entry.preprocessing
        if input_size is not None:
            preprocessing = dataclasses.replace(preprocessing, crop=input_size, resize=max(preprocessing.resize, input_size))
        model = builder(weights=None, **entry.config_overrides, input_shape=(preprocessing.crop, preprocessing.crop, 3))
        from squeezekit.weights import load_pretrained_weights

        load_pretrained_weights(model, entry)
        return model, imagenet_metadata(entry.name, preprocessing)

    path = Path(spec)
    if not path.exists():
        raise ValueError(
            f"Unknown model {spec!r}: neither a pretrained name ({', '.join(default_pretrained_names() + list_pretrained())}) "
            "nor an existing model file"
        )
    if path.suffix != ".keras":
        raise ValueError(f"{spec}: expected a .keras model file (other formats run through 'squeezekit predict')")
    import keras

    import squeezekit.models.fire  # noqa: F401  (registers the custom layers for deserialisation)
    import squeezekit.models.pooling  # noqa: F401

    try:
        model = keras.models.load_model(path)
    except Exception as error:  # Keras raises many types for a foreign or damaged file
        raise ValueError(f"{spec}: not a loadable Keras model ({type(error).__name__}: {error})") from None
    if input_size is not None:
        raise ValueError(f"{spec}: --input-size applies to pretrained names; a saved model keeps its own input size")
    metadata = read_sidecar(path)
    if metadata is None:
        classes = model.output_shape[-1]
        if classes != 1000:
            raise ValueError(f"{spec}: no metadata file {path.name}.json beside it, so its {classes} labels are unknown")
        warnings.warn(f"{spec}: no {path.name}.json beside it; assuming ImageNet labels and Caffe preprocessing")
        metadata = imagenet_metadata(str(path))
    return model, metadata


__all__ = ["ModelMetadata", "load_model"]
