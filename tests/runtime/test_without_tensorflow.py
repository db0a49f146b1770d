"""The runtime and `squeezekit predict` work where TensorFlow and Keras cannot be imported."""

from __future__ import annotations

import json
import os

import onnx

from squeezekit.runtime.quantize import int8_weight_bits

# Third-party packages `squeezekit predict` may load once the pretrained artefact is built: numpy,
# Pillow and ONNX Runtime (names starting with "_" are interpreter or setuptools hooks).
ALLOWED_AT_RUN_TIME = {"numpy", "PIL", "onnxruntime", "squeezekit", "coverage"}

LIST_THIRD_PARTY = """
import json
names = {n.partition(".")[0] for n in sys.modules} - set(sys.stdlib_module_names)
print(json.dumps(sorted(n for n in names if not n.startswith("_"))))
"""


def test_the_block_really_blocks(run_blocked_python):
    proc = run_blocked_python(
        "for name in ('tensorflow', 'keras', 'keras.layers', 'tensorflow.lite'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError as error:\n"
        "        assert 'blocked' in str(error), error\n"
        "    else:\n"
        "        raise SystemExit(f'{name} was imported')\n"
        "import numpy, PIL.Image, onnxruntime\n"
        "print('ok')\n"
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_importing_the_runtime_loads_no_engine_and_no_framework(run_blocked_python):
    proc = run_blocked_python("import squeezekit.runtime, squeezekit.cli.main, squeezekit.cli.predict\n" + LIST_THIRD_PARTY)
    assert proc.returncode == 0, proc.stderr
    # ONNX Runtime and LiteRT are imported lazily, when a model is opened.
    assert set(json.loads(proc.stdout)) <= {"numpy", "PIL", "squeezekit"}, proc.stdout


def test_pretrained_artefacts_were_built_without_tensorflow_and_are_reused(artefacts, run_blocked_python):
    # The session fixture built them in a subprocess where TensorFlow and Keras raise.
    folder = artefacts.home / "artefacts"
    assert artefacts.default.parent == folder and artefacts.float32.parent == folder
    assert artefacts.float32.name.endswith("-float32.onnx")
    check = json.loads(next(folder.glob("*-int8.onnx.record.json")).read_text())["report"]
    assert artefacts.default.name.endswith("-int8.onnx" if check["passed"] else "-float32.onnx")
    # On x86 without VNNI 8-bit weights saturate ONNX Runtime's kernels (76.5 % agreement): 7-bit ones pass.
    assert check["passed"], check
    int8_metadata = json.loads({p.key: p.value for p in onnx.load(artefacts.default).metadata_props}["squeezekit"])
    assert int8_metadata["extra"]["weight_bits"] == int8_weight_bits()
    stamps = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    # A second call finds them: no SQUEEZEKIT_DATA_DIR, no rebuild, no onnx (the builder) imported.
    env = {k: v for k, v in os.environ.items() if k != "SQUEEZEKIT_DATA_DIR"}
    env["SQUEEZEKIT_HOME"] = str(artefacts.home)
    proc = run_blocked_python(
        "from squeezekit.runtime import Classifier\n"
        "classifier = Classifier.load('squeezenet1_1')\n"
        "print(classifier.source)\n" + LIST_THIRD_PARTY,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    source, modules = proc.stdout.strip().splitlines()
    assert source == str(artefacts.default)
    assert set(json.loads(modules)) <= ALLOWED_AT_RUN_TIME, modules
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps


def test_predict_succeeds_where_tensorflow_and_keras_raise(squeezekit_cli, photos, tmp_path):
    modules = tmp_path / "modules.txt"
    keys = ["barn", "lifeboat", "strawberry"]
    proc = squeezekit_cli("predict", *(photos[k] for k in keys), "--top-k", "3", modules=modules)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    for key, line in zip(keys, lines):
        file, _, labels = line.partition(": ")
        assert file == str(photos[key])
        assert labels.split(" (")[0] == key, line
        assert labels.count(" (0.") + labels.count(" (1.") == 3, line
    loaded = {name for name in modules.read_text().split() if not name.startswith("_")}
    assert loaded <= ALLOWED_AT_RUN_TIME, f"unexpected imports at run time: {sorted(loaded)}"
