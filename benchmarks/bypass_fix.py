"""Does simple bypass train once conv10 cannot die? The `cifar` recipe, shortened, with and without
conv10's ReLU, simple bypass against none, two seeds.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/bypass_fix.py [--epochs 6] [--only NAME ...]

Each trial is `squeezekit train --recipe cifar --epochs E --seed S --bypass B [--linear-classifier]`
into runs/bypass-fix-Eep/NAME (a finished trial is not run again, and one stopped part way continues
from its last checkpoint with --resume, so the study can be spread over sittings). After
each: CIFAR-10 test top-1 (from the run's metrics.json), the per-epoch validation accuracy, the epochs
at which `squeezekit train` warned of dead conv10 units, and on 2,000 test photos the dead conv10 units
(a unit that is at most 0 at every position of every photo: after a ReLU its class's logit is 0) and
the per-layer activation statistics of benchmarks/bypass_diagnosis.py, for the last epoch's model.

The full recipe is 28 epochs (about an hour a run on a 2-core AVX-512 host, 2-2.5 hours on an AVX2 one); the short schedule (the same
cosine decay over E epochs) is what fits one sitting, and the collapse shows in it: with the ReLU,
simple bypass lost whole classes within 4 epochs of a 6-epoch schedule (docs/reproduction.md).

Writes benchmarks/results/bypass_fix_Eep.{json,md}: one pair per schedule, so that the 6-epoch and the
full-length trials are tabulated apart.
"""

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _results import RESULTS, write_results
from bypass_diagnosis import PHOTOS, diagnose

DATA = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "cifar10" / "cifar10-jpeg.zip"
TRIALS = {  # name: (bypass, linear classifier, seed), in the order they run
    "simple-relu-s0": ("simple", False, 0),
    "simple-linear-s0": ("simple", True, 0),
    "none-relu-s0": ("none", False, 0),
    "simple-linear-s1": ("simple", True, 1),
    "none-relu-s1": ("none", False, 1),
    "none-linear-s0": ("none", True, 0),
    "simple-relu-s1": ("simple", False, 1),
    "none-linear-s1": ("none", True, 1),
}
WARNING = re.compile(r"warning: epoch (\d+): the classifier \(conv10\) units of (.+?) output 0")


def keep_epoch_checkpoints(out: Path) -> None:
    """Copy checkpoints/epoch-N.keras (written atomically, by rename) to epochs/ before the next replaces it.

    epochs/ is made only once the run has written a checkpoint: `squeezekit train` refuses to start in
    a folder that holds files of something else."""
    for checkpoint in (out / "checkpoints").glob("epoch-*.keras"):
        (out / "epochs").mkdir(exist_ok=True)
        kept = out / "epochs" / checkpoint.name
        if not kept.exists():
            try:
                shutil.copyfile(checkpoint, kept.with_suffix(".partial"))
                kept.with_suffix(".partial").rename(kept)
            except FileNotFoundError:  # replaced by the next epoch's while copying
                pass


def epoch_statistics(out: Path, x: np.ndarray, labels: np.ndarray) -> list[dict]:
    """Per kept epoch: top-1, dead conv10 units, conv10's kernel norm and bias per class, the fire9
    (or fire9_add) and conv10 outputs' mean and zeros, and the largest activation reaching conv10."""
    import keras

    from squeezekit.training.checkpoints import load_checkpoint
    from squeezekit.training.trainer import classifier_has_relu

    rows, previous_step = [], 0
    for path in sorted((out / "epochs").glob("epoch-*.keras")):
        model = load_checkpoint(path)
        # What weight decay alone does to a kernel in this epoch (decoupled: w *= 1 - lr * wd each step):
        # a dead unit gets no gradient, so its kernel should shrink by exactly this factor.
        optimizer, step = model.optimizer, int(model.optimizer.iterations.numpy())
        schedule = optimizer._learning_rate  # the schedule itself (.learning_rate is its current value)
        rates = [float(schedule(s)) for s in range(previous_step, step)]
        decay_alone = float(np.prod(1 - np.array(rates) * optimizer.weight_decay))
        previous_step = step
        feature = "fire9_add" if "fire9_add" in [layer.name for layer in model.layers] else "fire9"
        probe = keras.Model(model.inputs, [model.get_layer(feature).output, model.get_layer("conv10").output,
                                           model.outputs[0]])
        features, scores, probabilities = (np.asarray(a) for a in probe.predict(x, batch_size=250, verbose=0))
        kernel, bias = (np.asarray(w) for w in model.get_layer("conv10").get_weights())
        peak = scores.reshape(len(x), -1, scores.shape[-1]).max(axis=(0, 1))
        rows.append({
            "epoch": int(path.stem.split("-")[1]),
            "top1": float((probabilities.reshape(len(x), -1).argmax(-1) == labels).mean()),
            "dead_conv10_units": [int(c) for c in np.flatnonzero(peak <= 0)] if classifier_has_relu(model) else [],
            "weight_decay_factor": decay_alone,
            "conv10_kernel_norm": [round(float(v), 4) for v in np.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), axis=0)],
            "conv10_bias": [round(float(v), 4) for v in bias],
            "conv10_positive_weights": [int(v) for v in (kernel.reshape(-1, kernel.shape[-1]) > 0).sum(axis=0)],
            "conv10_input_mean": float(features.mean()), "conv10_input_max": float(features.max()),
            "conv10_input_zeros": float((features <= 0).mean()),
            "conv10_output_zeros": float((scores <= 0).mean()),
        })
    return rows


def runs_folder(epochs: int) -> Path:
    return Path(f"runs/bypass-fix-{epochs}ep")


def train(name: str, epochs: int) -> dict:
    bypass, linear, seed = TRIALS[name]
    out = runs_folder(epochs) / name
    if (out / "metrics.json").exists() and (out / "trial.json").exists():
        return json.loads((out / "trial.json").read_text())
    command = [sys.executable, "-m", "squeezekit", "train", "--data", str(DATA), "--recipe", "cifar",
               "--epochs", str(epochs), "--seed", str(seed), "--bypass", bypass, "--out", str(out), "--json"]
    if linear:
        command.append("--linear-classifier")
    else:  # the paper's conv10, which the cifar recipe no longer has by default
        command.append("--classifier-relu")
    resumed = (out / "checkpoints" / "state.json").exists()
    if resumed:  # a trial stopped part way (a sitting's end) continues from its last epoch's checkpoint
        command.append("--resume")
    print("$", " ".join(command[2:]), flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)
        while process.poll() is None:  # the run keeps only its last checkpoint: copy each epoch's
            keep_epoch_checkpoints(out)
            time.sleep(5)
        keep_epoch_checkpoints(out)
        stdout.seek(0), stderr.seek(0)
        completed = subprocess.CompletedProcess(command, process.returncode, stdout.read(), stderr.read())
    wall = time.perf_counter() - start
    sys.stderr.write(completed.stderr[-3000:])
    if completed.returncode != 0:
        sys.exit(f"{name}: squeezekit train exited {completed.returncode}")
    metrics = json.loads(completed.stdout.strip().splitlines()[-1])
    with open(out / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    trial = {
        "bypass": bypass, "linear_classifier": linear, "seed": seed, "epochs": epochs,
        "command": " ".join(command[2:]), "wall_seconds": round(wall, 1),
        "resumed": resumed, "epoch_seconds": round(sum(float(row["epoch_seconds"]) for row in history), 1),
        "test_top1": metrics["top1"], "parameters": metrics["parameters"],
        "val_accuracy_by_epoch": [round(float(row["val_accuracy"]), 4) for row in history],
        "dead_unit_warnings": [{"epoch": int(m[1]), "classes": m[2].split(", ")}
                               for m in WARNING.finditer(completed.stderr)],
    }
    (out / "trial.json").write_text(json.dumps(trial, indent=1))
    return trial


def markdown(trials: dict, epochs: int) -> str:
    from squeezekit.training.recipes import RECIPES

    schedule = (f"`cifar` recipe, {epochs} epochs (its full length)" if epochs == RECIPES["cifar"].epochs else
                f"`cifar` recipe shortened to {epochs} epochs (the same warm-up and cosine decay over {epochs} epochs)")
    lines = [f"{schedule}, "
             f"CIFAR-10. Dead units: conv10 outputs that are at most 0 at every position of {PHOTOS:,} test photos "
             "(last epoch's model). Standard deviation over seeds: sample (n - 1).", "",
             "| bypass | conv10 | seeds | test top-1, mean ± std | each seed |", "|---|---|---:|---:|---|"]
    configurations: dict[tuple, list] = {}
    for t in trials.values():
        configurations.setdefault((t["bypass"], t["linear_classifier"]), []).append(t)
    for (bypass, linear), runs in configurations.items():
        top1 = np.array([100 * t["test_top1"] for t in runs])
        spread = f" ± {top1.std(ddof=1):.2f}" if len(runs) > 1 else ""
        lines.append(f"| {bypass} | {'linear' if linear else 'ReLU'} | {len(runs)} | {top1.mean():.2f} %{spread} | "
                     + ", ".join(f"{v:.2f} % (seed {t['seed']})" for v, t in zip(top1, runs)) + " |")
    lines += ["", "| trial | bypass | conv10 | seed | test top-1 | dead conv10 units | lowest class recall | "
             "warned of dead units at epochs | validation top-1 by epoch | wall |",
             "|---|---|---|---:|---:|---|---|---|---|---:|"]
    for name, t in trials.items():
        warned = "; ".join(f"{w['epoch']}: {', '.join(w['classes'])}" for w in t["dead_unit_warnings"]) or "-"
        curve = ", ".join(f"{100 * a:.1f}" for a in t["val_accuracy_by_epoch"])
        worst = min(t["diagnosis"]["recall"], key=t["diagnosis"]["recall"].get)
        wall = f"{t['wall_seconds'] / 60:.1f} min"
        if t.get("resumed"):  # the wall clock covers only the last sitting's part; the epochs' own times add up
            wall += f" (resumed; its {len(t['val_accuracy_by_epoch'])} epochs took {t['epoch_seconds'] / 60:.1f} min)"
        lines.append(f"| {name} | {t['bypass']} | {'linear' if t['linear_classifier'] else 'ReLU'} | {t['seed']} | "
                     f"{100 * t['test_top1']:.2f} % | {', '.join(t['diagnosis']['dead_conv10_units']) or 'none'} | "
                     f"{worst} {100 * t['diagnosis']['recall'][worst]:.1f} % | {warned} | {curve} | {wall} |")
    lines += ["", "Activations on the test photos (last epoch's model): mean and fraction <= 0.", "",
              "| trial | " + " | ".join(("fire8", "fire9", "fire9_add", "conv10")) + " |", "|---|---|---|---|---|"]
    for name, t in trials.items():
        layers = t["diagnosis"]["layers"]
        cells = [f"{layers[k]['mean']:.3f} / {100 * layers[k]['zeros']:.0f} %" if k in layers else "-"
                 for k in ("fire8", "fire9", "fire9_add", "conv10")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "By epoch, on the same photos: dead units (by class index), conv10's kernel L2 norm (smallest, "
              "with its class, and the median of the classes), how a unit dead since the previous epoch shrank "
              "against what weight decay alone does in that epoch, conv10's input (fire9's output, with the "
              "bypass sum where there is one) and the share of conv10 outputs <= 0.", "",
              "| trial | epoch | top-1 | dead units | smallest kernel norm | median kernel norm | "
              "dead unit's norm / previous (weight decay alone) | conv10 input mean / max | conv10 outputs <= 0 |",
              "|---|---:|---:|---|---|---:|---|---|---:|"]
    for name, t in trials.items():
        rows = t.get("by_epoch", [])
        for i, row in enumerate(rows):
            norms = np.array(row["conv10_kernel_norm"])
            still_dead = sorted(set(row["dead_conv10_units"]) & set(rows[i - 1]["dead_conv10_units"])) if i else []
            shrink = ", ".join(f"{c}: {norms[c] / rows[i - 1]['conv10_kernel_norm'][c]:.3f}" for c in still_dead)
            shrink = f"{shrink} ({row['weight_decay_factor']:.3f})" if still_dead else "-"
            lines.append(f"| {name} | {row['epoch']} | {100 * row['top1']:.1f} % | "
                         f"{', '.join(map(str, row['dead_conv10_units'])) or '-'} | "
                         f"{norms.min():.3f} ({int(norms.argmin())}) | {np.median(norms):.3f} | {shrink} | "
                         f"{row['conv10_input_mean']:.2f} / {row['conv10_input_max']:.1f} | "
                         f"{100 * row['conv10_output_zeros']:.0f} % |")
    lines += ["", f"`SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/bypass_fix.py --epochs {epochs}`", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--only", nargs="*", choices=list(TRIALS), help="run these trials (default: all)")
    args = parser.parse_args()
    from squeezekit.data.decode import decode_all
    from squeezekit.data.sources import scan
    from squeezekit.preprocessing import preprocess_input
    from squeezekit.training.recipes import RECIPES

    preprocessing = RECIPES["cifar"].preprocessing

    files = scan(DATA, split="test")
    chosen = np.random.default_rng(0).permutation(len(files))[:PHOTOS]
    decoded = decode_all(files.subset(chosen), 32)
    trials = {}
    folder = runs_folder(args.epochs)
    for name in args.only or TRIALS:
        trial = train(name, args.epochs)
        if "diagnosis" not in trial or "by_epoch" not in trial:
            trial["diagnosis"] = diagnose(str(folder / name / "last.keras"), decoded.images, decoded.labels)
            x = preprocess_input(decoded.images.astype(np.float32), preprocessing=preprocessing)
            trial["by_epoch"] = epoch_statistics(folder / name, x, decoded.labels)
            (folder / name / "trial.json").write_text(json.dumps(trial, indent=1))
        trials[name] = trial
    # Trials measured in an earlier sitting whose runs/ folder is gone stay in the results.
    results = f"bypass_fix_{args.epochs}ep"
    saved = RESULTS / f"{results}.json"
    done = json.loads(saved.read_text())["trials"] if saved.exists() else {}
    done.update({name: json.loads((folder / name / "trial.json").read_text()) for name in TRIALS
                 if (folder / name / "trial.json").exists()})
    done = {name: done[name] for name in TRIALS
            if name in done and "diagnosis" in done[name] and done[name]["epochs"] == args.epochs}
    write_results(results, {"epochs": args.epochs, "test_photos_for_dead_units": PHOTOS, "trials": done},
                  markdown(done, args.epochs))


if __name__ == "__main__":
    main()
