"""Export to LiteRT, ONNX and SavedModel, with a parity check of every artefact in its own runtime.

``export_model`` loads the Keras model and needs Keras; the ONNX writer (``squeezekit.formats.onnx``)
and the checks (``squeezekit.runtime.check``) it uses need no TensorFlow.
"""


def export_model(*args, **kwargs):
    from squeezekit.export.api import export_model as export

    return export(*args, **kwargs)


__all__ = ["export_model"]
