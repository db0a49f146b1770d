"""Fine-tuning under Deep Compression constraints, on whichever Keras backend is active (scripts/test
runs this file on TensorFlow, JAX and PyTorch): pruned weights stay exactly zero, shared weights stay
tied, and the centroid step follows the summed gradient, checked by finite differences."""

import numpy as np

from compression_helpers import SMALL, random_arrays
from squeezekit.compression.api import compress_arrays, prune_arrays
from squeezekit.compression.finetune import KeepPruned, TrainCentroids, TeacherData, keras_model, model_arrays
from squeezekit.formats.sqz import SqzModel

SIZE = 32


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 1, (n, SIZE, SIZE, 3)).astype(np.float32)
    targets = rng.dirichlet(np.ones(3), n).astype(np.float32)
    return images, targets


def _compile(model, optimizer):
    import keras

    model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(), jit_compile=False)


def test_pruned_weights_stay_zero():
    import keras

    arrays = random_arrays()
    masks = prune_arrays(SMALL, arrays, "*=0.4")
    model = keras_model(SMALL, arrays, SIZE)
    images, targets = _data()
    _compile(model, keras.optimizers.Adam(1e-2))
    model.fit(TeacherData(images, targets, targets, batch_size=8), epochs=2, verbose=0, callbacks=[KeepPruned(masks)])
    after = model_arrays(model)
    for key, mask in masks.items():
        assert np.all(after[key][~mask] == 0), key
        kept_moved = np.abs(after[key][mask] - arrays[key][mask]).max()
        assert kept_moved > 1e-4, f"{key}: kept weights did not train"


def test_centroid_steps_follow_the_summed_gradient():
    import keras

    arrays = random_arrays(seed=1)
    layers = compress_arrays(SMALL, arrays, bits=2, masks=prune_arrays(SMALL, arrays, "*=0.5"), init="linear")
    images, targets = _data(8)
    rate = 1e-3
    model = keras_model(SMALL, SqzModel({}, {}, layers).arrays(), SIZE)
    callback = TrainCentroids(layers, rate, total_steps=10 ** 6)  # cosine decay ~ constant for one step
    _compile(model, keras.optimizers.SGD(1.0))
    model.fit(images, targets, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    trained = callback.result()

    # The model's kernels are exactly the trained shared values: weights stay tied.
    weights = model_arrays(model)
    for layer in trained:
        np.testing.assert_array_equal(weights[f"{layer.name}/kernel"], SqzModel({}, {}, [layer]).arrays()[f"{layer.name}/kernel"])

    # Adam's first step moves each centroid by the rate against the sign of its gradient; the gradient
    # of a shared value is d loss / d centroid, measured here by central differences on the loss.
    probe = keras_model(SMALL, SqzModel({}, {}, layers).arrays(), SIZE)

    def loss_with(layer_index, centroid, delta):
        changed = [l for l in layers]
        layer = changed[layer_index]
        codebook = layer.codebook.astype(np.float64).copy()
        codebook[centroid] += delta
        changed[layer_index] = type(layer)(layer.name, layer.shape, codebook.astype(np.float32), layer.bias,
                                           layer.indices, layer.positions)
        for key, value in SqzModel({}, {}, [changed[layer_index]]).arrays().items():
            next(w for w in probe.weights if w.path == key).assign(value)
        predicted = np.asarray(probe.predict(images, verbose=0), dtype=np.float64)
        return float(np.mean(-np.sum(targets * np.log(np.clip(predicted, 1e-7, 1)), axis=1)))

    checked = 0
    for layer_index in (len(layers) - 1, 1):  # conv10 and fire2/squeeze1x1
        layer = layers[layer_index]
        for centroid in range(layer.codebook.size):
            eps = 2e-3
            gradient = (loss_with(layer_index, centroid, eps) - loss_with(layer_index, centroid, -eps)) / (2 * eps)
            loss_with(layer_index, centroid, 0.0)
            if abs(gradient) < 1e-3:
                continue  # too flat for the finite difference to give a reliable sign
            step = float(trained[layer_index].codebook[centroid]) - float(layer.codebook[centroid])
            assert abs(abs(step) - rate) < 1e-5, (layer.name, centroid, step)
            assert np.sign(step) == -np.sign(gradient), (layer.name, centroid, step, gradient)
            checked += 1
    assert checked >= 3
