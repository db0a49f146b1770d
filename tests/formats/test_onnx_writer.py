"""The hand-written ONNX graph equals the Keras model for every architecture option."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("onnxruntime")

from squeezekit import PRESETS, SqueezeNet  # noqa: E402
from squeezekit.formats.onnx import build_onnx_model  # noqa: E402

CONFIGS = {
    "cifar-stem-bn-complex": PRESETS["squeezenet1_1"].replace(
        conv1_stride=1, conv1_padding="same", batch_norm=True, bypass="complex"),
    "v1.0-floor-simple-pad": PRESETS["squeezenet1_0"].replace(pool_rounding="floor", bypass="simple", classifier_pad=1),
    "one-branch-sr0.5": PRESETS["squeezenet1_1"].replace(pct_3x3=1.0, squeeze_ratio=0.5),
    "stride2-same-stem": PRESETS["squeezenet1_1"].replace(conv1_padding="same", conv1_kernel=4),
}


@pytest.mark.parametrize("key", list(CONFIGS))
def test_onnx_graph_matches_keras(key, tmp_path):
    import onnxruntime

    config = CONFIGS[key]
    size = 40 if config.conv1_stride == 1 else 69
    model = SqueezeNet(config, input_shape=(size, size, 3), classes=7)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "moving_variance" in variable.path or "gamma" in variable.path:
            value = rng.uniform(0.5, 2.0, shape)
        elif len(shape) == 4:
            value = rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape)
        else:
            value = rng.uniform(-0.1, 0.2, shape)
        variable.assign(value.astype("float32"))
    arrays = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    graph = build_onnx_model(config, arrays, input_size=(size, size))
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    x = rng.uniform(-2, 2, (3, size, size, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(session.run(None, {"image": x})[0], expected, atol=1e-4)
    assert np.ptp(expected) > 0.1  # not a uniform softmax
