"""Pretrained weights: one entry per release, carrying everything needed to use it.

Names read ``arch.tag`` (``squeezenet1_1.imagenet_caffe_fp16``); ``weights="imagenet"`` picks the
architecture's default tag. Each entry names its source files with their hashes, the licence, the
preprocessing the weights expect, the label set, the parameter count and the accuracy measured by
``benchmarks/pretrained_accuracy.py`` on the shared ImageNet sample (one photo per class).
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field

from squeezekit._resources import DataFile
from squeezekit.config import CAFFE_PREPROCESSING, Preprocessing

_DEEP_COMPRESSION_COMMIT = "fb13faa2cf121ced9999f8a9d538ec6c56084733"
_DEEP_COMPRESSION_RAW = f"https://raw.githubusercontent.com/songhan/SqueezeNet-Deep-Compression/{_DEEP_COMPRESSION_COMMIT}"
_OPENVINO_COMMIT = "c2c0e5e0e0c7e898db976e8de76fa097b02c8077"
_OPENVINO_RAW = f"https://raw.githubusercontent.com/OmniXRI/OpenVINO_OpenCV_Squeezenet/{_OPENVINO_COMMIT}"
_DEEPSCALE_COMMIT = "51147dc0681638c28aad593b9e923f3500117125"
_DEEPSCALE_RAW = f"https://raw.githubusercontent.com/DeepScale/SqueezeNet/{_DEEPSCALE_COMMIT}"
# Keras model, TensorFlow backend, on the shared sample-1000 (one ImageNet training photo per class).
_ACCURACY_COMMAND = "python benchmarks/pretrained_accuracy.py"


@dataclass(frozen=True)
class PretrainedWeights:
    """A set of pretrained weights and its metadata."""

    name: str
    arch: str
    description: str
    source: str
    license: str
    files: dict[str, DataFile]  # role ("net", "prototxt", "xml", "bin", "caffemodel") -> file
    reader: str  # "deep_compression", "openvino_ir" or "caffemodel"
    parameters: int
    macs: int  # multiply-accumulates of one image at input_shape
    # Bytes of the source files together; None where the files are not available to measure.
    file_size: int | None
    preprocessing: Preprocessing = CAFFE_PREPROCESSING
    labels: str = "imagenet-1k"
    input_shape: tuple[int, int, int] = (227, 227, 3)
    config_overrides: dict = field(default_factory=dict)
    # Measured by benchmarks/pretrained_accuracy.py; {} until measured (e.g. files not available offline).
    metrics: dict = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def checksum(self) -> str:
        """One hash over the source files' hashes: the key of the converted-weights cache."""
        digest = hashlib.sha256()
        for role in sorted(self.files):
            file = self.files[role]
            digest.update(f"{role}:{file.sha256 or file.git_blob_sha1}\n".encode())
        return digest.hexdigest()

    def to_dict(self) -> dict:
        return {
            "name": self.name, "arch": self.arch, "description": self.description, "source": self.source,
            "license": self.license, "reader": self.reader, "parameters": self.parameters, "macs": self.macs,
            "file_size": self.file_size,
            "preprocessing": self.preprocessing.to_dict(), "labels": self.labels,
            "input_shape": list(self.input_shape), "config_overrides": dict(self.config_overrides),
            "metrics": self.metrics, "checksum": self.checksum,
            "files": {role: {"path": f.relative_path, "url": f.url, "sha256": f.sha256, "git_blob_sha1": f.git_blob_sha1}
                      for role, f in self.files.items()},
        }


_REGISTRY: dict[str, PretrainedWeights] = {}
_DEFAULT_TAGS: dict[str, str] = {}


def register(entry: PretrainedWeights, *, default: bool = False) -> PretrainedWeights:
    if entry.name in _REGISTRY:
        raise ValueError(f"Pretrained weights {entry.name!r} are already registered")
    _REGISTRY[entry.name] = entry
    if default:
        _DEFAULT_TAGS[entry.arch] = entry.tag
    return entry


def get_weights_entry(name: str) -> PretrainedWeights:
    """The entry for ``arch`` (its default weights) or ``arch.tag``."""
    if name in _DEFAULT_TAGS:
        name = f"{name}.{_DEFAULT_TAGS[name]}"
    if name not in _REGISTRY:
        raise ValueError(f"Unknown pretrained model {name!r}. Expected one of {sorted(_DEFAULT_TAGS) + sorted(_REGISTRY)}")
    return _REGISTRY[name]


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of the registered weights matching a shell pattern, e.g. ``list_pretrained("squeezenet1_1*")``."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def default_pretrained_names() -> list[str]:
    """The architectures with pretrained weights (``squeezenet1_0``, ``squeezenet1_1``)."""
    return sorted(_DEFAULT_TAGS)


register(
    PretrainedWeights(
        name="squeezenet1_0.imagenet_deep_compression",
        arch="squeezenet1_0",
        description="SqueezeNet v1.0 after Deep Compression: pruned to about 33 % density, 8-bit weight "
        "sharing per layer (the paper's 660 KB model, Table 2), decoded to dense float32",
        source="https://github.com/songhan/SqueezeNet-Deep-Compression",
        license="BSD-2-Clause (SqueezeNet-Deep-Compression LICENSE)",
        files={
            "net": DataFile(
                "weights/squeezenet_v1.0_deep_compression/compressed_SqueezeNet.net",
                f"{_DEEP_COMPRESSION_RAW}/compressed_SqueezeNet.net",
                sha256="e4ab6960ae8cd81505e1c2136921201507e930966c53deaf15862a395b3a3261", size=675_763,
            ),
            "prototxt": DataFile(
                "weights/squeezenet_v1.0_deep_compression/SqueezeNet_deploy.prototxt",
                f"{_DEEP_COMPRESSION_RAW}/SqueezeNet_deploy.prototxt",
                sha256="3bcb0e792e2b50ddeb955b178ba6742e28d8950956915348eba355652040674c", size=10_486,
            ),
        },
        reader="deep_compression",
        parameters=1_248_424,
        macs=861_339_936,  # at 227x227, with the padded classifier's 15x15 map
        file_size=686_249,
        # The release's conv_final has pad 1 on its 1x1 kernel: a 15x15 map at 227 input.
        config_overrides={"classifier_pad": 1},
        metrics={"imagenet-sample-1000": {"top1": 0.625, "top5": 0.838, "n": 1000, "command": _ACCURACY_COMMAND}},
    ),
    default=True,
)

register(
    PretrainedWeights(
        name="squeezenet1_1.imagenet_caffe_fp16",
        arch="squeezenet1_1",
        description="SqueezeNet v1.1, DeepScale's ImageNet Caffe model as an FP16 OpenVINO IR (no mean or "
        "scale folded in), widened to float32",
        source="https://github.com/OmniXRI/OpenVINO_OpenCV_Squeezenet (from https://github.com/DeepScale/SqueezeNet)",
        license="BSD-2-Clause (DeepScale SqueezeNet)",
        files={
            "xml": DataFile(
                "weights/squeezenet_v1.1_openvino_ir_fp16/squeezenet1.1.xml", f"{_OPENVINO_RAW}/squeezenet1.1.xml",
                sha256="238be462aadc8e5665f47037aa22c47d67f5ef7da8e73bd03380edf558b9c7f4", size=38_023,
            ),
            "bin": DataFile(
                "weights/squeezenet_v1.1_openvino_ir_fp16/squeezenet1.1.bin", f"{_OPENVINO_RAW}/squeezenet1.1.bin",
                sha256="4405e29f9d7b91fbd950358c470eed04edfe82a14d766a948add81493803f563", size=2_470_992,
            ),
        },
        reader="openvino_ir",
        parameters=1_235_496,
        macs=387_747_520,
        file_size=2_509_015,
        metrics={"imagenet-sample-1000": {"top1": 0.621, "top5": 0.841, "n": 1000, "command": _ACCURACY_COMMAND}},
    ),
    default=True,
)

# DeepScale's full-precision originals. They cannot be fetched in the project's offline CI; their
# reader is tested on a .caffemodel synthesised from the v1.1 weights. Downloads are verified against
# the git blob ids of the files in DeepScale's repository.
for _arch, _folder, _blob, _overrides in (
    ("squeezenet1_0", "SqueezeNet_v1.0", "a381d848b43d7048c3b362238ece2386c21d6ff0", {"classifier_pad": 1}),
    ("squeezenet1_1", "SqueezeNet_v1.1", "9d2fc33abf653a6e8b2ee6cc63ede0e72ec67f44", {}),
):
    _file = _folder.lower()  # SqueezeNet_v1.1/squeezenet_v1.1.caffemodel
    register(
        PretrainedWeights(
            name=f"{_arch}.imagenet_caffe",
            arch=_arch,
            description=f"{_folder}: DeepScale's original full-precision ImageNet Caffe model",
            source="https://github.com/DeepScale/SqueezeNet",
            license="BSD-2-Clause (DeepScale SqueezeNet)",
            files={
                "caffemodel": DataFile(
                    f"weights/{_folder.lower()}_caffe/{_file}.caffemodel",
                    f"{_DEEPSCALE_RAW}/{_folder}/{_file}.caffemodel",
                    sha256=None, git_blob_sha1=_blob,
                ),
            },
            reader="caffemodel",
            parameters=1_248_424 if _arch == "squeezenet1_0" else 1_235_496,
            macs=861_339_936 if _arch == "squeezenet1_0" else 387_747_520,
            # "About 4.8 MB": the store that this project's data comes from does not hold the files.
            file_size=None,
            config_overrides=_overrides,
        )
    )
