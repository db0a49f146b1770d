"""Classify images with an exported model or a pretrained name, without TensorFlow or Keras.

Inputs are image files, folders (their images, recursively) and glob patterns. The default model is
the pretrained SqueezeNet v1.1 in its fastest verified form, built and cached on first use (an int8
ONNX model when it agrees with the float32 one, else float32). Files that cannot be read are reported
one per line with the reason, and the others are still classified.

exit status: 0 every image classified, 1 some input failed, 2 usage error (a missing, unknown,
truncated or foreign model; no input found).

examples:
  squeezekit predict photo.jpg
  squeezekit predict --samples
  squeezekit predict photos/ 'more/*.png' --model squeezenet1_1.int8.tflite --top-k 3 --json
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="IMAGE_OR_FOLDER", help="image files, folders or glob patterns")
    parser.add_argument("--samples", action="store_true",
                        help="also classify a few real sample photos (from SQUEEZEKIT_DATA_DIR, else downloaded)")
    parser.add_argument("--model", default="squeezenet1_1",
                        help="pretrained name, .onnx/.tflite/.sqz file (no TensorFlow), or .keras file or SavedModel "
                             "folder (with Keras) (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=5, help="classes per image (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image (JSON lines)")


def run(args: argparse.Namespace) -> int:
    from squeezekit._outputs import one_line
    from squeezekit.opener import open_model
    from squeezekit.runtime import expand_inputs

    if args.top_k < 1:
        raise ValueError(f"Expected --top-k >= 1. Received: --top-k {args.top_k}")
    if args.batch_size < 1:
        raise ValueError(f"Expected --batch-size >= 1. Received: --batch-size {args.batch_size}")
    if args.threads is not None:
        from squeezekit.runtime.engines import resolve_threads

        resolve_threads(args.threads)  # before any image is read
    if not args.inputs and not args.samples:
        raise ValueError("no input: name image files, folders or glob patterns, or pass --samples")
    files, problems = expand_inputs(args.inputs)
    if args.samples:
        from squeezekit.samples import sample_images

        files += [str(path) for path in sample_images()]
    if not files and problems and len(problems) == len(args.inputs):
        raise ValueError("; ".join(p.error for p in problems))
    classifier = open_model(args.model, purpose="squeezekit predict", threads=args.threads)
    failed = 0
    for result in [*problems, *classifier.classify(files, top_k=args.top_k, batch_size=args.batch_size)]:
        if args.json:
            print(json.dumps(result.to_dict()), flush=True)
        elif result.error is None:
            labels = ", ".join(f"{name} ({probability:.3f})" for _, name, probability in result.top)
            print(f"{one_line(result.file)}: {labels}", flush=True)
        if result.error is not None:
            failed += 1
            if not args.json:
                print(f"squeezekit predict: {one_line(result.error)}", file=sys.stderr)
    return 1 if failed else 0
