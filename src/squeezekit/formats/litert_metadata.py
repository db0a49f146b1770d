"""squeezekit's metadata inside a ``.tflite`` file: an entry of the flatbuffer's ``metadata`` table.

LiteRT models may carry named metadata buffers (TFLite Support uses the same mechanism). squeezekit
stores its JSON (labels, preprocessing, input size, source model, version) under the name
``squeezekit``, so a ``.tflite`` file is self-describing. Reading and writing use the flatbuffer
schema module that ``ai-edge-litert`` ships, plus ``flatbuffers``: no TensorFlow.
"""

from __future__ import annotations

import json
import os
import struct

METADATA_NAME = "squeezekit"
_FILE_IDENTIFIER = b"TFL3"


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_litert_metadata(path: str | os.PathLike) -> dict | None:
    """The squeezekit JSON stored in a ``.tflite`` file, or None if it has none."""
    with open(path, "rb") as handle:
        data = handle.read()
    schema = _schema()
    try:  # the flatbuffer accessors fail in many ways on a damaged file; LiteRT itself rejects it
        model = schema.Model.GetRootAs(data, 0)
        stored = None
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == METADATA_NAME.encode():
                stored = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    except (IndexError, ValueError, TypeError, AttributeError, UnicodeDecodeError, struct.error):
        return None
    if stored is None:
        return None
    from squeezekit._schema import decode_json

    return decode_json(path, stored, "squeezekit metadata in the model")


def write_litert_metadata(path: str | os.PathLike, metadata: dict) -> None:
    """Add (or replace) squeezekit's metadata in a ``.tflite`` file, in place and atomically."""
    import flatbuffers
    import numpy as np

    from squeezekit._resources import atomic_write_bytes

    schema = _schema()
    with open(path, "rb") as handle:
        model = schema.ModelT.InitFromPackedBuf(bytearray(handle.read()), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    model.buffers = list(model.buffers or []) + [buffer]
    entries = [m for m in (model.metadata or []) if m.name not in (METADATA_NAME, METADATA_NAME.encode())]
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = entries + [entry]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    from pathlib import Path

    atomic_write_bytes(Path(path), bytes(builder.Output()))
