"""A classifier over an exported model: preprocessing, batching and top-k, without TensorFlow or Keras."""

from __future__ import annotations

import glob
import itertools
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from squeezekit.errors import WeightFileError
from squeezekit.formats.metadata import ModelMetadata, read_sidecar
from squeezekit.preprocessing import ImageError, image_files, load_image, preprocess_input, top_k
from squeezekit.runtime.engines import open_engine, softmax
from squeezekit.runtime.sources import RUNTIME_KINDS, identify_model

LOADS_AHEAD = 2  # batches decoded ahead of the one being classified


@dataclass
class ImageResult:
    """The top-k classes of one image, or why it could not be classified."""

    file: str
    top: list[tuple[str, str, float]] | None = None  # (class id, name, probability)
    error: str | None = None

    def to_dict(self) -> dict:
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        return {"file": self.file,
                "predictions": [{"id": i, "label": name, "probability": round(p, 6)} for i, name, p in self.top]}


class Classifier:
    """``Classifier.load(spec)`` for a ``.onnx``/``.tflite``/``.sqz`` file or a pretrained name."""

    def __init__(self, engine, metadata: ModelMetadata, source: str):
        self.engine = engine
        self.metadata = metadata
        self.source = source
        self._labels = metadata.labels
        # int8 LiteRT files end at the class scores (see squeezekit.export.litert).
        self._needs_softmax = metadata.extra.get("outputs") == "scores"

    @classmethod
    def load(cls, spec: str | os.PathLike, threads: int | None = None, precision: str = "auto") -> "Classifier":
        """A pretrained name (its ONNX artefact; ``precision`` "auto", "float32" or "int8") or a ``.onnx``,
        ``.tflite`` or ``.sqz`` file. ``squeezekit.open_model`` also opens ``.keras`` files and SavedModels."""
        ref = identify_model(spec, RUNTIME_KINDS, purpose="the runtime (no TensorFlow or Keras)")
        if ref.kind == "pretrained":
            from squeezekit.runtime.pretrained import pretrained_artefact

            path = pretrained_artefact(ref.spec, precision)
        else:
            path = ref.path
        if ref.kind == "sqz":
            from squeezekit.runtime.compressed import open_sqz

            engine, metadata = open_sqz(path, threads)
            return cls(engine, metadata, os.fspath(path))
        engine = open_engine(path, threads)
        return cls(engine, engine_metadata(engine, path), os.fspath(path))

    @property
    def input_size(self) -> tuple[int, int]:
        return self.metadata.preprocessing.crop, self.metadata.preprocessing.crop

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for a preprocessed NHWC float32 batch (what the engine itself takes)."""
        return self._probabilities(self.engine(batch))

    def _probabilities(self, out: np.ndarray) -> np.ndarray:
        return softmax(out) if self._needs_softmax else out

    def top_k(self, probabilities: np.ndarray, k: int) -> list[list[tuple[str, str, float]]]:
        best = top_k(probabilities, k)
        return [[(*self._labels[i], float(row[i])) for i in indices] for row, indices in zip(probabilities, best)]

    def classify(self, paths: Iterable[str | os.PathLike], *, top_k: int = 5, batch_size: int = 16) -> Iterator[ImageResult]:
        """Classify image files in batches; a file that cannot be read yields an ``ImageResult`` with ``error``."""
        paths = [os.fspath(p) for p in paths]
        preprocessing = self.metadata.preprocessing

        def load(path):
            try:
                return load_image(path, preprocessing), None
            except (ImageError, OSError) as error:
                return None, str(error) if isinstance(error, ImageError) else f"{path}: {error.strerror or error}"

        chunks = [paths[offset: offset + batch_size] for offset in range(0, len(paths), batch_size)]
        engine = self.engine
        if len(chunks) > 1 and hasattr(engine, "sharing_cores"):  # decoding overlaps inference from here on
            engine = engine.sharing_cores()
        chunks = iter(chunks)

        def assemble(chunk, futures):
            """A batch stacked and preprocessed off the engine's thread: ``(chunk, loaded, batch or None)``."""
            loaded = [future.result() for future in futures]
            arrays = [array for array, _ in loaded if array is not None]
            return chunk, loaded, preprocess_input(np.stack(arrays), preprocessing=preprocessing) if arrays else None

        # Decoding runs LOADS_AHEAD batches ahead of the engine, and one more thread stacks and converts
        # each batch to float (5-10 ms at batch 32, which the engine's thread used to wait for): Pillow,
        # numpy and the engines release the GIL, so all of it overlaps inference.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as decoders, \
                ThreadPoolExecutor(max_workers=1) as assembler:

            def submit(chunk):
                return assembler.submit(assemble, chunk, [decoders.submit(load, path) for path in chunk])

            pending = deque(submit(chunk) for chunk in itertools.islice(chunks, LOADS_AHEAD))
            while pending:
                chunk, loaded, batch = pending.popleft().result()
                upcoming = next(chunks, None)
                if upcoming is not None:
                    pending.append(submit(upcoming))
                tops = iter(self.top_k(self._probabilities(engine(batch)), top_k) if batch is not None else ())
                for path, (array, error) in zip(chunk, loaded):
                    yield ImageResult(path, top=next(tops)) if array is not None else ImageResult(path, error=error)


def engine_metadata(engine, path: Path) -> ModelMetadata:
    """The metadata an engine's model carries, else the JSON file beside it; checked against the model."""
    if engine.metadata is not None:
        from squeezekit._schema import parse_document

        metadata = parse_document(path, engine.metadata, ModelMetadata.from_dict, "squeezekit metadata in the model")
    else:
        metadata = read_sidecar(path)
        if metadata is None:
            raise WeightFileError(path, f"no squeezekit metadata in the file nor in {path.name}.json beside it")
    _check_shapes(engine, metadata, path)
    return metadata


def _check_shapes(engine, metadata: ModelMetadata, path: Path) -> None:
    """Refuse a model whose input or output does not fit its metadata, before it fails mid-run."""

    def fits(dim, expected: int) -> bool:  # free dimensions are names, None or -1
        return not isinstance(dim, int) or dim < 0 or dim == expected

    crop, classes = metadata.preprocessing.crop, len(metadata.labels)
    if not all(fits(d, e) for d, e in zip(engine.input_shape[1:], (crop, crop, 3))):
        raise WeightFileError(path, f"takes input {list(engine.input_shape)}, but its metadata says "
                                    f"(batch, {crop}, {crop}, 3) images")
    output = getattr(engine, "output_shape", None)
    if output is not None and (len(output) != 2 or not fits(output[1], classes)):
        raise WeightFileError(path, f"returns {list(output)}, but its metadata names {classes} classes")


def expand_inputs(inputs: Iterable[str]) -> tuple[list[str], list[ImageResult]]:
    """Files, folders (their image files, recursively) and glob patterns -> (files, problems)."""
    files, problems = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = [str(p) for p in image_files(path)]
            if not found:
                problems.append(ImageResult(item, error=f"{item}: no image files in this folder"))
            files.extend(found)
        elif path.is_file():
            files.append(item)
        elif path.exists():
            # FIFOs and devices could block the reader forever.
            problems.append(ImageResult(item, error=f"{item}: not a regular file"))
        elif glob.has_magic(item):
            matched = sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not matched:
                problems.append(ImageResult(item, error=f"{item}: the pattern matches no file"))
            files.extend(matched)
        else:
            problems.append(ImageResult(item, error=f"{item}: no such file or folder"))
    return files, problems
