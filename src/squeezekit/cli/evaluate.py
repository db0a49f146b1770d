"""Top-1 and top-5 accuracy of a model on a folder of labelled images.

MODEL is a pretrained name (squeezenet1_0, squeezenet1_1, or a tagged one such as
squeezenet1_1.imagenet_caffe_fp16), a saved .keras file or a compressed .sqz file (run by ONNX
Runtime, without TensorFlow). DATA holds class subfolders (wnid folders
such as n01440764/ for ImageNet models) or <wnid>_*.JPEG files. The model's own preprocessing is
applied; unreadable files are skipped and counted.

examples:
  squeezekit evaluate squeezenet1_1 $SQUEEZEKIT_DATA_DIR/imagenet/sample-1000
  squeezekit evaluate squeezenet1_0 imagenet/val --batch-size 64 --limit 5000 --json
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="pretrained name, .keras or .sqz file")
    parser.add_argument("data", metavar="DATA", help="folder of labelled images")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    parser.add_argument("--json", action="store_true", help="print one JSON object (top1, top5, n, skipped, ...)")


def run(args: argparse.Namespace) -> int:
    from squeezekit.evaluation import evaluate_images, find_labelled_images
    from squeezekit.models.loading import load_model

    if args.batch_size < 1:
        raise ValueError(f"Expected --batch-size >= 1. Received: --batch-size {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"Expected --limit >= 1. Received: --limit {args.limit}")
    if args.model.endswith(".sqz"):
        from squeezekit.runtime.compressed import open_sqz

        predict, metadata = open_sqz(args.model)
    else:
        model, metadata = load_model(args.model)
        predict = model.predict_on_batch
    images = find_labelled_images(args.data, metadata)
    result = evaluate_images(predict, images, metadata, batch_size=args.batch_size, limit=args.limit)
    if args.json:
        print(json.dumps({"model": args.model, "data": args.data, **result.to_dict()}))
        return 0
    print(f"{args.model} on {args.data}: top-1 {100 * result.top1:.2f} %  top-5 {100 * result.top5:.2f} %  "
          f"({result.n} images, {result.n / result.seconds:.1f} images/s)")
    if result.skipped:
        print(f"skipped {len(result.skipped)} file(s):", file=sys.stderr)
        for path, reason in result.skipped[:20]:
            print(f"  {path}: {reason}", file=sys.stderr)
        if len(result.skipped) > 20:
            print(f"  ... and {len(result.skipped) - 20} more (--json lists them all)", file=sys.stderr)
    return 0
