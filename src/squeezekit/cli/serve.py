"""Serve models over HTTP: TorchServe's and KServe v2's inference routes, and a page for phones.

MODEL is anything 'squeezekit predict' takes without TensorFlow (a pretrained name, .onnx, .tflite or
.sqz file), optionally named NAME=MODEL; the default is the pretrained SqueezeNet v1.1 in its fastest
verified form. Each model answers at /predictions/NAME (TorchServe) and /v2/models/NAME/infer (the
Open Inference Protocol of KServe and Triton); GET / is a page that classifies a chosen, dropped or
pasted photo, or the camera's frames. Concurrent requests are batched (--max-batch, --max-wait-ms).

The server binds to 127.0.0.1 unless --host says otherwise; bound elsewhere it should have a token
(--token, or the SQUEEZEKIT_TOKEN variable, which keeps it out of the process list): requests to the
model routes then need 'Authorization: Bearer TOKEN'. To scale past one machine, run it as a KServe
custom predictor (docs/serving.md).

examples:
  squeezekit serve
  squeezekit serve squeezenet1_1 tiny=runs/cifar/best.int8.tflite --port 8080
  curl -T photo.jpg http://127.0.0.1:8000/predictions/squeezenet1_1
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL", help="[NAME=]pretrained name, .onnx, .tflite or .sqz "
                        "(default: squeezenet1_1)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 picks a free one)")
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' (default: $SQUEEZEKIT_TOKEN)")
    parser.add_argument("--max-batch", type=int, default=8, help="images per engine call at most (default: %(default)s)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0,
                        help="how long the first image of a batch waits for others (default: %(default)s)")
    parser.add_argument("--max-body", type=int, default=20 << 20, help="largest request body in bytes (default: 20 MiB)")
    parser.add_argument("--max-queue", type=int, default=256,
                        help="images waiting at most; more get 503 with Retry-After (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads per model (default: all cores)")
    parser.add_argument("--browser-runtime", metavar="DIR", default=None,
                        help="onnxruntime-web's dist folder, served for 'Run in this browser' (default: the pinned "
                             "version from jsDelivr, checked by its integrity hash)")


def parse_models(specs: list[str]) -> dict[str, str]:
    """``{name: spec}`` from MODEL arguments (``NAME=SPEC`` or ``SPEC``, named after the file's stem)."""
    from pathlib import Path

    models = {}
    for spec in specs or ["squeezenet1_1"]:
        name, _, path = spec.partition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        name = name or (Path(path).stem if Path(path).suffix else path)
        if not name or "/" in name or name in models:
            raise ValueError(f"{spec}: model names must be unique and contain no '/' (name one with NAME=MODEL)")
        models[name] = path
    return models


def run(args: argparse.Namespace) -> int:
    import importlib.util
    from pathlib import Path

    for name, value, low, high in (("--port", args.port, 0, 65535), ("--max-batch", args.max_batch, 1, 1024),
                                   ("--max-body", args.max_body, 1, 1 << 31), ("--max-queue", args.max_queue, 1, 1 << 20)):
        if not low <= value <= high:
            raise ValueError(f"Expected {name} in {low}..{high}. Received: {name} {value}")
    if not 0 <= args.max_wait_ms <= 10_000:
        raise ValueError(f"Expected --max-wait-ms in 0..10000. Received: --max-wait-ms {args.max_wait_ms}")
    missing = [m for m in ("starlette", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(f"squeezekit serve needs {', '.join(missing)}: pip install 'squeezekit[serve]'")
    if args.threads is not None:
        from squeezekit.runtime.engines import resolve_threads

        resolve_threads(args.threads)
    token = args.token or os.environ.get("SQUEEZEKIT_TOKEN") or None
    warning = exposure_warning(args.host, token)
    if warning:
        print(f"squeezekit serve: warning: {warning}", file=sys.stderr)

    import uvicorn

    from squeezekit.runtime import Classifier
    from squeezekit.serve import ServeSettings, create_app

    models = {name: (spec, Classifier.load(spec, threads=args.threads)) for name, spec in parse_models(args.models).items()}
    if args.browser_runtime and not (Path(args.browser_runtime) / "ort.wasm.min.js").is_file():
        raise FileNotFoundError(f"--browser-runtime {args.browser_runtime}: no ort.wasm.min.js there (expected the dist "
                                "folder of the onnxruntime-web npm package)")
    settings = ServeSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_body=args.max_body,
                             max_queue=args.max_queue, token=token, browser_runtime=args.browser_runtime)
    app = create_app(models, settings)
    listener = listening_socket(args.host, args.port)
    host, port = listener.getsockname()[:2]
    config = uvicorn.Config(app, log_level="warning", access_log=False, limit_concurrency=settings.max_queue * 4)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {', '.join(models)} on http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down gracefully: the usual way to stop
        pass
    print("stopped", file=sys.stderr)
    return 0


def listening_socket(host: str, port: int):
    """The server's socket, bound here so that --port 0 can say which port it got before the first request.

    Its protocol is given as IPPROTO_TCP, not left at 0 as ``socket.create_server`` leaves it: asyncio sets
    TCP_NODELAY only on sockets that say they are TCP, and without it every response (headers and body are
    two writes) waits for the client's delayed ACK, 40 ms a request (measured: /ping took 44 ms, 0.4 ms
    with it)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError:
        listener.close()
        raise
    listener.listen(1024)
    return listener


def exposure_warning(host: str, token: str | None) -> str | None:
    """Why binding ``host`` without a token is risky, or None (loopback, or a token is set)."""
    import ipaddress

    if token:
        return None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    return None if loopback else (f"{host} is reachable from other machines and no --token is set: anyone who can "
                                  "reach it can use the models")
