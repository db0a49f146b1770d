"""The paper's Table 1 as a view of the plan: output sizes, filter counts, parameters and MACs per layer."""

from __future__ import annotations

from dataclasses import dataclass

from squeezekit.config import SqueezeNetConfig
from squeezekit.graph.plan import Conv, Dropout, Fire, GlobalPool, MaxPool, NetworkPlan, build_plan

# AlexNet (Krizhevsky et al. 2012) as in the paper's comparison: 60,965,224 parameters ("240 MB").
ALEXNET_PARAMETERS = 60_965_224


@dataclass(frozen=True)
class LayerRow:
    """One row of the table: a layer and what it costs."""

    name: str
    kind: str  # "conv", "maxpool", "fire", "bypass", "dropout", "avgpool"
    output_shape: tuple[int, int, int]  # (height, width, channels)
    kernel: str = ""  # "7x7/2" and the like
    squeeze: int | None = None
    expand1x1: int | None = None
    expand3x3: int | None = None
    parameters: int = 0
    macs: int = 0


@dataclass(frozen=True)
class ModelTable:
    rows: tuple[LayerRow, ...]
    input_shape: tuple[int, int, int]

    @property
    def parameters(self) -> int:
        return sum(row.parameters for row in self.rows)

    @property
    def macs(self) -> int:
        return sum(row.macs for row in self.rows)

    def size_bytes(self, bits: int) -> float:
        """Model size if every parameter is stored with ``bits`` bits (no sparsity, no coding)."""
        return self.parameters * bits / 8

    @property
    def alexnet_ratio(self) -> float:
        return ALEXNET_PARAMETERS / self.parameters

    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "layers": [
                {"name": r.name, "kind": r.kind, "output_shape": list(r.output_shape), "kernel": r.kernel,
                 "s1x1": r.squeeze, "e1x1": r.expand1x1, "e3x3": r.expand3x3, "parameters": r.parameters,
                 "macs": r.macs}
                for r in self.rows
            ],
            "parameters": self.parameters,
            "macs": self.macs,
            "size_bytes": {str(bits): self.size_bytes(bits) for bits in (32, 8, 6)},
            "alexnet_parameters": ALEXNET_PARAMETERS,
            "alexnet_ratio": self.alexnet_ratio,
        }


def _row(op, shapes: dict) -> LayerRow | None:
    """Table 1's row of an op; the input, additions, padding and the activation have none."""
    if isinstance(op, Fire):
        return LayerRow(op.name, "fire", op.shape, squeeze=op.squeeze.filters,
                        expand1x1=op.expand1x1.filters if op.expand1x1 else 0,
                        expand3x3=op.expand3x3.filters if op.expand3x3 else 0, parameters=op.parameters, macs=op.macs)
    if isinstance(op, Conv):
        kind = "bypass" if op.name.endswith("_bypass") else "conv"
        return LayerRow(op.name, kind, op.shape, kernel=f"{op.kernel}x{op.kernel}/{op.stride}",
                        parameters=op.parameters, macs=op.macs)
    if isinstance(op, MaxPool):
        return LayerRow(op.name, "maxpool", op.shape, kernel=f"{op.size}x{op.size}/{op.stride}")
    if isinstance(op, Dropout):
        return LayerRow(op.name, "dropout", op.shape)
    if isinstance(op, GlobalPool):
        h, w, _ = shapes[op.inputs[0]]
        return LayerRow(op.name, f"{op.mode}pool", op.shape, kernel=f"{h}x{w}/1")
    return None


def table_of(plan: NetworkPlan) -> ModelTable:
    shapes = {op.name: op.shape for op in plan}
    rows = [row for row in (_row(op, shapes) for op in plan) if row is not None]
    return ModelTable(tuple(rows), plan.input_shape)


def layer_table(
    config: SqueezeNetConfig,
    input_size: int | tuple[int, int] = 224,
    channels: int = 3,
    classes: int = 1000,
    include_top: bool = True,
) -> ModelTable:
    """Per-layer output shapes, filter counts, parameters and multiply-accumulates (Table 1)."""
    return table_of(build_plan(config, classes, input_size=input_size, channels=channels, include_top=include_top,
                               activation=None))
