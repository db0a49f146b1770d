"""squeezekit's BatchNormalization: Keras' layer, with TensorFlow's fused kernel when training on the
TensorFlow backend. Same outputs, gradients and moving statistics as Keras' own layer (which the
other backends use unchanged), and it saves and loads as part of a model."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from squeezekit.models.normalization import BatchNormalization  # noqa: E402


def _pair(channels=8):
    ours, theirs = BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    rng = np.random.default_rng(0)
    for layer in (ours, theirs):
        layer.build((None, 6, 6, channels))
    values = [rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.2, channels), rng.normal(0, 0.3, channels),
              rng.uniform(0.5, 2.0, channels)]
    for layer in (ours, theirs):
        layer.set_weights([v.astype("float32") for v in values])
    return ours, theirs


def _gradients(layer, x, weights):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * weights)
        gx, gg, gb = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        return y.numpy(), gx.numpy(), gg.numpy(), gb.numpy()
    pytest.skip(f"gradient comparison written for TensorFlow (the only backend with a fused path); {backend} "
                "uses Keras' layer unchanged")


def test_training_matches_keras_layer():
    ours, theirs = _pair()
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 2.0, (16, 6, 6, 8)).astype("float32")
    weights = rng.normal(size=x.shape).astype("float32")
    got, want = _gradients(ours, x, weights), _gradients(theirs, x, weights)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours.moving_mean),
                               keras.ops.convert_to_numpy(theirs.moving_mean), rtol=1e-5, atol=1e-6)
    # The fused kernel's variance is Bessel-corrected: n / (n - 1) with n = 16 * 6 * 6.
    n = 16 * 6 * 6
    batch_variance = x.var(axis=(0, 1, 2))
    ours_var = keras.ops.convert_to_numpy(ours.moving_variance)
    theirs_var = keras.ops.convert_to_numpy(theirs.moving_variance)
    np.testing.assert_allclose(ours_var - theirs_var, 0.1 * batch_variance / (n - 1), rtol=1e-2, atol=1e-6)


def test_inference_is_keras_layer_and_model_round_trips(tmp_path):
    from squeezekit.models.squeezenet import SqueezeNet
    from squeezekit.registry import get_preset

    ours, theirs = _pair()
    x = np.random.default_rng(2).normal(size=(4, 6, 6, 8)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x, training=False)),
                               keras.ops.convert_to_numpy(theirs(x, training=False)), atol=1e-6)
    model = SqueezeNet(get_preset("squeezenet1_1").replace(batch_norm=True, conv1_stride=1, conv1_kernel=3),
                       input_shape=(32, 32, 3), classes=3)
    assert isinstance(model.get_layer("conv1_bn"), BatchNormalization)
    path = tmp_path / "bn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    images = np.random.default_rng(3).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images)), keras.ops.convert_to_numpy(model(images)),
                               atol=1e-6)
