"""A SqueezeNet in plain PyTorch, built by walking squeezekit's plan (``squeezekit.graph``).

``TorchSqueezeNet(plan)`` makes one PyTorch module per plan op, as the Keras builder does: Conv2d
(Glorot-uniform, or N(0, init_std) for the classifier) with batch norm (epsilon 1e-3, Keras' momentum
0.99) and ReLU where the plan says, Fire modules concatenating their expand branches, Caffe-rounded
(ceil-mode) max pools, additions for bypasses, dropout, global average pooling. Its parameter counts
equal the plan's (and so Keras'). ``SqueezeNetCifar`` is the ``cifar`` recipe's model. Used by
train_throughput.py (the plain-PyTorch reference) and cifar_recipe_study.py (the replica trained on a
GPU); needs only torch and squeezekit's pure-Python plan (``src`` is put on the path when squeezekit is
not installed, as on a GPU machine without the package).
"""

import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import squeezekit  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from squeezekit import graph  # noqa: E402
from squeezekit.registry import get_preset  # noqa: E402
from squeezekit.training.recipes import get_recipe  # noqa: E402


def _conv(op: "graph.Conv") -> nn.Module:
    padding = "same" if op.padding == "same" else 0
    conv = nn.Conv2d(op.in_channels, op.filters, op.kernel, stride=op.stride, padding=padding, bias=not op.batch_norm)
    if op.init_std is None:
        nn.init.xavier_uniform_(conv.weight)
    else:
        nn.init.normal_(conv.weight, std=op.init_std)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    layers = [conv]
    if op.batch_norm:
        layers.append(nn.BatchNorm2d(op.filters, eps=graph.BATCH_NORM_EPSILON, momentum=0.01))
    if op.relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _Fire(nn.Module):
    def __init__(self, op: "graph.Fire"):
        super().__init__()
        self.squeeze = _conv(op.squeeze)
        self.expands = nn.ModuleList(_conv(c) for c in (op.expand1x1, op.expand3x3) if c is not None)

    def forward(self, x):
        squeezed = self.squeeze(x)
        return torch.cat([expand(squeezed) for expand in self.expands], 1)


class _Lambda(nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, *inputs):
        return self.function(*inputs)


def _module(op: "graph.Op") -> nn.Module:
    if isinstance(op, graph.Conv):
        return _conv(op)
    if isinstance(op, graph.Fire):
        return _Fire(op)
    if isinstance(op, graph.MaxPool):
        return nn.MaxPool2d(op.size, op.stride, ceil_mode=op.rounding == "ceil")
    if isinstance(op, graph.Add):
        return _Lambda(torch.add)
    if isinstance(op, graph.Pad):
        return nn.ZeroPad2d(op.pad)
    if isinstance(op, graph.Dropout):
        return nn.Dropout(op.rate)
    if isinstance(op, graph.GlobalPool):
        return _Lambda((lambda x: x.mean((2, 3))) if op.mode == "avg" else (lambda x: x.amax((2, 3))))
    if isinstance(op, graph.Activation):
        return _Lambda(lambda x: F.softmax(x, 1))
    raise TypeError(f"no PyTorch module for plan op {op!r}")


class TorchSqueezeNet(nn.Module):
    """NCHW inputs; returns what the plan's last op returns (class scores when ``activation=None``)."""

    def __init__(self, plan: "graph.NetworkPlan"):
        super().__init__()
        self.wiring = [(op.name, op.inputs) for op in plan.ops[1:]]
        self.input_name = plan.ops[0].name
        self.ops = nn.ModuleDict({op.name.replace("/", "_"): _module(op) for op in plan.ops[1:]})

    def forward(self, x):
        values = {self.input_name: x}
        for name, inputs in self.wiring:
            values[name] = self.ops[name.replace("/", "_")](*(values[i] for i in inputs))
        return values[self.wiring[-1][0]]


def SqueezeNetCifar(*, bypass="none", dropout=0.2, batch_norm=True, classes=10):
    """The ``cifar`` recipe's model (v1.1 with its overrides), returning class scores."""
    overrides = {**get_recipe("cifar").arch_overrides, "bypass": bypass, "dropout": dropout, "batch_norm": batch_norm}
    config = get_preset("squeezenet1_1").replace(**overrides)
    return TorchSqueezeNet(graph.build_plan(config, classes, input_size=32, activation=None))
