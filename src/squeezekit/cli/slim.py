"""Channel pruning: remove whole filters so that MODEL becomes a narrower, faster dense network.

Deep Compression's pruning (squeezekit compress) zeroes single weights: the file shrinks, the CPU
time does not. slim removes whole channels instead, from conv1 and every squeeze and expand
convolution (the classifier keeps its classes), until the network needs --macs of its
multiply-accumulates: --macs 0.4 keeps 40 %. Channels are ranked by how much the next layers would
change without them (activation spread on --data times their weights; the removed channels' means
are folded into the next biases), relative to the other channels of their layer, so layers whose
channels matter unequally lose more. A removed squeeze channel takes the matching expand inputs with
it; a removed expand channel leaves the concatenation and the next squeeze's inputs. With
--finetune-epochs the network is distilled after each of --steps steps towards MODEL's own outputs
on the photos of --data (no labels needed).

The result is a .keras file whose metadata records the new widths (conv1_filters, fire_widths):
export it (LiteRT, ONNX, int8, TFLM), compress or evaluate it as any other model. Networks with
bypasses are refused (an addition ties two layers' channels together).

exit status: 0 written, 1 the work failed, 2 bad usage or input.

examples:
  squeezekit slim runs/cifar/best.keras --macs 0.4 --data cifar10-jpeg.zip --finetune-epochs 3 -o slim.keras
  squeezekit slim runs/cifar/best.keras --macs 0.25 --steps 4 --data train/ --finetune-epochs 2 --eval test/
  squeezekit export slim.keras --format litert --quantize int8
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="pretrained name, .keras or .sqz file (without bypasses)")
    parser.add_argument("-o", "--output", default=None, help="the .keras file to write (default: MODEL's name + -slim.keras)")
    parser.add_argument("--macs", type=float, default=0.5,
                        help="share of MODEL's multiply-accumulates to keep, in (0, 1] (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=2,
                        help="reach --macs in this many steps of equal ratio, fine-tuning after each "
                             "(default: %(default)s)")
    parser.add_argument("--data", required=True,
                        help="folder or zip of images like the model's own (labels unused; a zip's train/ "
                             "folder when it has one): channel statistics and fine-tuning")
    parser.add_argument("--finetune-epochs", type=int, default=0, help="distillation epochs per step (default: 0)")
    parser.add_argument("--finetune-images", type=int, default=20000, help="images of --data to fine-tune on "
                                                                            "(default: %(default)s)")
    parser.add_argument("--statistics-images", type=int, default=1000,
                        help="images of --data that rank the channels (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate (Adam, cosine decay; "
                                                               "default: %(default)s)")
    parser.add_argument("--eval", metavar="DIR", default=None, help="labelled images: accuracy after every step")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def run(args: argparse.Namespace) -> int:
    import contextlib
    from pathlib import Path

    from squeezekit._outputs import check_target
    from squeezekit.compression.slim import check_options, slim
    from squeezekit.compression.pipeline import require_keras, load_source

    if args.output is not None and not args.output.endswith(".keras"):
        raise ValueError(f"-o {args.output}: the output file must end in .keras")
    check_options(macs=args.macs, steps=args.steps, finetune_epochs=args.finetune_epochs,
                  finetune_images=args.finetune_images, statistics_images=args.statistics_images)
    if not args.lr > 0:
        raise ValueError(f"Expected --lr > 0. Received: {args.lr}")
    if not Path(args.data).exists():
        raise FileNotFoundError(f"--data {args.data}: no such file or folder")
    if args.eval is not None and not Path(args.eval).is_dir():
        raise FileNotFoundError(f"--eval {args.eval}: no such folder")
    require_keras("squeezekit slim")
    stem = Path(args.model).stem if Path(args.model).suffix else args.model
    output = Path(args.output or f"{stem}-slim.keras")
    if output.resolve() == Path(args.model).resolve():
        raise ValueError(f"-o {output}: would overwrite the model being slimmed")
    from squeezekit.formats.metadata import sidecar_path

    check_target(output, overwrite=args.overwrite, kind=".keras file")  # before minutes of work, not after
    check_target(sidecar_path(output), overwrite=args.overwrite, kind="model metadata file")
    source = load_source(args.model)
    log = (lambda message: print(message, file=sys.stderr)) if args.json else print
    # Keras' fit prints progress on stdout; with --json, stdout carries only the JSON object.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with quiet:
        result = slim(source, macs=args.macs, steps=args.steps, data=args.data, finetune_epochs=args.finetune_epochs,
                      finetune_images=args.finetune_images, statistics_images=args.statistics_images,
                      learning_rate=args.lr, eval_dir=args.eval, log=log)
        result.save(output, args.model)
    if args.json:
        print(json.dumps({"model": args.model, "output": str(output), "stages": result.stages}))
        return 0
    from squeezekit.reports import slim_markdown

    print(slim_markdown(result.stages))
    print(f"\nwrote {output}")
    return 0
