"""One registry of SqueezeNet architectures and their pretrained weights, as timm and torchvision have.

Architectures are named presets of ``SqueezeNetConfig``; pretrained weights are tagged ``arch.tag``
(``squeezenet1_1.imagenet_caffe_fp16``; see :mod:`squeezekit.weights.registry`). One lookup,
:func:`get_model_entry`, turns any of these names into the architecture and, for a tagged or
pretrained name, its weights::

    squeezekit.list_models("squeezenet1_1*")                  # architectures
    squeezekit.list_models(pretrained=True)                   # every arch.tag with weights
    squeezekit.create_model("squeezenet1_0.imagenet_deep_compression")   # squeezekit.models.squeezenet

Each entry carries its parameter count and its MACs at ``input_size``; a test recomputes both from the
plan (``squeezekit.graph``) for every entry.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from squeezekit.config import SqueezeNetConfig
from squeezekit.weights.registry import PretrainedWeights, default_pretrained_names, get_weights_entry, list_pretrained


@dataclass(frozen=True)
class ModelEntry:
    """An architecture: its metaparameters and what it costs with 1000 classes at ``input_size``."""

    name: str
    config: SqueezeNetConfig
    description: str
    parameters: int
    macs: int
    input_size: int = 224

    @property
    def pretrained(self) -> list[str]:
        """The ``arch.tag`` names of weights for this architecture."""
        return list_pretrained(f"{self.name}.*")

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters, "macs": self.macs,
                "input_size": self.input_size, "pretrained": self.pretrained, "config": self.config.to_dict()}


_MODELS: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    if entry.name in _MODELS:
        raise ValueError(f"Model {entry.name!r} is already registered")
    if "." in entry.name:
        raise ValueError(f"Expected a model name without '.' (tags follow the dot). Received: {entry.name!r}")
    _MODELS[entry.name] = entry
    return entry


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Architecture names matching a shell pattern; with ``pretrained=True`` the ``arch.tag`` names of
    every set of pretrained weights whose name matches instead."""
    if pretrained:
        return list_pretrained(pattern if "." in pattern or pattern.endswith("*") else f"{pattern}.*")
    return sorted(name for name in _MODELS if fnmatch.fnmatch(name, pattern))


def get_architecture(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise ValueError(f"Unknown architecture {name!r}. Expected one of {sorted(_MODELS)}.")
    return _MODELS[name]


def get_preset(name: str) -> SqueezeNetConfig:
    """The ``SqueezeNetConfig`` of a registered architecture."""
    return get_architecture(name).config


def is_pretrained_name(name: str) -> bool:
    """Whether ``name`` names pretrained weights: ``arch`` (its default weights), ``arch.tag`` or ``arch.imagenet``."""
    return _weights_name(name) is not None


def _weights_name(name: str) -> str | None:
    arch, _, tag = name.partition(".")
    if tag == "imagenet" and arch in default_pretrained_names():
        return arch  # the keras.applications spelling: weights="imagenet" means the default tag
    if name in default_pretrained_names() or name in list_pretrained():
        return name
    return None


def get_pretrained(name: str) -> PretrainedWeights:
    """The weights that ``arch``, ``arch.tag`` or ``arch.imagenet`` name."""
    weights_name = _weights_name(name)
    if weights_name is None:
        raise ValueError(f"Unknown pretrained model {name!r}. Expected one of {', '.join(pretrained_names())}")
    return get_weights_entry(weights_name)


def get_model_entry(name: str) -> tuple[ModelEntry, PretrainedWeights | None]:
    """``(architecture, weights)`` for ``arch`` (weights None), ``arch.tag`` or ``arch.imagenet``."""
    weights_name = _weights_name(name)
    if weights_name is not None:
        weights = get_weights_entry(weights_name)
        return get_architecture(weights.arch), weights if "." in name else None
    if name in _MODELS:
        return _MODELS[name], None
    raise ValueError(f"Unknown model {name!r}. Expected an architecture ({', '.join(sorted(_MODELS))}) "
                     f"or pretrained weights ({', '.join(list_pretrained())})")


def pretrained_names() -> list[str]:
    """Every name that means pretrained weights: the architectures with defaults and each ``arch.tag``."""
    return default_pretrained_names() + list_pretrained()


# Iandola et al. 2016, Table 1: 7x7/2 conv1 with 96 filters, max-pools after conv1, fire4, fire8.
_V1_0 = SqueezeNetConfig()
# DeepScale's v1.1: 2.4x less computation than v1.0 at the same accuracy, by a 3x3 conv1 with 64
# filters and pooling earlier (after conv1, fire3, fire5).
_V1_1 = SqueezeNetConfig(conv1_filters=64, conv1_kernel=3, pool_after=("conv1", "fire3", "fire5"))

register_model(ModelEntry("squeezenet1_0", _V1_0, "SqueezeNet v1.0, the paper's model (Table 1)", 1_248_424, 818_924_576))
register_model(ModelEntry("squeezenet1_1", _V1_1, "SqueezeNet v1.1: 3x3 conv1, earlier pooling, 2.4x fewer MACs",
                          1_235_496, 349_151_936))
# The paper's Table 3: identity shortcuts around fire3, 5, 7, 9; complex bypass adds 1x1 convs elsewhere.
register_model(ModelEntry("squeezenet1_0_simple_bypass", _V1_0.replace(bypass="simple"),
                          "SqueezeNet v1.0 with simple bypass (paper section 6, Table 3)", 1_248_424, 818_924_576))
register_model(ModelEntry("squeezenet1_0_complex_bypass", _V1_0.replace(bypass="complex"),
                          "SqueezeNet v1.0 with complex bypass (paper section 6, Table 3)", 1_589_672, 1_165_298_720))

PRESETS: dict[str, SqueezeNetConfig] = {name: entry.config for name, entry in _MODELS.items()}
"""Architecture name -> config of every registered architecture (a view of the registry)."""
