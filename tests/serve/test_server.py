"""A real server on 127.0.0.1: every route, every limit and error, the token, batching."""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")

from compression_helpers import SMALL, random_arrays, small_metadata  # noqa: E402
from live_server import Server  # noqa: E402
from squeezekit.preprocessing import load_image, preprocess_input  # noqa: E402
from squeezekit.runtime import Classifier  # noqa: E402
from squeezekit.serve import ServeSettings, create_app  # noqa: E402


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    from squeezekit.formats.onnx import build_onnx_model

    path = tmp_path_factory.mktemp("model") / "small.onnx"
    model = build_onnx_model(SMALL, random_arrays(), input_size=None, metadata=small_metadata())
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def photo_bytes():
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(small_onnx):
    classifier = Classifier.load(small_onnx)
    running = Server(create_app({"small": (str(small_onnx), classifier)},
                                ServeSettings(max_batch=8, max_wait_ms=30, max_body=200_000)))
    yield running
    running.stop()


def _expected_top(classifier, data: bytes, k: int):
    image = load_image(io.BytesIO(data), classifier.metadata.preprocessing)
    probabilities = classifier.predict(preprocess_input(image[None], preprocessing=classifier.metadata.preprocessing))
    return probabilities[0], classifier.top_k(probabilities, k)[0]


def test_torchserve_routes(server, small_onnx, photo_bytes):
    assert server.json("GET", "/ping")[2] == {"status": "Healthy"}
    assert server.json("GET", "/models")[2] == {"models": [{"modelName": "small", "modelUrl": str(small_onnx)}]}
    status, _, (info,) = server.json("GET", "/models/small")
    assert status == 200 and info["labels"] == small_metadata()["labels"] and info["inputSize"] == [32, 32, 3]
    assert info["preprocessing"]["crop"] == 32 and info["fileSize"] == small_onnx.stat().st_size
    assert info["precision"] == "float32" and info["engine"] == "onnxruntime"

    _, top = _expected_top(Classifier.load(small_onnx), photo_bytes, 3)
    status, _, raw = server.json("POST", "/predictions/small?topk=3", photo_bytes, {"Content-Type": "image/png"})
    assert status == 200 and raw["model"] == "small" and raw["time_ms"] > 0
    assert [(p["id"], p["label"]) for p in raw["predictions"]] == [(i, label) for i, label, _ in top]
    np.testing.assert_allclose([p["probability"] for p in raw["predictions"]], [p for _, _, p in top], atol=1e-6)

    boundary = uuid.uuid4().hex
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"p.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + photo_bytes + f"\r\n--{boundary}--\r\n".encode()
    status, _, multipart = server.json("POST", "/predictions/small?topk=3", form,
                                       {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200 and multipart["predictions"] == raw["predictions"]


@pytest.mark.parametrize("path, body, headers, status, words", [
    ("/predictions/nope", b"x", {}, 404, "no model 'nope'"),
    ("/predictions/small", b"", {}, 415, "empty"),
    ("/predictions/small", b"GIF89a certainly not", {}, 415, "not an image"),
    ("/predictions/small?topk=0", b"x", {}, 422, "topk must be in 1..3"),
    ("/predictions/small?topk=two", b"x", {}, 422, "topk must be an integer"),
    ("/predictions/small", b"x" * 200_001, {}, 413, "at most 200,000"),
    ("/v2/models/small/infer", b"{not json", {}, 422, "not JSON"),
    ("/v2/models/small/infer", json.dumps({"inputs": [{"name": "input", "shape": [1, 31, 32, 3], "datatype": "FP32",
                                                       "data": [0] * 2976}]}).encode(), {}, 422, "[N, 32, 32, 3]"),
    ("/v2/models/small/infer", json.dumps({"inputs": [{"name": "input", "shape": [1, 32, 32, 3], "datatype": "FP32",
                                                       "data": [0] * 7}]}).encode(), {}, 422, "does not hold 3072"),
    ("/v2/models/small/infer", json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                                       "data": ["***"]}]}).encode(), {}, 422, "not valid base64"),
    ("/v2/models/small/infer", json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT8",
                                                       "data": [1]}]}).encode(), {}, 422, "FP32"),
])
def test_errors_are_json_with_a_status_that_says_why(server, path, body, headers, status, words):
    got, response_headers, data = server.request("POST", path, body, headers)
    assert got == status, data
    answer = json.loads(data)
    assert words in answer["error"], answer
    assert "Traceback" not in data.decode()


def test_a_decompression_bomb_is_422_before_it_is_decoded(server):
    buffer = io.BytesIO()
    Image.new("L", (12_000, 12_000)).save(buffer, "PNG")  # 144 megapixels in a few hundred kilobytes
    assert len(buffer.getvalue()) < 200_000
    status, _, answer = server.json("POST", "/predictions/small", buffer.getvalue())
    assert status == 422 and "decompression bomb" in answer["error"]


def test_a_body_without_length_is_cut_off_at_the_limit(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/predictions/small")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    try:
        for _ in range(30):  # 30 chunks of 10 kB: over the 200,000-byte limit
            connection.send(b"2710\r\n" + b"x" * 10_000 + b"\r\n")
        connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the client has sent everything
    response = connection.getresponse()
    assert response.status == 413 and "exceeds 200,000" in json.loads(response.read())["error"]


def test_open_inference_protocol(server, small_onnx, photo_bytes):
    assert server.json("GET", "/v2/health/live")[2] == {"live": True}
    assert server.json("GET", "/v2/health/ready")[2] == {"ready": True}
    assert server.json("GET", "/v2/models/small/ready")[2]["ready"] is True
    status, _, meta = server.json("GET", "/v2/models/small")
    assert status == 200 and meta["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 32, 32, 3]}
    assert meta["outputs"][0]["shape"] == [-1, 3]

    classifier = Classifier.load(small_onnx)
    expected, _ = _expected_top(classifier, photo_bytes, 3)
    image = load_image(io.BytesIO(photo_bytes), classifier.metadata.preprocessing)
    tensor = preprocess_input(image[None], preprocessing=classifier.metadata.preprocessing)
    request = {"id": "r1", "inputs": [{"name": "input", "shape": list(tensor.shape), "datatype": "FP32",
                                       "data": tensor.ravel().tolist()}]}
    status, _, answer = server.json("POST", "/v2/models/small/infer", json.dumps(request).encode())
    assert status == 200 and answer["id"] == "r1" and answer["outputs"][0]["shape"] == [1, 3]
    np.testing.assert_allclose(answer["outputs"][0]["data"], expected, atol=1e-6)

    encoded = base64.b64encode(photo_bytes).decode()
    request = {"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "data": [encoded, {"b64": encoded}]}]}
    status, _, answer = server.json("POST", "/v2/models/small/infer", json.dumps(request).encode())
    assert status == 200 and answer["outputs"][0]["shape"] == [2, 3]
    np.testing.assert_allclose(np.reshape(answer["outputs"][0]["data"], (2, 3)), [expected, expected], atol=1e-6)


def test_concurrent_requests_are_batched_and_all_answered(server, photo_bytes):
    def one(_):
        return server.json("POST", "/predictions/small", photo_bytes)[:3:2]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(48)))
    assert [status for status, _ in answers] == [200] * 48
    assert len({json.dumps(answer["predictions"]) for _, answer in answers}) == 1
    (info,) = server.json("GET", "/models/small")[2]
    assert info["batching"]["meanBatch"] > 1.5, info["batching"]  # 16 clients, 30 ms windows


def test_static_files_come_from_the_package_only(server):
    status, headers, page = server.request("GET", "/")
    assert status == 200 and b"squeezekit" in page and headers["cross-origin-opener-policy"] == "same-origin"
    assert server.request("GET", "/static/app.js")[0] == 200
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static//etc/passwd"):
        status, _, data = server.request("GET", path)
        assert status == 404 and b"import" not in data and b"root:" not in data, path


class SlowClassifier:
    """A classifier whose engine takes 200 ms a batch (or fails), to fill the queue."""

    def __init__(self, real, fail=False):
        self.real, self.fail = real, fail
        self.metadata, self.engine, self.source = real.metadata, real.engine, real.source

    def predict(self, batch):
        time.sleep(0.2)
        if self.fail:
            raise RuntimeError("engine exploded with a secret path /home/me/.ssh")
        return self.real.predict(batch)

    def top_k(self, probabilities, k):
        return self.real.top_k(probabilities, k)


def test_a_full_queue_is_503_with_retry_after_and_failures_are_500_without_details(small_onnx, photo_bytes):
    real = Classifier.load(small_onnx)
    server = Server(create_app({"slow": (str(small_onnx), SlowClassifier(real)),
                                "broken": (str(small_onnx), SlowClassifier(real, fail=True))},
                               ServeSettings(max_batch=1, max_wait_ms=0, max_queue=2)))
    try:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: server.request("POST", "/predictions/slow", photo_bytes), range(12)))
        statuses = sorted(status for status, _, _ in answers)
        assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}, statuses
        busy = next(a for a in answers if a[0] == 503)
        assert busy[1]["retry-after"] == "1" and "busy" in json.loads(busy[2])["error"]
        status, _, data = server.request("POST", "/predictions/broken", photo_bytes)
        assert status == 500 and json.loads(data) == {"error": "internal error; the server's log has the details"}
        assert b".ssh" not in data
    finally:
        server.stop()


def test_the_token(small_onnx, photo_bytes):
    server = Server(create_app({"small": (str(small_onnx), Classifier.load(small_onnx))},
                               ServeSettings(token="s3cret")))
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            status, response_headers, answer = server.json("POST", "/predictions/small", photo_bytes, headers)
            assert status == 401 and "token" in answer["error"] and response_headers["www-authenticate"] == "Bearer"
            assert server.json("GET", "/models", None, headers)[0] == 401
            assert server.json("POST", "/v2/models/small/infer", b"{}", headers)[0] == 401
        good = {"Authorization": "Bearer s3cret"}
        assert server.json("POST", "/predictions/small", photo_bytes, good)[0] == 200
        for open_path in ("/ping", "/v2/health/live", "/v2/health/ready", "/"):  # probes and the page itself
            assert server.request("GET", open_path)[0] == 200
    finally:
        server.stop()


def test_the_command_line_server(small_onnx, photo_bytes, tmp_path):
    from squeezekit.cli.serve import exposure_warning, parse_models

    assert parse_models([]) == {"squeezenet1_1": "squeezenet1_1"}
    assert parse_models(["tiny=a/b.onnx", "c.tflite"]) == {"tiny": "a/b.onnx", "c": "c.tflite"}
    with pytest.raises(ValueError, match="unique"):
        parse_models(["a.onnx", "x/a.onnx"])
    assert exposure_warning("127.0.0.1", None) is None and exposure_warning("::1", None) is None
    assert "no --token" in exposure_warning("0.0.0.0", None) and exposure_warning("0.0.0.0", "t") is None

    env = {**os.environ, "SQUEEZEKIT_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "squeezekit", "serve", f"small={small_onnx}", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving small on http://127.0.0.1:"), line + proc.stderr.read()
        port = int(line.split(":")[2].split("/")[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/predictions/small", body=photo_bytes)
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["model"] == "small"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read()
    bad = subprocess.run([sys.executable, "-m", "squeezekit", "serve", "missing.onnx", "--port", "0"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


@pytest.mark.data
def test_real_photos_get_the_same_top5_as_predict(data_dir, tmp_path, monkeypatch):
    """The pretrained v1.1 (float32 artefact) served: each sample photo's top-5 equals the runtime's own."""
    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    classifier = Classifier.load("squeezenet1_1", precision="float32")
    photos = sorted((data_dir / "imagenet" / "sample-1000").iterdir())[:12]
    expected = {str(r.file): r.top for r in classifier.classify(photos, top_k=5)}
    server = Server(create_app({"squeezenet1_1": ("squeezenet1_1", classifier)}))
    try:
        for photo in photos:
            status, _, answer = server.json("POST", "/predictions/squeezenet1_1", photo.read_bytes())
            assert status == 200
            assert [p["id"] for p in answer["predictions"]] == [i for i, _, _ in expected[str(photo)]]
            np.testing.assert_allclose([p["probability"] for p in answer["predictions"]],
                                       [p for _, _, p in expected[str(photo)]], atol=1e-5)
    finally:
        server.stop()


@pytest.mark.parametrize("clients", [1, 8, 32])
def test_load_with_bad_uploads_mixed_in_loses_nothing(server, photo_bytes, clients):
    """Bounded (120 requests, 10 % bad): every good upload gets 200, every bad one a 4xx, no 5xx, none lost."""
    rng = np.random.default_rng(clients)
    bad = [b"", photo_bytes[: len(photo_bytes) // 2], bytes(rng.integers(0, 256, 3000, dtype=np.uint8))]
    requests = [(bad[i % 3], False) if rng.random() < 0.1 else (photo_bytes, True) for i in range(120)]

    def send(item):
        body, good = item
        try:
            return good, server.request("POST", "/predictions/small", body, timeout=60)[0]
        except OSError:
            return good, None  # lost

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        outcomes = list(pool.map(send, requests))
    assert time.perf_counter() - start < 120
    assert all(status == 200 for good, status in outcomes if good), outcomes
    assert all(status is not None and 400 <= status < 500 for good, status in outcomes if not good), outcomes


def test_the_browser_gets_each_model_as_onnx(small_onnx, tmp_path, photo_bytes):
    """GET /models/{model}/model.onnx: the file of an .onnx model, an in-memory ONNX graph of a .sqz one
    (both giving the server's own probabilities), and a JSON 404 for a .tflite model."""
    import onnxruntime

    from litert_helpers import tiny_tflite
    from squeezekit.compression.api import compress_arrays
    from squeezekit.formats.sqz import write_sqz

    sqz = tmp_path / "small.sqz"
    write_sqz(sqz, SMALL.to_dict(), small_metadata(), compress_arrays(SMALL, random_arrays(), bits=6))
    (tmp_path / "mean.tflite").write_bytes(tiny_tflite())
    sidecar = small_metadata() | {"preprocessing": {"resize": 256, "crop": 227, "channel_order": "BGR",
                                                    "mean": [104.0, 117.0, 123.0], "scale": 1.0}}
    (tmp_path / "mean.tflite.json").write_text(json.dumps(sidecar))
    models = {name: (str(path), Classifier.load(path)) for name, path in
              (("onnx", small_onnx), ("sqz", sqz), ("tflite", tmp_path / "mean.tflite"))}
    server = Server(create_app(models))
    try:
        for name in ("onnx", "sqz"):
            status, _, data = server.request("GET", f"/models/{name}/model.onnx")
            assert status == 200
            session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
            classifier = models[name][1]
            image = load_image(io.BytesIO(photo_bytes), classifier.metadata.preprocessing)
            batch = preprocess_input(image[None], preprocessing=classifier.metadata.preprocessing)
            np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: batch})[0],
                                       classifier.predict(batch), atol=1e-6)
        status, _, data = server.request("GET", "/models/tflite/model.onnx")
        assert status == 404 and "the browser runs ONNX models" in json.loads(data)["error"]
    finally:
        server.stop()
