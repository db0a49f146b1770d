"""Deep Compression of a model into a .sqz file: pruning, k-means weight sharing, Huffman coding.

MODEL is a pretrained name, a .keras file trained by squeezekit, or a .sqz file. Without --prune and
--bits the Deep Compression release (squeezenet1_0) is re-encoded losslessly: the same weights bit for
bit, Huffman coded. --prune keeps a fraction of each layer's weights (by magnitude); --bits shares
each layer's kept weights among 2^bits values (exact 1-D k-means). --max-bytes N instead shares them
by entropy-constrained clustering (at most 2^bits values a layer, 8 unless told): squared error plus a
rate times the Huffman bits, with the least rate whose file fits N bytes. With --data and
--finetune-epochs the pruned weights and then the shared values are fine-tuned towards MODEL's own
outputs on those images (no labels needed). The table shows, per layer as in the Deep Compression
paper, the bytes of indices and positions before and after Huffman coding.

--prune SPEC: a density for every layer (0.35), per-layer patterns (conv1=1,fire*/expand3x3=0.3,*=0.5;
first match wins, unmatched layers stay dense), or deep-compression (the release's per-layer densities).

exit status: 0 written, 1 the work failed, 2 bad usage or input.

examples:
  squeezekit compress squeezenet1_0 -o squeezenet1_0.sqz
  squeezekit compress squeezenet1_0 --bits 6 --data imagenette.zip --finetune-epochs 2 --eval sample-1000/
  squeezekit compress squeezenet1_0 --max-bytes 400000 --data imagenette.zip --finetune-epochs 2
  squeezekit compress runs/cifar/best.keras --prune '*=0.4' --bits 5 --data cifar10.zip --finetune-epochs 2
  squeezekit predict photo.jpg --model squeezenet1_0.sqz
"""

from __future__ import annotations

import argparse
import json
import sys


def _byte_count(text: str) -> int:
    """``400000``, ``400_000``, ``400k`` / ``400kB`` (1000 bytes) or ``390KiB`` (1024): a byte count."""
    import re

    match = re.fullmatch(r"\s*([0-9][0-9_]*)\s*(k|kb|kib|m|mb|mib)?\s*", text.lower())
    if not match:
        raise ValueError(f"--max-bytes: expected a number of bytes such as 400000 or 400k, got {text!r}")
    scale = {None: 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 10 ** 6, "mb": 10 ** 6, "mib": 1 << 20}[match[2]]
    value = int(match[1]) * scale
    if value < 1:
        raise ValueError(f"--max-bytes: expected a positive number of bytes, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="pretrained name, .keras or .sqz file")
    parser.add_argument("-o", "--output", default=None, help="the .sqz file to write (default: MODEL's name + .sqz)")
    parser.add_argument("--prune", metavar="SPEC", default=None, help="densities to prune to (see above)")
    parser.add_argument("--prune-steps", type=int, default=1,
                        help="prune in this many steps, fine-tuning after each (default: %(default)s)")
    parser.add_argument("--bits", type=int, default=None,
                        help="bits per shared weight index, 1..8 (default: 8; the release's own codebooks for "
                             "the Deep Compression model)")
    parser.add_argument("--max-bytes", default=None, metavar="N",
                        help="entropy-constrained sharing to fit the file in N bytes (400000, 400k; see above)")
    parser.add_argument("--kmeans-init", choices=("optimal", "linear"), default="optimal",
                        help="optimal: least-squares clusters (exact 1-D k-means); linear: the Deep Compression "
                             "paper's evenly spaced start (default: %(default)s; see docs/compression.md)")
    parser.add_argument("--data", default=None, help="folder or zip of images to fine-tune on (labels unused)")
    parser.add_argument("--finetune-epochs", type=int, default=0, help="epochs per fine-tuning stage (default: 0)")
    parser.add_argument("--finetune-images", type=int, default=5000,
                        help="images of --data to use (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (Adam; default: %(default)s)")
    parser.add_argument("--eval", metavar="DIR", default=None, help="labelled images: accuracy before and after")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from squeezekit.compression.pipeline import compress, load_source

    if args.output is not None and not args.output.endswith(".sqz"):
        raise ValueError(f"-o {args.output}: the output file must end in .sqz")
    max_bytes = None if args.max_bytes is None else _byte_count(args.max_bytes)
    if args.finetune_images < 1:
        raise ValueError(f"Expected --finetune-images >= 1. Received: {args.finetune_images}")
    if not args.lr > 0:
        raise ValueError(f"Expected --lr > 0. Received: {args.lr}")
    if args.data is not None and not Path(args.data).exists():
        raise FileNotFoundError(f"--data {args.data}: no such file or folder")
    if args.eval is not None and not Path(args.eval).is_dir():
        raise FileNotFoundError(f"--eval {args.eval}: no such folder")
    from squeezekit._outputs import check_target

    log = (lambda message: print(message, file=sys.stderr)) if args.json else print
    output = Path(args.output or f"{Path(args.model).stem if Path(args.model).suffix else args.model}.sqz")
    if output.resolve() == Path(args.model).resolve():
        raise ValueError(f"-o {output}: would overwrite the model being compressed")
    check_target(output, overwrite=args.overwrite, kind=".sqz file")  # before minutes of work, not after
    source = load_source(args.model)
    import contextlib

    # Keras' fit prints progress on stdout; with --json, stdout carries only the JSON object.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with quiet:
        result = compress(source, prune=args.prune, bits=args.bits, data=args.data, finetune_epochs=args.finetune_epochs,
                          finetune_images=args.finetune_images, prune_steps=args.prune_steps, learning_rate=args.lr,
                          centroid_learning_rate=args.lr, kmeans_init=args.kmeans_init, max_bytes=max_bytes,
                          eval_dir=args.eval, log=log)
    from squeezekit._resources import atomic_write_bytes

    atomic_write_bytes(output, result.data)
    if args.json:
        print(json.dumps({"model": args.model, "output": str(output), "bytes": len(result.data), "layers": result.rows,
                          "stages": result.stages, "accuracy": result.accuracy}))
        return 0
    print(result.table())
    print(f"\nwrote {output}: {len(result.data):,} bytes")
    return 0
