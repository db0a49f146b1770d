"""Raw outputs of squeezekit's runtime on one machine, for scripts/arm64_parity.py to compare across machines.

    python arm64_probe.py MODEL.onnx MODEL-int8.tflite PHOTO... OUT.npz

Runs on the host (x86-64) and inside the arm64 root with the same files. Saves, per photo, ONNX
Runtime's float32 probabilities and the int8 model's raw int8 outputs with LiteRT's reference kernels
(``BUILTIN_REF``) and with its default (optimised) kernels, all through squeezekit's own preprocessing.
"""

import platform
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from squeezekit.preprocessing import load_image, preprocess_input
from squeezekit.runtime import Classifier
from squeezekit.runtime.engines import quantize


def litert_raw(model_path: str, images: np.ndarray, resolver) -> np.ndarray:
    """The int8 model's output tensor as stored (no dequantisation), one image at a time."""
    interpreter = Interpreter(model_path=model_path, num_threads=2, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    (tensor_in,), (tensor_out,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for image in images:
        batch = image[None]
        if tensor_in["dtype"] != np.float32:
            batch = quantize(batch, *tensor_in["quantization"], tensor_in["dtype"])
        interpreter.set_tensor(tensor_in["index"], batch)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(tensor_out["index"])[0].copy())
    return np.stack(outputs)


def main() -> None:
    onnx_path, tflite_path, *photos, out = sys.argv[1:]
    classifier = Classifier.load(onnx_path, threads=2)
    preprocessing = classifier.metadata.preprocessing
    images = np.stack([preprocess_input(load_image(p, preprocessing)[None].astype(np.float32),
                                        preprocessing=preprocessing)[0] for p in photos])
    np.savez(out, machine=platform.machine(), onnx_probabilities=classifier.predict(images),
             litert_reference=litert_raw(tflite_path, images, OpResolverType.BUILTIN_REF),
             litert_default=litert_raw(tflite_path, images, OpResolverType.AUTO))


if __name__ == "__main__":
    main()
