"""Dense int8 at v1.1's native 227x227: every engine in one run, where the time goes, and the limit.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/int8_profile.py [--repeats 200] [--profile-runs 100] [--rounds 15] [--calls 50]

1. ``squeezekit bench`` (its Python function) at 227x227, batch 1, 2 threads, each engine in its own
   process: ONNX Runtime float32 / int8, OpenVINO float32 / int8 (NNCF), LiteRT int8, with the Keras
   graph as the float32 reference for agreement and top-1 on sample-1000. The same command line:
   ``squeezekit bench --input-size 227 --batch-sizes 1 --threads 2 --engines keras-graph,onnxruntime-fp32,
   onnxruntime-int8,openvino-fp32,openvino-int8,litert-int8``.
2. Per-op profiles of the same files: ONNX Runtime's own profiler (``enable_profiling``, kernel time per
   node), OpenVINO's performance counters (``PERF_COUNT``: time per node and the kernel it ran, which
   shows whether the int8 convolutions got a JIT kernel for this CPU). LiteRT's Python interpreter has
   no per-op profiler, so it has latency only.
2b. Latency again, interleaved in this one process (``--rounds`` rounds, each timing every engine for
   ``--calls`` calls in turn, the median over all calls): the machine's load drifts between the bench's
   processes (LiteRT int8 measured 1.27 ms in one run and 2.12 ms in the next), and ratios are only
   meaningful between figures taken side by side. The headline ratios use these.
3. The arithmetic limit: the model's MACs over the int8 multiply-accumulates this CPU can issue (64 a
   cycle a core with AVX-512 VNNI's ``vpdpbusd`` on two 256-bit pipes, 32 without VNNI, where
   ``vpmaddubsw`` + ``vpmaddwd`` + ``vpaddd`` do the same work in three instructions; the clock is
   /proc/cpuinfo's). It is a floor the engines cannot reach, quoted to say how far they are from it.

Writes benchmarks/results/int8_profile.{json,md}. Run it on an otherwise idle machine.
"""

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from _results import write_results
from squeezekit.benchmark import BenchSettings, run_bench

ENGINES = ("keras-graph", "onnxruntime-fp32", "onnxruntime-int8", "openvino-fp32", "openvino-int8", "litert-int8")
INPUT_SIZE, THREADS = 227, 2


def cpu_limit() -> dict:
    flags, mhz = set(), []
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
        elif line.startswith("cpu MHz"):
            mhz.append(float(line.split(":", 1)[1]))
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags
    per_cycle = 64 if vnni else 32
    return {"vnni": vnni, "avx512": "avx512f" in flags, "mhz": max(mhz) if mhz else None,
            "int8_macs_per_cycle_per_core": per_cycle}


def onnxruntime_profile(path: str, image: np.ndarray, runs: int) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for _ in range(runs):
        session.run(None, {name: image})
    events = json.loads(Path(session.end_profiling()).read_text())
    by_type, nodes = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"].get("op_name", "?")
            by_type[op] += event["dur"]
            nodes[(event["name"][: -len("_kernel_time")], op)] += event["dur"]
    # Runs include warm-up-free first calls; per-run means over all of them are close enough for shares.
    total = sum(by_type.values())
    return {"kernel_ms_per_run": total / runs / 1e3,
            "by_op": {op: {"ms": us / runs / 1e3, "share": us / total} for op, us in by_type.most_common()},
            "top_nodes": [{"node": node, "op": op, "ms": us / runs / 1e3} for (node, op), us in nodes.most_common(8)]}


def openvino_profile(path: str, image: np.ndarray, runs: int) -> dict:
    import openvino as ov

    core = ov.Core()
    # The runtime's settings (OpenVinoEngine): f32, not the bfloat16 the plugin picks on AVX512_BF16 CPUs.
    compiled = core.compile_model(path, "CPU", {"PERF_COUNT": "YES", "INFERENCE_NUM_THREADS": THREADS,
                                                "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                                                "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    for _ in range(10):
        request.infer({0: image})
    by_type, kernels, nodes = collections.Counter(), collections.Counter(), collections.Counter()
    for _ in range(runs):
        request.infer({0: image})
        for info in request.profiling_info:
            us = info.real_time.total_seconds() * 1e6
            by_type[info.node_type] += us
            kernels[f"{info.node_type} ({info.exec_type})"] += us
            nodes[(info.node_name, info.node_type, info.exec_type)] += us
    total = sum(by_type.values())
    return {"kernel_ms_per_run": total / runs / 1e3,
            "by_op": {op: {"ms": us / runs / 1e3, "share": us / total} for op, us in by_type.most_common()},
            "by_kernel": {k: {"ms": us / runs / 1e3, "share": us / total} for k, us in kernels.most_common(10)},
            "top_nodes": [{"node": n, "op": op, "kernel": kernel, "ms": us / runs / 1e3}
                          for (n, op, kernel), us in nodes.most_common(8)]}


def interleaved_latency(engines: dict, image: np.ndarray, rounds: int, calls: int) -> dict[str, dict]:
    """Median batch-1 latency of every engine, the engines timed in turn ``rounds`` times (see 2b above)."""
    times = {name: [] for name in engines}
    for engine in engines.values():  # warm-up: first-call allocations, JIT kernels
        for _ in range(20):
            engine(image)
    for _ in range(rounds):
        for name, engine in engines.items():
            for _ in range(calls):
                start = time.perf_counter()
                engine(image)
                times[name].append(time.perf_counter() - start)
    return {name: {"median_ms": 1e3 * float(np.median(values)), "p10_ms": 1e3 * float(np.percentile(values, 10)),
                   "p90_ms": 1e3 * float(np.percentile(values, 90))} for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--profile-runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    from squeezekit.graph import layer_table
    from squeezekit.registry import get_preset

    work = Path(tempfile.mkdtemp(prefix="int8-profile-"))
    started = time.perf_counter()
    report = run_bench(BenchSettings(model="squeezenet1_1", engines=ENGINES, batch_sizes=(1,), threads=THREADS,
                                     input_size=INPUT_SIZE, repeats=args.repeats, predict_runs=0, work_dir=str(work)),
                       log=print)
    rows = {row["engine"]: row for row in report["engines"] if "latency_batch_1" in row}
    macs = layer_table(get_preset("squeezenet1_1"), INPUT_SIZE).macs
    limit = cpu_limit()
    floor_ms = (macs / (limit["int8_macs_per_cycle_per_core"] * limit["mhz"] * 1e6 * THREADS) * 1e3
                if limit["mhz"] else None)

    crops = np.load(work / "crops.npy", mmap_mode="r")
    image = np.ascontiguousarray(crops[:1], dtype=np.float32)
    profiles = {}
    for engine in ("onnxruntime-fp32", "onnxruntime-int8"):
        if engine in rows:
            profiles[engine] = onnxruntime_profile(rows[engine]["path"], image, args.profile_runs)
    for engine in ("openvino-fp32", "openvino-int8"):
        if engine in rows:
            profiles[engine] = openvino_profile(rows[engine]["path"], image, args.profile_runs)

    from squeezekit.runtime.engines import open_engine

    interleaved = interleaved_latency({engine: open_engine(row["path"], THREADS) for engine, row in rows.items()
                                       if engine != "keras-graph"}, image, args.rounds, args.calls)
    fp32 = interleaved["onnxruntime-fp32"]["median_ms"]
    lines = [f"SqueezeNet v1.1 at {INPUT_SIZE}x{INPUT_SIZE}, batch 1, {THREADS} threads. Latency: the engines in one "
             f"process, timed in turn, {args.rounds} rounds of {args.calls} calls, median (p10-p90); beside it the "
             f"median of {args.repeats} runs in a process of its own (`squeezekit bench`). Agreement and top-1 on "
             f"{report['n_images']} images of sample-1000. "
             f"CPU: {'AVX-512 VNNI' if limit['vnni'] else 'no VNNI'} ({'AVX-512' if limit['avx512'] else 'AVX2'}), "
             f"{limit['mhz']:.0f} MHz; {macs / 1e6:.0f} M MACs, int8 floor {floor_ms:.2f} ms "
             f"({limit['int8_macs_per_cycle_per_core']} MACs a cycle a core).", "",
             "| engine | latency, interleaved | / ONNX Runtime fp32 | floor / latency | own process | "
             "top-1 agreement with fp32 | top-1 | size |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for engine in ENGINES:
        row = rows.get(engine)
        if row is None:
            continue
        alone = row["latency_batch_1"]["median_ms"]
        timing = interleaved.get(engine)
        ms = timing["median_ms"] if timing else None
        side_by_side = (f"{ms:.2f} ms ({timing['p10_ms']:.2f}-{timing['p90_ms']:.2f}) | {ms / fp32:.2f}x"
                        if timing else " | ")
        share = f"{100 * floor_ms / ms:.0f} %" if floor_ms and ms and "int8" in engine else ""
        agreement = row.get("top1_agreement_with_fp32")
        size = f"{row['size_bytes']:,} B" if "size_bytes" in row else ""
        lines.append(f"| {engine} | {side_by_side} | {share} | {alone:.2f} ms | "
                     f"{'' if agreement is None else f'{100 * agreement:.1f} %'} | {100 * row.get('top1_accuracy', float('nan')):.1f} % | {size} |")
    for engine, profile in profiles.items():
        lines += ["", f"### {engine}: {profile['kernel_ms_per_run']:.2f} ms of kernels a run", "",
                  "| op | ms a run | share |", "|---|---:|---:|"]
        lines += [f"| {op} | {v['ms']:.3f} | {100 * v['share']:.1f} % |" for op, v in list(profile["by_op"].items())[:8]]
        if "by_kernel" in profile:
            lines += ["", "| op (kernel) | ms a run | share |", "|---|---:|---:|"]
            lines += [f"| {k} | {v['ms']:.3f} | {100 * v['share']:.1f} % |" for k, v in profile["by_kernel"].items()]
    lines += ["", f"`SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/int8_profile.py` "
                  f"({(time.perf_counter() - started) / 60:.1f} min)"]
    result = {"input_size": INPUT_SIZE, "threads": THREADS, "macs": macs, "cpu": limit, "int8_floor_ms": floor_ms,
              "interleaved": {"rounds": args.rounds, "calls": args.calls, "latency": interleaved},
              "bench": report, "profiles": profiles}
    write_results("int8_profile", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
