"""Fine-tuning pretrained SqueezeNet v1.1 on the Imagenette subset: val top-1, wall time, images/s.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/train_finetune.py [--epochs N] [--out RUN_DIR]

Trains `squeezekit train --recipe finetune` (new 10-class conv10 head on the ImageNet weights, one
frozen-backbone epoch, then full fine-tuning) on the 5,000 train photos of
imagenette2-224-subset.zip, validates on its 3,925 val photos, and writes
benchmarks/results/train_finetune.{json,md}. The wall time covers the whole command (decoding,
weight conversion, compilation, training, evaluation, plots).
"""

import argparse
import os
import sys
from pathlib import Path

from _train_run import run_and_report

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
parser.add_argument("--out", default="runs/imagenette-finetune-benchmark")
args = parser.parse_args()
data = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "imagenette" / "imagenette2-224-subset.zip"
command = [sys.executable, "-m", "squeezekit", "train", "--arch", "squeezenet1_1", "--data", str(data),
           "--recipe", "finetune", "--out", args.out, "--json"]
if args.epochs is not None:
    command += ["--epochs", str(args.epochs)]
run_and_report(command, "train_finetune", "val")
