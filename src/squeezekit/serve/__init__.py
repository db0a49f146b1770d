"""``squeezekit serve``: an HTTP API (TorchServe and KServe v2 routes) and a web page, on the runtime."""

from squeezekit.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
