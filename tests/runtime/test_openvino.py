"""OpenVINO as an engine: the ONNX float32 model converted to an IR gives ONNX Runtime's outputs, NNCF's
int8 IR agrees with it on real photos, and `squeezekit predict --model MODEL.xml` reads the metadata
the IR carries, without TensorFlow."""

import json

import numpy as np
import pytest

pytest.importorskip("nncf")

from squeezekit.preprocessing import load_image, preprocess_input  # noqa: E402
from squeezekit.runtime import Classifier  # noqa: E402
from squeezekit.runtime.engines import OnnxEngine, OpenVinoEngine  # noqa: E402
from squeezekit.runtime.quantize import openvino_model  # noqa: E402


@pytest.fixture(scope="module")
def images(data_dir, artefacts):
    preprocessing = Classifier.load(artefacts.float32).metadata.preprocessing
    paths = sorted((data_dir / "imagenet" / "sample-1000").iterdir())[::20]  # 50 photos of 50 classes
    return preprocess_input(np.stack([load_image(p, preprocessing) for p in paths]), preprocessing=preprocessing)


def test_the_float32_ir_gives_onnx_runtimes_outputs(artefacts, images, tmp_path):
    xml = openvino_model(artefacts.float32, tmp_path / "v1_1.xml")
    assert xml.with_suffix(".bin").stat().st_size > 4 * 1_200_000  # float32 weights, not halved to float16
    expected = OnnxEngine(artefacts.float32)(images)
    engine = OpenVinoEngine(xml, threads=2)
    np.testing.assert_allclose(engine(images[:1]), expected[:1], atol=1e-5)  # batch 1 and batch 50:
    np.testing.assert_allclose(engine(images), expected, atol=1e-5)  # one compiled model per batch size
    assert engine.metadata == OnnxEngine(artefacts.float32).metadata


def test_nncf_int8_agrees_with_float32_and_predict_reads_the_ir(artefacts, images, tmp_path, squeezekit_cli, photos):
    xml = openvino_model(artefacts.float32, tmp_path / "v1_1.int8.xml", calibration=images)
    float32 = OnnxEngine(artefacts.float32)(images)
    int8 = OpenVinoEngine(xml)(images)
    assert np.mean(int8.argmax(1) == float32.argmax(1)) >= 0.9
    assert xml.with_suffix(".bin").stat().st_size < 0.4 * 4 * 1_235_496  # int8 weights

    result = squeezekit_cli("predict", photos["barn"], "--model", xml, "--json")
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout.strip().splitlines()[-1])["predictions"][0]
    assert top["label"] == "barn" and top["probability"] > 0.9, top


def test_a_file_that_is_not_an_ir_is_a_one_line_error(tmp_path, squeezekit_cli, photos):
    fake = tmp_path / "model.xml"
    fake.write_text("<html>not a network</html>")
    result = squeezekit_cli("predict", photos["barn"], "--model", fake)
    assert result.returncode == 2 and "model.xml" in result.stderr and "Traceback" not in result.stderr, result.stderr
