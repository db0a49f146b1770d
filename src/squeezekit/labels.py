"""Class lists: the ImageNet-1k synsets, resolved like the weights (never committed to the repository)."""

from __future__ import annotations

import functools
import os

from squeezekit._resources import DataFile, resolve

IMAGENET_CLASS_LIST = DataFile(
    relative_path="imagenet/synset_words.txt",
    url="https://raw.githubusercontent.com/nihui/ncnn-android-squeezenet/master/app/src/main/assets/synset_words.txt",
    sha256="acf75ef0abe89694b19056e0796401068b459c457baa30335f240c7692857355",
    size=31675,
)


def parse_synset_words(text: str) -> list[tuple[str, str]]:
    """Lines ``nXXXXXXXX name, other names`` -> [(wnid, first name), ...] in class-index order."""
    labels = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, names = line.strip().partition(" ")
        if not (wnid.startswith("n") and wnid[1:].isdigit() and names):
            raise ValueError(f"line {number} of the class list is not 'nXXXXXXXX name': {line!r}")
        labels.append((wnid, names.split(",")[0].strip()))
    return labels


@functools.lru_cache(maxsize=None)
def _imagenet_labels_cached(path: str) -> tuple[tuple[str, str], ...]:
    with open(path, encoding="utf-8") as handle:
        return tuple(parse_synset_words(handle.read()))


def imagenet_labels() -> tuple[tuple[str, str], ...]:
    """The 1000 ImageNet classes as (wnid, name), index = class id of the pretrained models."""
    return _imagenet_labels_cached(os.fspath(resolve(IMAGENET_CLASS_LIST)))
