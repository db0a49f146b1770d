"""``squeezekit compress`` as a function: source model -> prune (+ fine-tune) -> share (+ centroid
fine-tuning) -> Huffman -> ``.sqz``, with the size report and accuracy before and after.

Sources: a pretrained name (the Deep Compression release keeps its own pruning and codebooks unless
told otherwise, so compressing it without ``--prune``/``--bits`` is a lossless re-encoding), a
``.keras`` file trained by squeezekit (its batch norm is folded first) or a ``.sqz`` file.

Fine-tuning distils the source model: its outputs on unlabeled images are the targets, so ImageNet
models can be fine-tuned on images that are not their evaluation set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from squeezekit.compression.api import compress_arrays, from_deep_compression, layer_report, prune_arrays, size_table
from squeezekit.compression.pruning import densities_for, parse_prune_spec
from squeezekit.compression.sqz import CompressedLayer, SqzModel, encode_sqz
from squeezekit.config import SqueezeNetConfig, conv_kernel_shapes


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
    from squeezekit.runtime.pretrained import is_pretrained_name

    if is_pretrained_name(spec):
        from squeezekit.config import get_preset
        from squeezekit.metadata import imagenet_metadata
        from squeezekit.weights import get_weights_entry
        from squeezekit.weights.convert import pretrained_arrays

        entry = get_weights_entry(spec)
        config = get_preset(entry.arch).replace(**entry.config_overrides)
        metadata = imagenet_metadata(entry.name, entry.preprocessing).to_dict()
        dc_layers = None
        if entry.reader == "deep_compression":
            from squeezekit._resources import resolve
            from squeezekit.weights.deep_compression import read_deep_compression_raw

            paths = {role: resolve(file) for role, file in entry.files.items()}
            dc_layers = from_deep_compression(read_deep_compression_raw(paths["net"], paths["prototxt"]))
        return Source(entry.name, config, pretrained_arrays(entry), metadata, dc_layers)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"{spec}: neither a pretrained name nor a model file (.keras or .sqz)")
    if path.suffix == ".sqz":
        from squeezekit.compression.sqz import read_sqz
        from squeezekit.runtime.compressed import sqz_metadata

        compressed = read_sqz(path)
        return Source(path.name, SqueezeNetConfig.from_dict(compressed.config), compressed.arrays(),
                      sqz_metadata(compressed.metadata).to_dict())
    if path.suffix == ".keras":
        import keras

        from squeezekit.export.onnx_graph import fold_batch_norm
        from squeezekit.models.loading import load_model

        model, metadata = load_model(spec)
        stored = metadata.extra.get("config")
        if not stored:
            raise ValueError(f"{spec}: its metadata ({path.name}.json) holds no architecture config")
        arrays = fold_batch_norm({w.path: keras.ops.convert_to_numpy(w) for w in model.weights})
        return Source(path.name, SqueezeNetConfig.from_dict(stored), arrays, metadata.to_dict())
    raise ValueError(f"{spec}: expected a pretrained name, a .keras file or a .sqz file")


@dataclass
class CompressionResult:
    layers: list[CompressedLayer]
    data: bytes
    report: dict
    rows: list[dict]
    accuracy: dict = field(default_factory=dict)  # "before"/"after": EvaluationResult.to_dict()
    stages: list[dict] = field(default_factory=list)  # size and accuracy after each stage

    def table(self) -> str:
        return size_table(self.rows, len(self.data))


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


def _require_keras(what: str) -> None:
    import importlib.util

    if importlib.util.find_spec("keras") is None:
        raise ValueError(f"{what} trains with Keras, which is not installed: pip install 'squeezekit[train]'")


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
    eval_dir: str | os.PathLike | None = None,
    log=print,
) -> CompressionResult:
    """Compress ``source``; see the module docstring. ``log`` receives one line per stage."""
    from squeezekit.compression.sharing import INITS

    if kmeans_init not in INITS:
        raise ValueError(f"Expected --kmeans-init in {INITS}. Received: {kmeans_init!r}")
    if bits is not None and not 1 <= bits <= 8:
        raise ValueError(f"Expected --bits in 1..8. Received: {bits}")
    if prune is not None:
        parse_prune_spec(prune)  # fail on a bad spec before any work
    if finetune_epochs < 0 or prune_steps < 1:
        raise ValueError("--finetune-epochs must be >= 0 and --prune-steps >= 1")
    if finetune_epochs and data is None:
        raise ValueError("--finetune-epochs needs --data: a folder or zip of images to fine-tune on")
    if finetune_epochs:
        _require_keras("fine-tuning (--finetune-epochs)")
    config, metadata, arrays = source.config, source.metadata, source.arrays
    stages = []
    teacher = arrays_engine(config, arrays) if (finetune_epochs or eval_dir) else None

    def measure(stage: str, engine, layers=None) -> dict:
        row = {"stage": stage}
        if layers is not None:
            row["bytes"] = len(encode_sqz(config.replace(batch_norm=False).to_dict(), metadata, layers)[0])
        if eval_dir is not None:
            result = evaluate(engine, eval_dir, metadata)
            row["top1"], row["top5"] = result["top1"], result["top5"]
            log(f"{stage}: top-1 {100 * row['top1']:.2f} %  top-5 {100 * row['top5']:.2f} %"
                + (f"  {row['bytes']:,} bytes" if "bytes" in row else ""))
        elif "bytes" in row:
            log(f"{stage}: {row['bytes']:,} bytes")
        stages.append(row)
        return row

    if eval_dir is not None:
        measure("source (float32)", teacher)

    if bits is None and prune is None and source.deep_compression_layers is not None:
        layers = source.deep_compression_layers  # lossless: the release's own entries and codebooks
    else:
        bits = 8 if bits is None else bits
        images = targets = None
        if finetune_epochs:
            from squeezekit.compression.finetune import TeacherData, teacher_targets
            from squeezekit.config import Preprocessing
            from squeezekit.export.calibration import calibration_images

            images = calibration_images(data, Preprocessing.from_dict(metadata["preprocessing"]), count=finetune_images)
            targets = teacher_targets(teacher, images)
            log(f"fine-tuning data: {len(images)} images from {data}, targets from the source model")

            def batches(seed):
                return TeacherData(images, *targets, batch_size=32, seed=seed)

        if prune is not None:
            from squeezekit.compression.finetune import finetune_pruned

            names = list(conv_kernel_shapes(config, int(arrays["conv10/kernel"].shape[-1])))
            final = densities_for(names, prune)
            for step in range(1, prune_steps + 1):
                fraction = step / prune_steps
                spec = [(name, 1 - (1 - final[name]) * fraction) for name in names]
                masks = prune_arrays(config, arrays, spec)
                arrays = {k: (v * masks[k] if k in masks else v) for k, v in arrays.items()}
                kept = sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
                if finetune_epochs:
                    measure(f"pruned to {100 * kept:.1f} % (step {step}/{prune_steps}), before fine-tuning",
                            arrays_engine(config, arrays) if eval_dir else None)
                    arrays = finetune_pruned(config, arrays, masks, batches(step), input_size=source.input_size,
                                             epochs=finetune_epochs, learning_rate=learning_rate)
                    arrays = {k: (v * masks[k] if k in masks else v) for k, v in arrays.items()}
            measure(f"pruned to {100 * kept:.1f} %" + (", fine-tuned" if finetune_epochs else "") + " (float32)",
                    arrays_engine(config, arrays) if eval_dir else None)
            layers = compress_arrays(config, arrays, bits=bits, masks=masks, init=kmeans_init)
        elif source.deep_compression_layers is not None:
            # Re-cluster the release's kept weights (its pruning is kept).
            from squeezekit.compression.sharing import kmeans_1d

            layers = []
            for layer in source.deep_compression_layers:
                codebook, indices = kmeans_1d(layer.codebook[layer.indices], 2 ** bits, init=kmeans_init)
                layers.append(CompressedLayer(layer.name, layer.shape, codebook, layer.bias, indices, layer.positions))
        else:
            layers = compress_arrays(config, arrays, bits=bits, init=kmeans_init)
        if finetune_epochs:
            from squeezekit.compression.finetune import finetune_centroids

            measure(f"{bits}-bit shared, before centroid fine-tuning", layers_engine(config, layers) if eval_dir else None,
                    layers)
            layers = finetune_centroids(config, layers, batches(0), input_size=source.input_size,
                                        epochs=finetune_epochs, learning_rate=centroid_learning_rate)

    out_config = config.replace(batch_norm=False).to_dict()
    data_bytes, report = encode_sqz(out_config, metadata, layers)
    result = CompressionResult(layers, data_bytes, report, layer_report(layers, report), stages=stages)
    final = measure("compressed (.sqz)", layers_engine(config, layers) if eval_dir else None, layers)
    if eval_dir is not None:
        result.accuracy = {"before": stages[0], "after": final}
    return result
