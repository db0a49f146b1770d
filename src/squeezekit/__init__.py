"""squeezekit: SqueezeNet for Keras 3.

Importing this package is cheap: it never imports TensorFlow or Keras. The model builders and the
other Keras-backed names are loaded on first access.

    squeezekit.list_models()                      # architectures; pretrained=True: every arch.tag
    squeezekit.create_model("squeezenet1_1.imagenet_caffe_fp16")
    squeezekit.open_model("model.tflite")         # any name or file -> a classifier (or a Keras model)
    squeezekit.build_plan(config, classes=10)     # the network as data: named ops, shapes, MACs
"""

__version__ = "0.1.0"

from squeezekit.config import SqueezeNetConfig

_LAZY = {
    "PRESETS": "squeezekit.registry",
    "list_models": "squeezekit.registry",
    "SqueezeNet": "squeezekit.models.squeezenet",
    "squeezenet1_0": "squeezekit.models.squeezenet",
    "squeezenet1_1": "squeezekit.models.squeezenet",
    "create_model": "squeezekit.models.squeezenet",
    "Fire": "squeezekit.models.fire",
    "open_model": "squeezekit.opener",
    "build_plan": "squeezekit.graph",
    "layer_table": "squeezekit.graph",
}

__all__ = ["__version__", "SqueezeNetConfig", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
