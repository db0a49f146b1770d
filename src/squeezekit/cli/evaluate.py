"""Top-1 and top-5 accuracy of a model on a folder of labelled images.

MODEL is anything predict takes, and more: a pretrained name (squeezenet1_0, squeezenet1_1, or a tagged
one such as squeezenet1_1.imagenet_caffe_fp16; run as its float32 ONNX model), a .onnx, .tflite or
.sqz file (ONNX Runtime or LiteRT, without TensorFlow), a .keras file or a SavedModel folder (with
Keras or TensorFlow). DATA holds class subfolders (wnid folders such as n01440764/ for ImageNet
models) or <wnid>_*.JPEG files. The model's own preprocessing is applied; unreadable files are
skipped and counted.

examples:
  squeezekit evaluate squeezenet1_1 $SQUEEZEKIT_DATA_DIR/imagenet/sample-1000
  squeezekit evaluate squeezenet1_0 imagenet/val --batch-size 64 --limit 5000 --json
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="pretrained name, .onnx, .tflite, .sqz or .keras file, or SavedModel folder")
    parser.add_argument("data", metavar="DATA", help="folder of labelled images")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    parser.add_argument("--json", action="store_true", help="print one JSON object (top1, top5, n, skipped, ...)")


def run(args: argparse.Namespace) -> int:
    from squeezekit.evaluation import evaluate_images, find_labelled_images
    from squeezekit.opener import open_model

    if args.batch_size < 1:
        raise ValueError(f"Expected --batch-size >= 1. Received: --batch-size {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"Expected --limit >= 1. Received: --limit {args.limit}")
    # Pretrained names run in float32, so that their accuracy is the weights' own, not an int8 copy's.
    classifier = open_model(args.model, purpose="squeezekit evaluate", precision="float32")
    images = find_labelled_images(args.data, classifier.metadata)
    result = evaluate_images(classifier.predict, images, classifier.metadata, batch_size=args.batch_size,
                             limit=args.limit)
    if args.json:
        print(json.dumps({"model": args.model, "data": args.data, **result.to_dict()}))
        return 0
    print(f"{args.model} on {args.data}: top-1 {100 * result.top1:.2f} %  top-5 {100 * result.top5:.2f} %  "
          f"({result.n} images, {result.n / result.seconds:.1f} images/s)")
    if result.skipped:
        print(f"skipped {len(result.skipped)} file(s):", file=sys.stderr)
        from squeezekit._outputs import one_line

        for path, reason in result.skipped[:20]:
            print(f"  {one_line(path)}: {one_line(reason)}", file=sys.stderr)
        if len(result.skipped) > 20:
            print(f"  ... and {len(result.skipped) - 20} more (--json lists them all)", file=sys.stderr)
    return 0
