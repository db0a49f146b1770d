"""Design-space exploration: train a sweep of metaparameters with one recipe and compare accuracy
against model size, as the paper's section 5 (Figure 3) and section 6 (bypasses) do.

Each --sweep varies one SqueezeNetConfig field around the base architecture; fixed values for that
sweep follow an @. Writes OUT/results.json, OUT/results.md (a table per sweep) and OUT/tradeoff.png
(accuracy against model size, one line per sweep, error bars with --seeds > 1). Rerunning the same
command skips finished trials and resumes an interrupted one from its last checkpoint.

Trials are independent. To spread them over processes, devices or hosts sharing OUT (a network
folder), start the command on each with --worker I/N (worker I of N runs trials I, I+N, ...), then
once more without --worker to write the report.

exit status: 0 done, 1 a trial failed, 2 bad usage (unknown metaparameter, impossible value, a
configuration that does not fit the input size, a budget too small for one epoch).

examples:
  squeezekit explore --data cifar10-jpeg.zip --sweep squeeze_ratio=0.125,0.25,0.5,0.75,1.0 --epochs 8 --out sr
  squeezekit explore --data cifar10-jpeg.zip --sweep 'pct_3x3=0.01,0.25,0.5,0.75,0.99@squeeze_ratio=0.5' \\
      --sweep bypass=none,simple,complex --budget-minutes 120 --seeds 2 --out design
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="training images: class folders or a zip (train/test splits used)")
    parser.add_argument("--val", default=None, help="validation images (default: the data's test split or 10 %%)")
    parser.add_argument("--sweep", action="append", required=True, metavar="NAME=V1,V2[@NAME=V,...]",
                        help="a metaparameter and its values (repeatable)")
    parser.add_argument("--base", default="squeezenet1_1", help="architecture swept around (default: %(default)s)")
    parser.add_argument("--recipe", default="cifar", choices=("paper", "cifar", "finetune"),
                        help="training recipe for every trial (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: the recipe's)")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="cap the epochs so that all trials fit this wall time (estimated from a timed step)")
    parser.add_argument("--seeds", type=int, default=1, help="runs per configuration (default: %(default)s)")
    parser.add_argument("--worker", default=None, metavar="I/N", help="run only trials I, I+N, ... (0 <= I < N)")
    parser.add_argument("--out", required=True, help="folder of the trials and the report")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def _worker(text: str | None):
    if text is None:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--worker {text!r}: expected I/N, e.g. 0/4") from None
    if not 0 <= index < count:
        raise ValueError(f"--worker {text!r}: expected 0 <= I < N")
    return index, count


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from squeezekit.explore import parse_sweep, run_exploration

    sweeps = [parse_sweep(text) for text in args.sweep]
    if args.budget_minutes is not None and not args.budget_minutes > 0:
        raise ValueError(f"Expected --budget-minutes > 0. Received: {args.budget_minutes}")
    if not Path(args.data).exists():
        raise FileNotFoundError(f"--data {args.data}: no such file or folder")
    report = run_exploration(data=args.data, out=args.out, sweeps=sweeps, base=args.base, recipe=args.recipe,
                             val=args.val, epochs=args.epochs, seeds=args.seeds, budget_minutes=args.budget_minutes,
                             worker=_worker(args.worker))
    if args.json:
        print(json.dumps(report))
    else:
        print(f"wrote {Path(args.out) / 'results.md'} and {Path(args.out) / 'tradeoff.png'}")
    return 0
