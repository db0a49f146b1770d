"""Export to LiteRT, ONNX and SavedModel, with a parity check of every artefact.

``onnx_graph``, ``onnx_quantize``, ``calibration`` and ``check`` need no TensorFlow: the runtime uses
them to build its own artefacts. ``export_model`` loads the Keras model and needs Keras.
"""


def export_model(*args, **kwargs):
    from squeezekit.export.api import export_model as export

    return export(*args, **kwargs)


__all__ = ["export_model"]
