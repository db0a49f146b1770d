"""The same model with the same weights gives the same outputs on TensorFlow, JAX and PyTorch.

Each backend runs in its own process (Keras picks its backend once per process, from KERAS_BACKEND).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

BACKENDS = ("tensorflow", "jax", "torch")

_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, keras
    from squeezekit import SqueezeNet, PRESETS
    config = PRESETS["squeezenet1_1"].replace(bypass="complex")
    model = SqueezeNet(config, input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    stored = np.load(sys.argv[1])
    for variable in model.weights:
        variable.assign(stored[variable.path])
    x = np.load(sys.argv[2])
    np.save(sys.argv[3], keras.ops.convert_to_numpy(model(x, training=False)))
    print(keras.backend.backend())
    """
)


def _backend_available(name: str) -> bool:
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[name]
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_backends_agree(tmp_path):
    pytest.importorskip("keras")
    from squeezekit import PRESETS, SqueezeNet

    missing = [b for b in BACKENDS if not _backend_available(b)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"backends not installed in CI: {missing}")
        pytest.skip(f"backends not installed: {missing}")
    rng = np.random.default_rng(0)
    model = SqueezeNet(PRESETS["squeezenet1_1"].replace(bypass="complex"), input_shape=(64, 64, 3), classes=10)
    weights = {}
    for variable in model.weights:
        shape = tuple(variable.shape)
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        weights[variable.path] = (rng.normal(0, np.sqrt(2 / fan_in), shape) if len(shape) > 1
                                  else rng.uniform(0, 0.1, shape)).astype("float32")
    np.savez(tmp_path / "weights.npz", **weights)
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32"))
    outputs = {}
    for backend in BACKENDS:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(
            [sys.executable, "-c", _SCRIPT, str(tmp_path / "weights.npz"), str(tmp_path / "x.npy"), str(tmp_path / f"{backend}.npy")],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().splitlines()[-1] == backend
        outputs[backend] = np.load(tmp_path / f"{backend}.npy")
    assert outputs["tensorflow"].std() > 0.1  # the comparison is not between constants
    for backend in ("jax", "torch"):
        difference = float(np.abs(outputs[backend] - outputs["tensorflow"]).max())
        assert difference <= 1e-4, json.dumps({"backend": backend, "max_abs_difference": difference})
