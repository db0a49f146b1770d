"""Training recipes: the paper's, one for 32x32 images, and fine-tuning of the ImageNet weights."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from squeezekit.config import Preprocessing

# CIFAR-10 channel statistics (RGB, 0..255), so that inputs are roughly zero-mean, unit-variance.
CIFAR_MEAN = (125.3, 123.0, 113.9)
CIFAR_SCALE = 1 / 63.0


@dataclass(frozen=True)
class Recipe:
    name: str
    epochs: int
    batch_size: int
    optimizer: str  # "sgd" (momentum 0.9) or "adamw"
    learning_rate: float
    schedule: str  # "poly" (linear decay to 0, the paper's) or "cosine"
    weight_decay: float
    label_smoothing: float
    augmentation: str
    store_size: int  # decoded images are kept at this size
    preprocessing: Preprocessing
    warmup_epochs: float = 0.0
    gradient_accumulation: int = 1
    arch_overrides: dict = field(default_factory=dict)
    init: str | None = None  # "imagenet" for fine-tuning
    freeze_backbone_epochs: int = 0
    # Learning rate of the epochs that train the pretrained backbone, as a fraction of learning_rate:
    # the rate that suits a new head wrecks pretrained filters (fine-tuning v1.1 on Imagenette with
    # AdamW at 1e-3 fell from 90 % to 29 % validation accuracy in one epoch).
    backbone_lr_factor: float = 1.0

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)


RECIPES = {
    # Iandola et al. 2016 (section 4 and DeepScale's solver): SGD with momentum 0.9, learning rate 0.04
    # decaying linearly to 0, weight decay 2e-4, dropout 0.5 (the architecture's), batch 512 (here 64
    # x 8 accumulation steps, which a 24 GB CPU machine holds), 227x227 random crops and flips.
    # Caffe adds the decay to the gradient, inside the momentum, so 2e-4 shrinks the weights by
    # lr * 2e-4 / (1 - 0.9) a step; Keras decays decoupled (w -= lr * wd * w), hence 2e-3 here.
    "paper": Recipe(
        name="paper", epochs=60, batch_size=64, gradient_accumulation=8, optimizer="sgd", learning_rate=0.04,
        schedule="poly", weight_decay=2e-3, label_smoothing=0.0, augmentation="random-resized-crop",
        store_size=256, preprocessing=Preprocessing(),
    ),
    # 32x32 images (CIFAR-10): not in the paper. A 3x3 stride-1 stem with "same" padding keeps 32x32
    # (v1.0's 7x7/2 stem would leave 13x13 before the first Fire module), pools after conv1, fire3 and
    # fire5 give 16, 8 and 4 pixels; batch norm after every convolution; SGD with Nesterov-free
    # momentum, cosine decay after a short warm-up, label smoothing, pad-crop-flip augmentation.
    # Weight decay 5e-3 because Keras decays decoupled (w -= lr * wd * w each step), outside the
    # momentum: that equals the usual PyTorch CIFAR setting of 5e-4 added to the gradient with momentum
    # 0.9. 5e-4 here (ten times weaker) cost about a point (benchmarks/cifar_recipe_study.py).
    # 28 epochs: 85.8 % in 58 minutes on the 2-core machine; with --bypass complex 16 epochs do better
    # in less time (docs/training.md).
    # conv10 is linear (--classifier-relu restores the paper's ReLU): with the ReLU, simple bypass
    # collapsed to 54.76 % as units of conv10 died; without it simple bypass reached 86.64 % ± 0.01 and
    # no bypass 85.73 % ± 0.33 (2 seeds each, 28 epochs; no bypass had 85.8 % with the ReLU), so no
    # configuration loses by it (benchmarks/bypass_fix.py, docs/reproduction.md).
    "cifar": Recipe(
        name="cifar", epochs=28, batch_size=128, optimizer="sgd", learning_rate=0.1, schedule="cosine",
        weight_decay=5e-3, label_smoothing=0.1, augmentation="pad-crop-flip", store_size=32, warmup_epochs=1,
        preprocessing=Preprocessing(resize=32, crop=32, channel_order="RGB", mean=CIFAR_MEAN, scale=CIFAR_SCALE),
        arch_overrides={"conv1_kernel": 3, "conv1_stride": 1, "conv1_padding": "same",
                        "pool_after": ("conv1", "fire3", "fire5"), "batch_norm": True, "dropout": 0.2,
                        "classifier_relu": False},
    ),
    # A SqueezeNet for microcontrollers (32x32 images): the cifar recipe's training on a network whose int8
    # model fits an Arduino Nano 33 BLE Sense (<= 256 KB flash, <= 128 KB arena in TFLM). A 32-filter
    # stem halves the largest activation (32x32x32 int8 = 32 KB, the arena's biggest buffer) and the
    # training step's largest cost (the 32x32 stem, not the narrow Fire modules, sets its speed); Fire modules of 48 to 168 expand filters with twice v1.1's squeeze ratio
    # (0.25: the paper's Fig. 3a gains most from SR 0.125 to 0.25) keep 167 K parameters, since flash is
    # what the board lacks first (int8 weights, int32 biases and per-channel scales: about 1.25 bytes a
    # parameter; 210 K parameters needed 262,424 B). Less dropout than cifar: so small a network underfits.
    # 26 epochs of about 2 minutes fit the 60 minutes of the goal on the 2-core machine (docs/deploy.md).
    "mcu": Recipe(
        name="mcu", epochs=26, batch_size=128, optimizer="sgd", learning_rate=0.1, schedule="cosine",
        weight_decay=5e-3, label_smoothing=0.1, augmentation="pad-crop-flip", store_size=32, warmup_epochs=1,
        preprocessing=Preprocessing(resize=32, crop=32, channel_order="RGB", mean=CIFAR_MEAN, scale=CIFAR_SCALE),
        arch_overrides={"conv1_kernel": 3, "conv1_stride": 1, "conv1_padding": "same", "conv1_filters": 32,
                        "base_e": 48, "incr_e": 40, "squeeze_ratio": 0.25,
                        "pool_after": ("conv1", "fire3", "fire5"), "batch_norm": True, "dropout": 0.1},
    ),
    # Fine-tuning: the ImageNet weights with a new conv10 for the data's classes; the head alone first
    # (frozen backbone), then everything at a lower rate. The pretrained Caffe preprocessing.
    "finetune": Recipe(
        name="finetune", epochs=6, batch_size=64, optimizer="adamw", learning_rate=1e-3, schedule="cosine",
        weight_decay=1e-4, label_smoothing=0.1, augmentation="random-resized-crop", store_size=256,
        preprocessing=Preprocessing(), init="imagenet", freeze_backbone_epochs=1, backbone_lr_factor=0.1,
    ),
}


def parse_recipe(values, base: Recipe) -> Recipe:
    """The recipe a run saved in its ``state.json``, every field checked; fields it lacks come from ``base``."""
    from squeezekit._schema import FieldError, choice, integer, mapping, real, text
    from squeezekit.data.pipeline import AUGMENTATIONS

    values = mapping(values, "recipe")
    checks = {
        "name": lambda v, f: text(v, f, 100),
        "epochs": lambda v, f: integer(v, f, 1, 1 << 20),
        "batch_size": lambda v, f: integer(v, f, 1, 1 << 16),
        "gradient_accumulation": lambda v, f: integer(v, f, 1, 1 << 10),
        "store_size": lambda v, f: integer(v, f, 1, 4096),
        "freeze_backbone_epochs": lambda v, f: integer(v, f, 0, 1 << 20),
        "optimizer": lambda v, f: choice(v, f, ("sgd", "adamw")),
        "schedule": lambda v, f: choice(v, f, ("poly", "cosine")),
        "augmentation": lambda v, f: choice(v, f, AUGMENTATIONS),
        "init": lambda v, f: choice(v, f, (None, "imagenet")),
        "learning_rate": lambda v, f: real(v, f, 0.0, 1e3),
        "weight_decay": lambda v, f: real(v, f, 0.0, 1e3),
        "label_smoothing": lambda v, f: real(v, f, 0.0, 1.0),
        "warmup_epochs": lambda v, f: real(v, f, 0.0, 1 << 20),
        "backbone_lr_factor": lambda v, f: real(v, f, 0.0, 1e3),
        "arch_overrides": lambda v, f: mapping(v, f),
        "preprocessing": lambda v, f: Preprocessing.from_dict(v),
    }
    unknown = sorted(set(values) - set(checks))
    if unknown:
        raise FieldError(f"recipe.{unknown[0]}", "is not a recipe field")
    return base.replace(**{key: checks[key](value, f"recipe.{key}") for key, value in values.items()})


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}. Expected one of {sorted(RECIPES)}")
    return RECIPES[name]
