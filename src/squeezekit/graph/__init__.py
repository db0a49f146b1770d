"""The framework-free plan of a SqueezeNet: named operations with their shapes, parameters and MACs.

Everything that needs the network's structure walks one :class:`NetworkPlan`: the Keras builder
(``squeezekit.models``), the ONNX writer (``squeezekit.formats.onnx``), Table 1
(:func:`layer_table`), compression's layer list and the ``.sqz`` shape checks. Pure Python and numpy.
"""

from squeezekit.graph.arrays import BATCH_NORM_EPSILON, fold_batch_norm, hwio_to_oihw, oihw_to_hwio
from squeezekit.graph.plan import (
    CLASSIFIER,
    INPUT,
    Activation,
    Add,
    Conv,
    Dropout,
    Fire,
    GlobalPool,
    Input,
    MaxPool,
    NetworkPlan,
    Op,
    Pad,
    build_plan,
    pool_name,
)
from squeezekit.graph.sizes import check_input_size, conv_output_size, minimum_input_size, pooled_size
from squeezekit.graph.table import ALEXNET_PARAMETERS, LayerRow, ModelTable, layer_table

__all__ = [
    "ALEXNET_PARAMETERS", "BATCH_NORM_EPSILON", "CLASSIFIER", "INPUT", "Activation", "Add", "Conv", "Dropout", "Fire",
    "GlobalPool", "Input", "LayerRow", "MaxPool", "ModelTable", "NetworkPlan", "Op", "Pad", "build_plan",
    "check_input_size", "conv_output_size", "fold_batch_norm", "hwio_to_oihw", "layer_table", "minimum_input_size",
    "oihw_to_hwio", "pool_name", "pooled_size",
]
