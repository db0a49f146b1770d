"""Small compressed models built from random weights, for the compression tests."""

import numpy as np

from squeezekit.config import SqueezeNetConfig
from squeezekit.graph import build_plan

SMALL = SqueezeNetConfig(base_e=16, incr_e=16, conv1_filters=8, conv1_kernel=3, bypass="complex")
LABELS = [["c0", "zero"], ["c1", "one"], ["c2", "two"]]


def random_arrays(config=SMALL, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, (out, inp, kh, kw) in build_plan(config, classes).kernel_shapes().items():
        # He scaling and positive biases keep the ReLUs alive through all layers (else every output
        # is uniform and every gradient zero).
        arrays[f"{name}/kernel"] = rng.normal(0, np.sqrt(2 / (kh * kw * inp)), (kh, kw, inp, out)).astype(np.float32)
        arrays[f"{name}/bias"] = rng.uniform(0.0, 0.1, out).astype(np.float32)
    return arrays


def small_metadata():
    from squeezekit.config import Preprocessing

    return {"format": "squeezekit-model-metadata", "labels": LABELS,
            "preprocessing": Preprocessing(resize=40, crop=32).to_dict(), "source": "test", "label_set": "",
            "extra": {}}
