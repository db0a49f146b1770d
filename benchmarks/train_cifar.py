"""CIFAR-10 from scratch with the `cifar` recipe: test accuracy, wall time, images/s, parameters.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/train_cifar.py [--epochs N] [--out RUN_DIR]
        [--results NAME] [-- MORE TRAIN OPTIONS, e.g. --bypass complex]

Trains on the 50,000 training photos of cifar10-jpeg.zip, validates on its 10,000 test photos, and
writes benchmarks/results/NAME.{json,md} (default train_cifar). The wall time covers the whole command (decoding,
compilation, training, evaluation, plots).
"""

import argparse
import os
import sys
from pathlib import Path

from _train_run import run_and_report

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, help="default: the recipe's")
parser.add_argument("--out", default="runs/cifar10-benchmark")
parser.add_argument("--results", default="train_cifar", help="name of the results files")
parser.add_argument("train_options", nargs="*", help="passed to squeezekit train after --")
args = parser.parse_args()
data = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "cifar10" / "cifar10-jpeg.zip"
command = [sys.executable, "-m", "squeezekit", "train", "--data", str(data), "--recipe", "cifar",
           "--out", args.out, "--json", *(["--epochs", str(args.epochs)] if args.epochs else []), *args.train_options]
run_and_report(command, args.results, "test")
