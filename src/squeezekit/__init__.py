"""squeezekit: SqueezeNet for Keras 3.

Importing this package is cheap: it never imports TensorFlow or Keras. The model builders and the
other Keras-backed names are loaded on first access.
"""

__version__ = "0.1.0"

from squeezekit.config import PRESETS, SqueezeNetConfig

_LAZY = {
    "SqueezeNet": "squeezekit.models.squeezenet",
    "squeezenet1_0": "squeezekit.models.squeezenet",
    "squeezenet1_1": "squeezekit.models.squeezenet",
    "Fire": "squeezekit.models.fire",
    "layer_table": "squeezekit.models.layer_table",
}

__all__ = ["__version__", "PRESETS", "SqueezeNetConfig", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
