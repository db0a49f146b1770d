"""Export for microcontrollers: TensorFlow Lite Micro's full-integer model, as C sources, verified.

``squeezekit export MODEL --format tflm -o DIR`` writes into DIR:

- ``model.tflite``: the full-integer int8 model (int8 input and output, no float Quantize/Dequantize
  at the ends; it ends at the pooled class scores, whose argmax is the class);
- ``model_data.h`` / ``model_data.cc``: the model as ``alignas(16) const unsigned char g_model_data[]``
  with its length, the tensor-arena size it needs, the input and output scale and zero point, the
  preprocessing, the labels, and ``SQUEEZEKIT_ADD_OPS(resolver)`` registering exactly its operators
  with a ``tflite::MicroMutableOpResolver<SQUEEZEKIT_OP_COUNT>``;
- ``report.json`` / ``report.md``: flash bytes, arena bytes, MACs, and which common boards it fits.

Nothing is guessed: the arena is the smallest that TFLM's own Python interpreter (``tflite-micro``)
allocates and runs the model in (a binary search, 16-byte steps); TFLM's outputs on real images must
equal LiteRT's reference kernels (``BUILTIN_REF``) bit for bit; the C array is parsed back and must
run identically. Any mismatch fails the export.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# (name, RAM bytes, flash bytes). Flash also holds the application; RAM also its stack and buffers.
BOARDS = (
    ("Arduino Nano 33 BLE Sense (nRF52840)", 256 << 10, 1 << 20),
    ("Raspberry Pi Pico (RP2040)", 264 << 10, 2 << 20),
    ("STM32H743", 1 << 20, 2 << 20),
    ("ESP32-S3 with 8 MB PSRAM", (8 << 20) + (512 << 10), 8 << 20),
)
# LiteRT builtin operator -> MicroMutableOpResolver method.
RESOLVER_METHODS = {
    "CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "MAX_POOL_2D": "AddMaxPool2D",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "CONCATENATION": "AddConcatenation", "MEAN": "AddMean",
    "RESHAPE": "AddReshape", "SOFTMAX": "AddSoftmax", "PAD": "AddPad", "PADV2": "AddPadV2", "ADD": "AddAdd",
    "RELU": "AddRelu", "FULLY_CONNECTED": "AddFullyConnected", "QUANTIZE": "AddQuantize",
    "DEQUANTIZE": "AddDequantize", "MUL": "AddMul", "SUM": "AddSum",
}
FILES = ("model.tflite", "model_data.h", "model_data.cc", "report.json", "report.md")
MAX_SEARCHED_ARENA = 64 << 20


@dataclass
class TflmModel:
    data: bytes
    operators: list[str]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    input_shape: tuple[int, ...]


def _require_tflm():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise ValueError("--format tflm needs TensorFlow Lite Micro's Python interpreter: "
                         "pip install --pre 'squeezekit[tflm]'") from None
    return runtime


def describe(data: bytes) -> TflmModel:
    """The operators and the input and output quantisation of a full-integer ``.tflite`` model; refuses a
    model with float tensors at its ends or anywhere between (TFLM boards run int8 kernels)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    operators = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        operators.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"))
    graph = model.Subgraphs(0)
    types = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    floats = [graph.Tensors(i).Name().decode() for i in range(graph.TensorsLength())
              if types.get(graph.Tensors(i).Type()) in ("FLOAT32", "FLOAT16")]
    if floats:
        raise ValueError(f"the model is not full-integer: float tensors {floats[:3]} remain; TFLM export needs "
                         "int8 kernels throughout")
    unsupported = sorted(set(operators) - set(RESOLVER_METHODS))
    if unsupported:
        raise ValueError(f"the model uses operators squeezekit cannot register for TFLM: {unsupported}")

    def quantization(index: int) -> tuple[float, int]:
        tensor = graph.Tensors(index)
        params = tensor.Quantization()
        return float(params.ScaleAsNumpy()[0]), int(params.ZeroPointAsNumpy()[0])

    input_index, output_index = graph.Inputs(0), graph.Outputs(0)
    (in_scale, in_zero), (out_scale, out_zero) = quantization(input_index), quantization(output_index)
    shape = tuple(int(d) for d in graph.Tensors(input_index).ShapeAsNumpy())
    return TflmModel(data, operators, in_scale, in_zero, out_scale, out_zero, shape)


# One arena probe, in its own process: at some arena sizes TFLM does not return an error but aborts
# (seen: an ADD node's "input2 != nullptr" after a failed temp allocation, then SIGABRT), which would
# take the whole export with it.
_PROBE = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
try:
    interpreter = runtime.Interpreter.from_bytes(data, arena_size=int(sys.argv[2]))
    details = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
    interpreter.invoke()
except RuntimeError:
    sys.exit(3)
"""


def runs_in(model_path: Path, arena: int) -> bool:
    """Whether TFLM allocates and runs the model at ``model_path`` in ``arena`` bytes."""
    import subprocess
    import sys

    _require_tflm()
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE, str(model_path), str(arena)], capture_output=True,
                               timeout=300)
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def measure_arena(model_path: Path) -> int:
    """The smallest tensor arena (a multiple of 16 bytes) in which TFLM runs the model (a binary search)."""
    low, high = 0, 16 << 10
    while not runs_in(model_path, high):
        low, high = high, high * 2
        if high > MAX_SEARCHED_ARENA:
            raise ValueError(f"the model does not run in TFLM even with a {MAX_SEARCHED_ARENA >> 20} MB arena")
    while high - low > 16:
        middle = (low + high) // 32 * 16
        if runs_in(model_path, middle):
            high = middle
        else:
            low = middle
    return high


def quantize_input(images: np.ndarray, model: TflmModel) -> np.ndarray:
    """Preprocessed float images -> the model's int8 input (as the runtime quantises a LiteRT model's)."""
    from squeezekit.runtime.engines import quantize

    return quantize(images, model.input_scale, model.input_zero_point, np.int8)


def tflm_outputs(data: bytes, arena: int, inputs: np.ndarray) -> np.ndarray:
    """TFLM's int8 outputs, one image at a time (microcontroller models have batch 1)."""
    runtime = _require_tflm()
    interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena)
    outputs = []
    for image in inputs:
        interpreter.set_input(image[None], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)[0], copy=True))
    return np.stack(outputs)


def reference_outputs(data: bytes, inputs: np.ndarray) -> np.ndarray:
    """LiteRT's reference kernels (``BUILTIN_REF``, not the optimised ones) on the same int8 inputs."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    (tensor_in,), (tensor_out,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for image in inputs:
        interpreter.set_tensor(tensor_in["index"], image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(tensor_out["index"])[0].copy())
    return np.stack(outputs)


def c_sources(model: TflmModel, arena: int, metadata, source: str) -> tuple[str, str]:
    """``(model_data.h, model_data.cc)`` for a TFLM project."""
    ops = list(dict.fromkeys(model.operators))
    _, height, width, channels = model.input_shape
    pre = metadata.preprocessing
    labels = [name for _, name in metadata.labels]
    header = f"""// Generated by `squeezekit export {source} --format tflm`: the model, its tensor arena and its I/O.
#ifndef SQUEEZEKIT_MODEL_DATA_H_
#define SQUEEZEKIT_MODEL_DATA_H_

#include <cstddef>
#include <cstdint>

extern const unsigned char g_model_data[];
extern const unsigned int g_model_data_len;

// The smallest arena TFLM ran this model in (measured by squeezekit with tflite-micro's interpreter).
constexpr size_t kTensorArenaSize = {arena};

// Input: int8 [1, {height}, {width}, {channels}]. Resize the shorter side to {pre.resize}, centre-crop {pre.crop},
// channel order {pre.channel_order}, x = (pixel - mean) * {pre.scale!r}, then q = round(x / kInputScale) + kInputZeroPoint.
constexpr int kInputHeight = {height};
constexpr int kInputWidth = {width};
constexpr int kInputChannels = {channels};
constexpr float kInputScale = {model.input_scale!r}f;
constexpr int kInputZeroPoint = {model.input_zero_point};
constexpr float kChannelMean[3] = {{{', '.join(f'{m!r}f' for m in pre.mean)}}};

// Output: int8 class scores [1, kNumClasses]; the largest is the class (score = (q - zero point) * scale).
constexpr int kNumClasses = {len(labels)};
constexpr float kOutputScale = {model.output_scale!r}f;
constexpr int kOutputZeroPoint = {model.output_zero_point};
extern const char* const kLabels[kNumClasses];

// tflite::MicroMutableOpResolver<SQUEEZEKIT_OP_COUNT> resolver; SQUEEZEKIT_ADD_OPS(resolver);
#define SQUEEZEKIT_OP_COUNT {len(ops)}
#define SQUEEZEKIT_ADD_OPS(resolver) {' '.join(f'(resolver).{RESOLVER_METHODS[op]}();' for op in ops)}

#endif  // SQUEEZEKIT_MODEL_DATA_H_
"""
    rows = [", ".join(f"0x{byte:02x}" for byte in model.data[i: i + 12]) for i in range(0, len(model.data), 12)]
    quoted = ",\n".join(f"    {json.dumps(label)}" for label in labels)
    body = f"""// Generated by `squeezekit export {source} --format tflm`.
#include "model_data.h"

alignas(16) const unsigned char g_model_data[] = {{
    {(',' + chr(10) + '    ').join(rows)}
}};
const unsigned int g_model_data_len = {len(model.data)};

const char* const kLabels[kNumClasses] = {{
{quoted}
}};
"""
    return header, body


def parse_c_array(source: str) -> bytes:
    """The bytes of ``g_model_data`` in a ``model_data.cc`` (to check the generated sources)."""
    match = re.search(r"g_model_data\[\]\s*=\s*\{([^}]*)\}", source)
    if match is None:
        raise ValueError("no g_model_data array in the source")
    return bytes(int(token, 16) for token in re.findall(r"0x([0-9a-fA-F]{2})", match.group(1)))


def board_fit(flash: int, arena: int) -> list[dict]:
    return [{"board": name, "ram_bytes": ram, "flash_bytes": flash_size, "fits": flash <= flash_size and arena <= ram}
            for name, ram, flash_size in BOARDS]


def write_tflm(keras_model, folder: Path, *, calibration: np.ndarray, input_size: tuple[int, int], metadata,
               macs: int | None, source: str, max_arena: int | None = None, check_images: np.ndarray) -> dict:
    """Convert, measure, verify and write the TFLM export into ``folder`` (which must exist); returns the report."""
    from squeezekit.errors import ExportError
    from squeezekit.export.litert import check_litert_loads, export_litert

    folder.mkdir(parents=True, exist_ok=True)
    tflite = folder / "model.tflite"
    export_litert(keras_model, tflite, quantize="int8", calibration=calibration, input_size=input_size,
                  integer_io=True)
    model = describe(tflite.read_bytes())
    check_litert_loads(tflite)  # its reference kernels run below, in this process
    arena = measure_arena(tflite)
    if max_arena is not None and arena > max_arena:
        raise ValueError(f"the model needs a {arena:,}-byte tensor arena, more than --max-arena {max_arena:,}")
    inputs = quantize_input(check_images, model)
    ours, reference = tflm_outputs(model.data, arena, inputs), reference_outputs(model.data, inputs)
    if not np.array_equal(ours, reference):
        differing = int((ours != reference).any(axis=1).sum())
        raise ExportError(f"TFLM's outputs differ from LiteRT's reference kernels on {differing} of {len(inputs)} images")
    header, body = c_sources(model, arena, metadata, source)
    if parse_c_array(body) != model.data or not np.array_equal(tflm_outputs(parse_c_array(body), arena, inputs), ours):
        raise ExportError("the C array does not read back as the model")
    (folder / "model_data.h").write_text(header)
    (folder / "model_data.cc").write_text(body)
    report = {
        "source": source, "flash_bytes": len(model.data), "arena_bytes": arena, "macs": macs,
        "operators": list(dict.fromkeys(model.operators)), "input_shape": list(model.input_shape),
        "input_quantization": [model.input_scale, model.input_zero_point],
        "output_quantization": [model.output_scale, model.output_zero_point],
        "verified_images": len(inputs), "tflm_equals_reference_kernels": True, "c_array_round_trip": True,
        "boards": board_fit(len(model.data), arena),
    }
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    (folder / "report.md").write_text(report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    lines = [f"# TFLM export of {report['source']}", "",
             f"- flash (model): {report['flash_bytes']:,} bytes", f"- tensor arena: {report['arena_bytes']:,} bytes",
             f"- MACs per image: {report['macs']:,}" if report["macs"] else "- MACs per image: unknown",
             f"- operators: {', '.join(report['operators'])}",
             f"- verified: TFLM == LiteRT reference kernels on {report['verified_images']} images; C array read back", "",
             "| board | RAM | flash | fits |", "|---|---:|---:|---|"]
    for board in report["boards"]:
        lines.append(f"| {board['board']} | {board['ram_bytes'] >> 10} KB | {board['flash_bytes'] >> 10} KB | "
                     f"{'yes' if board['fits'] else 'no'} |")
    lines.append("")
    lines.append("RAM must also hold the application's stack and buffers, and flash its code (TFLM itself "
                 "takes some 50-100 KB with these kernels).")
    return "\n".join(lines) + "\n"


def is_tflm_folder(path: Path) -> bool:
    """A folder this export wrote (only its files): the one kind ``--overwrite`` may replace."""
    return path.is_dir() and not path.is_symlink() and (path / "model_data.cc").is_file() and all(
        child.name in FILES for child in path.iterdir())


def tflm_runner(folder: Path):
    """For the export's check against Keras: preprocessed float images -> softmax of TFLM's scores."""
    from squeezekit.runtime.engines import softmax

    data = (folder / "model.tflite").read_bytes()
    model = describe(data)
    arena = json.loads((folder / "report.json").read_text())["arena_bytes"]

    def run(batch: np.ndarray) -> np.ndarray:
        scores = tflm_outputs(data, arena, quantize_input(batch, model)).astype(np.float32)
        return softmax((scores - model.output_zero_point) * model.output_scale)

    return run
