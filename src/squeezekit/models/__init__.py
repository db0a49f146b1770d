"""SqueezeNet as Keras models: the Fire layer, Caffe-rounding max-pooling and the builders that walk the
plan (``squeezekit.graph``). Keras is imported only when a builder or layer is first used."""

_LAZY = {
    "Fire": "squeezekit.models.fire",
    "RoundedMaxPooling2D": "squeezekit.models.pooling",
    "SqueezeNet": "squeezekit.models.squeezenet",
    "create_model": "squeezekit.models.squeezenet",
    "squeezenet1_0": "squeezekit.models.squeezenet",
    "squeezenet1_1": "squeezekit.models.squeezenet",
}

__all__ = [*_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
