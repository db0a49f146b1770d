"""Fine-tuning during Deep Compression (Keras 3, any backend): pruned weights held at zero, shared
weights trained through their centroids, and labels-free targets from the uncompressed model.

Both constraints are enforced by callbacks around an ordinary ``model.fit``, so they work the same on
TensorFlow, JAX and PyTorch and leave a plain Keras model behind (nothing to strip before export):

- :class:`KeepPruned` multiplies every pruned kernel by its mask after each step (masked weights
  would otherwise drift back through momentum and weight decay).
- :class:`TrainCentroids` implements Deep Compression's centroid update: the gradient of a shared
  value is the sum of the gradients of the weights that share it. The model is compiled with plain
  SGD at learning rate 1, so after a step ``w_before - w_after`` is exactly each weight's gradient;
  the callback sums it per cluster (``np.bincount``), takes an Adam step on the centroids (and the
  biases, which stay unshared), and writes the shared weights back.

Targets come from a teacher (the uncompressed model, run by ONNX Runtime) on unlabeled images:
distillation needs no labels, so ImageNet models can be fine-tuned on a few thousand photos that are
not the evaluation images.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from squeezekit.formats.sqz import CompressedLayer, SqzModel


def keras_model(config, arrays: dict[str, np.ndarray], input_size: int, *, dropout: float | None = 0.0):
    """A SqueezeNet Keras model of ``config`` (batch norm folded away) holding ``arrays``.

    Dropout is off by default: fine-tuning towards a teacher's soft targets needs no regulariser
    and converges faster without the noise.
    """
    from squeezekit.models.squeezenet import SqueezeNet
    from squeezekit.weights.convert import assign_arrays

    changes = {"batch_norm": False}
    if dropout is not None:
        changes["dropout"] = dropout
    classes = int(arrays["conv10/kernel"].shape[-1])
    model = SqueezeNet(config.replace(**changes), weights=None, classes=classes,
                       input_shape=(input_size, input_size, 3))
    assign_arrays(model, arrays, source="compressed weights")
    return model


def model_arrays(model) -> dict[str, np.ndarray]:
    return {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}


class TeacherData(keras.utils.PyDataset):
    """Batches ``(images, teacher probabilities)`` with random horizontal flips."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, flipped_targets: np.ndarray, batch_size: int,
                 seed: int = 0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.images, self.targets, self.flipped_targets = images, targets, flipped_targets
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        chosen = np.sort(self.order[index * self.batch_size: (index + 1) * self.batch_size])
        flip = self.rng.random(chosen.size) < 0.5
        batch = self.images[chosen].copy()
        batch[flip] = batch[flip, :, ::-1]
        return batch, np.where(flip[:, None], self.flipped_targets[chosen], self.targets[chosen])

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))


def teacher_targets(teacher, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's probabilities for ``images`` and for their mirror images."""
    from squeezekit._progress import progress_bar

    plain, flipped = [], []
    with progress_bar(total=len(images), desc="teacher outputs", unit="img") as bar:
        for offset in range(0, len(images), batch_size):
            batch = images[offset: offset + batch_size]
            plain.append(teacher(batch))
            flipped.append(teacher(np.ascontiguousarray(batch[:, :, ::-1])))
            bar.update(len(batch))
    return np.concatenate(plain), np.concatenate(flipped)


def _hwio_offsets(layer: CompressedLayer) -> np.ndarray:
    """Flat offsets in the Keras ``(kh, kw, in, out)`` kernel of ``layer``'s kept weights."""
    out, inp, kh, kw = layer.shape
    o, i, h, w = np.unravel_index(layer.positions, layer.shape)
    return np.ravel_multi_index((h, w, i, o), (kh, kw, inp, out))


class _Adam:
    def __init__(self, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8):
        self.learning_rate, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.moments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.step = 0

    def update(self, key: str, value: np.ndarray, gradient: np.ndarray, learning_rate: float) -> np.ndarray:
        m, v = self.moments.get(key, (np.zeros_like(value), np.zeros_like(value)))
        m = self.beta1 * m + (1 - self.beta1) * gradient
        v = self.beta2 * v + (1 - self.beta2) * gradient ** 2
        self.moments[key] = (m, v)
        m_hat = m / (1 - self.beta1 ** self.step)
        v_hat = v / (1 - self.beta2 ** self.step)
        return value - learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)


def _sync_variables(model) -> None:
    """On JAX, ``fit`` keeps the training state outside the model's variables between steps; syncing
    writes it back, and makes the next step read the variables again (with our changes)."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


class KeepPruned(keras.callbacks.Callback):
    """Pruned weights stay exactly zero through fine-tuning (masks keyed by weight path)."""

    def __init__(self, masks: dict[str, np.ndarray]):
        super().__init__()
        self.masks = masks

    def on_train_begin(self, logs=None):
        self.variables = {w.path: w for w in self.model.weights if w.path in self.masks}
        missing = set(self.masks) - set(self.variables)
        if missing:
            raise ValueError(f"the model has no weights {sorted(missing)}")
        self._apply()

    def _apply(self):
        for path, variable in self.variables.items():
            variable.assign(keras.ops.convert_to_numpy(variable) * self.masks[path])

    def on_train_batch_end(self, batch, logs=None):
        _sync_variables(self.model)
        self._apply()


class TrainCentroids(keras.callbacks.Callback):
    """Trains the shared values (and biases) of ``layers`` with summed per-cluster gradients.

    Compile the model with ``keras.optimizers.SGD(1.0)``: the callback reads each step's gradient
    from the weight change and undoes the step. :meth:`result` returns the trained layers.
    """

    def __init__(self, layers: list[CompressedLayer], learning_rate: float, total_steps: int):
        super().__init__()
        self.layers, self.learning_rate, self.total_steps = layers, learning_rate, total_steps

    def on_train_begin(self, logs=None):
        weights = {w.path: w for w in self.model.weights}
        self.entries = []
        for layer in self.layers:
            self.entries.append({
                "layer": layer, "kernel": weights[f"{layer.name}/kernel"], "bias": weights[f"{layer.name}/bias"],
                "offsets": _hwio_offsets(layer), "codebook": layer.codebook.astype(np.float64),
                "bias_value": layer.bias.astype(np.float64),
            })
        self.adam = _Adam(self.learning_rate)
        for entry in self.entries:
            self._write(entry)

    def _write(self, entry):
        layer = entry["layer"]
        kernel = np.zeros(layer.size, dtype=np.float32)
        kernel[entry["offsets"]] = entry["codebook"][layer.indices]
        entry["kernel"].assign(kernel.reshape(entry["kernel"].shape))
        entry["bias"].assign(entry["bias_value"].astype(np.float32))
        entry["written"] = kernel

    def on_train_batch_end(self, batch, logs=None):
        _sync_variables(self.model)
        self.adam.step += 1
        progress = min(1.0, self.adam.step / max(1, self.total_steps))
        rate = self.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))  # cosine decay
        for entry in self.entries:
            layer = entry["layer"]
            after = keras.ops.convert_to_numpy(entry["kernel"]).ravel()
            gradient = (entry["written"] - after)[entry["offsets"]]  # SGD(1.0): w_after = w - g
            summed = np.bincount(layer.indices, weights=gradient, minlength=layer.codebook.size)
            entry["codebook"] = self.adam.update(layer.name, entry["codebook"], summed, rate)
            bias_gradient = entry["bias_value"] - keras.ops.convert_to_numpy(entry["bias"])
            entry["bias_value"] = self.adam.update(layer.name + "/bias", entry["bias_value"], bias_gradient, rate)
            self._write(entry)

    def result(self) -> list[CompressedLayer]:
        return [CompressedLayer(e["layer"].name, e["layer"].shape, e["codebook"].astype(np.float32),
                                e["bias_value"].astype(np.float32), e["layer"].indices, e["layer"].positions)
                for e in self.entries]


def distill(model, data, *, epochs: int, optimizer, callbacks=(), verbose="auto"):
    """``model.fit`` towards the teacher's probabilities (cross-entropy with soft targets)."""
    import sys

    if verbose == "auto":  # a bar per epoch on a terminal, one line per epoch in a log file
        verbose = 1 if sys.stdout.isatty() else 2
    from squeezekit.training.trainer import _jit_compile  # the measured per-backend choice

    model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(), jit_compile=_jit_compile("auto"))
    return model.fit(data, epochs=epochs, callbacks=list(callbacks), verbose=verbose)


def finetune_centroids(config, layers: list[CompressedLayer], data, *, input_size: int, epochs: int,
                       learning_rate: float = 1e-4, verbose="auto") -> list[CompressedLayer]:
    """Centroid (and bias) fine-tuning of shared ``layers`` against the teacher targets in ``data``."""
    arrays = SqzModel({}, {}, layers).arrays()
    model = keras_model(config, arrays, input_size)
    callback = TrainCentroids(layers, learning_rate, total_steps=epochs * len(data))
    distill(model, data, epochs=epochs, optimizer=keras.optimizers.SGD(1.0), callbacks=[callback], verbose=verbose)
    return callback.result()


def finetune_pruned(config, arrays: dict[str, np.ndarray], data, *, input_size: int, epochs: int,
                    masks: dict[str, np.ndarray] | None = None, learning_rate: float = 1e-4,
                    verbose="auto") -> dict[str, np.ndarray]:
    """Fine-tune (Adam, cosine decay) against the teacher targets; with ``masks``, only the weights they
    keep: the pruned ones stay zero. Without, every weight trains (a slimmed model is dense)."""
    model = keras_model(config, arrays, input_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, epochs * len(data)))
    callbacks = [KeepPruned(masks)] if masks else []
    distill(model, data, epochs=epochs, optimizer=keras.optimizers.Adam(schedule), callbacks=callbacks,
            verbose=verbose)
    return model_arrays(model)
