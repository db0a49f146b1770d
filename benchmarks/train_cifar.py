"""CIFAR-10 from scratch with the `cifar` recipe: test accuracy, wall time, images/s, parameters.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/train_cifar.py [--epochs N] [--out RUN_DIR]

Trains on the 50,000 training photos of cifar10-jpeg.zip, validates on its 10,000 test photos, and
writes benchmarks/results/train_cifar.{json,md}. The wall time covers the whole command (decoding,
compilation, training, evaluation, plots).
"""

import argparse
import os
import sys
from pathlib import Path

from _train_run import run_and_report

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--out", default="runs/cifar10-benchmark")
args = parser.parse_args()
data = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "cifar10" / "cifar10-jpeg.zip"
command = [sys.executable, "-m", "squeezekit", "train", "--data", str(data), "--recipe", "cifar",
           "--epochs", str(args.epochs), "--out", args.out, "--json"]
run_and_report(command, "train_cifar", "test")
