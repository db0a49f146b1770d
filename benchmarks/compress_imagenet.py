"""Deep Compression of the ImageNet SqueezeNets: sizes and top-1 on the shared sample-1000.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/compress_imagenet.py [--only NAME ...]

Runs, each with `squeezekit compress` (here through its Python function) and evaluated on
sample-1000 by ONNX Runtime from the decoded file:

- ``v1_0-lossless``: the Deep Compression release (v1.0, 8-bit) re-encoded losslessly;
- ``v1_0-6bit``: its kept weights re-clustered to 6 bits, centroids fine-tuned towards the 8-bit
  model's outputs on the Imagenette train photos (no labels, no ImageNet training data);
- ``v1_0-6bit-linear``: the same with the paper's linear-initialised k-means (smaller, less accurate);
- ``v1_0-5bit``: the same at 5 bits;
- ``v1_0-400k``: the same kept weights shared by entropy-constrained clustering (at most 256 values a
  layer) at the least rate whose file fits 400,000 bytes (``--max-bytes``), centroids fine-tuned as
  for 6 bits;
- ``v1_1-pruned-4bit``: dense pretrained v1.1 pruned (conv1 dense, conv10 to 30 %, the rest to 70 %)
  in two steps, each fine-tuned for two epochs towards the dense model's outputs on the 8,925
  Imagenette photos (train and val), shared at 4 bits, centroids fine-tuned for two epochs.
  (The release's densities, 33 % overall, at 6 bits fell to 32.9 % top-1: v1.1's dense weights do
  not survive that much pruning with this little fine-tuning data.)

Writes benchmarks/results/compress_imagenet.{json,md} and the .sqz files under runs/compress/.
"""

import argparse
import json
import os
import time
from pathlib import Path

from squeezekit.compression.pipeline import compress, load_source

DATA = Path(os.environ["SQUEEZEKIT_DATA_DIR"])
SAMPLE = DATA / "imagenet" / "sample-1000"
IMAGENETTE = DATA / "imagenette" / "imagenette2-224-subset.zip"

RUNS = {
    "v1_0-lossless": dict(model="squeezenet1_0"),
    "v1_0-6bit": dict(model="squeezenet1_0", bits=6, data=IMAGENETTE, finetune_epochs=2),
    "v1_0-6bit-linear": dict(model="squeezenet1_0", bits=6, data=IMAGENETTE, finetune_epochs=2, kmeans_init="linear"),
    "v1_0-5bit": dict(model="squeezenet1_0", bits=5, data=IMAGENETTE, finetune_epochs=2),
    "v1_0-400k": dict(model="squeezenet1_0", max_bytes=400_000, data=IMAGENETTE, finetune_epochs=2),
    "v1_1-pruned-4bit": dict(model="squeezenet1_1", prune="conv1=1,conv10=0.3,*=0.7", prune_steps=2, bits=4,
                             data="IMAGENETTE_ALL", finetune_epochs=2, finetune_images=8925),
}

parser = argparse.ArgumentParser()
parser.add_argument("--only", nargs="*", choices=sorted(RUNS), default=None)
args = parser.parse_args()
results_dir = Path(__file__).parent / "results"
results_file = results_dir / "compress_imagenet.json"
results = json.loads(results_file.read_text()) if results_file.is_file() else {}
out_dir = Path("runs/compress")
out_dir.mkdir(parents=True, exist_ok=True)
for name, options in RUNS.items():
    if args.only and name not in args.only:
        continue
    options = dict(options)
    if options.get("data") == "IMAGENETTE_ALL":  # train and val photos (none of them in sample-1000)
        import tempfile
        import zipfile

        folder = Path(tempfile.mkdtemp(prefix="imagenette-"))
        zipfile.ZipFile(IMAGENETTE).extractall(folder)
        options["data"] = folder
    source = load_source(options.pop("model"))
    start = time.perf_counter()
    result = compress(source, eval_dir=SAMPLE, **options)
    seconds = time.perf_counter() - start
    path = out_dir / f"{name}.sqz"
    path.write_bytes(result.data)
    command = f"squeezekit compress {source.name.split('.')[0]}" + "".join(
        f" --{key.replace('_', '-')} {value}" for key, value in options.items()) + f" --eval {SAMPLE} -o {path}"
    results[name] = {"command": command, "bytes": len(result.data), "seconds": round(seconds, 1),
                     "stages": result.stages, "table": result.table()}
    results_dir.mkdir(exist_ok=True)
    results_file.write_text(json.dumps(results, indent=1))
    print(f"{name}: {len(result.data):,} bytes, {seconds / 60:.1f} min")

lines = ["| model | stage | top-1 | top-5 | bytes |", "|---|---|---:|---:|---:|"]
for name, run in results.items():
    for stage in run["stages"]:
        size = f"{stage['bytes']:,}" if "bytes" in stage else ""
        lines.append(f"| {name} | {stage['stage']} | {100 * stage['top1']:.1f} % | {100 * stage['top5']:.1f} % | {size} |")
tables = "\n\n".join(f"### {name}\n\n`{run['command']}`\n\n{run['table']}" for name, run in results.items())
(results_dir / "compress_imagenet.md").write_text("\n".join(lines) + "\n\n" + tables + "\n")
print("\n".join(lines))
