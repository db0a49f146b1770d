"""Fixtures for the export tests: two small folders of real photos, sorted by how sure the Keras model is.

Post-training int8 agrees with float32 on 93-95 % of photos, nearly all of the misses being photos the
float model itself hesitates over (top-1 probability < 0.5). A 16-photo check at the 93 % default
threshold would therefore pass or fail by one photo. The passing cases calibrate and check on the
photos the pretrained model is surest of ("easy"). The failing cases calibrate on the photos it
hesitates over most ("hard") and check on the easy ones: their class scores lie beyond the calibrated
range and saturate, and top-1 agreement drops to about 75 %, far from any threshold.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

CANDIDATES = 48  # photos of the shared ImageNet sample, every 20th of the sorted list
PHOTOS = 16


@dataclass(frozen=True)
class Photos:
    easy: Path  # folder of the PHOTOS photos with the highest Keras top-1 probability
    hard: Path  # folder of the PHOTOS photos with the lowest Keras top-1 probability
    easy_top1: dict[str, str]  # file name -> class id the Keras model predicts


@pytest.fixture(scope="session")
def photos(data_dir, tmp_path_factory) -> Photos:
    """Real photos from $SQUEEZEKIT_DATA_DIR/imagenet/sample-1000, split by Keras confidence."""
    from squeezekit.opener import open_model
    from squeezekit.preprocessing import load_image, preprocess_input

    sample = sorted((data_dir / "imagenet" / "sample-1000").glob("*.JPEG"))
    assert len(sample) >= 20 * CANDIDATES, "the shared ImageNet sample should hold 1000 photos"
    candidates = sample[::20][:CANDIDATES]
    opened = open_model("squeezenet1_1", "keras")
    model, metadata = opened.model, opened.metadata
    batch = preprocess_input(np.stack([load_image(p, metadata.preprocessing) for p in candidates]),
                             preprocessing=metadata.preprocessing)
    probabilities = np.asarray(model.predict_on_batch(batch))
    order = np.argsort(-probabilities.max(axis=1), kind="stable")

    root = tmp_path_factory.mktemp("photos")
    folders = {"easy": order[:PHOTOS], "hard": order[-PHOTOS:]}
    for name, indices in folders.items():
        (root / name).mkdir()
        for i in indices:
            shutil.copy(candidates[i], root / name / candidates[i].name)
    easy_top1 = {candidates[i].name: metadata.labels[int(probabilities[i].argmax())][0] for i in folders["easy"]}
    return Photos(root / "easy", root / "hard", easy_top1)
