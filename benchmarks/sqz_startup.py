"""`squeezekit predict model.sqz photo.jpg` as a whole process: the first start (decode the .sqz, build
and cache its ONNX graph) against later ones (the cached graph), interleaved in one run.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/sqz_startup.py [--runs 7]

The first-start figure is what every start cost before the cache (the graph was rebuilt each time),
plus hashing and writing the cache. Each pair runs once with an emptied cache and once with it warm.
Writes benchmarks/results/sqz_startup.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from squeezekit.samples import sample_images

    photo = str(sample_images()[0])
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model = work / "v1_0.sqz"
        subprocess.run([sys.executable, "-m", "squeezekit", "compress", "squeezenet1_0", "-o", str(model)],
                       check=True, capture_output=True)
        sqz_bytes = model.stat().st_size
        home = work / "home"
        environment = {**os.environ, "SQUEEZEKIT_HOME": str(home)}
        command = [sys.executable, "-m", "squeezekit", "predict", photo, "--model", str(model)]

        def timed() -> float:
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, env=environment, timeout=600)
            return time.perf_counter() - start

        timed()  # the operating system's file cache, the interpreter's bytecode
        first, cached = [], []
        for _ in range(args.runs):
            shutil.rmtree(home / "artefacts" / "sqz", ignore_errors=True)
            first.append(timed())
            cached.append(timed())
    result = {"command": "SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/sqz_startup.py", "runs": args.runs,
              "sqz_bytes": sqz_bytes,
              "first_start_median_s": statistics.median(first), "cached_start_median_s": statistics.median(cached),
              "first_start_s": first, "cached_start_s": cached, "goal_s": 0.5}
    result["ratio"] = result["cached_start_median_s"] / result["first_start_median_s"]
    markdown = ("| `predict model.sqz photo.jpg` | median of {runs} | \n|---|---:|\n"
                "| first start (decode, build and cache the graph; what every start cost before) | {f:.3f} s |\n"
                "| later starts (cached graph) | {c:.3f} s |\n\nRatio {r:.2f}; goal <= 0.5 s: {met}.\n").format(
        runs=args.runs, f=result["first_start_median_s"], c=result["cached_start_median_s"], r=result["ratio"],
        met="met" if result["cached_start_median_s"] <= 0.5 else "not met")
    write_results("sqz_startup", result, markdown)


if __name__ == "__main__":
    main()
