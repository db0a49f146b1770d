"""Training throughput of squeezekit's training step against the same SqueezeNet written plainly in PyTorch.

    python benchmarks/train_throughput.py [--batch-size 128] [--steps 30]

Both train the CIFAR-sized model of the `cifar` recipe (3x3 stride-1 stem, pools to 16/8/4, v1.1 Fire
modules, batch norm, 10 classes) on the same random 32x32 batches with SGD (momentum 0.9): squeezekit
through Keras' `train_on_batch` with the recipe's compile settings on each available backend, PyTorch
eagerly in channels_last. Each runs in its own process; medians of timed steps after warm-up.
Writes benchmarks/results/train_throughput.{json,md}.
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

KERAS = textwrap.dedent(
    """
    import json, sys, time, numpy as np, keras
    from squeezekit.registry import get_preset
    from squeezekit.models.squeezenet import SqueezeNet
    from squeezekit.training.recipes import get_recipe
    from squeezekit.training.trainer import _jit_compile
    batch, steps, batch_norm = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "bn"
    recipe = get_recipe("cifar")
    config = get_preset("squeezenet1_1").replace(**recipe.arch_overrides).replace(batch_norm=batch_norm)
    model = SqueezeNet(config, input_shape=(32, 32, 3), classes=10)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy",
                  jit_compile=_jit_compile("auto"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 32, 32, 3)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, batch)]
    for _ in range(5):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter(); model.train_on_batch(x, y); times.append(time.perf_counter() - start)
    print(json.dumps({"engine": "squeezekit/" + keras.backend.backend(), "batch_norm": batch_norm,
                      "images_per_second": batch / float(np.median(times))}))
    """
)

TORCH = textwrap.dedent(
    """
    import json, sys, time, torch, torch.nn as nn
    batch, steps, batch_norm = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "bn"
    from _torch_squeezenet import SqueezeNetCifar
    model = SqueezeNetCifar(batch_norm=batch_norm).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, 32, 32).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    def step():
        optimizer.zero_grad(set_to_none=True); loss = loss_fn(model(x), y); loss.backward(); optimizer.step()
    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
    times.sort()
    print(json.dumps({"engine": "pytorch eager channels_last", "batch_norm": batch_norm,
                      "images_per_second": batch / times[len(times) // 2],
                      "threads": torch.get_num_threads()}))
    """
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    rows = []
    runs = [("tensorflow", KERAS), ("jax", KERAS), ("torch", KERAS), (None, TORCH)]
    for variant in ("bn", "nobn"):  # the cifar recipe's model (batch norm), and the brief's (none)
        for backend, script in runs:
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",  # PYTHONPATH: _torch_squeezenet beside this file
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
            if backend:
                env["KERAS_BACKEND"] = backend
            done = subprocess.run([sys.executable, "-c", script, str(args.batch_size), str(args.steps), variant],
                                  capture_output=True, text=True, env=env, timeout=1800)
            if done.returncode != 0:
                rows.append({"engine": f"squeezekit/{backend}" if backend else "pytorch", "batch_norm": variant == "bn",
                             "error": done.stderr.strip()[-300:]})
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    ratios = {}
    for batch_norm in (True, False):
        torch_rate = next((r["images_per_second"] for r in rows if r["engine"].startswith("pytorch")
                           and r["batch_norm"] == batch_norm and "images_per_second" in r), None)
        best = max((r for r in rows if r["engine"].startswith("squeezekit") and r["batch_norm"] == batch_norm
                    and "images_per_second" in r), key=lambda r: r["images_per_second"], default=None)
        if best and torch_rate:
            ratios["with batch norm" if batch_norm else "without batch norm"] = (best["engine"], best["images_per_second"] / torch_rate)
    report = {"batch_size": args.batch_size, "steps": args.steps, "rows": rows, "ratios": ratios}
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "train_throughput.json").write_text(json.dumps(report, indent=1))
    lines = ["| engine | batch norm | images/s (batch %d, median step) |" % args.batch_size, "|---|---|---|"]
    lines += [f"| {r['engine']} | {'yes' if r['batch_norm'] else 'no'} | "
              + (f"{r['images_per_second']:.0f} |" if "images_per_second" in r else "failed |") for r in rows]
    for name, (engine, ratio) in ratios.items():
        lines.append(f"\n{name}: best squeezekit backend ({engine}) / PyTorch channels_last = {ratio:.2f}x")
    (results / "train_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
