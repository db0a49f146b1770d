"""The TensorFlow-free input pipeline: a ``keras.utils.PyDataset`` of augmented, preprocessed batches.

Keras' ``fit`` reads it on every backend; on JAX and PyTorch it needs nothing but NumPy and Pillow,
so ``squeezekit train`` runs where TensorFlow is not installed. Batch ``i`` of epoch ``e`` is drawn
from its own generator seeded by (seed, e, i): the same seed gives the same batches whatever the
number of worker threads or the order they finish in.
"""

from __future__ import annotations

import keras
import numpy as np

from squeezekit.config import Preprocessing
from squeezekit.data.augment import AUGMENT, preprocess


class ImageBatches(keras.utils.PyDataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, *, batch_size: int, preprocessing: Preprocessing,
                 training: bool, augmentation: str = "none", num_classes: int | None = None, seed: int = 0,
                 first_epoch: int = 0, workers: int = 2):
        # Threads, not processes: the work is NumPy copies and Pillow resizes, which release the GIL,
        # and the images stay shared instead of being pickled to every worker.
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
        self.images = images
        self.labels = labels.astype(np.int32)
        self.batch_size = batch_size
        self.preprocessing = preprocessing
        self.training = training
        self.augment = AUGMENT[augmentation if training else "none"]
        self.num_classes = num_classes
        self.seed = seed
        self.epoch = first_epoch  # a resumed run goes on with the draws of its next epoch
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.training:
            return np.arange(len(self.labels))
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.labels))

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng((self.seed, self.epoch, index, 1))
        batch = preprocess(self.augment(self.images[chosen], self.preprocessing.crop, rng), self.preprocessing)
        labels = self.labels[chosen]
        if self.num_classes is not None:
            labels = np.eye(self.num_classes, dtype=np.float32)[labels]
        return batch, labels

    def on_epoch_end(self) -> None:
        if self.training:
            self.epoch += 1
            self.order = self._order()
