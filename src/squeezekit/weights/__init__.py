"""Pretrained weights: registry, readers of the original release formats, conversion and cache.

Importing this package loads no framework: the readers are numpy only, and the Keras-facing
functions touch Keras only through the model they are given.
"""

from squeezekit.errors import WeightFileError
from squeezekit.weights.registry import (
    PretrainedWeights,
    default_pretrained_names,
    get_weights_entry,
    list_pretrained,
)


def load_pretrained_weights(model, entry, *, include_top=True):
    from squeezekit.weights.convert import load_pretrained_weights as load

    return load(model, entry, include_top=include_top)


__all__ = [
    "PretrainedWeights",
    "WeightFileError",
    "default_pretrained_names",
    "get_weights_entry",
    "list_pretrained",
    "load_pretrained_weights",
]
