"""Design-space exploration: train a sweep of metaparameters with one recipe and compare accuracy
against model size, as the paper's section 5 (Figure 3) and section 6 (bypasses) do.

Each --sweep varies one SqueezeNetConfig field around the base architecture; fixed values for that
sweep follow an @. Writes OUT/results.json, OUT/results.md (a table per sweep) and OUT/tradeoff.png
(a panel per sweep, as the paper's Figure 3: top-1 against the swept value, each point labelled with
its model size, error bars with --seeds > 1). Rerunning the same command skips finished trials and
resumes an interrupted one from its last checkpoint; with --report-only it trains nothing and
reports the trials finished so far.

Trials are handed out by a KerasTuner oracle, first come first served. On one machine they run in
turn. To spread them over processes, devices or hosts, start the same command once as the chief (it
serves the trials and writes the report) and once per worker (each trains the next trial nobody
has), all sharing OUT (a network folder), with KerasTuner's environment variables:
  KERASTUNER_TUNER_ID=chief|tuner0|tuner1...  KERASTUNER_ORACLE_IP=<chief host>  KERASTUNER_ORACLE_PORT=8000
Pin one worker to each device with CUDA_VISIBLE_DEVICES, or let several share one GPU (with JAX, set
XLA_PYTHON_CLIENT_PREALLOCATE=false so that each takes only the memory it uses).

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

from squeezekit.training.recipes import RECIPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="training images: class folders or a zip (train/test splits used)")
    parser.add_argument("--val", default=None, help="validation images (default: the data's test split or 10 %%)")
    parser.add_argument("--sweep", action="append", required=True, metavar="NAME=V1,V2[@NAME=V,...]",
                        help="a metaparameter and its values (repeatable)")
    parser.add_argument("--base", default="squeezenet1_1", help="architecture swept around (default: %(default)s)")
    parser.add_argument("--recipe", default="cifar", choices=tuple(RECIPES),
                        help="training recipe for every trial (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: the recipe's)")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="cap the epochs so that all trials fit this wall time (estimated from a timed step)")
    parser.add_argument("--seeds", type=int, default=1, help="runs per configuration (default: %(default)s)")
    parser.add_argument("--out", required=True, help="folder of the trials and the report")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the report of the trials finished so far")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from squeezekit.explore import parse_sweep, run_exploration, scheduler_role

    sweeps = [parse_sweep(text) for text in args.sweep]
    if args.budget_minutes is not None and not args.budget_minutes > 0:
        raise ValueError(f"Expected --budget-minutes > 0. Received: {args.budget_minutes}")
    if not Path(args.data).exists():
        raise FileNotFoundError(f"--data {args.data}: no such file or folder")
    report = run_exploration(data=args.data, out=args.out, sweeps=sweeps, base=args.base, recipe=args.recipe,
                             val=args.val, epochs=args.epochs, seeds=args.seeds, budget_minutes=args.budget_minutes,
                             report_only=args.report_only, log=print)
    if args.json:
        print(json.dumps(report))
    elif scheduler_role() == "worker":
        print(f"worker done: {len(report['trials'])} trials finished in {args.out}; the chief writes the report")
    else:
        print(f"wrote {Path(args.out) / 'results.md'} and {Path(args.out) / 'tradeoff.png'}")
    return 0
