"""CIFAR-10 from scratch with the `cifar` recipe: test accuracy, wall time, images/s, parameters.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/train_cifar.py [--epochs N] [--out RUN_DIR]

Trains on the 50,000 training photos of cifar10-jpeg.zip, validates on its 10,000 test photos, and
writes benchmarks/results/train_cifar.{json,md}. The wall time covers the whole command (decoding,
compilation, training, evaluation, plots).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=24)
parser.add_argument("--out", default="runs/cifar10-benchmark")
args = parser.parse_args()
data = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "cifar10" / "cifar10-jpeg.zip"
start = time.perf_counter()
command = [sys.executable, "-m", "squeezekit", "train", "--data", str(data), "--recipe", "cifar",
           "--epochs", str(args.epochs), "--out", args.out, "--json"]
completed = subprocess.run(command, stdout=subprocess.PIPE, text=True)
wall = time.perf_counter() - start
if completed.returncode != 0:
    sys.exit(completed.returncode)
metrics = json.loads(completed.stdout.strip().splitlines()[-1])
result = {"command": " ".join(command[1:]), "epochs": args.epochs, "wall_seconds": round(wall, 1), **metrics}
results = Path(__file__).parent / "results"
results.mkdir(exist_ok=True)
(results / "train_cifar.json").write_text(json.dumps(result, indent=1))
table = ("| test top-1 | test top-5 | epochs | wall time | training images/s (median epoch) | parameters |\n"
         "|---|---|---|---|---|---|\n"
         f"| {100 * metrics['top1']:.2f} % | {100 * metrics['top5']:.2f} % | {args.epochs} | {wall / 60:.1f} min | "
         f"{metrics['images_per_second']} | {metrics['parameters']:,} |\n")
(results / "train_cifar.md").write_text(table)
print(table)
