"""Shared by the training benchmarks: run `squeezekit train ... --json`, time it, write the results."""

import json
import subprocess
import sys
import time

from _results import write_results


def run_and_report(command: list[str], name: str, split: str) -> None:
    """Run ``command`` (a `squeezekit train --json` command line), then write results/NAME.{json,md}."""
    start = time.perf_counter()
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        sys.exit(completed.returncode)
    metrics = json.loads(completed.stdout.strip().splitlines()[-1])
    result = {"command": " ".join(command[1:]), "wall_seconds": round(wall, 1), **metrics}
    table = (f"| {split} top-1 | {split} top-5 | epochs | wall time | training images/s (median epoch) | parameters |\n"
             "|---|---|---|---|---|---|\n"
             f"| {100 * metrics['top1']:.2f} % | {100 * metrics['top5']:.2f} % | {metrics['epochs']} | {wall / 60:.1f} min | "
             f"{metrics['images_per_second']} | {metrics['parameters']:,} |\n")
    write_results(name, result, table)
