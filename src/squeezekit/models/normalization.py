"""Batch normalisation with TensorFlow's fused kernel when training on the TensorFlow backend.

Keras 3's ``BatchNormalization`` computes batch moments and the normalisation from separate ops on
every backend. On a CPU with TensorFlow that costs almost half the training step of the CIFAR
recipe's model (374 against 708 images/s without batch norm, ``benchmarks/train_throughput.py``),
where PyTorch's fused kernel costs 28 %. This subclass swaps in ``tf.compat.v1.nn.fused_batch_norm``
for exactly the case it covers (TensorFlow backend, training, 4-D channels-last float32 input, no
mask, no renorm, no cross-replica synchronisation) and is Keras' layer everywhere else: same
variables, same inference, same saved weights. The fused kernel's batch variance is Bessel-corrected
(n/(n-1), 1.00003 for a CIFAR batch of 128 at 16x16) where Keras' is not; only the moving variance
sees the difference.
"""

from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="squeezekit")
class BatchNormalization(layers.BatchNormalization):
    def _fusable(self, inputs, training, mask) -> bool:
        return (
            bool(training) and self.trainable and mask is None and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4 and self.axis in (-1, 3) and not self.renorm and not self.synchronized
            and self.center and self.scale and inputs.dtype == "float32"
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
        )
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs
