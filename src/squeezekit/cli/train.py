"""Train a SqueezeNet on your own images, or fine-tune the ImageNet weights.

DATA is a folder or zip of class folders (DATA/<class>/<image>), optionally split into train/ and
val/ or test/ (as cifar10-jpeg.zip and the Imagenette zip are). Without a validation split or --val,
a seeded --val-fraction of the training images validates. Recipes:
  paper     SGD momentum 0.9, lr 0.04 decaying linearly to 0, weight decay 2e-4 (Caffe's), dropout 0.5,
            batch 512 as 64 x 8 gradient accumulation, 227x227 random crops (the SqueezeNet paper)
  cifar     32x32 images: 3x3 stride-1 stem, batch norm, SGD + cosine, pad-crop-flip (not in the paper)
  mcu       32x32 images, the cifar recipe on a 167 K-parameter network whose int8 model (<= 256 KB) and
            tensor arena (<= 128 KB) fit a microcontroller such as the Arduino Nano 33 BLE Sense
            (export it with 'squeezekit export --format tflm')
  finetune  ImageNet weights with a new conv10 for your classes; the head alone for one epoch, then all
Options given explicitly override the recipe, and the metaparameter options (--bypass,
--squeeze-ratio, ...) the recipe's architecture. RUN_DIR receives best.keras and last.keras (with their
metadata, ready for 'squeezekit evaluate' and 'squeezekit export'), checkpoints/ written atomically
every epoch, history.csv, metrics.json, curves.png and confusion.png. --resume continues the last
complete checkpoint with its optimizer state and schedule position, and with the run's own settings:
options left out come from the run, options given must agree with it. The exception is a larger
--epochs N, which extends the run: the optimizer carries on from its current step (momentum and step
count kept) on the learning-rate schedule of an N-epoch run, so the rate jumps to where that longer
decay stands at this step and reaches 0 at epoch N (see docs/training.md).

Several devices: --distribute mirrored (TensorFlow, all local GPUs), multiworker (TensorFlow, hosts
from TF_CONFIG), or with KERAS_BACKEND=jax any --distribute value uses keras.distribution.DataParallel
over all JAX devices (start jax.distributed on each host first for several hosts).

Without TensorFlow: with KERAS_BACKEND=jax or torch, batches come from NumPy and Pillow (--input-pipeline
numpy, the default there), so 'pip install "squeezekit[jax]"' or "squeezekit[torch]" is enough to train.

examples:
  squeezekit train --data cifar10-jpeg.zip --recipe cifar --out runs/cifar
  squeezekit train --data imagenette.zip --recipe finetune --arch squeezenet1_1 --out runs/nette
  squeezekit train --data photos/ --recipe finetune --epochs 3 --out runs/mine --resume
  squeezekit train --data cifar10-jpeg.zip --recipe cifar --bypass complex --out runs/cifar-bypass
  KERAS_BACKEND=jax squeezekit train --data cifar10-jpeg.zip --recipe cifar --out runs/cifar-jax
"""

from __future__ import annotations

import argparse
import json
import sys

from squeezekit.cli._arch import add_architecture_arguments, overrides_from_args
from squeezekit.training.recipes import RECIPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder or zip of class folders (with train/ and val/ or test/ splits, or not)")
    parser.add_argument("--val", help="separate validation folder or zip (same classes)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="held-out share when there is no validation split (default: %(default)s)")
    parser.add_argument("--recipe", default="cifar", choices=tuple(RECIPES), help="training recipe (default: %(default)s)")
    parser.add_argument("--epochs", type=int, help="epochs in all (with --resume, a larger value extends the run)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--schedule", choices=["poly", "cosine"])
    parser.add_argument("--optimizer", choices=["sgd", "adamw"])
    parser.add_argument("--weight-decay", type=float,
                        help="decoupled, as Keras does it: w -= lr * wd * w each step (with SGD momentum 0.9, "
                             "10x the value PyTorch's or Caffe's SGD would take for the same decay)")
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--init", choices=["imagenet", "none"], help="start from the ImageNet weights (new head) or from scratch")
    parser.add_argument("--freeze-backbone", action="store_true", default=None, help="train the new head alone for the first epoch")
    parser.add_argument("--seed", type=int, default=0)
    add_architecture_arguments(parser, positional=False)
    parser.add_argument("--distribute", default="none", choices=["none", "mirrored", "multiworker"])
    parser.add_argument("--input-pipeline", default="auto", choices=["auto", "tf.data", "numpy"],
                        help="how batches are made: tf.data, or NumPy and Pillow in worker threads (needs no TensorFlow); "
                             "auto: tf.data on the TensorFlow backend, numpy on JAX and PyTorch (default: %(default)s)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint, with its settings")
    parser.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")


def run(args: argparse.Namespace) -> int:
    from squeezekit.training.trainer import TrainSettings, train

    settings = TrainSettings(
        data=args.data, out=args.out, arch=args.arch, recipe=args.recipe, val=args.val, val_fraction=args.val_fraction,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, schedule=args.schedule, optimizer=args.optimizer,
        weight_decay=args.weight_decay, label_smoothing=args.label_smoothing, init=args.init,
        freeze_backbone=args.freeze_backbone, batch_norm=args.batch_norm, seed=args.seed, distribute=args.distribute,
        resume=args.resume, arch_overrides=overrides_from_args(args), input_pipeline=args.input_pipeline,
    )
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    metrics = train(settings, log=log)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"top-1 {100 * metrics['top1']:.2f} %, top-5 {100 * metrics['top5']:.2f} % on {metrics['n_val']} "
              f"validation images after {metrics['epochs']} epochs ({metrics['wall_seconds_training']:.0f} s, "
              f"{metrics['images_per_second']} images/s); models and plots in {args.out}")
    return 0
