"""The runtime's ONNX models and preprocessing against the independent numpy reference (tests/numpy_reference.py).

The reference loads and preprocesses the photos itself (Caffe conventions) and runs the original Caffe
weights in float64, so agreement checks the graph builder, the weight conversion and the runtime's
numpy/Pillow preprocessing at once.
"""

from __future__ import annotations

import numpy as np
import pytest

import numpy_reference as ref

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from squeezekit.preprocessing import load_image, preprocess_input  # noqa: E402
from squeezekit.runtime import Classifier  # noqa: E402
from squeezekit.weights import get_weights_entry  # noqa: E402
from squeezekit.weights.convert import caffe_to_keras_arrays, read_source, squeezekit_layer_name  # noqa: E402

WNID = {"barn": "n02793495", "lifeboat": "n03662601", "strawberry": "n07745940", "black_swan": "n01860187"}


def _reference(arch: str, paths, **kwargs):
    source = read_source(get_weights_entry(arch))
    weights = {squeezekit_layer_name(name): value for name, value in source.items()}
    inputs = np.stack([ref.caffe_preprocess(p) for p in paths])
    return inputs, ref.forward(weights, inputs, conv1_stride=2, **kwargs), source


def test_float32_artefact_matches_the_numpy_reference(artefacts, photos):
    keys = ["barn", "lifeboat", "strawberry", "black_swan"]
    paths = [photos[k] for k in keys]
    reference_input, expected, _ = _reference("squeezenet1_1", paths, pool_after=("conv1", "fire3", "fire5"))

    classifier = Classifier.load(artefacts.float32)
    assert classifier.metadata.extra["precision"] == "float32"
    preprocessing = classifier.metadata.preprocessing
    ours = preprocess_input(np.stack([load_image(p, preprocessing) for p in paths]), preprocessing=preprocessing)
    np.testing.assert_allclose(ours, reference_input.transpose(0, 2, 3, 1), atol=1e-4)
    probabilities = classifier.predict(ours)
    assert probabilities.shape == (4, 1000)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)

    # classify() (file loading in threads, batching, top-k) gives the same numbers, whatever the batch size.
    for batch_size in (1, 3):
        results = list(classifier.classify(paths, top_k=5, batch_size=batch_size))
        assert [r.file for r in results] == [str(p) for p in paths]
        for key, result, row in zip(keys, results, expected):
            assert result.error is None
            assert result.top[0][0] == WNID[key]
            best = np.argsort(-row)[:5]
            assert [i for i, _, _ in result.top] == [classifier.metadata.labels[j][0] for j in best]
            np.testing.assert_allclose([p for _, _, p in result.top], row[best], atol=1e-4)
    # Several batches ran in the session whose threads sleep while decoders share the cores.
    sharing = classifier.engine.sharing_cores()
    assert sharing is classifier.engine.sharing_cores() and sharing is not classifier.engine
    spinning = "session.intra_op.allow_spinning"
    assert sharing.session.get_session_options().get_session_config_entry(spinning) == "0"


def test_v1_0_onnx_graph_matches_the_numpy_reference(photos, tmp_path):
    from squeezekit.registry import get_preset
    from squeezekit.formats.onnx import build_onnx_model
    from squeezekit.runtime.pretrained import runtime_metadata

    entry = get_weights_entry("squeezenet1_0")
    config = get_preset(entry.arch).replace(**entry.config_overrides)
    # The original v1.0 prototxt: pools after conv1, fire4 and fire8, and conv10 with a padding of 1.
    assert config.classifier_pad == 1 and tuple(config.pool_after) == ("conv1", "fire4", "fire8")
    paths = [photos["barn"], photos["black_swan"]]
    reference_input, expected, source = _reference("squeezenet1_0", paths, pool_after=("conv1", "fire4", "fire8"),
                                                   conv10_pad=1)

    model = build_onnx_model(config, caffe_to_keras_arrays(source), input_size=entry.input_shape[:2],
                             metadata=runtime_metadata(entry, "float32"))
    path = tmp_path / "squeezenet1_0.onnx"
    path.write_bytes(model.SerializeToString())
    classifier = Classifier.load(path)
    ours = preprocess_input(np.stack([load_image(p, entry.preprocessing) for p in paths]),
                            preprocessing=entry.preprocessing)
    np.testing.assert_allclose(ours, reference_input.transpose(0, 2, 3, 1), atol=1e-4)
    np.testing.assert_allclose(classifier.predict(ours), expected, atol=1e-4)
    for key, result in zip(["barn", "black_swan"], classifier.classify(paths, top_k=1)):
        assert result.top[0][0] == WNID[key]
