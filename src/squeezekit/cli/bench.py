"""Benchmark every engine and precision of a model on this machine.

For Keras eager, Keras as a TensorFlow graph, ONNX Runtime float32/int8, LiteRT float32/float16/
dynamic/int8 and OpenVINO float32/int8 (NNCF; with squeezekit[openvino]): median and p90 latency at
batch 1, throughput at batch 32, file size, peak memory (each engine runs in its own process), top-1
agreement with the float32 Keras model and, on labelled images, top-1 accuracy; the runtime's overhead
over the raw engine call; and `squeezekit predict` on one image as a whole process. Warm-up runs precede
the timed ones; medians are reported.

examples:
  squeezekit bench
  squeezekit bench --engines onnxruntime-fp32,litert-int8 --repeats 100 --json results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from squeezekit.benchmark import ENGINES

    parser.add_argument("--model", default="squeezenet1_1", help="pretrained name, .keras or .sqz file (default: %(default)s)")
    parser.add_argument("--engines", type=_csv, default=tuple(ENGINES), help=f"comma-separated, from: {','.join(ENGINES)}")
    parser.add_argument("--batch-sizes", type=_csv, default=("1", "32"), help="comma-separated (default: 1,32)")
    parser.add_argument("--input-size", type=int, default=224, help="square input size (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0, help="threads per engine (default: all cores)")
    parser.add_argument("--repeats", type=int, default=200, help="timed runs at batch 1 (default: %(default)s)")
    parser.add_argument("--images", help="labelled images for agreement/accuracy (default: the shared ImageNet sample)")
    parser.add_argument("--max-images", type=int, default=1000, help="at most this many evaluation images")
    parser.add_argument("--work-dir", help="where exported artefacts go (default: a temporary folder)")
    parser.add_argument("--json", metavar="PATH", help="also write the full report as JSON here")
    parser.add_argument("--markdown", metavar="PATH", help="also write the Markdown table here")
    parser.add_argument("--overwrite", action="store_true", help="replace existing --json / --markdown files")


def run(args: argparse.Namespace) -> int:
    from squeezekit.benchmark import BenchSettings, run_bench
    from squeezekit.reports import bench_markdown

    try:
        batch_sizes = tuple(int(b) for b in args.batch_sizes)
    except ValueError:
        raise ValueError(f"Expected --batch-sizes like 1,32. Received: {','.join(args.batch_sizes)}") from None
    if args.repeats < 1 or args.max_images < 1 or args.threads < 0:
        raise ValueError("Expected --repeats >= 1, --max-images >= 1 and --threads >= 0")
    if args.threads:
        from squeezekit.runtime.engines import resolve_threads

        resolve_threads(args.threads)
    from squeezekit._outputs import check_target

    reports = [Path(p) for p in (args.json, args.markdown) if p]
    for path in reports:  # before minutes of measuring, not after
        check_target(path, overwrite=args.overwrite, kind="report file")
    settings = BenchSettings(
        model=args.model, engines=args.engines, batch_sizes=batch_sizes, threads=args.threads,
        input_size=args.input_size, repeats=args.repeats, warmup=max(5, args.repeats // 10), images=args.images,
        max_images=args.max_images, work_dir=args.work_dir,
    )
    report = run_bench(settings, log=lambda message: print(message, file=sys.stderr, flush=True))
    table = bench_markdown(report)
    print(table)
    from squeezekit._resources import atomic_write_bytes

    if args.json:
        atomic_write_bytes(Path(args.json), json.dumps(report, indent=1).encode())
    if args.markdown:
        atomic_write_bytes(Path(args.markdown), table.encode())
    return 0
