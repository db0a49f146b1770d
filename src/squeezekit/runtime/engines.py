"""Inference engines behind one numpy-in, numpy-out call: ONNX Runtime, LiteRT and OpenVINO, imported lazily."""

from __future__ import annotations

import os

import numpy as np

from squeezekit.errors import ParameterError, WeightFileError, literal


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"{module.split('.')[0]} is not installed: pip install 'squeezekit[{extra}]'") from None


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def default_threads() -> int:
    return max(1, os.cpu_count() or 1)


# More threads than this only thrash the machine (and thread pools of thousands can exhaust it).
MAX_THREADS = 256


def resolve_threads(threads: int | None) -> int:
    """``threads`` checked (1..MAX_THREADS), or all cores for None."""
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise ParameterError(f"Expected {{threads}} in 1..{MAX_THREADS}. Received: {{threads}}={literal(threads)}")
    return threads


class OnnxEngine:
    """An ONNX Runtime session on the CPU; ``metadata`` is the JSON squeezekit stores in the model.

    ``path`` may also be the serialised model itself (bytes), as built in memory from a ``.sqz`` file.
    """

    kind = "onnxruntime"

    def __init__(self, path: str | os.PathLike | bytes, threads: int | None = None, *, spinning: bool = True):
        onnxruntime = _require("onnxruntime", "runtime")

        self._path, self._sleeping = path, None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = resolve_threads(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = "<in-memory model>" if isinstance(path, bytes) else path
        try:
            model = path if isinstance(path, bytes) else os.fspath(path)
            self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime raises its own exception types for foreign files
            raise WeightFileError(source, f"not a loadable ONNX model ({str(error).splitlines()[0][:200]})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise WeightFileError(source, "expected one 4-D image input (batch, height, width, channels)")
        self.input_name = inputs[0].name
        self.input_shape = tuple(inputs[0].shape)
        self.output_shape = tuple(self.session.get_outputs()[0].shape)
        self.threads = options.intra_op_num_threads
        stored = self.session.get_modelmeta().custom_metadata_map.get("squeezekit")
        from squeezekit._schema import decode_json

        self.metadata = decode_json(source, stored, "squeezekit metadata in the model") if stored else None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def sharing_cores(self) -> "OnnxEngine":
        """The same model in a session whose idle threads sleep instead of spinning, for callers that
        decode images on the same cores meanwhile (``Classifier.classify``). Made on first use.

        ONNX Runtime's threads spin between operators and after a run; a decoder thread then waits
        for a core that does no work. On 2 cores, classifying 1000 photos went from 316 to 338
        images/s with the int8 v1.1 (one run, by hand; benchmarks/predict_folder.py measures the
        whole pipeline); at batch 1 with nothing else running, spinning was 0.6 ms (30 %) faster, so
        it stays the default.
        """
        if self._sleeping is None:
            self._sleeping = OnnxEngine(self._path, self.threads, spinning=False)
        return self._sleeping


class LiteRTEngine:
    """A LiteRT (TensorFlow Lite) interpreter with its default XNNPACK delegate.

    Integer inputs and outputs (fully quantised models) are (de)quantised here, so callers always pass
    and get float32.
    """

    kind = "litert"

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        Interpreter = _require("ai_edge_litert.interpreter", "litert").Interpreter

        self.threads = resolve_threads(threads)
        try:
            with quiet_native_output():  # LiteRT announces its XNNPACK delegate on stderr at every start
                self.interpreter = Interpreter(model_path=os.fspath(path), num_threads=self.threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise WeightFileError(path, f"not a loadable LiteRT model ({str(error).splitlines()[0][:200]})") from None
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4:
            raise WeightFileError(path, "expected one 4-D image input (batch, height, width, channels)")
        self._input, self._output = inputs[0], outputs[0]
        self.input_shape = tuple(int(d) for d in self._input["shape_signature"])
        self.output_shape = tuple(int(d) for d in self._output["shape_signature"])
        self._batch = int(self._input["shape"][0])
        from squeezekit.formats.litert_metadata import read_litert_metadata

        self.metadata = read_litert_metadata(path)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], list(batch.shape))
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]
            self._batch = batch.shape[0]
        dtype = self._input["dtype"]
        if dtype != np.float32:
            batch = quantize(batch, *self._input["quantization"], dtype)
        self.interpreter.set_tensor(self._input["index"], batch)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        if out.dtype != np.float32:
            scale, zero_point = self._output["quantization"]
            out = (out.astype(np.float32) - zero_point) * scale
        return out.copy() if out.dtype == np.float32 else out


class OpenVinoEngine:
    """An OpenVINO model (IR ``.xml`` with its ``.bin``) compiled for the CPU, at batch 1 for latency.

    One compiled model per batch size: each is compiled for a static shape, since the CPU plugin's
    dynamic-shape kernels are slower. ``metadata`` is the JSON squeezekit stores in the IR's rt_info.
    """

    kind = "openvino"

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        openvino = _require("openvino", "openvino")
        from squeezekit._schema import decode_json

        self.threads = resolve_threads(threads)
        self._core = openvino.Core()
        try:
            self._model = self._core.read_model(os.fspath(path))
        except RuntimeError as error:
            raise WeightFileError(path, f"not a loadable OpenVINO model ({str(error).splitlines()[0][:200]})") from None
        inputs = self._model.inputs
        if len(inputs) != 1 or len(inputs[0].get_partial_shape()) != 4:
            raise WeightFileError(path, "expected one 4-D image input (batch, height, width, channels)")

        def dims(shape):
            return tuple(d.get_length() if d.is_static else -1 for d in shape)

        self.input_shape = dims(inputs[0].get_partial_shape())
        self.output_shape = dims(self._model.outputs[0].get_partial_shape())
        stored = self._model.get_rt_info(["squeezekit"]).astype(str) if self._model.has_rt_info(["squeezekit"]) else None
        self.metadata = decode_json(path, stored, "squeezekit metadata in the model") if stored else None
        self._requests = {}

    def _request(self, batch_size: int):
        if batch_size not in self._requests:
            model = self._model.clone()
            model.reshape([batch_size, *self.input_shape[1:]])
            # f32 explicitly: on CPUs with AVX512_BF16 the plugin would otherwise run the float layers in
            # bfloat16 and move probabilities by ~0.01; quantised layers stay int8 either way.
            compiled = self._core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": self.threads,
                                                               "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                                                               "INFERENCE_PRECISION_HINT": "f32"})
            self._requests[batch_size] = compiled.create_infer_request()
        return self._requests[batch_size]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        request = self._request(batch.shape[0])
        request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return request.get_output_tensor(0).data.copy()


def quantize(values: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """Float values to a quantised integer tensor: ``round(x / scale + zero_point)``, clipped to ``dtype``."""
    info = np.iinfo(dtype)
    scaled = values / scale
    scaled += zero_point  # in place: a batch of 32 photos is 20 MB of floats, and each pass is a copy
    np.rint(scaled, out=scaled)
    return np.clip(scaled, info.min, info.max, out=scaled).astype(dtype)


class quiet_native_output:
    """Silence a native library's messages on file descriptor 2 for the duration of a block."""

    def __enter__(self):
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)


def open_engine(path: str | os.PathLike, threads: int | None = None):
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    if suffix == "onnx":
        return OnnxEngine(path, threads)
    if suffix == "tflite":
        return LiteRTEngine(path, threads)
    if suffix == "xml":
        return OpenVinoEngine(path, threads)
    raise ValueError(f"{path}: unknown model format (expected .onnx, .tflite or an OpenVINO .xml)")
