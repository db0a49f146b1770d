"""Test helpers that move weights between Keras models and Caffe-style numpy dicts.

Written independently of squeezekit's converters: the tests use them to feed the same random weights
to the Keras model and to the numpy reference in ``numpy_reference.py``.
"""

from __future__ import annotations

import numpy as np


def caffe_name(variable_path: str) -> tuple[str, str]:
    """'fire2/squeeze1x1/kernel' -> ('fire2/squeeze1x1', 'kernel'); 'fire2_bypass/bias' -> ('fire2/bypass', 'bias')."""
    *layer, kind = variable_path.split("/")
    name = "/".join(layer).replace("_bypass", "/bypass")
    return name, kind


def random_caffe_weights(model, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """He-scaled random weights in Caffe layout (O, I, kh, kw) for every conv of a Keras model.

    He scaling and positive biases keep ReLU activations alive through 10 layers, so that the
    comparison is not between two vectors of zeros.
    """
    rng = np.random.default_rng(seed)
    kernels = {}
    for variable in model.weights:
        name, kind = caffe_name(variable.path)
        if kind == "kernel":
            kh, kw, c_in, c_out = variable.shape
            kernels[name] = (
                rng.normal(0, np.sqrt(2.0 / (kh * kw * c_in)), size=(c_out, c_in, kh, kw)).astype(np.float32),
                rng.uniform(0.0, 0.1, size=c_out).astype(np.float32),
            )
    return kernels


def set_caffe_weights(model, weights: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    for variable in model.weights:
        name, kind = caffe_name(variable.path)
        w, b = weights[name]
        # Caffe (O, I, kh, kw) -> Keras (kh, kw, I, O).
        variable.assign(np.transpose(w, (2, 3, 1, 0)) if kind == "kernel" else b)
