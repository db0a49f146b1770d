"""Training plots: loss and accuracy per epoch, and the validation confusion matrix (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from squeezekit._outputs import staged


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict], path: Path) -> None:
    if not history:
        return
    plt = _pyplot()
    epochs = [int(row["epoch"]) + 1 for row in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        if key in history[0]:
            loss_axis.plot(epochs, [float(row[key]) for row in history], marker="o", label=label)
    for key, label in (("accuracy", "train top-1"), ("val_accuracy", "validation top-1"), ("val_top5", "validation top-5")):
        if key in history[0]:
            accuracy_axis.plot(epochs, [100 * float(row[key]) for row in history], marker="o", label=label)
    loss_axis.set(xlabel="epoch", ylabel="loss", title="loss")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    with staged(Path(path)) as partial:
        figure.savefig(partial, dpi=100)
    plt.close(figure)


def plot_confusion(confusion: np.ndarray, class_names: list[str], path: Path) -> None:
    plt = _pyplot()
    classes = len(class_names)
    size = min(12, 3 + 0.45 * classes)
    figure, axis = plt.subplots(figsize=(size, size))
    rates = confusion / np.maximum(1, confusion.sum(axis=1, keepdims=True))
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if classes <= 30:
        axis.set_xticks(range(classes), class_names, rotation=90)
        axis.set_yticks(range(classes), class_names)
        for i in range(classes):
            for j in range(classes):
                if confusion[i, j]:
                    axis.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                              color="white" if rates[i, j] > 0.5 else "black")
    axis.set(xlabel="predicted", ylabel="true", title="validation confusion matrix (row-normalised colour)")
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    with staged(Path(path)) as partial:
        figure.savefig(partial, dpi=100)
    plt.close(figure)
