"""Learning-rate schedules of the recipes that trace cheaply.

Keras' SGD and AdamW evaluate the schedule once per variable when they apply weight decay (154 times per
step for the cifar recipe's network), and Keras' ``CosineDecay`` with warm-up switches between warm-up and
decay with ``ops.cond``, which on TensorFlow builds two branch graphs per evaluation: tracing the train
step took 11 of the 19 seconds of a tiny run's first epoch. ``WarmupCosineDecay`` computes the same rates
with ``ops.where``. Registered for deserialisation: a ``.keras`` file saved with it loads once this
module is imported (the trainer imports it; ``squeezekit.opener`` loads models without their optimizer).
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="squeezekit")
class WarmupCosineDecay(keras.optimizers.schedules.CosineDecay):
    """``keras.optimizers.schedules.CosineDecay`` (same arguments, same rates) without a conditional."""

    def __call__(self, step):
        if self.warmup_target is None:
            return super().__call__(step)
        # The constants are folded in Python: ten graph ops per evaluation.
        initial, target = float(self.initial_learning_rate), float(self.warmup_target)
        warmup, decay = float(self.warmup_steps), float(self.decay_steps)
        step = ops.minimum(ops.cast(step, "float32"), warmup + decay)
        warming = step * ((target - initial) / warmup) + initial  # warmup > 0 whenever warmup_target is set
        cosine = ops.cos(step * (math.pi / decay) - math.pi * warmup / decay)  # cos(pi * (step - warmup) / decay)
        decaying = cosine * (0.5 * target * (1 - self.alpha)) + target * (0.5 * (1 - self.alpha) + self.alpha)
        return ops.where(step < warmup, warming, decaying)
