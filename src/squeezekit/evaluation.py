"""Accuracy of a classifier on a folder of labelled images.

Two layouts: class subfolders (``DATA/<class>/*.jpg``; for ImageNet models the class is a wnid such as
``n01440764``), or a flat folder of ``<wnid>_*.JPEG`` files (the shared ImageNet sample). Files that
cannot be decoded are skipped and reported with the reason; the rest are evaluated.
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from squeezekit.formats.metadata import ModelMetadata
from squeezekit.preprocessing import ImageError, load_image, preprocess_input, top_k, why_unreadable

_WNID_PREFIX = re.compile(r"^(n\d{8})[_.]")


@dataclass
class LabelledImages:
    paths: list[Path]
    labels: list[int]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def find_labelled_images(data: str | os.PathLike, metadata: ModelMetadata) -> LabelledImages:
    """The image files of ``data`` with their class index in the model's output order."""
    root = Path(data)
    if not root.is_dir():
        raise ValueError(f"{data}: not a folder (expected class subfolders or <wnid>_*.JPEG files)")
    index = {class_id: i for i, (class_id, _) in enumerate(metadata.labels)}
    by_name = {name: i for i, (_, name) in enumerate(metadata.labels)}
    found = LabelledImages([], [])
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders:
        unknown = [p.name for p in subfolders if p.name not in index and p.name not in by_name]
        if unknown:
            raise ValueError(
                f"{data}: class folders {unknown[:5]} are not among the model's {len(index)} labels"
                + (" (ImageNet models expect wnid folders such as n01440764)" if metadata.is_imagenet else "")
            )
        for folder in subfolders:
            label = index.get(folder.name, by_name.get(folder.name))
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.name.startswith("."):
                    found.paths.append(path)
                    found.labels.append(label)
    else:
        for path in sorted(root.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            match = _WNID_PREFIX.match(path.name)
            if match and match.group(1) in index:
                found.paths.append(path)
                found.labels.append(index[match.group(1)])
            else:
                found.skipped.append((str(path), "no class: the name does not start with a known '<wnid>_'"))
    if not found.paths:
        raise ValueError(f"{data}: no labelled image files found")
    return found


@dataclass
class EvaluationResult:
    top1: float
    top5: float
    n: int
    skipped: list[tuple[str, str]]
    seconds: float

    def to_dict(self) -> dict:
        return {
            "top1": self.top1, "top5": self.top5, "n": self.n, "skipped": len(self.skipped),
            "skipped_files": [{"file": f, "reason": r} for f, r in self.skipped],
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.n / self.seconds, 2) if self.seconds else None,
        }


def _load_batch(paths: Sequence[Path], metadata: ModelMetadata, pool: ThreadPoolExecutor):
    def load(path):
        try:
            return load_image(path, metadata.preprocessing), None
        except (ImageError, OSError) as error:
            return None, why_unreadable(error)

    return list(pool.map(load, paths))


def evaluate_images(
    predict: Callable[[np.ndarray], np.ndarray],
    images: LabelledImages,
    metadata: ModelMetadata,
    *,
    batch_size: int = 32,
    limit: int | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Top-1 and top-5 accuracy of ``predict`` (preprocessed NHWC batch -> class scores)."""
    from squeezekit._progress import progress_bar

    if batch_size < 1:
        raise ValueError(f"Expected --batch-size >= 1. Received: {batch_size}")
    paths, labels = images.paths, images.labels
    if limit is not None:
        if limit < 1:
            raise ValueError(f"Expected --limit >= 1. Received: {limit}")
        paths, labels = paths[:limit], labels[:limit]
    skipped = list(images.skipped)
    correct1 = correct5 = evaluated = 0
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool, progress_bar(
        total=len(paths), desc="evaluating", unit="img", disable=None if progress else True
    ) as bar:
        for offset in range(0, len(paths), batch_size):
            batch_paths = paths[offset: offset + batch_size]
            batch_labels = labels[offset: offset + batch_size]
            arrays, targets = [], []
            for path, label, (array, error) in zip(batch_paths, batch_labels, _load_batch(batch_paths, metadata, pool)):
                if array is None:
                    skipped.append((str(path), error))
                else:
                    arrays.append(array)
                    targets.append(label)
            if arrays:
                scores = np.asarray(predict(preprocess_input(np.stack(arrays), preprocessing=metadata.preprocessing)))
                top5 = top_k(scores, 5)
                targets_array = np.asarray(targets)
                correct1 += int((top5[:, 0] == targets_array).sum())
                correct5 += int((top5 == targets_array[:, None]).any(axis=1).sum())
                evaluated += len(arrays)
            bar.update(len(batch_paths))
    if evaluated == 0:
        raise ValueError(f"none of the {len(paths)} files could be read as an image; first: {skipped[0][0]}: {skipped[0][1]}")
    return EvaluationResult(correct1 / evaluated, correct5 / evaluated, evaluated, skipped, time.perf_counter() - start)
