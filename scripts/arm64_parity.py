"""squeezekit on arm64 (Debian 12, what Raspberry Pi OS 64-bit is), under QEMU, against this x86-64 host.

    scripts/test-arm64 [--photos N] [--root DIR] [--work DIR]

1. An arm64 Debian 12 root from Debian's own packages: debootstrap's first stage (download and unpack
   the essential packages, plus Python 3.11 and the C++ runtime), with none of the second stage's
   package configuration, which would run every maintainer script under emulation (6-9 minutes on two
   cores) and which nothing here needs. Kept under SQUEEZEKIT_HOME/arm64 and reused.
2. squeezekit's wheel with its runtime and litert extras, installed into the root by the host's pip
   from aarch64 wheels (``--platform manylinux_*_aarch64``), at the host's versions so that both sides
   run the same engines. pip resolves for the target, as it would on a Pi; it runs on the host so that
   no certificate set-up is needed inside.
3. The pretrained SqueezeNet v1.1 exported on the host (float32 ONNX, int8 LiteRT) and classified with
   ``squeezekit predict --json`` on real photos, on both machines. The arm64 side runs through
   ``proot -q qemu-aarch64-static`` (no binfmt_misc needed), without /sys bound: ONNX Runtime has
   been seen to crash under QEMU when the chroot has the host's /sys.

Pass: ONNX Runtime float32, the same top-5 for every photo with probabilities within 1e-5; the int8
model's raw outputs with LiteRT's reference kernels bit for bit equal to x86's; with LiteRT's default
kernels (what ``predict`` uses), the same top-1 and raw outputs within one int8 step of x86's reference
kernels on both machines (the optimised kernels round differently from the reference ones, on x86 too;
one step of the coarse int8 score moves a softmax probability by a few hundredths, so close classes
may swap ranks). Building the root needs root (debootstrap). Exit status 0 when all pass, 1 otherwise,
2 when a tool is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
# What the runtime needs beyond Debian's essential set: the interpreter and its standard library, and
# the C++ and OpenMP runtimes that ONNX Runtime's and LiteRT's wheels link against.
DEBIAN_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6", "libgomp1")
# The wheels squeezekit[runtime,litert] pulls in, pinned to the host's versions.
PINNED = ("numpy", "pillow", "onnxruntime", "onnx", "ai-edge-litert", "protobuf", "flatbuffers", "ml_dtypes")
GUEST_PYTHON = "/usr/bin/python3.11"
TOLERANCE = 1e-5


def step(message: str) -> float:
    print(f"== {message}", flush=True)
    return time.perf_counter()


def build_root(root: Path) -> None:
    """Debian 12 arm64, first stage only: unpack what debootstrap fetched, keeping the merged-/usr links."""
    marker = root / ".squeezekit-root.json"
    wanted = {"suite": SUITE, "packages": list(DEBIAN_PACKAGES)}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return
    scratch = root.with_name(root.name + f".partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    subprocess.run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
                    "--include=" + ",".join(DEBIAN_PACKAGES), SUITE, str(scratch), MIRROR],
                   check=True, stdout=subprocess.DEVNULL)
    # The first stage unpacks only the essential packages; the others (Python) were downloaded for the
    # second stage. tar keeps /lib -> usr/lib a link (dpkg-deb -x would replace it by a folder).
    archives = scratch / "var/cache/apt/archives"
    for package in (scratch / "debootstrap/base").read_text().split():
        for deb in archives.glob(f"{package}_*.deb"):
            unpacked = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "--keep-directory-symlink", "-C", str(scratch)], input=unpacked.stdout,
                           check=True)
    if (scratch / "proc").is_symlink():  # debootstrap's link to the host's /proc; proot binds it instead
        (scratch / "proc").unlink()
    (scratch / "proc").mkdir(exist_ok=True)
    shutil.rmtree(archives)
    (scratch / ".squeezekit-root.json").write_text(json.dumps(wanted))
    shutil.rmtree(root, ignore_errors=True)
    scratch.rename(root)


def install_squeezekit(root: Path, work: Path) -> Path:
    """squeezekit[runtime,litert] from aarch64 wheels into ROOT/opt/squeezekit (rebuilt for each run)."""
    site = root / "opt/squeezekit"
    shutil.rmtree(site, ignore_errors=True)
    wheels = work / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)], check=True)
    (wheel,) = wheels.glob("squeezekit-*.whl")
    constraints = work / "constraints.txt"
    constraints.write_text("".join(f"{name}=={metadata.version(name)}\n" for name in PINNED))
    platforms = [arg for v in range(36, 16, -1) for arg in ("--platform", f"manylinux_2_{v}_aarch64")]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(site), *platforms,
                    "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--only-binary=:all:",
                    "-c", str(constraints), f"{wheel}[runtime,litert]"], check=True)
    return site


def guest(root: Path, work: Path, *command: str) -> subprocess.CompletedProcess:
    """Run a command in the arm64 root: WORK appears as /work; no /sys (see the module's docstring)."""
    environment = ["PYTHONPATH=/opt/squeezekit", "HOME=/work/home", "SQUEEZEKIT_HOME=/work/home/cache",
                   "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
    return subprocess.run(["proot", "-q", "qemu-aarch64-static", "-r", str(root), "-b", "/dev", "-b", "/proc",
                           "-b", f"{work}:/work", "-w", "/work", "/usr/bin/env", "-i", *environment, *command],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def host(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def checked(result: subprocess.CompletedProcess, what: str) -> str:
    if result.returncode != 0:
        sys.exit(f"{what} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def pick_photos(count: int, folder: Path) -> list[str]:
    """``count`` photos of the ImageNet sample (one per class), spread over the classes, copied into WORK."""
    from squeezekit._resources import data_dir
    from squeezekit.preprocessing import image_files
    from squeezekit.samples import sample_images

    sample = data_dir() / "imagenet" / "sample-1000" if data_dir() else None
    photos = sorted(image_files(sample)) if sample and sample.is_dir() else sample_images()
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for source in photos[:: max(1, len(photos) // count)][:count]:
        shutil.copyfile(source, folder / Path(source).name)
        names.append(f"photos/{Path(source).name}")
    return names


def compare_predictions(x86: str, arm: str) -> dict:
    """Per photo: the same top-5 (ids, in order), the same top-1; the largest probability difference."""
    x86_rows, arm_rows = [json.loads(line) for line in x86.splitlines()], [json.loads(line) for line in arm.splitlines()]
    if not x86_rows or [Path(r["file"]).name for r in x86_rows] != [Path(r["file"]).name for r in arm_rows]:
        sys.exit("x86 and arm64 predict did not classify the same photos")
    ids = [([p["id"] for p in a["predictions"]], [p["id"] for p in b["predictions"]]) for a, b in zip(x86_rows, arm_rows)]
    largest = max(abs(p["probability"] - q["probability"])
                  for a, b in zip(x86_rows, arm_rows) for p, q in zip(a["predictions"], b["predictions"]))
    return {"photos": len(ids), "same_top5": sum(a == b for a, b in ids), "same_top1": sum(a[0] == b[0] for a, b in ids),
            "largest_probability_difference": largest}


def steps(a: np.ndarray, b: np.ndarray) -> int:
    """How many int8 steps apart two raw outputs are, at most."""
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=6, help="sample photos to classify (default: %(default)s)")
    parser.add_argument("--root", type=Path, help="arm64 root (default: SQUEEZEKIT_HOME/arm64/bookworm)")
    parser.add_argument("--work", type=Path, help="keep models, photos and outputs here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    args.json = args.json.resolve() if args.json else None
    missing = [tool for tool in ("debootstrap", "proot", "qemu-aarch64-static", "dpkg-deb") if not shutil.which(tool)]
    if missing:
        print(f"missing tools: {', '.join(missing)} (Debian: apt-get install debootstrap proot qemu-user-static)",
              file=sys.stderr)
        return 2
    from squeezekit._resources import cache_dir

    root = args.root or cache_dir() / "arm64" / SUITE
    timings = {}
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        start = step(f"arm64 Debian 12 root in {root}")
        build_root(root)
        timings["root_seconds"] = time.perf_counter() - start
        start = step("squeezekit[runtime,litert] from aarch64 wheels")
        install_squeezekit(root, work)
        machine = checked(guest(root, work, GUEST_PYTHON, "-c", "import platform; print(platform.machine())"), "arm64 Python")
        timings["install_seconds"] = time.perf_counter() - start
        start = step("models exported on this host (float32 ONNX, int8 LiteRT)")
        for fmt, extra, name in (("onnx", [], "v11.onnx"), ("litert", ["--quantize", "int8"], "v11-int8.tflite")):
            checked(host("-m", "squeezekit", "export", "squeezenet1_1", "--format", fmt, *extra, "-o", str(work / name),
                         "--overwrite"), f"export {name}")
        photos = pick_photos(args.photos, work / "photos")
        timings["export_seconds"] = time.perf_counter() - start

        results = {"guest_machine": machine.strip(), "photos": len(photos)}
        os.chdir(work)
        for label, model in (("onnxruntime_float32", "v11.onnx"), ("litert_int8", "v11-int8.tflite")):
            start = step(f"squeezekit predict --model {model}: x86-64, then arm64")
            command = ["-m", "squeezekit", "predict", "--model", model, "--threads", "2", "--json", *photos]
            x86 = checked(host(*command), f"x86 predict {model}")
            arm = checked(guest(root, work, GUEST_PYTHON, *command), f"arm64 predict {model}")
            results[label] = {**compare_predictions(x86, arm), "seconds": round(time.perf_counter() - start, 1)}
        start = step("raw outputs: ONNX Runtime, LiteRT reference and default kernels")
        probe = ["arm64_probe.py", "v11.onnx", "v11-int8.tflite", *photos]
        shutil.copyfile(Path(__file__).with_name("arm64_probe.py"), work / "arm64_probe.py")
        checked(host(*probe, "x86.npz"), "x86 probe")
        checked(guest(root, work, GUEST_PYTHON, *probe, "arm64.npz"), "arm64 probe")
        x86, arm = np.load(work / "x86.npz"), np.load(work / "arm64.npz")
        timings["probe_seconds"] = time.perf_counter() - start
        os.chdir(REPO)
        results["raw"] = {
            "machines": [str(x86["machine"]), str(arm["machine"])],
            "onnx_largest_probability_difference": float(np.abs(x86["onnx_probabilities"] - arm["onnx_probabilities"]).max()),
            "litert_reference_kernels_bit_exact": bool(np.array_equal(x86["litert_reference"], arm["litert_reference"])),
            # The default (optimised) kernels round differently from the reference ones on each machine.
            "litert_default_steps_from_reference": {"x86_64": steps(x86["litert_default"], x86["litert_reference"]),
                                                    "aarch64": steps(arm["litert_default"], x86["litert_reference"])},
        }
    results["timings"] = {k: round(v, 1) for k, v in timings.items()}
    onnx, litert, raw = results["onnxruntime_float32"], results["litert_int8"], results["raw"]
    passed = (results["guest_machine"] == raw["machines"][1] == "aarch64"
              and onnx["same_top5"] == onnx["photos"] and onnx["largest_probability_difference"] <= TOLERANCE
              and raw["onnx_largest_probability_difference"] <= TOLERANCE and raw["litert_reference_kernels_bit_exact"]
              and litert["same_top1"] == litert["photos"] and max(raw["litert_default_steps_from_reference"].values()) <= 1)
    results["passed"] = passed
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print("arm64 parity: " + ("passed" if passed else "FAILED"), flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
