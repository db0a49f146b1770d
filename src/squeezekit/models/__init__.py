"""SqueezeNet architectures.

Keras is imported only when a builder or layer is first used: ``layer_table`` and the config work
without it.
"""

from squeezekit.models.layer_table import ALEXNET_PARAMETERS, layer_table, minimum_input_size

_LAZY = {
    "Fire": "squeezekit.models.fire",
    "RoundedMaxPooling2D": "squeezekit.models.pooling",
    "SqueezeNet": "squeezekit.models.squeezenet",
    "squeezenet1_0": "squeezekit.models.squeezenet",
    "squeezenet1_1": "squeezekit.models.squeezenet",
}

__all__ = ["ALEXNET_PARAMETERS", "layer_table", "minimum_input_size", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
