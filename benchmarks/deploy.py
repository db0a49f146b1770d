"""The deployment benchmark of the deploy issue: `squeezekit bench` on pretrained SqueezeNet v1.1 at 224x224.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/deploy.py

Runs every engine (Keras eager and graph, ONNX Runtime fp32/int8, LiteRT fp32/fp16/dynamic/int8) on the
1000 photos of the shared ImageNet sample and writes benchmarks/results/deploy.{json,md}.
"""

import subprocess
import sys
from pathlib import Path

results = Path(__file__).parent / "results"
results.mkdir(exist_ok=True)
command = [sys.executable, "-m", "squeezekit", "bench", "--model", "squeezenet1_1", "--input-size", "224",
           "--repeats", "300", "--json", str(results / "deploy.json"), "--markdown", str(results / "deploy.md")]
sys.exit(subprocess.run(command).returncode)
