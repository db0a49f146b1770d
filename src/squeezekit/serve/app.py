"""The HTTP API: TorchServe's inference routes, the Open Inference Protocol (KServe v2), and the page.

Built on Starlette and the runtime (ONNX Runtime, LiteRT, ``.sqz``): no TensorFlow or Keras at serve
time. Routes:

- TorchServe: ``GET /ping``; ``GET /models``; ``GET /models/{model}``; ``POST /predictions/{model}``
  with the image as the body or as a multipart file (``curl -T photo.jpg`` or ``-F data=@photo.jpg``),
  answering the top-k (``?topk=5``) with ids, labels and probabilities, the model and the time taken.
- Open Inference Protocol (KServe v2, Triton): ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``,
  ``GET /v2/models/{model}`` (``/ready``), ``POST /v2/models/{model}/infer`` with either an ``FP32``
  tensor already preprocessed (``[N, crop, crop, 3]``, the model's own preprocessing) or ``BYTES``
  holding encoded images (base64, or ``{"b64": ...}`` as TensorFlow Serving writes it).
- ``GET /``: the page; ``GET /static/...``: its files, from the package only.

Every error is JSON ``{"error": message}`` with a status that says what went wrong (401 no token,
404 no such model, 413 body too large, 415 not an image, 422 a decompression bomb or a malformed
tensor, 503 queue full with ``Retry-After``); no stack trace ever reaches a client.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from squeezekit.serve.batching import DynamicBatcher, Overloaded

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_TOP_K = 100
# onnxruntime-web for "Run in this browser", pinned with its Subresource Integrity hash (sha384 of
# dist/ort.wasm.min.js of the npm package, which jsDelivr serves unchanged); --browser-runtime DIR
# serves a local copy of that dist folder instead (no network needed).
ORT_WEB_VERSION = "1.30.0"
ORT_WEB_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
ORT_WEB_INTEGRITY = "sha384-Bw6URI+Gvoadw0do7/QrSHUC9D1vCYYK5OSqChFyhyV5mzPL4oe2rOAFljAnS8Sq"


class HTTPProblem(Exception):
    """An error answered as JSON with ``status`` (and extra headers, such as Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class ServeSettings:
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_body: int = 20 << 20  # 20 MB: a 24-megapixel JPEG fits
    max_queue: int = 256
    token: str | None = None
    browser_runtime: str | None = None  # a folder holding onnxruntime-web's dist files
    decode_workers: int = field(default_factory=lambda: min(8, os.cpu_count() or 1))


@dataclass
class ServedModel:
    name: str
    classifier: object  # squeezekit.runtime.Classifier
    batcher: DynamicBatcher
    info: dict


def model_info(name: str, spec: str, classifier) -> dict:
    """What ``GET /models/{model}`` says: labels, input size, preprocessing, precision, size, accuracy."""
    from squeezekit.registry import get_pretrained, is_pretrained_name

    metadata = classifier.metadata
    accuracy = None
    if is_pretrained_name(spec):
        accuracy = get_pretrained(spec).metrics or None
    elif "accuracy" in metadata.extra:
        accuracy = metadata.extra["accuracy"]
    source = Path(classifier.source)
    return {
        "modelName": name, "source": spec, "file": source.name, "engine": classifier.engine.kind,
        "fileSize": source.stat().st_size if source.is_file() else None,
        "precision": metadata.extra.get("precision") or metadata.extra.get("quantize") or "float32",
        "inputSize": [metadata.preprocessing.crop, metadata.preprocessing.crop, 3],
        "preprocessing": metadata.preprocessing.to_dict(), "labels": [list(label) for label in metadata.labels],
        "labelSet": metadata.label_set, "accuracy": accuracy,
    }


def create_app(models: dict[str, tuple[str, object]], settings: ServeSettings | None = None):
    """The Starlette application serving ``models`` (``{name: (spec, Classifier)}``)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    server = _Server(models, settings or ServeSettings())
    routes = [
        Route("/", server.page), Route("/page-config", server.page_config), Route("/ping", server.ping),
        Route("/models", server.list_models), Route("/models/{model}", server.describe_model),
        Route("/models/{model}/model.onnx", server.model_onnx),
        Route("/predictions/{model}", server.predictions, methods=["POST", "PUT"]),
        Route("/v2", server.v2_server), Route("/v2/health/live", server.v2_live), Route("/v2/health/ready", server.v2_ready),
        Route("/v2/models/{model}", server.v2_model), Route("/v2/models/{model}/ready", server.v2_model_ready),
        Route("/v2/models/{model}/infer", server.v2_infer, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    if server.settings.browser_runtime:
        routes.append(Mount("/ort", StaticFiles(directory=server.settings.browser_runtime), name="ort"))
    app = Starlette(routes=routes, lifespan=server.lifespan, exception_handlers=_exception_handlers())
    app.state.models = server.served
    return _Guard(app, server.settings.token)


def _json(content, status_code: int = 200, headers: dict | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse(content, status_code=status_code, headers=headers)


def _file(path, media_type: str | None = None):
    from starlette.responses import FileResponse

    return FileResponse(path, media_type=media_type)


class _Server:
    """The routes' handlers over the served models, their batchers and the decoding pool."""

    def __init__(self, models: dict[str, tuple[str, object]], settings: ServeSettings):
        self.settings = settings
        self.served = {
            name: ServedModel(name, classifier, DynamicBatcher(classifier, max_batch=settings.max_batch,
                                                               max_wait_ms=settings.max_wait_ms,
                                                               max_queue=settings.max_queue),
                              model_info(name, spec, classifier))
            for name, (spec, classifier) in models.items()
        }
        self.decoders = ThreadPoolExecutor(max_workers=settings.decode_workers, thread_name_prefix="squeezekit-decode")
        self.onnx_cache: dict[str, bytes] = {}

    def model(self, request) -> ServedModel:
        name = request.path_params["model"]
        if name not in self.served:
            raise HTTPProblem(404, f"no model {name!r}; this server has {sorted(self.served)}")
        return self.served[name]

    async def decode(self, data: bytes, entry: ServedModel) -> np.ndarray:
        from squeezekit.preprocessing import ImageBombError, ImageError, load_image

        preprocessing = entry.classifier.metadata.preprocessing
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.decoders, lambda: load_image(io.BytesIO(data), preprocessing))
        except ImageBombError as error:
            raise HTTPProblem(422, f"refused: {error.reason}") from None
        except ImageError as error:
            raise HTTPProblem(415, f"the body is not an image this server can read ({error.reason})") from None

    async def classify(self, entry: ServedModel, images: np.ndarray) -> np.ndarray:
        try:
            return await entry.batcher.probabilities(images)
        except Overloaded as error:
            raise HTTPProblem(503, f"busy: {error}; retry shortly", {"Retry-After": "1"}) from None

    async def ping(self, request):
        return _json({"status": "Healthy"})

    async def list_models(self, request):
        return _json({"models": [{"modelName": m.name, "modelUrl": m.info["source"]} for m in self.served.values()]})

    async def describe_model(self, request):
        entry = self.model(request)
        batching = {"maxBatch": self.settings.max_batch, "maxWaitMs": self.settings.max_wait_ms,
                    "meanBatch": round(entry.batcher.stats.mean_batch, 2)}
        return _json([{**entry.info, "batching": batching}])

    async def predictions(self, request):
        start = time.perf_counter()
        entry = self.model(request)
        top_k = _top_k(request.query_params.get("topk"), len(entry.classifier.metadata.labels))
        data = await _image_body(request, self.settings.max_body)
        with entry.batcher.decoding():
            image = await self.decode(data, entry)
        probabilities = await self.classify(entry, image[None])
        (top,) = entry.classifier.top_k(probabilities, top_k)
        return _json({"model": entry.name, "predictions": [
            {"id": class_id, "label": label, "probability": round(p, 6)} for class_id, label, p in top],
            "time_ms": round(1000 * (time.perf_counter() - start), 2)})

    async def v2_server(self, request):
        from squeezekit import __version__

        return _json({"name": "squeezekit", "version": __version__, "extensions": []})

    async def v2_live(self, request):
        return _json({"live": True})

    async def v2_ready(self, request):
        return _json({"ready": True})

    async def v2_model(self, request):
        entry = self.model(request)
        crop, classes = entry.info["inputSize"][0], len(entry.info["labels"])
        return _json({
            "name": entry.name, "versions": ["1"], "platform": f"squeezekit-{entry.info['engine']}",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, crop, crop, 3]},
                       {"name": "image", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]}],
            "parameters": {"preprocessing": entry.info["preprocessing"]}})

    async def v2_model_ready(self, request):
        self.model(request)
        return _json({"name": request.path_params["model"], "ready": True})

    async def v2_infer(self, request):
        entry = self.model(request)
        body = await _read_body(request, self.settings.max_body)
        try:
            document = json.loads(body)
        except ValueError:
            raise HTTPProblem(422, "the body is not JSON (an Open Inference Protocol request)") from None
        tensor = _v2_input(document, entry.info["inputSize"][0], self.settings.max_batch * 16)
        if tensor.dtype == np.float32:
            probabilities = await entry.batcher.predict_preprocessed(tensor)
        else:
            with entry.batcher.decoding():
                images = [await self.decode(data, entry) for data in tensor]
            probabilities = await self.classify(entry, np.stack(images))
        answer = {"model_name": entry.name, "model_version": "1",
                  "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": list(probabilities.shape),
                               "data": [round(float(p), 7) for p in probabilities.ravel()]}]}
        if isinstance(document.get("id"), str):
            answer["id"] = document["id"]
        return _json(answer)

    async def page(self, request):
        return _file(STATIC / "index.html")

    async def page_config(self, request):
        if self.settings.browser_runtime:
            return _json({"ort": {"script": "/ort/ort.wasm.min.js", "integrity": None, "wasmPaths": "/ort/"}})
        return _json({"ort": {"script": ORT_WEB_CDN + "ort.wasm.min.js", "integrity": ORT_WEB_INTEGRITY,
                                     "wasmPaths": ORT_WEB_CDN}})

    async def model_onnx(self, request):
        """The model as ONNX, for onnxruntime-web in the page ("Run in this browser")."""
        from starlette.responses import Response

        entry = self.model(request)
        source = Path(entry.classifier.source)
        if source.suffix == ".onnx":
            return _file(source, media_type="application/octet-stream")
        if source.suffix == ".sqz":
            if entry.name not in self.onnx_cache:
                from squeezekit.formats.sqz import read_sqz
                from squeezekit.runtime.compressed import onnx_bytes

                compressed = read_sqz(source)
                self.onnx_cache[entry.name] = onnx_bytes(compressed.config, compressed.arrays(), None)
            return Response(self.onnx_cache[entry.name], media_type="application/octet-stream")
        raise HTTPProblem(404, f"{entry.name} is a {source.suffix} model; the browser runs ONNX models (.onnx, .sqz)")

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        for entry in self.served.values():
            await entry.batcher.start()
        yield
        for entry in self.served.values():
            await entry.batcher.stop()
        self.decoders.shutdown(wait=False)


class _Guard:
    """ASGI middleware: the bearer token on every model route, JSON for every error, isolation headers."""

    OPEN = ("/", "/page-config", "/ping", "/v2", "/v2/health/live", "/v2/health/ready")

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if self.token and path not in self.OPEN and not path.startswith(("/static/", "/ort/")):
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization", b"") != f"Bearer {self.token}".encode():
                from starlette.responses import JSONResponse

                response = JSONResponse({"error": "missing or wrong token: send 'Authorization: Bearer TOKEN'"},
                                        status_code=401, headers={"WWW-Authenticate": "Bearer"})
                return await response(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                # Cross-origin isolation: what WebAssembly threads (onnxruntime-web) need in the browser.
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-embedder-policy", b"require-corp"),
                    (b"x-content-type-options", b"nosniff")]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _exception_handlers():
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse

    async def problem(request, error: HTTPProblem):
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    async def http_error(request, error: HTTPException):
        return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)

    async def unexpected(request, error: Exception):
        logger.exception(f"{request.method} {request.url.path} failed")
        return JSONResponse({"error": "internal error; the server's log has the details"}, status_code=500)

    return {HTTPProblem: problem, HTTPException: http_error, Exception: unexpected}


def _top_k(text: str | None, classes: int) -> int:
    """``?topk=`` (TorchServe's name), default 5 or every class of a smaller model."""
    if text is None:
        return min(5, classes)
    try:
        value = int(text)
    except ValueError:
        raise HTTPProblem(422, f"topk must be an integer, not {text[:20]!r}") from None
    if not 1 <= value <= min(classes, MAX_TOP_K):
        raise HTTPProblem(422, f"topk must be in 1..{min(classes, MAX_TOP_K)}, not {value}")
    return value


async def _read_body(request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` (never read whole first)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPProblem(413, f"the body has {int(length):,} bytes; this server takes at most {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPProblem(413, f"the body exceeds {limit:,} bytes, the most this server takes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _image_body(request, limit: int) -> bytes:
    """The image of a TorchServe-style request: the raw body, or the first file of a multipart form."""
    from starlette.requests import Request

    body = await _read_body(request, limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        if not body:
            raise HTTPProblem(415, "the body is empty: send an image (raw, or as a multipart file)")
        return body

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=4, max_fields=16)
    except Exception:  # python-multipart raises several types for a malformed form
        raise HTTPProblem(422, "malformed multipart form") from None
    for value in form.values():
        if hasattr(value, "read"):
            return await value.read()
    for value in form.values():  # some clients send the image as a plain field
        if isinstance(value, str) and value:
            return value.encode("latin-1", "ignore")
    raise HTTPProblem(415, "the form holds no file: send the image as a multipart file (for example -F data=@photo.jpg)")


def _v2_input(document, crop: int, max_items: int) -> np.ndarray:
    """The first input of an Open Inference Protocol request: float32 (N, crop, crop, 3) or a list of bytes."""
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list) or not document["inputs"]:
        raise HTTPProblem(422, "expected {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}")
    tensor = document["inputs"][0]
    if not isinstance(tensor, dict):
        raise HTTPProblem(422, "each input must be an object with name, shape, datatype and data")
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise HTTPProblem(422, "input 'shape' must be a list of non-negative integers")
    if datatype == "FP32":
        if len(shape) != 4 or shape[1:] != [crop, crop, 3] or not 1 <= shape[0] <= max_items:
            raise HTTPProblem(422, f"an FP32 input must have shape [N, {crop}, {crop}, 3] with N in 1..{max_items}, "
                                   f"not {shape}")
        try:
            array = np.asarray(data, dtype=np.float32).reshape(shape)
        except (ValueError, TypeError):
            raise HTTPProblem(422, f"input 'data' does not hold {int(np.prod(shape))} numbers") from None
        if not np.isfinite(array).all():
            raise HTTPProblem(422, "input 'data' holds NaN or infinite values")
        return array
    if datatype == "BYTES":
        if not isinstance(data, list) or not 1 <= len(data) <= max_items or (shape and shape != [len(data)]):
            raise HTTPProblem(422, f"a BYTES input must hold 1..{max_items} encoded images, its shape [N]")
        items = []
        for item in data:
            encoded = item.get("b64") if isinstance(item, dict) else item
            if not isinstance(encoded, str):
                raise HTTPProblem(422, "each BYTES element must be a base64 string (or {\"b64\": ...})")
            try:
                items.append(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                raise HTTPProblem(422, "a BYTES element is not valid base64") from None
        return np.array(items, dtype=object)
    raise HTTPProblem(422, f"input datatype must be FP32 (a preprocessed tensor) or BYTES (encoded images), not {datatype!r}")
