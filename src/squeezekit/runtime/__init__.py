"""Inference without TensorFlow or Keras: numpy, Pillow and, lazily, ONNX Runtime or LiteRT.

    from squeezekit.runtime import Classifier
    classifier = Classifier.load("squeezenet1_1")        # or a .onnx / .tflite file
    for result in classifier.classify(["cat.jpg"], top_k=3):
        print(result.file, result.top)
"""

from squeezekit.runtime.classifier import Classifier, ImageResult, expand_inputs

__all__ = ["Classifier", "ImageResult", "expand_inputs"]
