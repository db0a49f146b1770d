"""A CIFAR-10 SqueezeNet through the whole Deep Compression pipeline: size and test accuracy per stage.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/compress_cifar.py --model RUN_DIR/best.keras
        [--prune deep-compression] [--bits 5] [--finetune-epochs 2]

MODEL is a model trained by ``benchmarks/train_cifar.py`` (``squeezekit train --recipe cifar``).
Stages: trained (float32, batch norm folded) -> pruned (in two steps, each fine-tuned towards the
trained model's outputs on 20,000 training photos) -> weights shared (k-means) -> centroids
fine-tuned -> Huffman-coded ``.sqz``. Accuracy is measured on the 10,000 test photos after each
stage; sizes are the fixed-width encodings of Deep Compression for the middle stages and the real
file at the end. Writes benchmarks/results/compress_cifar.{json,md}.
"""

import argparse
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

from squeezekit.compression.pipeline import compress, load_source

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--prune", default="deep-compression")
parser.add_argument("--prune-steps", type=int, default=2)
parser.add_argument("--bits", type=int, default=5)
parser.add_argument("--finetune-epochs", type=int, default=2)
parser.add_argument("--finetune-images", type=int, default=20000)
args = parser.parse_args()
data = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "cifar10" / "cifar10-jpeg.zip"

with tempfile.TemporaryDirectory() as scratch:
    with zipfile.ZipFile(data) as archive:  # the test split as class folders, for evaluation
        archive.extractall(scratch, [n for n in archive.namelist() if n.startswith("cifar10/test/")])
    source = load_source(args.model)
    start = time.perf_counter()
    result = compress(source, prune=args.prune, prune_steps=args.prune_steps, bits=args.bits, data=data,
                      finetune_epochs=args.finetune_epochs, finetune_images=args.finetune_images,
                      eval_dir=Path(scratch) / "cifar10" / "test")
    seconds = time.perf_counter() - start

parameters = sum(r["parameters"] for r in result.rows)
kept = round(sum(r["density"] * r["parameters"] for r in result.rows))
bias_bytes = sum(r["bias_bytes"] for r in result.rows)
positions_fixed = sum(r["positions_bytes_fixed"] for r in result.rows)
shared_fixed = positions_fixed + sum(r["indices_bytes_fixed"] + r["codebook_bytes"] + r["bias_bytes"] for r in result.rows)
sizes = {  # bytes of each stage's weights in the format that stage implies
    "source (float32)": 4 * parameters + bias_bytes,
    "pruned": 4 * kept + positions_fixed + bias_bytes,  # float32 values + 4-bit relative positions
    "shared": shared_fixed,  # fixed-width indices + 4-bit positions + codebooks (the .net format)
    "compressed (.sqz)": len(result.data),
}
rows = []
for stage in result.stages:
    name = stage["stage"]
    kind = next((k for k in sizes if name.startswith(k)), "pruned" if name.startswith("pruned") else "shared")
    size = stage.get("bytes") if kind == "compressed (.sqz)" else sizes[kind]
    if "(step" in name:  # an intermediate density: its size is not measured
        size = None
    rows.append({**stage, "size_bytes": size, "size_format": kind})
results = {"command": f"python benchmarks/compress_cifar.py --model {args.model} --prune {args.prune} "
                      f"--prune-steps {args.prune_steps} --bits {args.bits} --finetune-epochs {args.finetune_epochs}",
           "seconds": round(seconds, 1), "parameters": parameters, "kept": kept, "stages": rows,
           "table": result.table()}
out = Path(__file__).parent / "results"
out.mkdir(exist_ok=True)
(out / "compress_cifar.json").write_text(json.dumps(results, indent=1))
lines = ["| stage | test top-1 | size | format |", "|---|---:|---:|---|"]
for row in rows:
    size = f"{row['size_bytes']:,} B" if row["size_bytes"] else "-"
    lines.append(f"| {row['stage']} | {100 * row['top1']:.2f} % | {size} | {row['size_format']} |")
text = "\n".join(lines) + f"\n\n`{results['command']}` ({seconds / 60:.1f} min)\n\n" + result.table() + "\n"
(out / "compress_cifar.md").write_text(text)
print(text)
