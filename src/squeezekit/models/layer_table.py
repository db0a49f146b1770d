"""The paper's Table 1 computed from a config: output sizes, filter counts, parameters, MACs.

Pure Python, no Keras: ``squeezekit summary`` prints it without loading a backend, and the tests check
it against the parameters Keras actually creates and against the figures printed in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezekit.config import SqueezeNetConfig

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
                {
                    "name": r.name,
                    "kind": r.kind,
                    "output_shape": list(r.output_shape),
                    "kernel": r.kernel,
                    "s1x1": r.squeeze,
                    "e1x1": r.expand1x1,
                    "e3x3": r.expand3x3,
                    "parameters": r.parameters,
                    "macs": r.macs,
                }
                for r in self.rows
            ],
            "parameters": self.parameters,
            "macs": self.macs,
            "size_bytes": {str(bits): self.size_bytes(bits) for bits in (32, 8, 6)},
            "alexnet_parameters": ALEXNET_PARAMETERS,
            "alexnet_ratio": self.alexnet_ratio,
        }


def pooled_size(size: int, config: SqueezeNetConfig) -> int:
    """Output size of a max-pool; ceil mode is Caffe's (the original models were trained with it)."""
    span = size - config.pool_size
    if config.pool_rounding == "ceil":
        return -(-span // config.pool_stride) + 1
    return span // config.pool_stride + 1


def conv1_size(size: int, config: SqueezeNetConfig) -> int:
    if config.conv1_padding == "same":
        return -(-size // config.conv1_stride)
    return (size - config.conv1_kernel) // config.conv1_stride + 1


def _spatial_sizes(size: int, config: SqueezeNetConfig) -> list[tuple[str, int]] | None:
    """(layer, size at its input) for conv1's output and every pool; None if some map vanishes."""
    after_conv1 = conv1_size(size, config)
    if after_conv1 < 1:
        return None
    sizes = [("conv1", after_conv1)]
    current = after_conv1
    for name in ("conv1",) + config.fire_names:
        if name in config.pool_after:
            if current < config.pool_size:
                return None
            current = pooled_size(current, config)
            sizes.append((name, current))
    return sizes


def minimum_input_size(config: SqueezeNetConfig) -> int:
    """Smallest square input for which every feature map keeps at least one pixel.

    Every pooling window must also fit inside its input (Caffe's ceil mode would otherwise produce
    windows lying wholly in the padding).
    """
    size = 1
    while _spatial_sizes(size, config) is None:
        size += 1
    return size


def check_input_size(config: SqueezeNetConfig, height: int | None, width: int | None) -> None:
    minimum = minimum_input_size(config)
    for axis, value in (("height", height), ("width", width)):
        if value is not None and value < minimum:
            raise ValueError(
                f"Expected an input {axis} of at least {minimum} pixels for this architecture "
                f"(smaller inputs shrink a feature map to nothing). Received: input_shape {axis}={value}"
            )


def layer_table(
    config: SqueezeNetConfig,
    input_size: int | tuple[int, int] = 224,
    channels: int = 3,
    classes: int = 1000,
    include_top: bool = True,
) -> ModelTable:
    """Per-layer output shapes, filter counts, parameters and multiply-accumulates."""
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    check_input_size(config, height, width)
    bn = config.batch_norm
    rows: list[LayerRow] = []

    def conv_cost(k: int, c_in: int, c_out: int, h: int, w: int) -> tuple[int, int]:
        # Batch norm replaces the conv bias and adds gamma, beta, moving mean and variance.
        params = k * k * c_in * c_out + (4 * c_out if bn else c_out)
        return params, k * k * c_in * c_out * h * w

    def pool(h: int, w: int, c: int, after: str) -> tuple[int, int]:
        h, w = pooled_size(h, config), pooled_size(w, config)
        pool_name = "pool1" if after == "conv1" else f"pool{after[4:]}"
        rows.append(
            LayerRow(pool_name, "maxpool", (h, w, c), kernel=f"{config.pool_size}x{config.pool_size}/{config.pool_stride}")
        )
        return h, w

    h, w = conv1_size(height, config), conv1_size(width, config)
    c = config.conv1_filters
    params, macs = conv_cost(config.conv1_kernel, channels, c, h, w)
    k = config.conv1_kernel
    rows.append(LayerRow("conv1", "conv", (h, w, c), kernel=f"{k}x{k}/{config.conv1_stride}", parameters=params, macs=macs))
    if "conv1" in config.pool_after:
        h, w = pool(h, w, c, "conv1")

    bypass = config.bypass_kinds()
    for spec in config.fire_specs():
        p_s, m_s = conv_cost(1, c, spec.squeeze, h, w)
        p_1, m_1 = conv_cost(1, spec.squeeze, spec.expand1x1, h, w) if spec.expand1x1 else (0, 0)
        p_3, m_3 = conv_cost(3, spec.squeeze, spec.expand3x3, h, w) if spec.expand3x3 else (0, 0)
        rows.append(
            LayerRow(
                spec.name, "fire", (h, w, spec.out_channels), squeeze=spec.squeeze, expand1x1=spec.expand1x1,
                expand3x3=spec.expand3x3, parameters=p_s + p_1 + p_3, macs=m_s + m_1 + m_3,
            )
        )
        if bypass[spec.name] == "conv":
            p_b, m_b = conv_cost(1, c, spec.out_channels, h, w)
            rows.append(LayerRow(f"{spec.name}_bypass", "bypass", (h, w, spec.out_channels), kernel="1x1/1", parameters=p_b, macs=m_b))
        c = spec.out_channels
        if spec.name in config.pool_after:
            h, w = pool(h, w, c, spec.name)

    if include_top:
        rows.append(LayerRow("drop9", "dropout", (h, w, c)))
        pad = config.classifier_pad
        h, w = h + 2 * pad, w + 2 * pad
        # conv10 keeps its bias even with batch norm: it is the classifier, followed by ReLU only.
        params = c * classes + classes
        rows.append(LayerRow("conv10", "conv", (h, w, classes), kernel="1x1/1", parameters=params, macs=c * classes * h * w))
        rows.append(LayerRow("pool10", "avgpool", (1, 1, classes), kernel=f"{h}x{w}/1"))
    return ModelTable(tuple(rows), (height, width, channels))
