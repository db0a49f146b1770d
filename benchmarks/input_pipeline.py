"""The two input pipelines (tf.data, and NumPy + Pillow without TensorFlow) on real CIFAR-10 photos.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/input_pipeline.py [--images 6000] [--epochs 2]

1. The pipeline alone: images/s of one pass of pad-crop-flip batches (the cifar recipe's, batch 128) over
   the CIFAR-10 training set, and of random-resized-crop batches (the paper's 227-pixel crops of 256-pixel
   images, batch 64) over upscaled copies.
2. Training: `squeezekit train --recipe cifar` on --images training photos (as many of each class) for --epochs epochs,
   for every backend and pipeline, each in its own process (the numpy runs on JAX and PyTorch with
   TensorFlow hidden from the import system, as on a machine without it); the last epoch's images/s
   from history.csv (the first includes compilation).
Writes benchmarks/results/input_pipeline.{json,md}. Run it on an otherwise idle machine.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from _results import write_results

ROOT = Path(__file__).resolve().parents[1]
parser = argparse.ArgumentParser()
parser.add_argument("--images", type=int, default=6000, help="training photos for the training runs")
parser.add_argument("--epochs", type=int, default=2)
args = parser.parse_args()
data = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "cifar10" / "cifar10-jpeg.zip"


def decoded_cifar(limit=None):
    from PIL import Image

    archive = zipfile.ZipFile(data)
    names = [n for n in archive.namelist() if n.endswith(".jpg") and n.split("/")[1] == "train"][:limit]
    return np.stack([np.asarray(Image.open(archive.open(n)).convert("RGB")) for n in names])


def pipeline_rate(images, recipe_name, augmentation, batch_size, pipeline):
    from squeezekit.data.pipeline import make_dataset
    from squeezekit.training.recipes import get_recipe

    recipe = get_recipe(recipe_name)
    dataset = make_dataset(images, np.zeros(len(images), np.int64), batch_size=batch_size,
                           preprocessing=recipe.preprocessing, training=True, augmentation=augmentation,
                           num_classes=10, input_pipeline=pipeline)
    if pipeline == "numpy":
        # As Keras reads a PyDataset: its enqueuer, with the dataset's worker threads.
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        adapter = PyDatasetAdapter(dataset, shuffle=False)
        adapter.on_epoch_begin()
        batches = adapter.get_numpy_iterator()
    else:
        batches = dataset.as_numpy_iterator()
    start = time.perf_counter()
    count = sum(len(x) for x, _ in batches)
    return count / (time.perf_counter() - start)


rows_pipeline = []
cifar = decoded_cifar()
from PIL import Image  # noqa: E402

large = np.stack([np.asarray(Image.fromarray(image).resize((256, 256), Image.Resampling.BILINEAR)) for image in cifar[:3000]])
for name, images, recipe, augmentation, batch in [
        ("pad-crop-flip 32x32, batch 128", cifar, "cifar", "pad-crop-flip", 128),
        ("random-resized-crop 256 -> 227, batch 64", large, "paper", "random-resized-crop", 64)]:
    for pipeline in ("tf.data", "numpy"):
        rate = pipeline_rate(images, recipe, augmentation, batch, pipeline)
        rows_pipeline.append({"augmentation": name, "pipeline": pipeline, "images_per_second": round(rate)})
        print(rows_pipeline[-1], flush=True)

rows_train = []
with tempfile.TemporaryDirectory() as folder:
    folder = Path(folder)
    archive = zipfile.ZipFile(data)
    counts = {}
    for name in archive.namelist():
        parts = name.split("/")
        if len(parts) != 4 or not name.endswith(".jpg"):
            continue
        limit = (args.images if parts[1] == "train" else 1000) // 10  # the same number of every class
        if counts.get((parts[1], parts[2]), 0) >= limit:
            continue
        counts[parts[1], parts[2]] = counts.get((parts[1], parts[2]), 0) + 1
        target = folder / "data" / parts[1] / parts[2] / parts[3]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(name))
    for backend, pipeline in [("tensorflow", "tf.data"), ("tensorflow", "numpy"), ("jax", "tf.data"),
                              ("jax", "numpy"), ("torch", "tf.data"), ("torch", "numpy")]:
        run = folder / f"run-{backend}-{pipeline}"
        hide = pipeline == "numpy" and backend != "tensorflow"
        entry = [str(ROOT / "tests" / "without_tensorflow.py")] if hide else ["-m", "squeezekit"]
        command = [sys.executable, *entry, "train", "--recipe", "cifar", "--data", str(folder / "data"),
                   "--epochs", str(args.epochs), "--input-pipeline", pipeline, "--out", str(run), "--json"]
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            rows_train.append({"backend": backend, "pipeline": pipeline, "error": done.stderr.strip()[-300:]})
            print(rows_train[-1], flush=True)
            continue
        metrics = json.loads(done.stdout.strip().splitlines()[-1])
        with open(run / "history.csv") as handle:
            last = list(csv.DictReader(handle))[-1]
        rows_train.append({"backend": backend, "pipeline": pipeline, "tensorflow_hidden": hide,
                           "images_per_second_last_epoch": round(float(last["images_per_second"])),
                           "top1": metrics["top1"], "wall_seconds": round(wall, 1)})
        print(rows_train[-1], flush=True)

lines = ["| augmentation | pipeline | images/s (pipeline alone) |", "|---|---|---|"]
lines += [f"| {r['augmentation']} | {r['pipeline']} | {r['images_per_second']:,} |" for r in rows_pipeline]
lines += ["", f"`squeezekit train --recipe cifar`, {args.images} CIFAR-10 training photos, {args.epochs} epochs, "
          "1000 test photos:", "",
          "| backend | pipeline | TensorFlow hidden | images/s (last epoch) | top-1 | wall time |", "|---|---|---|---|---|---|"]
for r in rows_train:
    if "error" in r:
        lines.append(f"| {r['backend']} | {r['pipeline']} | | failed: {r['error'][-80:]} | | |")
    else:
        lines.append(f"| {r['backend']} | {r['pipeline']} | {'yes' if r['tensorflow_hidden'] else 'no'} | "
                     f"{r['images_per_second_last_epoch']:,} | {100 * r['top1']:.1f} % | {r['wall_seconds']:.0f} s |")
write_results("input_pipeline", {"command": "python benchmarks/input_pipeline.py " + " ".join(sys.argv[1:]),
                                 "pipeline_alone": rows_pipeline, "training": rows_train}, "\n".join(lines) + "\n")
