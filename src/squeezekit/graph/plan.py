"""A SqueezeNet as data: an ordered list of named operations, built from a ``SqueezeNetConfig``.

The names are the network's fixed layer names (``conv1``, ``pool1``, ``fire2`` with its convolutions
``fire2/squeeze1x1``, ``fire2/expand1x1``, ``fire2/expand3x3``, ``fire3_add``, ``fire2_bypass``,
``drop9``, ``conv10_pad``, ``conv10``, ``pool10``, ``predictions``); a convolution's name is also the
prefix of its Keras weight paths (``fire2/squeeze1x1/kernel``). Shapes are ``(height, width, channels)``
of each output, with ``None`` for sizes left free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Iterator

from squeezekit.config import SqueezeNetConfig
from squeezekit.graph.sizes import check_input_size, conv_output_size, pooled_size

INPUT = "image"
CLASSIFIER = "conv10"
Shape = tuple  # (height | None, width | None, channels)


def pool_name(after: str) -> str:
    """The max-pool after ``conv1`` is ``pool1``; after ``fireN`` it is ``poolN``."""
    return "pool1" if after == "conv1" else f"pool{after[len('fire'):]}"


@dataclass(frozen=True, kw_only=True)
class Op:
    name: str
    inputs: tuple[str, ...]
    shape: Shape
    kind: ClassVar[str] = "op"

    @property
    def parameters(self) -> int:
        return 0

    @property
    def macs(self) -> int | None:
        return 0


@dataclass(frozen=True, kw_only=True)
class Input(Op):
    kind: ClassVar[str] = "input"


@dataclass(frozen=True, kw_only=True)
class Conv(Op):
    """A convolution, with batch norm (which replaces its bias) and ReLU after it when asked."""

    in_channels: int
    kernel: int
    stride: int = 1
    padding: str = "valid"  # or "same" (extra pixels at the end, as Keras and ONNX's SAME_UPPER)
    relu: bool = True
    batch_norm: bool = False
    init_std: float | None = None  # a Gaussian of this deviation instead of Glorot-uniform (the classifier)
    kind: ClassVar[str] = "conv"

    @property
    def filters(self) -> int:
        return self.shape[2]

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        """``(out, in, kh, kw)``: the order of Caffe, ONNX and ``.sqz`` files."""
        return (self.filters, self.in_channels, self.kernel, self.kernel)

    @property
    def weight_count(self) -> int:
        return self.filters * self.in_channels * self.kernel * self.kernel

    @property
    def parameters(self) -> int:
        # Batch norm replaces the bias and adds gamma, beta, moving mean and variance.
        return self.weight_count + (4 if self.batch_norm else 1) * self.filters

    @property
    def macs(self) -> int | None:
        height, width, _ = self.shape
        return None if height is None or width is None else self.weight_count * height * width


@dataclass(frozen=True, kw_only=True)
class Fire(Op):
    """The Fire module: a 1x1 squeeze convolution feeding 1x1 and 3x3 expand convolutions, concatenated."""

    squeeze: Conv
    expand1x1: Conv | None
    expand3x3: Conv | None
    kind: ClassVar[str] = "fire"

    @property
    def convs(self) -> tuple[Conv, ...]:
        return tuple(c for c in (self.squeeze, self.expand1x1, self.expand3x3) if c is not None)

    @property
    def parameters(self) -> int:
        return sum(c.parameters for c in self.convs)

    @property
    def macs(self) -> int | None:
        costs = [c.macs for c in self.convs]
        return None if None in costs else sum(costs)


@dataclass(frozen=True, kw_only=True)
class MaxPool(Op):
    size: int
    stride: int
    rounding: str  # "ceil" (Caffe) or "floor"
    non_negative_input: bool  # after a ReLU: a zero pad cannot win the max
    kind: ClassVar[str] = "maxpool"


@dataclass(frozen=True, kw_only=True)
class Add(Op):
    kind: ClassVar[str] = "add"


@dataclass(frozen=True, kw_only=True)
class Pad(Op):
    pad: int  # zeros on every side
    kind: ClassVar[str] = "pad"


@dataclass(frozen=True, kw_only=True)
class Dropout(Op):
    rate: float
    kind: ClassVar[str] = "dropout"


@dataclass(frozen=True, kw_only=True)
class GlobalPool(Op):
    mode: str  # "avg" or "max"
    kind: ClassVar[str] = "globalpool"


@dataclass(frozen=True, kw_only=True)
class Activation(Op):
    function: object  # "softmax" and the like; the Keras builder accepts whatever Keras does
    kind: ClassVar[str] = "activation"


@dataclass(frozen=True)
class NetworkPlan:
    """The operations of one network, in order; each op reads the outputs named in its ``inputs``."""

    config: SqueezeNetConfig
    ops: tuple[Op, ...]
    classes: int | None  # None without the classifier

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __getitem__(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)

    @property
    def input_shape(self) -> Shape:
        return self.ops[0].shape

    @property
    def output(self) -> Op:
        return self.ops[-1]

    def convs(self) -> list[Conv]:
        """Every convolution, the Fire modules' included, in network order: the layers that hold weights."""
        found = []
        for op in self.ops:
            if isinstance(op, Fire):
                found.extend(op.convs)
            elif isinstance(op, Conv):
                found.append(op)
        return found

    def kernel_shapes(self) -> dict[str, tuple[int, int, int, int]]:
        """``{layer name: (out, in, kh, kw)}`` of every convolution."""
        return {conv.name: conv.kernel_shape for conv in self.convs()}

    @property
    def parameters(self) -> int:
        return sum(op.parameters for op in self.ops)

    @property
    def macs(self) -> int | None:
        costs = [op.macs for op in self.ops]
        return None if None in costs else sum(costs)


def build_plan(
    config: SqueezeNetConfig,
    classes: int | None = 1000,
    *,
    input_size: int | tuple[int | None, int | None] | None = None,
    channels: int = 3,
    include_top: bool = True,
    pooling: str | None = None,
    activation: object = "softmax",
) -> NetworkPlan:
    """The plan of ``config``: ``input_size`` (square int, (height, width) or None for free sizes),
    ``include_top`` the classifier (dropout, conv10, global average pooling, then ``activation`` unless
    None) for ``classes``; without it, ``pooling`` None, ``"avg"`` or ``"max"`` as in keras.applications."""
    height, width = (input_size, input_size) if isinstance(input_size, int) or input_size is None else input_size
    check_input_size(config, height, width)
    if include_top and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise ValueError(f"Expected classes to be an integer >= 1 when include_top=True. Received: classes={classes!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"Expected pooling to be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    plan = _Planner(config, Input(name=INPUT, inputs=(), shape=(height, width, channels)))
    plan.stem()
    for spec in config.fire_specs():
        plan.fire(spec, config.bypass_kinds()[spec.name])
    if include_top:
        plan.classifier(classes, activation)
    elif pooling is not None:
        x = plan.last
        plan.add(GlobalPool(name=f"{pooling}_pool", inputs=(x.name,), shape=(1, 1, x.shape[2]), mode=pooling))
    return NetworkPlan(config, tuple(plan.ops), classes if include_top else None)


class _Planner:
    """Appends the ops of one network; ``non_negative`` tracks whether the last output is a ReLU's."""

    def __init__(self, config: SqueezeNetConfig, image: Input):
        self.config = config
        self.ops: list[Op] = [image]
        self.non_negative = False

    @property
    def last(self) -> Op:
        return self.ops[-1]

    def add(self, op: Op) -> Op:
        self.ops.append(op)
        return op

    def conv(self, name: str, source: Op, filters: int, kernel: int, *, stride=1, padding="valid", relu=True,
             batch_norm=None, init_std=None) -> Conv:
        h, w, c = source.shape
        shape = (conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding), filters)
        return Conv(name=name, inputs=(source.name,), shape=shape, in_channels=c, kernel=kernel, stride=stride,
                    padding=padding, relu=relu, init_std=init_std,
                    batch_norm=self.config.batch_norm if batch_norm is None else batch_norm)

    def pool_if_asked(self, after: str) -> None:
        if after not in self.config.pool_after:
            return
        size, stride, rounding = self.config.pool_size, self.config.pool_stride, self.config.pool_rounding
        h, w, c = self.last.shape
        shape = (pooled_size(h, size, stride, rounding), pooled_size(w, size, stride, rounding), c)
        self.add(MaxPool(name=pool_name(after), inputs=(self.last.name,), shape=shape, size=size, stride=stride,
                         rounding=rounding, non_negative_input=self.non_negative))

    def stem(self) -> None:
        config = self.config
        self.add(self.conv("conv1", self.last, config.conv1_filters, config.conv1_kernel, stride=config.conv1_stride,
                           padding=config.conv1_padding))
        self.non_negative = True
        self.pool_if_asked("conv1")

    def fire(self, spec, bypass: str | None) -> None:
        x = self.last
        squeeze = self.conv(f"{spec.name}/squeeze1x1", x, spec.squeeze, 1)
        expand1x1 = self.conv(f"{spec.name}/expand1x1", squeeze, spec.expand1x1, 1) if spec.expand1x1 else None
        expand3x3 = self.conv(f"{spec.name}/expand3x3", squeeze, spec.expand3x3, 3, padding="same") if spec.expand3x3 else None
        out = self.add(Fire(name=spec.name, inputs=(x.name,), shape=(*x.shape[:2], spec.out_channels),
                            squeeze=squeeze, expand1x1=expand1x1, expand3x3=expand3x3))
        if bypass == "identity":
            # ReLU output + the input: as non-negative as the input was.
            self.add(Add(name=f"{spec.name}_add", inputs=(out.name, x.name), shape=out.shape))
        elif bypass == "conv":
            shortcut = self.add(self.conv(f"{spec.name}_bypass", x, spec.out_channels, 1, relu=False))
            self.add(Add(name=f"{spec.name}_add", inputs=(out.name, shortcut.name), shape=out.shape))
            self.non_negative = False
        else:
            self.non_negative = True
        self.pool_if_asked(spec.name)

    def classifier(self, classes: int, activation) -> None:
        x = self.add(Dropout(name="drop9", inputs=(self.last.name,), shape=self.last.shape, rate=self.config.dropout))
        if self.config.classifier_pad:
            p = self.config.classifier_pad
            h, w, c = x.shape
            grown = (None if h is None else h + 2 * p, None if w is None else w + 2 * p, c)
            x = self.add(Pad(name=f"{CLASSIFIER}_pad", inputs=(x.name,), shape=grown, pad=p))
        # As in the original Caffe definition: a small Gaussian, a bias and a ReLU (unless
        # classifier_relu=False), never batch norm.
        x = self.add(self.conv(CLASSIFIER, x, classes, 1, relu=self.config.classifier_relu, batch_norm=False,
                               init_std=0.01))
        x = self.add(GlobalPool(name="pool10", inputs=(x.name,), shape=(1, 1, classes), mode="avg"))
        if activation is not None:
            self.add(Activation(name="predictions", inputs=(x.name,), shape=(1, 1, classes), function=activation))
