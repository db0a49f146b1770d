"""``squeezekit bench``: latency, throughput, size, memory and agreement of every engine and precision.

Each engine runs in a fresh process (``python -m squeezekit.benchmark WORKER_SPEC``), so that its peak
memory is its own and one engine's threads never disturb another's timings. Every process gets the
same images and thread count; the parent compares their predictions with the float32 Keras model.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# engine name -> (kind, export format, quantisation)
ENGINES = {
    "keras-eager": ("keras-eager", None, None),
    "keras-graph": ("keras-graph", None, None),
    "onnxruntime-fp32": ("onnx", "onnx", "none"),
    "onnxruntime-int8": ("onnx", "onnx", "int8"),
    "litert-fp32": ("litert", "litert", "none"),
    "litert-fp16": ("litert", "litert", "float16"),
    "litert-dynamic": ("litert", "litert", "dynamic"),
    "litert-int8": ("litert", "litert", "int8"),
    "openvino-fp32": ("openvino", "openvino", "none"),  # IR converted from the ONNX float32 export
    "openvino-int8": ("openvino", "openvino", "int8"),  # NNCF post-training quantisation of it
}
# The package each engine needs beyond squeezekit[train,runtime]: missing, a default run leaves it out.
_OPTIONAL_PACKAGES = {"litert": "ai_edge_litert", "openvino": "nncf"}
INT8_ENGINES = ("litert-int8", "onnxruntime-int8", "openvino-int8")
REFERENCE_ENGINE = "keras-graph"


@dataclass
class BenchSettings:
    model: str = "squeezenet1_1"
    engines: tuple[str, ...] = tuple(ENGINES)
    batch_sizes: tuple[int, ...] = (1, 32)
    threads: int = 0  # 0: all cores
    input_size: int | None = 224
    repeats: int = 200
    warmup: int = 20
    images: str | None = None  # labelled images for accuracy/agreement (default: the shared ImageNet sample)
    max_images: int = 1000
    predict_runs: int = 7
    work_dir: str | None = None


def _peak_rss_mb() -> float:
    """This process's peak resident memory.

    /proc's VmHWM belongs to the process image, whereas getrusage's ru_maxrss survives exec and would
    report the parent's peak for a freshly started worker.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time_calls(call, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"median_ms": 1e3 * statistics.median(ordered), "p90_ms": 1e3 * ordered[int(0.9 * (len(ordered) - 1))],
            "runs": len(ordered)}


def _worker(spec: dict) -> dict:
    """Run in a fresh process: load one engine, time it, predict the evaluation images."""
    from squeezekit.config import Preprocessing
    from squeezekit.preprocessing import preprocess_input

    threads = spec["threads"]
    preprocessing = Preprocessing.from_dict(spec["preprocessing"])
    crops = np.load(spec["crops"], mmap_mode="r")
    kind = spec["kind"]
    result: dict = {"engine": spec["engine"]}
    start = time.perf_counter()
    raw_call = None
    if kind.startswith("keras"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from squeezekit.opener import open_model

        model = open_model(spec["model"], "keras", purpose="squeezekit bench", input_size=preprocessing.crop).model
        if kind == "keras-eager":
            predict = lambda batch: model(batch, training=False).numpy()  # noqa: E731
        else:
            graph = tf.function(lambda batch: model(batch, training=False), jit_compile=False, reduce_retracing=True)
            predict = lambda batch: graph(tf.constant(batch)).numpy()  # noqa: E731
    else:
        from squeezekit.runtime import Classifier

        classifier = Classifier.load(spec["path"], threads=threads)
        predict = classifier.predict
        engine = classifier.engine
        if kind == "onnx":
            session, name = engine.session, engine.input_name
            raw_call = lambda batch: session.run(None, {name: batch})[0]  # noqa: E731
        elif kind == "openvino":
            request = engine._request(1)

            def raw_call(batch):
                request.infer({0: batch})
                return request.get_output_tensor(0).data
        else:
            interpreter = engine.interpreter

            def raw_call(batch):
                interpreter.set_tensor(engine._input["index"], batch)
                interpreter.invoke()
                return interpreter.get_tensor(engine._output["index"])
    result["load_seconds"] = time.perf_counter() - start

    one = preprocess_input(np.asarray(crops[:1]), preprocessing=preprocessing)
    result["latency_batch_1"] = _summary(_time_calls(lambda: predict(one), spec["warmup"], spec["repeats"]))
    if raw_call is not None:
        predict(one)  # leave the engine at batch 1
        # Interleave the two so that drifts in machine load hit both equally.
        raw, wrapped = [], []
        for _ in range(spec["repeats"]):
            for call, sink in ((raw_call, raw), (lambda b: predict(b), wrapped)):
                t = time.perf_counter()
                call(one)
                sink.append(time.perf_counter() - t)
        result["raw_engine_batch_1_ms"] = 1e3 * statistics.median(raw)
        result["runtime_batch_1_ms"] = 1e3 * statistics.median(wrapped)
        result["runtime_overhead"] = statistics.median(wrapped) / statistics.median(raw) - 1
    for batch_size in spec["batch_sizes"]:
        if batch_size == 1:
            continue
        batch = preprocess_input(np.asarray(crops[:batch_size]) if len(crops) >= batch_size else
                                 np.resize(np.asarray(crops), (batch_size, *crops.shape[1:])), preprocessing=preprocessing)
        times = _time_calls(lambda: predict(batch), 2, max(3, spec["repeats"] // 20))
        result[f"throughput_batch_{batch_size}"] = batch_size / statistics.median(times)

    top1 = []
    for offset in range(0, len(crops), 32):
        batch = preprocess_input(np.asarray(crops[offset: offset + 32]), preprocessing=preprocessing)
        top1.extend(np.asarray(predict(batch)).argmax(axis=1).tolist())
    result["top1_indices"] = top1
    result["peak_memory_mb"] = _peak_rss_mb()
    return result


def _prepare_images(settings: BenchSettings, preprocessing, work: Path):
    """Center crops (uint8) of the evaluation images and their labels (None when unknown)."""
    from squeezekit.evaluation import find_labelled_images
    from squeezekit.formats.metadata import imagenet_metadata
    from squeezekit.preprocessing import ImageError, load_image

    source = settings.images or (Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "imagenet" / "sample-1000"
                                 if os.environ.get("SQUEEZEKIT_DATA_DIR") else None)
    if source is None:
        from squeezekit.samples import sample_images

        paths, labels = sample_images(), None
    else:
        found = find_labelled_images(source, imagenet_metadata("bench", preprocessing))
        paths, labels = found.paths[: settings.max_images], found.labels[: settings.max_images]
    crops, kept = [], []
    for i, path in enumerate(paths):
        try:
            crops.append(load_image(path, preprocessing))
            kept.append(i)
        except (ImageError, OSError):
            pass
    np.save(work / "crops.npy", np.stack(crops))
    return str(source or "sample photos"), (None if labels is None else [labels[i] for i in kept])


def _time_predict_process(model_path: str, image: str, runs: int) -> dict:
    """Wall time of ``squeezekit predict IMAGE --model MODEL`` as a whole process (interpreter start included)."""
    command = [sys.executable, "-m", "squeezekit", "predict", image, "--model", model_path]
    subprocess.run(command, capture_output=True, timeout=600, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, timeout=600, check=True)
        times.append(time.perf_counter() - start)
    return {"model": model_path, "median_s": statistics.median(times), "runs": runs, "min_s": min(times)}


def run_bench(settings: BenchSettings, log=None) -> dict:
    """Export what is needed, run every engine in its own process, and gather the figures.

    ``log`` receives one line per step (default: this module's logger); the CLI formats the report.
    """
    from squeezekit.export.api import export_model
    from squeezekit.opener import open_model
    from squeezekit.runtime.engines import default_threads

    log = log or logger.info
    unknown = [e for e in settings.engines if e not in ENGINES]
    if unknown:
        raise ValueError(f"Unknown engine(s) {unknown}. Expected some of {list(ENGINES)}")
    engines = _available(settings.engines, log)
    if any(b < 1 for b in settings.batch_sizes):
        raise ValueError(f"Expected batch sizes >= 1. Received: {settings.batch_sizes}")
    threads = settings.threads or default_threads()
    work = Path(settings.work_dir or tempfile.mkdtemp(prefix="squeezekit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    metadata = open_model(settings.model, "keras", purpose="squeezekit bench", input_size=settings.input_size).metadata
    preprocessing = metadata.preprocessing
    image_source, labels = _prepare_images(settings, preprocessing, work)
    log(f"images: {image_source}; input {preprocessing.crop}x{preprocessing.crop}; {threads} threads")

    artefacts: dict[str, dict] = {}
    stem = f"{Path(settings.model).stem}-{preprocessing.crop}"

    def export(fmt: str, quantize: str) -> dict:  # once each: the OpenVINO engines start from the ONNX export
        if f"{fmt} {quantize}" not in artefacts:
            path = work / f"{stem}.{quantize}{'.tflite' if fmt == 'litert' else '.onnx'}"
            log(f"exporting {fmt} {quantize} -> {path.name}")
            exported = export_model(settings.model, fmt, quantize=quantize, output=path, input_size=settings.input_size,
                                    min_agreement=0.0, overwrite=True)  # the bench's own work folder
            artefacts[f"{fmt} {quantize}"] = {"path": str(exported.path), "size_bytes": exported.size_bytes}
        return artefacts[f"{fmt} {quantize}"]

    for engine in engines:
        kind, fmt, quantize = ENGINES[engine]
        if fmt == "openvino":
            from squeezekit.runtime.calibration import calibration_images
            from squeezekit.runtime.quantize import openvino_model

            path = work / f"{stem}.openvino-{quantize}.xml"
            log(f"converting the ONNX float32 export to OpenVINO {quantize} -> {path.name}")
            calibration = calibration_images(None, preprocessing) if quantize == "int8" else None
            openvino_model(export("onnx", "none")["path"], path, calibration)
            artefacts[engine] = {"path": str(path), "size_bytes": path.stat().st_size + path.with_suffix(".bin").stat().st_size}
        elif fmt is not None:
            artefacts[engine] = export(fmt, quantize)

    rows = []
    for engine in engines:
        kind = ENGINES[engine][0]
        spec = {"engine": engine, "kind": kind, "model": settings.model, "threads": threads,
                "preprocessing": preprocessing.to_dict(), "crops": str(work / "crops.npy"),
                "batch_sizes": list(settings.batch_sizes), "repeats": settings.repeats, "warmup": settings.warmup,
                "path": artefacts.get(engine, {}).get("path")}
        log(f"running {engine}")
        completed = subprocess.run([sys.executable, "-m", "squeezekit.benchmark", json.dumps(spec)],
                                   capture_output=True, text=True, timeout=3600)
        if completed.returncode != 0:
            rows.append({"engine": engine, "error": completed.stderr.strip().splitlines()[-1:]})
            continue
        row = json.loads(completed.stdout.strip().splitlines()[-1])
        row.update({k: v for k, v in artefacts.get(engine, {}).items() if k != "check"})
        rows.append(row)

    predictions = {r["engine"]: np.asarray(r.pop("top1_indices")) for r in rows if "top1_indices" in r}
    reference = predictions.get(REFERENCE_ENGINE)
    for row in rows:
        if row["engine"] not in predictions:
            continue
        if reference is not None:
            row["top1_agreement_with_fp32"] = float(np.mean(predictions[row["engine"]] == reference))
        if labels is not None:
            row["top1_accuracy"] = float(np.mean(predictions[row["engine"]] == np.asarray(labels)))

    report = {
        "model": settings.model, "input_size": preprocessing.crop, "threads": threads, "images": image_source,
        "n_images": int(np.load(work / "crops.npy", mmap_mode="r").shape[0]), "engines": rows,
        "environment": {"python": platform.python_version(), "machine": platform.machine(),
                        "processor": platform.processor(), "cpus": os.cpu_count()},
    }
    predict_model = artefacts.get("litert-int8", artefacts.get("onnxruntime-int8", {})).get("path")
    if settings.predict_runs and predict_model:
        from squeezekit.samples import sample_images

        log("timing squeezekit predict as a whole process")
        report["predict_process"] = _time_predict_process(predict_model, str(sample_images()[0]), settings.predict_runs)
    report["targets"] = evaluate_targets(report)
    return report


def _available(engines: tuple[str, ...], log) -> list[str]:
    """The engines whose packages are installed; one that is missing is left out with a log line."""
    import importlib.util

    kept = []
    for engine in engines:
        package = _OPTIONAL_PACKAGES.get(ENGINES[engine][0])
        if package and importlib.util.find_spec(package) is None:
            log(f"leaving out {engine}: {package} is not installed (pip install 'squeezekit[all]')")
        else:
            kept.append(engine)
    return kept


def evaluate_targets(report: dict) -> dict:
    """The issue's targets, computed from one run's figures."""
    by_engine = {r["engine"]: r for r in report["engines"] if "latency_batch_1" in r}
    targets = {}
    int8 = [e for e in INT8_ENGINES if e in by_engine]
    if int8 and "onnxruntime-fp32" in by_engine:
        fastest = min(int8, key=lambda e: by_engine[e]["latency_batch_1"]["median_ms"])
        ratio = by_engine[fastest]["latency_batch_1"]["median_ms"] / by_engine["onnxruntime-fp32"]["latency_batch_1"]["median_ms"]
        targets["int8_latency_ratio_to_onnxruntime_fp32"] = {"engine": fastest, "value": ratio, "target": 0.35, "met": ratio <= 0.35}
        if "top1_accuracy" in by_engine[fastest] and REFERENCE_ENGINE in by_engine:
            drop = by_engine[REFERENCE_ENGINE]["top1_accuracy"] - by_engine[fastest]["top1_accuracy"]
            targets["int8_top1_drop_points"] = {"engine": fastest, "value": 100 * drop, "target": 1.0, "met": 100 * drop <= 1.0}
    overheads = {e: r["runtime_overhead"] for e, r in by_engine.items() if "runtime_overhead" in r}
    if overheads:
        worst = max(overheads.values())
        targets["runtime_overhead"] = {"value": overheads, "target": 0.10, "met": worst <= 0.10}
    if "predict_process" in report:
        value = report["predict_process"]["median_s"]
        targets["predict_process_seconds"] = {"value": value, "target": 0.6, "met": value <= 0.6}
    if "litert-int8" in by_engine and "size_bytes" in by_engine["litert-int8"]:
        size = by_engine["litert-int8"]["size_bytes"]
        targets["litert_int8_size_bytes"] = {"value": size, "target": 1_400_000, "met": size <= 1_400_000}
    return targets


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
