"""Why simple bypass collapses on CIFAR-10: per-class recall and dead classifier units of trained models.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/bypass_diagnosis.py NAME=MODEL.keras [NAME=MODEL.keras ...]

For each model (a ``.keras`` file from ``squeezekit train`` with its metadata beside it), on 2,000
CIFAR-10 test photos (seeded): top-1, recall per class, and per layer the mean, standard deviation
and fraction of zeros of the outputs of every Fire module, every bypass addition and conv10 (after its
ReLU). A conv10 unit whose output is 0 at every position of every photo is *dead*: its class's logit
is 0 whatever the image, and since the ReLU passes no gradient there, nothing can revive it. Such a
class is only ever predicted when every other logit is 0 too.

Writes benchmarks/results/bypass_diagnosis.{json,md}.
"""

import os
import sys
from pathlib import Path

import numpy as np

from _results import write_results

DATA = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "cifar10" / "cifar10-jpeg.zip"
PHOTOS = 2000


def diagnose(path: str, images: np.ndarray, labels: np.ndarray) -> dict:
    import keras

    from squeezekit.opener import open_model
    from squeezekit.preprocessing import preprocess_input
    from squeezekit.training.trainer import classifier_has_relu

    opened = open_model(path, "keras", purpose="bypass diagnosis")
    model = opened.model
    x = preprocess_input(images.astype(np.float32), preprocessing=opened.metadata.preprocessing)
    names = [layer.name for layer in model.layers
             if layer.name.startswith("fire") and "/" not in layer.name and not layer.name.endswith("_bypass")
             or layer.name == "conv10"]
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in names] + [model.outputs[0]])
    *outputs, probabilities = probe.predict(x, batch_size=250, verbose=0)
    layers = {}
    for name, output in zip(names, outputs):
        output = np.asarray(output)
        layers[name] = {"mean": float(output.mean()), "std": float(output.std()), "zeros": float((output <= 0).mean())}
    conv10 = np.asarray(outputs[names.index("conv10")])
    peak = conv10.reshape(len(conv10), -1, conv10.shape[-1]).max(axis=(0, 1))
    predictions = np.asarray(probabilities).reshape(len(x), -1).argmax(-1)
    classes = [name for _, name in opened.metadata.labels]
    return {
        "top1": float((predictions == labels).mean()),
        "recall": {classes[c]: float((predictions[labels == c] == c).mean()) for c in range(len(classes))},
        # Without a ReLU a score below 0 is not dead: it still gets its gradient.
        "dead_conv10_units": [classes[c] for c in np.flatnonzero(peak <= 0)] if classifier_has_relu(model) else [],
        "layers": layers,
    }


def main() -> None:
    from squeezekit.data.decode import decode_all
    from squeezekit.data.sources import scan

    models = dict(argument.split("=", 1) for argument in sys.argv[1:])
    if not models:
        sys.exit(__doc__)
    files = scan(DATA, split="test")
    chosen = np.random.default_rng(0).permutation(len(files))[:PHOTOS]
    decoded = decode_all(files.subset(chosen), 32)
    results = {name: diagnose(path, decoded.images, decoded.labels) | {"model": path} for name, path in models.items()}

    lines = [f"{PHOTOS} CIFAR-10 test photos. Dead: conv10 units that are 0 on every position of every photo.", "",
             "| model | top-1 | dead conv10 units | recall of the dead classes | fire9 zeros | conv10 zeros |",
             "|---|---:|---|---|---:|---:|"]
    for name, result in results.items():
        dead = result["dead_conv10_units"]
        recall = ", ".join(f"{c} {100 * result['recall'][c]:.1f} %" for c in dead) or "-"
        fire9 = result["layers"].get("fire9_add", result["layers"].get("fire9"))
        lines.append(f"| {name} | {100 * result['top1']:.1f} % | {', '.join(dead) or 'none'} | {recall} | "
                     f"{100 * fire9['zeros']:.0f} % | {100 * result['layers']['conv10']['zeros']:.0f} % |")
    lines += ["", "| model | layer | mean | std | zeros |", "|---|---|---:|---:|---:|"]
    for name, result in results.items():
        lines += [f"| {name} | {layer} | {s['mean']:.3f} | {s['std']:.3f} | {100 * s['zeros']:.0f} % |"
                  for layer, s in result["layers"].items()]
    command = "python benchmarks/bypass_diagnosis.py " + " ".join(f"'{k}={v}'" for k, v in models.items())
    write_results("bypass_diagnosis", results, "\n".join(lines + ["", f"`{command}`"]) + "\n")


if __name__ == "__main__":
    main()
