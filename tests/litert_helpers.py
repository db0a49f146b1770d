"""A tiny LiteRT model written with flatbuffers alone (no TensorFlow), for the runtime's file tests."""

import numpy as np
import pytest


def tiny_tflite(size: int = 227) -> bytes:
    """A LiteRT model built without TensorFlow: MEAN over height and width, (1, size, size, 3) -> (1, 3)."""
    flatbuffers = pytest.importorskip("flatbuffers")
    b = flatbuffers.Builder(1024)
    b.ForceDefaults(True)  # write every field given, even when it equals the schema's default

    def int_vector(values):
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependInt32(value)
        return b.EndVector()

    def table_vector(offsets):
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    def table(*fields):  # (slot, kind, value); slots as numbered in LiteRT's schema.fbs
        b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
        for slot, kind, value in fields:
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            else:
                getattr(b, f"Prepend{kind}Slot")(slot, value, 0)
        return b.EndObject()

    axes = b.CreateByteVector(np.array([1, 2], np.int32).tobytes())
    buffers = [table(), table((0, "offset", axes)), table()]  # buffer 0 is the empty sentinel
    names = [b.CreateString(name) for name in ("image", "axes", "scores")]
    shapes = [int_vector([1, size, size, 3]), int_vector([2]), int_vector([1, 3])]
    # Tensor: shape 0, type 1 (FLOAT32 = 0, INT32 = 2), buffer 2, name 3.
    tensors = [table((0, "offset", shapes[i]), (1, "Int8", kind), (2, "Uint32", buf), (3, "offset", names[i]))
               for i, (kind, buf) in enumerate([(0, 0), (2, 1), (0, 2)])]
    op_inputs, op_outputs = int_vector([0, 1]), int_vector([2])
    operator = table((0, "Uint32", 0), (1, "offset", op_inputs), (2, "offset", op_outputs))
    tensor_list, inputs, outputs, operators = table_vector(tensors), int_vector([0]), int_vector([2]), table_vector([operator])
    subgraph = table((0, "offset", tensor_list), (1, "offset", inputs), (2, "offset", outputs), (3, "offset", operators))
    mean = 40  # BuiltinOperator.MEAN
    opcode = table((0, "Int8", mean), (2, "Int32", 1), (3, "Int32", mean))
    opcodes, subgraphs, buffer_list = table_vector([opcode]), table_vector([subgraph]), table_vector(buffers)
    model = table((0, "Uint32", 3), (1, "offset", opcodes), (2, "offset", subgraphs), (4, "offset", buffer_list))
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())
