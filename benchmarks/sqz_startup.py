"""`squeezekit predict model.sqz photo.jpg` as a whole process: the first start (decode the .sqz, build
and cache its ONNX graph) against later ones (the cached graph), interleaved in one run.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/sqz_startup.py [--runs 7]

The first-start figure is what every start cost before the cache (the graph was rebuilt each time),
plus hashing and writing the cache. Each pair runs once with an emptied cache and once with it warm,
and beside them the floor no squeezekit code can go below: an interpreter that imports numpy, Pillow
and ONNX Runtime and nothing else.

Python runs from compiled bytecode, as an installed package does (pip compiles it at install): the
benchmark drops PYTHONDONTWRITEBYTECODE, which some sandboxes set and which made every start compile
about 45 modules from source (0.06 s), and keeps the bytecode in its scratch folder.
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
        environment = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        environment.update(SQUEEZEKIT_HOME=str(home), PYTHONPYCACHEPREFIX=str(work / "bytecode"))
        command = [sys.executable, "-m", "squeezekit", "predict", photo, "--model", str(model)]
        floor_command = [sys.executable, "-c", "import numpy, onnxruntime, PIL.Image"]

        def timed(argv=command) -> float:
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True, env=environment, timeout=600)
            return time.perf_counter() - start

        timed()  # the operating system's file cache, the interpreter's bytecode
        first, cached, floor = [], [], []
        for _ in range(args.runs):
            shutil.rmtree(home / "artefacts" / "sqz", ignore_errors=True)
            first.append(timed())
            cached.append(timed())
            floor.append(timed(floor_command))
    result = {"command": "SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/sqz_startup.py", "runs": args.runs,
              "sqz_bytes": sqz_bytes,
              "first_start_median_s": statistics.median(first), "cached_start_median_s": statistics.median(cached),
              "imports_floor_median_s": statistics.median(floor),
              "first_start_s": first, "cached_start_s": cached, "imports_floor_s": floor, "goal_s": 0.5}
    result["ratio"] = result["cached_start_median_s"] / result["first_start_median_s"]
    markdown = ("| `predict model.sqz photo.jpg` | median of {runs} | \n|---|---:|\n"
                "| first start (decode, build and cache the graph; what every start cost before) | {f:.3f} s |\n"
                "| later starts (cached graph) | {c:.3f} s |\n"
                "| floor: `python -c 'import numpy, onnxruntime, PIL.Image'` | {i:.3f} s |\n\n"
                "Ratio {r:.2f}; goal <= 0.5 s: {met}. Bytecode compiled, as installed by pip.\n").format(
        runs=args.runs, f=result["first_start_median_s"], c=result["cached_start_median_s"], r=result["ratio"],
        i=result["imports_floor_median_s"], met="met" if result["cached_start_median_s"] <= 0.5 else "not met")
    write_results("sqz_startup", result, markdown)


if __name__ == "__main__":
    main()
