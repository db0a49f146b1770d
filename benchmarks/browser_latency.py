"""In-browser inference (onnxruntime-web, WASM) beside the server's, on real photos, in headless Chromium.

A `squeezekit serve` process serves the pretrained v1.1 as float32 and int8 ONNX artefacts (the ones
squeezekit builds and checks) with onnxruntime-web from --browser-runtime (the pinned npm version).
The page classifies each photo twice: on the server (its `time_ms`: decode, preprocessing, batching,
the engine) and in the browser with "run in this browser" (preprocessing and the WASM session's run).
Reported: median and p90 of each, the top-5 agreement of the two, and a screenshot of the page.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/browser_latency.py [--photos 30] [--ort-web DIR]

Writes benchmarks/results/browser_latency.{json,md} and docs/serve-page.png (not committed: it shows a
photo of the shared data set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _results import write_results

ROOT = Path(__file__).parent.parent


def _ort_web(folder: Path) -> Path:
    from squeezekit.serve.app import ORT_WEB_VERSION

    subprocess.run(["npm", "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--silent"], cwd=folder, check=True,
                   capture_output=True)
    with tarfile.open(next(folder.glob("onnxruntime-web-*.tgz"))) as archive:
        archive.extractall(folder, members=[m for m in archive.getmembers() if m.name.startswith(
            ("package/dist/ort.wasm.min.js", "package/dist/ort-wasm-simd-threaded."))], filter="data")
    return folder / "package" / "dist"


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=412,915"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(300)
    return driver


def _wait(driver, condition: str, timeout: float = 300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(f"return {condition}")
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out: {condition}")


def _classify(driver, photo: Path, where: str) -> dict:
    driver.execute_script("squeezekitPage.state.last = null")
    driver.find_element("id", "file").send_keys(str(photo))
    return _wait(driver, f"squeezekitPage.state.last && squeezekitPage.state.last.where === '{where}' "
                         "&& squeezekitPage.state.last")


def _summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"median_ms": statistics.median(ordered), "p90_ms": ordered[int(0.9 * (len(ordered) - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--ort-web", default=os.environ.get("SQUEEZEKIT_ORT_WEB_DIR"))
    args = parser.parse_args()

    from squeezekit._resources import data_dir
    from squeezekit.runtime.pretrained import pretrained_artefact

    photos = sorted((data_dir() / "imagenet" / "sample-1000").iterdir())[: args.photos]
    artefacts = {"fp32": pretrained_artefact("squeezenet1_1", "float32"), "int8": pretrained_artefact("squeezenet1_1")}
    with tempfile.TemporaryDirectory() as scratch:
        ort_web = Path(args.ort_web) if args.ort_web else _ort_web(Path(scratch))
        server = subprocess.Popen([sys.executable, "-m", "squeezekit", "serve", *(f"{k}={v}" for k, v in artefacts.items()),
                                   "--port", "0", "--browser-runtime", str(ort_web)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        port = int(server.stdout.readline().rsplit(":", 1)[1].split("/")[0])
        driver = _driver()
        report = {"photos": len(photos), "cores": os.cpu_count(), "browser": driver.capabilities["browserVersion"],
                  "models": {}}
        try:
            for model in artefacts:
                driver.get(f"http://127.0.0.1:{port}/")
                _wait(driver, "document.getElementById('model').options.length > 0")
                driver.execute_script(f"document.getElementById('model').value = '{model}'")
                server_runs = [_classify(driver, photo, "server") for photo in photos]
                driver.find_element("id", "local").click()
                _wait(driver, "document.getElementById('status').textContent.includes('in this browser')")
                _classify(driver, photos[0], "browser")  # warm-up: the first run compiles kernels
                browser_runs = [_classify(driver, photo, "browser") for photo in photos]
                same_top5 = sum([p["id"] for p in a["predictions"]] == [p["id"] for p in b["predictions"]]
                                for a, b in zip(server_runs, browser_runs))
                same_top1 = sum(a["predictions"][0]["id"] == b["predictions"][0]["id"]
                                for a, b in zip(server_runs, browser_runs))
                report["models"][model] = {
                    "file": artefacts[model].name, "bytes": artefacts[model].stat().st_size,
                    "server": _summary([r["time_ms"] for r in server_runs]),
                    "browser": _summary([r["time_ms"] for r in browser_runs]),
                    "same_top5": same_top5, "same_top1": same_top1,
                    "threads": driver.execute_script("return self.ort.env.wasm.numThreads"),
                }
                print(json.dumps({model: report["models"][model]}), flush=True)
            driver.find_element("id", "local").click()  # the screenshot: server mode, a real photo
            _classify(driver, photos[1], "server")
            driver.save_screenshot(str(ROOT / "docs" / "serve-page.png"))
        finally:
            driver.quit()
            server.terminate()
            server.wait(30)
    lines = ["| model | file | server time_ms median (p90) | in-browser median (p90) | same top-5 | same top-1 |",
             "|---|---:|---:|---:|---:|---:|"]
    for model, row in report["models"].items():
        lines.append(f"| {model} | {row['bytes']:,} B | {row['server']['median_ms']:.1f} ({row['server']['p90_ms']:.1f}) | "
                     f"{row['browser']['median_ms']:.1f} ({row['browser']['p90_ms']:.1f}) | "
                     f"{row['same_top5']} of {len(photos)} | {row['same_top1']} of {len(photos)} |")
    lines += ["", f"Headless Chromium {report['browser']}, onnxruntime-web WASM "
              f"({report['models']['fp32']['threads']} threads), {os.cpu_count()} cores, {len(photos)} photos of the "
              "shared ImageNet sample; the server's time is its own `time_ms` (decode, preprocessing, batching, engine)."]
    markdown = "\n".join(lines) + "\n"
    report["command"] = "SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/browser_latency.py"
    write_results("browser_latency", report, markdown)


if __name__ == "__main__":
    main()
