"""Architecture metaparameters of SqueezeNet, as frozen dataclasses.

The SqueezeNet paper (Iandola et al., 2016, section 5) describes every SqueezeNet-like network by a
handful of metaparameters: the expand filters of the first Fire module (``base_e``), how many are added
(``incr_e``) every ``freq`` modules, the share of 3x3 filters among them (``pct_3x3``) and the ratio of
squeeze to expand filters (``squeeze_ratio``). SqueezeNet v1.0 and v1.1 are two presets of this one
config (registered in ``squeezekit.registry``); nothing in the model code is specific to either.

This module is pure Python: it validates metaparameters before any backend code runs, so a bad value
fails fast with a message naming the parameter, whatever the Keras backend.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

BYPASS_MODES = ("none", "simple", "complex")
POOL_ROUNDINGS = ("ceil", "floor")
_BOOLEAN_FIELDS = ("batch_norm", "classifier_relu")  # True or False, never 0 / 1 or a string


@dataclass(frozen=True)
class FireSpec:
    """Filter counts of one Fire module (the paper's s1x1, e1x1 and e3x3)."""

    name: str
    squeeze: int
    expand1x1: int
    expand3x3: int

    @property
    def out_channels(self) -> int:
        return self.expand1x1 + self.expand3x3


@dataclass(frozen=True)
class SqueezeNetConfig:
    """Everything that fixes a SqueezeNet architecture, defaults being SqueezeNet v1.0.

    Fire module ``i`` (0-based, named ``fire{i + 2}`` as in the paper) has
    ``e_i = base_e + incr_e * floor(i / freq)`` expand filters, ``round(e_i * pct_3x3)`` of them 3x3,
    and ``max(1, round(e_i * squeeze_ratio))`` squeeze filters.

    ``pool_after`` names the layers followed by a 3x3/2 max-pool. ``conv1_padding="same"`` (not in the
    paper) keeps small inputs from shrinking in the stem, as the 32x32 CIFAR recipe needs. ``classifier_pad`` reproduces the
    ``pad: 1`` of ``conv_final`` in the Deep Compression release of v1.0 (a 1x1 conv with zero padding,
    so border positions see only the bias). ``batch_norm`` is not in the paper: it adds batch
    normalisation after every convolution, which helps training from scratch. ``classifier_relu=False``
    (not in the paper) drops the ReLU after conv10, so the class scores averaged into the logits can be
    negative and a class's unit cannot die (docs/reproduction.md: simple bypass on CIFAR-10).

    ``fire_widths`` (not in the paper) gives every Fire module's ``(squeeze, expand1x1, expand3x3)``
    filter counts outright, overriding the rule above (``base_e``, ``incr_e``, ``freq``, ``pct_3x3``,
    ``squeeze_ratio`` are then unused): the irregular widths that channel pruning (``squeezekit slim``)
    leaves behind.
    """

    base_e: int = 128
    incr_e: int = 128
    freq: int = 2
    pct_3x3: float = 0.5
    squeeze_ratio: float = 0.125
    num_fire: int = 8
    conv1_filters: int = 96
    conv1_kernel: int = 7
    conv1_stride: int = 2
    conv1_padding: str = "valid"
    pool_after: tuple[str, ...] = ("conv1", "fire4", "fire8")
    pool_size: int = 3
    pool_stride: int = 2
    pool_rounding: str = "ceil"
    dropout: float = 0.5
    bypass: str = "none"
    classifier_pad: int = 0
    batch_norm: bool = False
    classifier_relu: bool = True
    fire_widths: tuple[tuple[int, int, int], ...] | None = None

    def __post_init__(self) -> None:
        _check_int("base_e", self.base_e, minimum=1)
        _check_int("incr_e", self.incr_e, minimum=0)
        _check_int("freq", self.freq, minimum=1)
        _check_int("num_fire", self.num_fire, minimum=1)
        _check_int("conv1_filters", self.conv1_filters, minimum=1)
        _check_int("conv1_kernel", self.conv1_kernel, minimum=1)
        _check_int("conv1_stride", self.conv1_stride, minimum=1)
        _check_int("pool_size", self.pool_size, minimum=1)
        _check_int("pool_stride", self.pool_stride, minimum=1)
        _check_int("classifier_pad", self.classifier_pad, minimum=0)
        if not _is_real(self.squeeze_ratio) or not self.squeeze_ratio > 0:
            raise ValueError(
                "Expected squeeze_ratio > 0 (the paper sweeps 0.125 to 1.0). "
                f"Received: squeeze_ratio={self.squeeze_ratio!r}"
            )
        if not _is_real(self.pct_3x3) or not 0.0 <= self.pct_3x3 <= 1.0:
            raise ValueError(
                "Expected pct_3x3 in [0, 1] (the share of 3x3 filters in the expand layer). "
                f"Received: pct_3x3={self.pct_3x3!r}"
            )
        if not _is_real(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Expected dropout in [0, 1). Received: dropout={self.dropout!r}")
        for name in _BOOLEAN_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"Expected {name} to be True or False. Received: {name}={getattr(self, name)!r}")
        if self.conv1_padding not in ("valid", "same"):
            raise ValueError(f"Expected conv1_padding 'valid' or 'same'. Received: conv1_padding={self.conv1_padding!r}")
        if self.bypass not in BYPASS_MODES:
            raise ValueError(f"Expected bypass to be one of {BYPASS_MODES}. Received: bypass={self.bypass!r}")
        if self.pool_rounding not in POOL_ROUNDINGS:
            raise ValueError(
                f"Expected pool_rounding to be one of {POOL_ROUNDINGS}. "
                f"Received: pool_rounding={self.pool_rounding!r}"
            )
        if self.pool_size < self.pool_stride:
            raise ValueError(
                "Expected pool_size >= pool_stride, so that pooling windows cover the map. "
                f"Received: pool_size={self.pool_size}, pool_stride={self.pool_stride}"
            )
        object.__setattr__(self, "pool_after", tuple(self.pool_after))
        if self.fire_widths is not None:
            object.__setattr__(self, "fire_widths", _check_fire_widths(self.fire_widths, self.num_fire))
        allowed = ("conv1",) + self.fire_names
        unknown = [name for name in self.pool_after if name not in allowed]
        if unknown:
            raise ValueError(
                f"Expected pool_after to name layers among {allowed}. Received: pool_after={self.pool_after!r}"
            )

    @property
    def fire_names(self) -> tuple[str, ...]:
        return tuple(f"fire{i + 2}" for i in range(self.num_fire))

    def fire_specs(self) -> tuple[FireSpec, ...]:
        """The filter counts of every Fire module, derived from the metaparameters."""
        if self.fire_widths is not None:
            return tuple(FireSpec(name, *widths) for name, widths in zip(self.fire_names, self.fire_widths))
        specs = []
        for i, name in enumerate(self.fire_names):
            expand = self.base_e + self.incr_e * (i // self.freq)
            expand3x3 = int(round(expand * self.pct_3x3))
            squeeze = max(1, int(round(expand * self.squeeze_ratio)))
            specs.append(FireSpec(name, squeeze, expand - expand3x3, expand3x3))
        return tuple(specs)

    def bypass_kinds(self) -> dict[str, str | None]:
        """Which shortcut each Fire module gets: ``"identity"``, ``"conv"`` (1x1) or None.

        The paper (section 6) adds simple bypasses around fire3, 5, 7 and 9 because only there do input
        and output channel counts agree; complex bypass adds 1x1-conv shortcuts around the others. The
        rule "identity where channels agree, a 1x1 conv elsewhere (complex only)" gives exactly that for
        v1.0 and v1.1 and stays meaningful for any metaparameters.
        """
        kinds: dict[str, str | None] = {}
        in_channels = self.conv1_filters
        for spec in self.fire_specs():
            if self.bypass == "none":
                kinds[spec.name] = None
            elif in_channels == spec.out_channels:
                kinds[spec.name] = "identity"
            else:
                kinds[spec.name] = "conv" if self.bypass == "complex" else None
            in_channels = spec.out_channels
        return kinds

    def replace(self, **changes) -> "SqueezeNetConfig":
        unknown = sorted(set(changes) - set(config_fields()))
        if unknown:
            raise ValueError(
                f"Unknown SqueezeNet metaparameter(s) {unknown}. Expected some of {sorted(config_fields())}."
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        # fire_widths only when set: configs of the rule stay as they were written before it existed.
        return {name: getattr(self, name) for name in config_fields()
                if not (name == "fire_widths" and self.fire_widths is None)}

    @classmethod
    def from_dict(cls, values: dict) -> "SqueezeNetConfig":
        """A config from its ``to_dict`` form as read back from a file; every field is checked."""
        from squeezekit._schema import FieldError, mapping, sequence, text

        values = dict(mapping(values, "config"))
        unknown = sorted(set(values) - set(config_fields()))
        if unknown:
            raise FieldError(f"config.{unknown[0]}", f"is not a SqueezeNet metaparameter (expected some of {list(config_fields())})")
        if "pool_after" in values:
            pool_after = values["pool_after"]
            names = sequence(list(pool_after) if isinstance(pool_after, tuple) else pool_after, "config.pool_after",
                             max_length=64)
            values["pool_after"] = tuple(text(name, f"config.pool_after[{i}]", 16) for i, name in enumerate(names))
        if values.get("fire_widths") is not None:
            def as_list(value):  # to_dict gives tuples, a JSON file lists
                return list(value) if isinstance(value, tuple) else value

            modules = sequence(as_list(values["fire_widths"]), "config.fire_widths", max_length=_MAXIMUM["num_fire"])
            values["fire_widths"] = tuple(
                tuple(sequence(as_list(widths), f"config.fire_widths[{i}]", min_length=3, max_length=3))
                for i, widths in enumerate(modules))
        for name in ("conv1_padding", "bypass", "pool_rounding"):
            if name in values:
                text(values[name], f"config.{name}", 16)
        for name in _BOOLEAN_FIELDS:
            if name in values and not isinstance(values[name], bool):
                raise FieldError(f"config.{name}", f"must be true or false, not {values[name]!r}")
        return cls().replace(**values)


def config_fields() -> tuple[str, ...]:
    """Names of the metaparameters a user may set."""
    return tuple(f.name for f in dataclasses.fields(SqueezeNetConfig))


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Far beyond any SqueezeNet (the widest has 512 expand filters); it keeps a config read from a
# damaged file from planning a network of terabytes.
MAX_FILTERS = 1 << 16
_MAXIMUM = {"num_fire": 64, "freq": 1024, "conv1_kernel": 64, "conv1_stride": 64, "pool_size": 64,
            "pool_stride": 64, "classifier_pad": 64}


def _check_int(name: str, value, *, minimum: int) -> None:
    maximum = _MAXIMUM.get(name, MAX_FILTERS)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValueError(f"Expected {name} to be an integer in {minimum}..{maximum}. Received: {name}={value!r}")


def _check_fire_widths(fire_widths, num_fire: int) -> tuple[tuple[int, int, int], ...]:
    if not isinstance(fire_widths, (tuple, list)) or len(fire_widths) != num_fire:
        raise ValueError(f"Expected fire_widths to hold num_fire={num_fire} (squeeze, expand1x1, expand3x3) "
                         f"triples. Received: fire_widths={fire_widths!r}")
    checked = []
    for i, widths in enumerate(fire_widths):
        if not isinstance(widths, (tuple, list)) or len(widths) != 3:
            raise ValueError(f"Expected fire_widths[{i}] to be (squeeze, expand1x1, expand3x3). Received: {widths!r}")
        squeeze, expand1x1, expand3x3 = widths
        _check_int(f"fire_widths[{i}] squeeze", squeeze, minimum=1)
        _check_int(f"fire_widths[{i}] expand1x1", expand1x1, minimum=0)
        _check_int(f"fire_widths[{i}] expand3x3", expand3x3, minimum=0)
        if expand1x1 + expand3x3 < 1:
            raise ValueError(f"Expected at least one expand filter in fire_widths[{i}]. Received: {widths!r}")
        checked.append((squeeze, expand1x1, expand3x3))
    return tuple(checked)


# The largest resize a stored preprocessing may ask for: 16 times the ImageNet models' 256, and a
# guard against a damaged file asking to resize every photo to millions of pixels.
MAX_IMAGE_SIDE = 4096


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for a set of weights; applied identically by Keras and the runtime.

    The default is the Caffe convention of the original SqueezeNet releases: resize the shorter side
    to 256 (bilinear), center-crop 227, RGB -> BGR, subtract the per-channel mean on 0..255 values,
    no scaling.
    """

    resize: int = 256
    crop: int = 227
    channel_order: str = "BGR"
    mean: tuple[float, ...] = (104.0, 117.0, 123.0)  # in channel_order
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"Expected channel_order 'RGB' or 'BGR'. Received: channel_order={self.channel_order!r}")
        if self.crop < 1 or self.resize < self.crop:
            raise ValueError(f"Expected 1 <= crop <= resize. Received: crop={self.crop}, resize={self.resize}")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))

    def to_dict(self) -> dict:
        return {"resize": self.resize, "crop": self.crop, "channel_order": self.channel_order,
                "mean": list(self.mean), "scale": self.scale}

    @classmethod
    def from_dict(cls, values: dict) -> "Preprocessing":
        """Preprocessing as read back from a file; every field is checked (see ``MAX_IMAGE_SIDE``)."""
        from squeezekit._schema import FieldError, choice, integer, mapping, real, sequence

        values = mapping(values, "preprocessing")
        unknown = sorted(set(values) - {"resize", "crop", "channel_order", "mean", "scale"})
        if unknown:
            raise FieldError(f"preprocessing.{unknown[0]}", "is not a preprocessing setting")
        fields = {}
        for name in ("resize", "crop"):
            if name in values:
                fields[name] = integer(values[name], f"preprocessing.{name}", 1, MAX_IMAGE_SIDE)
        if "channel_order" in values:
            fields["channel_order"] = choice(values["channel_order"], "preprocessing.channel_order", ("RGB", "BGR"))
        if "mean" in values:
            means = sequence(values["mean"], "preprocessing.mean", min_length=3, max_length=3)
            fields["mean"] = tuple(real(m, f"preprocessing.mean[{i}]", -1e6, 1e6) for i, m in enumerate(means))
        if "scale" in values:
            fields["scale"] = real(values["scale"], "preprocessing.scale", 1e-9, 1e9)
        return cls(**fields)


CAFFE_PREPROCESSING = Preprocessing()
