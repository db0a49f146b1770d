"""``squeezekit compress`` as a function: source model -> prune (+ fine-tune) -> share (+ centroid
fine-tuning) -> Huffman -> ``.sqz``, with the size report and accuracy before and after.

Sources: a pretrained name (the Deep Compression release keeps its own pruning and codebooks unless
told otherwise, so compressing it without ``--prune``/``--bits`` is a lossless re-encoding), a
``.keras`` file trained by squeezekit (its batch norm is folded first) or a ``.sqz`` file.

Fine-tuning distils the source model: its outputs on unlabeled images are the targets, so ImageNet
models can be fine-tuned on images that are not their evaluation set.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np

from squeezekit.compression.api import (
    compress_arrays, from_deep_compression, layer_names, layer_report, prune_arrays,
)
from squeezekit.compression.pruning import densities_for, parse_prune_spec
from squeezekit.formats.sqz import CompressedLayer, SqzModel, encode_sqz
from squeezekit.config import SqueezeNetConfig
from squeezekit.errors import ParameterError, literal


logger = logging.getLogger(__name__)
LEAST_RATE = 1e-6  # relative rate (squared error per bit / variance) where fit_rate starts

@dataclass
class Source:
    """What compression starts from: Keras-layout arrays (batch norm folded), architecture, metadata."""

    name: str
    config: SqueezeNetConfig
    arrays: dict[str, np.ndarray]
    metadata: dict
    deep_compression_layers: list[CompressedLayer] | None = None

    @property
    def input_size(self) -> int:
        return int(self.metadata["preprocessing"]["crop"])


def load_source(spec: str) -> Source:
    """A :class:`Source` from a pretrained name, a ``.keras`` file or a ``.sqz`` file."""
    from squeezekit.opener import open_model

    opened = open_model(spec, "weights", purpose="squeezekit compress")
    dc_layers = None
    if opened.entry is not None and opened.entry.reader == "deep_compression":
        from squeezekit._resources import resolve
        from squeezekit.weights.deep_compression import read_deep_compression_raw

        paths = {role: resolve(file) for role, file in opened.entry.files.items()}
        dc_layers = from_deep_compression(read_deep_compression_raw(paths["net"], paths["prototxt"]))
    return Source(opened.name, opened.config, opened.arrays, opened.metadata.to_dict(), dc_layers)


@dataclass
class CompressionResult:
    layers: list[CompressedLayer]
    data: bytes
    report: dict
    rows: list[dict]
    accuracy: dict = field(default_factory=dict)  # "before"/"after": EvaluationResult.to_dict()
    stages: list[dict] = field(default_factory=list)  # size and accuracy after each stage

    def table(self) -> str:
        """The size report as Markdown (see :func:`squeezekit.reports.compression_markdown`)."""
        from squeezekit.reports import compression_markdown

        return compression_markdown(self.rows, len(self.data))


def arrays_engine(config: SqueezeNetConfig, arrays: dict[str, np.ndarray]):
    """ONNX Runtime session of float32 weights: fast teacher targets and evaluation."""
    from squeezekit.runtime.compressed import onnx_bytes
    from squeezekit.runtime.engines import OnnxEngine

    return OnnxEngine(onnx_bytes(config.replace(batch_norm=False).to_dict(), arrays))


def layers_engine(config: SqueezeNetConfig, layers: list[CompressedLayer]):
    return arrays_engine(config, SqzModel({}, {}, layers).arrays())


def evaluate(engine, data_dir, metadata: dict, limit: int | None = None) -> dict:
    from squeezekit.evaluation import evaluate_images, find_labelled_images
    from squeezekit.runtime.compressed import sqz_metadata

    model_metadata = sqz_metadata(metadata)
    images = find_labelled_images(data_dir, model_metadata)
    return evaluate_images(engine, images, model_metadata, limit=limit).to_dict()


def require_keras(what: str) -> None:
    import importlib.util

    if importlib.util.find_spec("keras") is None:
        raise ValueError(f"{what} trains with Keras, which is not installed: pip install 'squeezekit[train]'")


@dataclass
class Stages:
    """Size and (with ``eval_dir``) accuracy after each stage, logged as they come."""

    config: SqueezeNetConfig
    metadata: dict
    eval_dir: str | os.PathLike | None
    log: object
    rows: list[dict] = field(default_factory=list)

    def size(self, layers: list[CompressedLayer]) -> int:
        return len(encode_sqz(self.config.replace(batch_norm=False).to_dict(), self.metadata, layers)[0])

    def measure(self, stage: str, engine=None, layers=None) -> dict:
        row = {"stage": stage}
        if layers is not None:
            row["bytes"] = self.size(layers)
        if self.eval_dir is not None:
            result = evaluate(engine(), self.eval_dir, self.metadata)
            row["top1"], row["top5"] = result["top1"], result["top5"]
            self.log(f"{stage}: top-1 {100 * row['top1']:.2f} %  top-5 {100 * row['top5']:.2f} %"
                     + (f"  {row['bytes']:,} bytes" if "bytes" in row else ""))
        elif "bytes" in row:
            self.log(f"{stage}: {row['bytes']:,} bytes")
        self.rows.append(row)
        return row


def check_options(*, prune, bits, data, finetune_epochs, prune_steps, kmeans_init, max_bytes=None) -> None:
    """Refuse impossible options before any work, naming the parameter."""
    from squeezekit.compression.sharing import INITS

    if kmeans_init not in INITS:
        raise ParameterError(f"Expected {{kmeans_init}} in {INITS}. Received: {{kmeans_init}}={literal(kmeans_init)}")
    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ParameterError(f"Expected {{max_bytes}} a positive number of bytes. Received: {{max_bytes}}={literal(max_bytes)}")
        if kmeans_init != "optimal":
            raise ParameterError("{max_bytes} shares the weights by entropy-constrained clustering, which needs "
                                 "{kmeans_init}='optimal'")
    if bits is not None and not 1 <= bits <= 8:
        raise ParameterError(f"Expected {{bits}} in 1..8. Received: {{bits}}={bits}")
    if prune is not None:
        parse_prune_spec(prune)
    if finetune_epochs < 0:
        raise ParameterError(f"Expected {{finetune_epochs}} >= 0. Received: {{finetune_epochs}}={finetune_epochs}")
    if prune_steps < 1:
        raise ParameterError(f"Expected {{prune_steps}} >= 1. Received: {{prune_steps}}={prune_steps}")
    if finetune_epochs and data is None:
        raise ParameterError("{finetune_epochs} needs {data}: a folder or zip of images to fine-tune on")
    if finetune_epochs:
        require_keras("fine-tuning")


def compress(
    source: Source,
    *,
    prune: str | None = None,
    bits: int | None = None,
    data: str | os.PathLike | None = None,
    finetune_epochs: int = 0,
    finetune_images: int = 5000,
    prune_steps: int = 1,
    learning_rate: float = 1e-4,
    centroid_learning_rate: float = 1e-4,
    kmeans_init: str = "optimal",
    max_bytes: int | None = None,
    eval_dir: str | os.PathLike | None = None,
    log=None,
) -> CompressionResult:
    """Compress ``source``; see the module docstring. ``log`` receives one line per stage (default: this
    module's logger).

    ``max_bytes`` makes the sharing entropy-constrained (at most ``2 ** bits`` values a layer, 8 bits
    unless told): the least relative rate whose file fits, found by bisection (see
    :func:`fit_rate`); without it each layer gets the ``2 ** bits`` values of least squared error.
    """
    check_options(prune=prune, bits=bits, data=data, finetune_epochs=finetune_epochs, prune_steps=prune_steps,
                  kmeans_init=kmeans_init, max_bytes=max_bytes)
    log = log or logger.info
    config, arrays = source.config, source.arrays
    stages = Stages(config, source.metadata, eval_dir, log)
    teacher = arrays_engine(config, arrays) if (finetune_epochs or eval_dir) else None
    if eval_dir is not None:
        stages.measure("source (float32)", lambda: teacher)

    if bits is None and prune is None and max_bytes is None and source.deep_compression_layers is not None:
        layers = source.deep_compression_layers  # lossless: the release's own entries and codebooks
    else:
        bits = 8 if bits is None else bits
        batches = teacher_batches(source, teacher, data, finetune_images, log) if finetune_epochs else None
        if prune is not None:
            arrays, masks = _prune(source, prune, prune_steps, batches, finetune_epochs, learning_rate, stages)

            def share(rate):
                return compress_arrays(config, arrays, bits=bits, masks=masks, init=kmeans_init, rate=rate)
        elif source.deep_compression_layers is not None:
            def share(rate):  # the release's pruning kept
                return _recluster(source.deep_compression_layers, bits, kmeans_init, rate)
        else:
            def share(rate):
                return compress_arrays(config, arrays, bits=bits, init=kmeans_init, rate=rate)
        shared = f"{bits}-bit shared"
        if max_bytes is None:
            layers = share(0.0)
        else:
            rate, layers = fit_rate(share, stages.size, max_bytes, log)
            shared = f"entropy-constrained, <= {bits} bits, rate {rate:.3g}"
        if finetune_epochs:
            from squeezekit.compression.finetune import finetune_centroids

            stages.measure(f"{shared}, before centroid fine-tuning", lambda: layers_engine(config, layers), layers)
            layers = finetune_centroids(config, layers, batches(0), input_size=source.input_size,
                                        epochs=finetune_epochs, learning_rate=centroid_learning_rate)

    data_bytes, report = encode_sqz(config.replace(batch_norm=False).to_dict(), source.metadata, layers)
    result = CompressionResult(layers, data_bytes, report, layer_report(layers, report), stages=stages.rows)
    final = stages.measure("compressed (.sqz)", lambda: layers_engine(config, layers), layers)
    if eval_dir is not None:
        result.accuracy = {"before": stages.rows[0], "after": final}
    return result


def teacher_batches(source: Source, teacher, data, count: int, log):
    """``batches(seed)``: the fine-tuning images with the uncompressed model's outputs as targets."""
    from squeezekit.compression.finetune import TeacherData, teacher_targets
    from squeezekit.config import Preprocessing
    from squeezekit.runtime.calibration import calibration_images

    images = calibration_images(data, Preprocessing.from_dict(source.metadata["preprocessing"]), count=count)
    targets = teacher_targets(teacher, images)
    log(f"fine-tuning data: {len(images)} images from {data}, targets from the source model")
    return lambda seed: TeacherData(images, *targets, batch_size=32, seed=seed)


def _prune(source: Source, prune: str, steps: int, batches, finetune_epochs: int, learning_rate: float, stages):
    """Magnitude pruning to the ``prune`` densities in ``steps`` equal steps, each fine-tuned when asked."""
    from squeezekit.compression.finetune import finetune_pruned

    config, arrays = source.config, source.arrays
    names = layer_names(config, arrays)
    final = densities_for(names, prune)
    for step in range(1, steps + 1):
        fraction = step / steps
        masks = prune_arrays(config, arrays, [(name, 1 - (1 - final[name]) * fraction) for name in names])
        arrays = {k: (v * masks[k] if k in masks else v) for k, v in arrays.items()}
        kept = sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
        if finetune_epochs:
            stages.measure(f"pruned to {100 * kept:.1f} % (step {step}/{steps}), before fine-tuning",
                           lambda: arrays_engine(config, arrays))
            arrays = finetune_pruned(config, arrays, batches(step), input_size=source.input_size,
                                     epochs=finetune_epochs, masks=masks, learning_rate=learning_rate)
            arrays = {k: (v * masks[k] if k in masks else v) for k, v in arrays.items()}
    stages.measure(f"pruned to {100 * kept:.1f} %" + (", fine-tuned" if finetune_epochs else "") + " (float32)",
                   lambda: arrays_engine(config, arrays))
    return arrays, masks


def fit_rate(share, size, max_bytes: int, log, *, steps: int = 24) -> tuple[float, list[CompressedLayer]]:
    """``(rate, layers)``: the least relative rate in ``[LEAST_RATE, 100]`` for which ``share(rate)``
    encodes to at most ``max_bytes`` (``size(layers)``), by bisection of its logarithm.

    The file shrinks as the rate grows (fewer, more unequal clusters). At ``LEAST_RATE`` a bit is worth
    a millionth of a layer's variance, which is least-squares sharing in all but name: a file that fits
    then is returned as it is. At 100 every layer is down to one or two values, so a file that does
    not fit then never will (its positions, codebooks and biases alone are too large): refused.
    """
    from squeezekit._progress import progress_bar

    low, high = LEAST_RATE, 100.0
    layers = share(low)
    if (plain := size(layers)) <= max_bytes:
        log(f"least-squares sharing already fits: {plain:,} <= {max_bytes:,} bytes")
        return low, layers
    smallest = share(high)
    if (floor := size(smallest)) > max_bytes:
        raise ParameterError(f"Expected {{max_bytes}} >= {floor:,}: the positions, codebooks and biases "
                             f"alone take that much. Received: {{max_bytes}}={max_bytes:,} (prune more to go lower)")
    best = (high, smallest)
    with progress_bar(total=steps, desc=f"rate for {max_bytes:,} bytes", unit="step") as bar:
        for _ in range(steps):
            middle = math.sqrt(low * high)
            layers = share(middle)
            if size(layers) <= max_bytes:
                high, best = middle, (middle, layers)
            else:
                low = middle
            bar.update()
            if high / low < 1.01:
                break
    log(f"entropy-constrained sharing: rate {best[0]:.3g} -> {size(best[1]):,} bytes")
    return best


def _recluster(layers: list[CompressedLayer], bits: int, init: str, rate: float = 0.0) -> list[CompressedLayer]:
    """Share each layer's kept weights anew with ``2 ** bits`` centroids, keeping its positions
    (``rate``: relative, see :func:`~squeezekit.compression.sharing.relative_rate`)."""
    from squeezekit.compression.sharing import kmeans_1d, relative_rate

    shared = []
    for layer in layers:
        values = layer.codebook[layer.indices]
        codebook, indices = kmeans_1d(values, 2 ** bits, init=init, rate=relative_rate(values, rate))
        shared.append(CompressedLayer(layer.name, layer.shape, codebook, layer.bias, indices, layer.positions))
    return shared
