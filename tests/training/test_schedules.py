"""The recipes' warm-up cosine schedule: Keras' CosineDecay's rates, without its per-evaluation conditional."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from squeezekit.training.schedules import WarmupCosineDecay  # noqa: E402


@pytest.mark.parametrize("initial, decay_steps, warmup_steps, target, alpha",
                         [(0.0, 90, 10, 0.1, 0.0), (0.01, 7, 3, 0.4, 0.2), (0.0, 1, 1, 0.05, 0.0)])
def test_rates_equal_keras_cosine_decay_at_every_step(initial, decay_steps, warmup_steps, target, alpha):
    arguments = dict(initial_learning_rate=initial, decay_steps=decay_steps, alpha=alpha, warmup_target=target,
                     warmup_steps=warmup_steps)
    ours, reference = WarmupCosineDecay(**arguments), keras.optimizers.schedules.CosineDecay(**arguments)
    steps = range(0, decay_steps + warmup_steps + 5)  # past the end the rate stays at the final value
    got = [float(keras.ops.convert_to_numpy(ours(step))) for step in steps]
    expected = [float(keras.ops.convert_to_numpy(reference(step))) for step in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-8)


def test_a_saved_optimizer_with_the_schedule_loads_back(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    schedule = WarmupCosineDecay(0.0, 20, warmup_target=0.1, warmup_steps=5)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=1e-4), loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    restored = loaded.optimizer._learning_rate  # Keras has no public accessor for the schedule object
    assert isinstance(restored, WarmupCosineDecay) and restored.get_config() == schedule.get_config()
