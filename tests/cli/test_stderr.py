"""TensorFlow's start-up chatter stays off stderr unless --verbose; everything else passes, in order."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from squeezekit.cli._stderr import NOISE, _pump

NOTICES = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796172674.806245    6116 port.cc:153] oneDNN custom operations are on. You may see slightly "
    b"different numerical results due to floating-point round-off errors.\n",
    b"W0000 00:00:1796172882.828539    7009 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.\n",
    b"fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, output_inference_type: FLOAT32\n",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
]
KEPT = [
    b"squeezekit export: error: model.keras: not a loadable Keras model\n",
    b"squeezekit: /cache/a.onnx: it is truncated; rebuilding this float32 ONNX model\n",
    b"decoding training images:  50%|#####     | 5/10\r",
    b"Warning: your data has only one class\n",
    b"Traceback (most recent call last):\n",
    b"I0000 is how my file is called.jpg: not a readable image\n",
]


def _filtered(chunks: list[bytes]) -> bytes:
    read_in, write_in = os.pipe()
    read_out, write_out = os.pipe()
    thread = threading.Thread(target=_pump, args=(read_in, write_out))
    thread.start()
    for chunk in chunks:
        os.write(write_in, chunk)
    os.close(write_in)
    thread.join(5)
    os.close(write_out)
    with os.fdopen(read_out, "rb") as handle:
        return handle.read()


def test_notices_are_dropped_and_everything_else_passes_in_order():
    interleaved = [line for pair in zip(NOTICES, KEPT) for line in pair] + KEPT[len(NOTICES):]
    assert _filtered(interleaved) == b"".join(KEPT)
    for line in NOTICES:
        assert NOISE.match(line.rstrip(b"\n"))
    for line in KEPT:
        assert not NOISE.match(line.rstrip(b"\n\r"))


def test_lines_split_across_writes_and_a_last_line_without_newline():
    data = b"".join(NOTICES + KEPT) + b"the end, no newline"
    chunks = [data[i: i + 7] for i in range(0, len(data), 7)]
    assert _filtered(chunks) == b"".join(KEPT) + b"the end, no newline"


@pytest.fixture(scope="module")
def small_keras(tmp_path_factory):
    from small_model import write_small_keras

    return write_small_keras(tmp_path_factory.mktemp("model") / "small.keras")


def _export(small_keras, out, *extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    return subprocess.run([sys.executable, "-m", "squeezekit", "export", str(small_keras), "--format", "onnx",
                           "-o", str(out), "--calibration-count", "20", *extra],
                          env=env, capture_output=True, text=True, timeout=600)


def test_a_tensorflow_command_prints_no_start_up_noise(small_keras, tmp_path):
    proc = _export(small_keras, tmp_path / "a.onnx")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert "wrote" in proc.stdout and "check passed" in proc.stdout
    verbose = _export(small_keras, tmp_path / "b.onnx", "--verbose")
    assert verbose.returncode == 0 and "wrote" in verbose.stdout
