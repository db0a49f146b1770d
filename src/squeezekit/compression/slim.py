"""Channel pruning ("slimming"): remove whole filters, so that a SqueezeNet becomes a narrower dense one.

Deep Compression's unstructured pruning makes files smaller but not CPUs faster (XNNPACK turns its
sparse kernels off on x86 and supports them for float32 only; OpenVINO gains nothing at 50 %
sparsity). Removing whole filters does: what is left is an ordinary network with fewer channels, whose
widths a ``SqueezeNetConfig`` records (``conv1_filters`` and ``fire_widths``), saved and exported as any
other.

Which channels can go, and what removing one changes, follows from the plan (``squeezekit.graph``):
every convolution but the classifier produces a *group* of channels, and each of its channels is read
by its *consumers* at an offset of their input. A squeeze channel feeds both expand convolutions of its
Fire module; an expand channel feeds the next squeeze (or conv10) at its place in the concatenation,
through any pooling in between. Removing channel ``c`` removes the producer's filter (kernel and bias)
and the consumers' input slice at ``offset + c``. Bypasses (additions) tie the channels of two
producers together and are refused.

Criterion: a removed channel's activation ``a_c`` is replaced by its mean ``m_c``, folded into each
consumer's bias (``m_c`` times the consumer's kernel summed over its window, exact for a 1x1 consumer
wherever ``a_c`` is constant). What is lost is the channel's variation, so a channel scores
``std(a_c) * ||W_consumers[.., c, ..]||``: the size of the change its removal makes to the consumers'
pre-activations. The statistics are measured on images (no labels), with ONNX Runtime. How many
channels each layer keeps follows from one threshold on scores relative to the layer's mean, set so
that the network meets a budget of multiply-accumulates (:func:`allocate_widths`): on the mcu model at
0.84x its MACs, this kept 69 % top-1 before fine-tuning where the same share of every layer kept 63 %.

The channel arithmetic is numpy on Keras-layout arrays (batch norm folded, as in
:mod:`squeezekit.compression.api`); :func:`slim` adds the steps, with Keras fine-tuning between them
(:mod:`squeezekit.compression.finetune`) and the size and accuracy rows of ``compress``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezekit import graph
from squeezekit.config import SqueezeNetConfig
from squeezekit.graph import CLASSIFIER, build_plan

__all__ = ["ChannelGroup", "SlimResult", "allocate_widths", "channel_groups", "channel_scores", "channel_statistics",
           "keep_strongest", "save_slimmed", "slim", "slim_arrays", "with_widths"]


@dataclass(frozen=True)
class ChannelGroup:
    """The output channels of convolution ``producer`` and where they are read: ``(consumer, offset)``
    pairs, each consumer reading them at ``offset`` of the value named ``read_value`` (the producer's
    output itself, the Fire module's concatenation, or a pooled or padded copy of either)."""

    producer: str
    size: int
    consumers: tuple[tuple[str, int], ...]
    read_value: str


def channel_groups(config: SqueezeNetConfig, classes: int) -> list[ChannelGroup]:
    """The prunable channel groups of ``config``'s network, in network order (see the module docstring)."""
    if config.bypass != "none":
        raise ValueError(f"channel pruning needs a network without bypasses (this one has bypass={config.bypass!r}): "
                         "an addition ties the channels of its two inputs together")
    plan = build_plan(config, classes)
    # Each value of the network: the name it has in the ONNX graph (the plan's op name, as the writer
    # names it; dropout is the identity there, so its value is its input's) and the producers of its
    # channels, in order.
    values: dict[str, tuple[str, list[tuple[str, int]]]] = {}
    readers: dict[str, list[tuple[str, int]]] = {}
    read_values: dict[str, str] = {}
    sizes: dict[str, int] = {}

    def read(conv: graph.Conv, value: tuple[str, list[tuple[str, int]]]) -> None:
        name, segments = value
        offset = 0
        for producer, channels in segments:
            readers.setdefault(producer, []).append((conv.name, offset))
            read_values[producer] = name  # without bypasses, every reader of a group reads the same value
            offset += channels
        sizes[conv.name] = conv.filters

    for op in plan.ops:
        if isinstance(op, graph.Input):
            values[op.name] = (op.name, [])  # the image's channels stay
        elif isinstance(op, graph.Conv):
            read(op, values[op.inputs[0]])
            values[op.name] = (op.name, [(op.name, op.filters)])
        elif isinstance(op, graph.Fire):
            read(op.squeeze, values[op.inputs[0]])
            squeezed = (op.squeeze.name, [(op.squeeze.name, op.squeeze.filters)])
            branches = [conv for conv in (op.expand1x1, op.expand3x3) if conv is not None]
            for conv in branches:
                read(conv, squeezed)
            values[op.name] = (op.name, [(conv.name, conv.filters) for conv in branches])
        elif isinstance(op, (graph.MaxPool, graph.Pad)):
            values[op.name] = (op.name, values[op.inputs[0]][1])
        elif isinstance(op, graph.Dropout):
            values[op.name] = values[op.inputs[0]]
        elif isinstance(op, graph.Add):
            raise ValueError(f"channel pruning cannot handle the addition {op.name!r}")
    return [ChannelGroup(name, sizes[name], tuple(readers[name]), read_values[name]) for name in sizes
            if name != CLASSIFIER and name in readers]


def channel_statistics(config: SqueezeNetConfig, arrays: dict[str, np.ndarray], images: np.ndarray,
                       groups: list[ChannelGroup], batch_size: int = 32) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{producer: (mean, std)}`` of each group's channels over ``images`` and positions, as its readers
    see them (after any pooling or padding in between, which changes both)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from squeezekit.formats.onnx import build_onnx_model

    model = build_onnx_model(config.replace(batch_norm=False), arrays, input_size=None)
    names = sorted({group.read_value for group in groups})
    model.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    totals = {name: [0.0, 0.0, 0] for name in names}  # per channel: sum, sum of squares; count
    for offset in range(0, len(images), batch_size):
        outputs = session.run(names, {input_name: images[offset: offset + batch_size]})
        for name, value in zip(names, outputs):  # NCHW
            entry = totals[name]
            entry[0] = entry[0] + value.sum(axis=(0, 2, 3), dtype=np.float64)
            entry[1] = entry[1] + np.square(value, dtype=np.float64).sum(axis=(0, 2, 3))
            entry[2] += value.shape[0] * value.shape[2] * value.shape[3]
    statistics = {}
    for group in groups:
        total, squares, count = totals[group.read_value]
        channels = slice(group.consumers[0][1], group.consumers[0][1] + group.size)
        mean = total[channels] / count
        statistics[group.producer] = (mean, np.sqrt(np.maximum(squares[channels] / count - mean ** 2, 0.0)))
    return statistics


def _input_weight_norms(kernel: np.ndarray, offset: int, size: int) -> np.ndarray:
    """Squared norms of a Keras ``(kh, kw, in, out)`` kernel's input slices ``offset .. offset + size``."""
    return (kernel[:, :, offset: offset + size, :].astype(np.float64) ** 2).sum(axis=(0, 1, 3))


def channel_scores(groups: list[ChannelGroup], arrays: dict[str, np.ndarray],
                   statistics: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """``{producer: score per channel}``: activation std times the norm of the consumers' weights on it."""
    scores = {}
    for group in groups:
        norms = sum(_input_weight_norms(arrays[f"{consumer}/kernel"], offset, group.size)
                    for consumer, offset in group.consumers)
        scores[group.producer] = statistics[group.producer][1] * np.sqrt(norms)
    return scores


def keep_strongest(groups: list[ChannelGroup], scores: dict[str, np.ndarray],
                   widths: dict[str, int]) -> dict[str, np.ndarray]:
    """``{producer: sorted channel indices}``: the ``widths[producer]`` best-scoring channels of each group."""
    keep = {}
    for group in groups:
        count = widths[group.producer]
        if not 1 <= count <= group.size:
            raise ValueError(f"{group.producer}: cannot keep {count} of its {group.size} channels")
        # Stable order on ties (dead channels all score 0): the lower index stays.
        order = np.argsort(-scores[group.producer], kind="stable")
        keep[group.producer] = np.sort(order[:count])
    return keep


def slim_arrays(config: SqueezeNetConfig, arrays: dict[str, np.ndarray], groups: list[ChannelGroup],
                keep: dict[str, np.ndarray], means: dict[str, np.ndarray] | None = None,
                ) -> tuple[SqueezeNetConfig, dict[str, np.ndarray]]:
    """The narrower network keeping channels ``keep[producer]`` of each group: its config and arrays.

    ``means`` (each group's mean activation, from :func:`channel_statistics`) folds the removed channels'
    means into the consumers' biases; without it they are dropped as if they were zero.
    """
    if config.batch_norm:
        raise ValueError("slim_arrays takes arrays with batch norm folded (config.batch_norm=False)")
    for group in groups:
        kept = np.asarray(keep[group.producer])
        if kept.ndim != 1 or not kept.size or np.any(np.diff(kept) <= 0) or kept[0] < 0 or kept[-1] >= group.size:
            raise ValueError(f"{group.producer}: keep must list increasing channel indices below {group.size}, "
                             f"at least one. Received: {kept.tolist()}")
    slimmed = {key: np.asarray(value) for key, value in arrays.items()}
    reads: dict[str, list[tuple[int, ChannelGroup]]] = {}
    for group in groups:
        for consumer, offset in group.consumers:
            reads.setdefault(consumer, []).append((offset, group))
    # Each consumer at once, on its whole kernel: a squeeze after a concatenation reads two groups, and
    # slicing one first would move the other's offset.
    for consumer, parts in reads.items():
        kernel = slimmed[f"{consumer}/kernel"]
        bias = slimmed.get(f"{consumer}/bias", np.zeros(kernel.shape[-1], np.float32)).astype(np.float64)
        used = np.ones(kernel.shape[2], bool)
        for offset, group in parts:
            removed = np.setdiff1d(np.arange(group.size), keep[group.producer])
            used[offset + removed] = False
            if means is not None and removed.size:
                window_sums = kernel[:, :, offset + removed, :].astype(np.float64).sum(axis=(0, 1))  # (removed, out)
                bias = bias + means[group.producer][removed] @ window_sums
        slimmed[f"{consumer}/kernel"] = kernel[:, :, used, :]
        slimmed[f"{consumer}/bias"] = bias.astype(np.float32)
    for group in groups:
        kept = keep[group.producer]
        slimmed[f"{group.producer}/kernel"] = slimmed[f"{group.producer}/kernel"][..., kept]
        slimmed[f"{group.producer}/bias"] = slimmed[f"{group.producer}/bias"][kept]
    return with_widths(config, {group.producer: int(keep[group.producer].size) for group in groups}), slimmed


def with_widths(config: SqueezeNetConfig, widths: dict[str, int]) -> SqueezeNetConfig:
    """``config`` with the channel counts ``{producer: channels}`` (conv1's and the Fire modules' convolutions)."""
    fire_widths = tuple((widths.get(f"{spec.name}/squeeze1x1", spec.squeeze),
                         widths.get(f"{spec.name}/expand1x1", spec.expand1x1),
                         widths.get(f"{spec.name}/expand3x3", spec.expand3x3)) for spec in config.fire_specs())
    return config.replace(fire_widths=fire_widths, conv1_filters=widths.get("conv1", config.conv1_filters))


def allocate_widths(config: SqueezeNetConfig, scores: dict[str, np.ndarray], *,
                    classes: int, input_size: int, macs: int) -> dict[str, int]:
    """``{producer: channels}`` whose network costs at most ``macs``, removing the weakest channels first.

    Scores are made comparable across layers by dividing each group's by its mean (a channel is weak
    relative to its neighbours), then one threshold applies to all: groups whose channels matter
    unequally lose more, and the narrow squeeze layers, whose every channel counts, keep theirs. The
    threshold is found by bisection on the network's MACs (at least one channel stays in each group).
    """
    relative = {name: value / max(float(value.mean()), 1e-30) for name, value in scores.items()}

    def widths_at(threshold: float) -> dict[str, int]:
        return {name: max(1, int(np.count_nonzero(value >= threshold))) for name, value in relative.items()}

    def cost(threshold: float) -> int:
        return network_cost(with_widths(config, widths_at(threshold)), classes, input_size)["macs"]

    low, high = 0.0, max(float(v.max()) for v in relative.values()) + 1.0
    if cost(low) <= macs:
        return {name: value.size for name, value in relative.items()}
    if cost(high) > macs:
        raise ValueError(f"even one channel per layer costs {cost(high):,} MACs, more than the {macs:,} asked for")
    for _ in range(60):  # the threshold to machine precision: cost() is a step function of it
        middle = 0.5 * (low + high)
        if cost(middle) <= macs:
            high = middle
        else:
            low = middle
    return widths_at(high)


@dataclass
class SlimResult:
    """The slimmed network (batch norm folded), and one row per step: widths, cost and accuracy."""

    config: SqueezeNetConfig
    arrays: dict[str, np.ndarray]
    metadata: dict
    stages: list[dict]

    def keras_model(self):
        """The slimmed network as a Keras model (the source's dropout, no batch norm)."""
        return _keras_model(self.config, self.arrays, self.metadata)

    def save(self, path, source_name: str = "") -> None:
        """``path`` (``.keras``) and its metadata file, whose config records the new widths: a model that
        ``squeezekit export``, ``compress``, ``predict`` and ``evaluate`` take as any other."""
        save_slimmed(self.config, self.arrays, self.metadata, path, source_name)


def _keras_model(config: SqueezeNetConfig, arrays: dict[str, np.ndarray], metadata: dict):
    from squeezekit.compression.finetune import keras_model

    return keras_model(config, arrays, int(metadata["preprocessing"]["crop"]), dropout=None)


def save_slimmed(config: SqueezeNetConfig, arrays: dict[str, np.ndarray], metadata: dict, path,
                 source_name: str = "") -> None:
    """Write a slimmed network as ``path`` (``.keras``) with its metadata file (see :meth:`SlimResult.save`)."""
    from pathlib import Path

    from squeezekit._outputs import discard, publish, staging_path
    from squeezekit.formats.metadata import ModelMetadata, sidecar_path, write_sidecar

    stored = {key: [list(v) for v in value] if key == "fire_widths" else list(value) if isinstance(value, tuple)
              else value for key, value in config.to_dict().items()}
    original = ModelMetadata.from_dict(metadata)
    extra = {**original.extra, "config": stored, "slimmed_from": source_name}
    described = ModelMetadata(original.labels, original.preprocessing, f"squeezekit slim {source_name}".strip(),
                              original.label_set, extra)
    # Both files are written under hidden names first and moved into place together: a failure leaves
    # the old pair whole, never a new model beside the old widths.
    target = Path(path)
    staged, staged_sidecar = staging_path(target), None
    try:
        _keras_model(config, arrays, metadata).save(staged)
        staged_sidecar = write_sidecar(staging_path(target), described)
        publish(staged, target)
        publish(staged_sidecar, sidecar_path(target))
    finally:
        discard(staged)
        if staged_sidecar is not None:
            discard(staged_sidecar)


def network_cost(config: SqueezeNetConfig, classes: int, input_size: int) -> dict:
    plan = build_plan(config.replace(batch_norm=False), classes, input_size=input_size)
    return {"parameters": plan.parameters, "macs": plan.macs}


def check_options(*, macs, steps, finetune_epochs, finetune_images, statistics_images) -> None:
    from squeezekit.errors import ParameterError, literal

    if isinstance(macs, bool) or not isinstance(macs, (int, float)) or not 0 < macs <= 1:
        raise ParameterError(f"Expected {{macs}} in (0, 1]: the share of the network's multiply-accumulates to keep. "
                             f"Received: {{macs}}={literal(macs)}")
    for name, value, least in (("steps", steps, 1), ("finetune_epochs", finetune_epochs, 0),
                               ("finetune_images", finetune_images, 1), ("statistics_images", statistics_images, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ParameterError(f"Expected {{{name}}} an integer >= {least}. Received: {{{name}}}={literal(value)}")


def slim(source, *, macs: float, data, steps: int = 2, finetune_epochs: int = 0, finetune_images: int = 20000,
         statistics_images: int = 1000, learning_rate: float = 1e-3, eval_dir=None, log=None,
         on_step=None) -> SlimResult:
    """Remove channels of conv1 and of the squeeze and expand convolutions until the network costs at most
    ``macs`` (a fraction) of ``source``'s multiply-accumulates, in ``steps`` steps of equal ratio (channels
    ranked anew on the current network at each; see :func:`allocate_widths`), each followed by
    ``finetune_epochs`` of distillation towards ``source``'s own outputs on ``finetune_images`` photos of
    ``data`` (no labels). ``source`` is a :class:`~squeezekit.compression.pipeline.Source`; ``eval_dir``
    (labelled images) adds accuracy to every row; ``on_step(step, config, arrays)`` sees the network
    after each step (a benchmark saves them)."""
    import logging

    from squeezekit.compression.pipeline import Stages, teacher_batches, arrays_engine
    from squeezekit.config import Preprocessing
    from squeezekit.runtime.calibration import calibration_images

    check_options(macs=macs, steps=steps, finetune_epochs=finetune_epochs, finetune_images=finetune_images,
                  statistics_images=statistics_images)
    log = log or logging.getLogger(__name__).info
    config, arrays = source.config.replace(batch_norm=False), source.arrays
    classes = int(arrays[f"{CLASSIFIER}/kernel"].shape[-1])
    full_macs = network_cost(config, classes, source.input_size)["macs"]
    # Refusals before any work: bypasses (channel_groups), and a budget below one channel per layer.
    least = network_cost(with_widths(config, {g.producer: 1 for g in channel_groups(config, classes)}), classes,
                         source.input_size)["macs"]
    if least > macs * full_macs:
        from squeezekit.errors import ParameterError

        raise ParameterError(f"Expected {{macs}} >= {least / full_macs:.3g}: one channel per layer already costs "
                             f"{least:,} of the network's {full_macs:,} MACs. Received: {{macs}}={macs}")
    stages = Stages(config, source.metadata, eval_dir, log)
    teacher = arrays_engine(config, arrays)

    def measure(label: str, stage_config, stage_arrays) -> None:
        row = stages.measure(label, lambda: arrays_engine(stage_config, stage_arrays))
        row.update(network_cost(stage_config, classes, source.input_size), conv1_filters=stage_config.conv1_filters,
                   fire_widths=[[s.squeeze, s.expand1x1, s.expand3x3] for s in stage_config.fire_specs()])

    measure("source (float32)", config, arrays)
    images = calibration_images(data, Preprocessing.from_dict(source.metadata["preprocessing"]), count=statistics_images)
    batches = teacher_batches(source, teacher, data, finetune_images, log) if finetune_epochs else None
    for step in range(1, steps + 1):
        fraction = macs ** (step / steps)
        groups = channel_groups(config, classes)
        statistics = channel_statistics(config, arrays, images, groups)
        scores = channel_scores(groups, arrays, statistics)
        widths = allocate_widths(config, scores, classes=classes, input_size=source.input_size,
                                 macs=int(fraction * full_macs))
        keep = keep_strongest(groups, scores, widths)
        config, arrays = slim_arrays(config, arrays, groups, keep, {name: s[0] for name, s in statistics.items()})
        label = f"MACs <= {fraction:.3g}x (step {step}/{steps})"
        if finetune_epochs:
            from squeezekit.compression.finetune import finetune_pruned

            measure(f"{label}, before fine-tuning", config, arrays)
            arrays = finetune_pruned(config, arrays, batches(step), input_size=source.input_size,
                                     epochs=finetune_epochs, learning_rate=learning_rate)
            label += ", fine-tuned"
        measure(label, config, arrays)
        if on_step is not None:
            on_step(step, config, arrays)
    return SlimResult(config, arrays, source.metadata, stages.rows)
