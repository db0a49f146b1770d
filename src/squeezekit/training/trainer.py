"""``train``: from a folder (or zip) of labelled images to a verified model in a run folder.

RUN_DIR holds ``best.keras`` and ``last.keras`` (each with its metadata JSON beside it),
``checkpoints/`` (see checkpoints.py), ``history.csv``, ``metrics.json``, ``curves.png``,
``confusion.png`` and ``skipped.txt`` (files that could not be decoded, with the reason).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from squeezekit.config import SqueezeNetConfig
from squeezekit.registry import get_preset
from squeezekit.training.recipes import Recipe, get_recipe

logger = logging.getLogger(__name__)
RUN_MARKER = ".squeezekit-run"  # in every run folder: train writes only into its own folders

DISTRIBUTIONS = ("none", "mirrored", "multiworker")


@dataclass
class TrainSettings:
    data: str
    out: str
    arch: str = "squeezenet1_1"
    recipe: str = "cifar"
    val: str | None = None
    val_fraction: float = 0.1
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    schedule: str | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    init: str | None = None
    freeze_backbone: bool | None = None
    batch_norm: bool | None = None
    seed: int = 0
    distribute: str = "none"
    resume: bool = False
    arch_overrides: dict = field(default_factory=dict)
    verbose: int = 1
    jit_compile: bool | str = "auto"
    input_pipeline: str = "auto"  # "tf.data", "numpy" (no TensorFlow needed) or "auto" (data/pipeline.py)


# Recipe field -> the TrainSettings attribute (and command-line option) that sets it.
_RECIPE_OPTIONS = {
    "epochs": "epochs", "batch_size": "batch_size", "learning_rate": "lr", "schedule": "schedule",
    "optimizer": "optimizer", "weight_decay": "weight_decay", "label_smoothing": "label_smoothing",
    "init": "init", "freeze_backbone_epochs": "freeze_backbone",
}


def _explicit_recipe_changes(settings: TrainSettings) -> dict:
    """The recipe fields that the settings give explicitly (the options on the command line)."""
    changes = {key: getattr(settings, attribute) for key, attribute in _RECIPE_OPTIONS.items()
               if key not in ("init", "freeze_backbone_epochs") and getattr(settings, attribute) is not None}
    if settings.init is not None:
        changes["init"] = None if settings.init == "none" else settings.init
    if settings.freeze_backbone is not None:
        changes["freeze_backbone_epochs"] = 1 if settings.freeze_backbone else 0
    return changes


def _resumed_recipe(state: dict, settings: TrainSettings, recipe: Recipe, run_dir: Path) -> Recipe:
    """--resume continues a run with the recipe it started with (its optimizer state and schedule are
    built for it): options left out come from the run, options given again must agree with it. The one
    exception is a larger --epochs, which extends the run (see ``_extend_schedule``)."""
    saved = state.get("recipe")
    if not saved:
        return recipe
    from squeezekit._schema import parse_document
    from squeezekit.training.checkpoints import STATE_FILE
    from squeezekit.training.recipes import parse_recipe

    resumed = parse_document(run_dir / "checkpoints" / STATE_FILE, saved, lambda values: parse_recipe(values, recipe),
                             "checkpoint state")
    changes = _explicit_recipe_changes(settings)
    if changes.get("epochs", resumed.epochs) > resumed.epochs:
        resumed = resumed.replace(epochs=changes.pop("epochs"))
    conflicts = [f"--{_RECIPE_OPTIONS[key].replace('_', '-')} {getattr(resumed, key)} -> {value}"
                 for key, value in changes.items() if getattr(resumed, key) != value]
    if conflicts:
        raise ValueError(f"--resume continues {run_dir} with the settings it started with and cannot change them "
                         f"({'; '.join(conflicts)}; only a larger --epochs extends a run); train in a new --out "
                         "for other settings")
    return resumed


def resolve_recipe(settings: TrainSettings) -> Recipe:
    recipe = get_recipe(settings.recipe).replace(**_explicit_recipe_changes(settings))
    problems = []
    if recipe.epochs < 1:
        problems.append(f"--epochs must be >= 1 (received {recipe.epochs})")
    if recipe.batch_size < 1:
        problems.append(f"--batch-size must be >= 1 (received {recipe.batch_size})")
    if not recipe.learning_rate > 0:
        problems.append(f"--lr must be > 0 (received {recipe.learning_rate})")
    if recipe.schedule not in ("poly", "cosine"):
        problems.append(f"--schedule must be poly or cosine (received {recipe.schedule})")
    if recipe.optimizer not in ("sgd", "adamw"):
        problems.append(f"--optimizer must be sgd or adamw (received {recipe.optimizer})")
    if recipe.weight_decay < 0 or not 0 <= recipe.label_smoothing < 1:
        problems.append("--weight-decay must be >= 0 and --label-smoothing in [0, 1)")
    if recipe.init not in (None, "imagenet"):
        problems.append(f"--init must be imagenet or none (received {recipe.init})")
    if settings.distribute not in DISTRIBUTIONS:
        problems.append(f"--distribute must be one of {DISTRIBUTIONS} (received {settings.distribute})")
    if not 0 < settings.val_fraction < 1:
        problems.append(f"--val-fraction must be in (0, 1) (received {settings.val_fraction})")
    if problems:
        raise ValueError("; ".join(problems))
    return recipe


def resolve_config(settings: TrainSettings, recipe: Recipe) -> SqueezeNetConfig:
    overrides = {**recipe.arch_overrides, **settings.arch_overrides}
    if settings.batch_norm is not None:
        overrides["batch_norm"] = settings.batch_norm
    if recipe.init == "imagenet":
        # The pretrained architecture, unchanged except what weights do not depend on.
        from squeezekit.weights import get_weights_entry

        entry = get_weights_entry(settings.arch)
        allowed = {"dropout", "pool_rounding"}
        refused = sorted(set(overrides) - allowed)
        if refused:
            raise ValueError(f"--init imagenet keeps the pretrained {settings.arch} architecture; cannot change {refused}")
        return get_preset(settings.arch).replace(**entry.config_overrides, **overrides)
    return get_preset(settings.arch).replace(**overrides)


def load_data(settings: TrainSettings, recipe: Recipe, log):
    """Decoded train and validation images with one shared class list."""
    from squeezekit.data.decode import decode_all
    from squeezekit.data.sources import EVAL_SPLITS, scan, splits_of

    splits = splits_of(settings.data)
    train_files = scan(settings.data, "train" if "train" in splits else None)
    if settings.val:
        val_files = scan(settings.val, next((s for s in EVAL_SPLITS if s in splits_of(settings.val)), None))
    elif any(s in splits for s in EVAL_SPLITS):
        val_files = scan(settings.data, next(s for s in EVAL_SPLITS if s in splits))
    else:
        rng = np.random.default_rng(settings.seed)
        order = rng.permutation(len(train_files))
        cut = max(1, int(round(settings.val_fraction * len(order))))
        val_files, train_files = train_files.subset(sorted(order[:cut])), train_files.subset(sorted(order[cut:]))
        log(f"validation: a seeded {100 * settings.val_fraction:.0f} % of {settings.data} ({cut} images)")
    if val_files.class_names != train_files.class_names:
        missing = sorted(set(train_files.class_names) ^ set(val_files.class_names))
        raise ValueError(f"the validation classes differ from the training classes (in one but not the other: {missing[:10]})")
    train = decode_all(train_files, recipe.store_size, desc="decoding training images")
    val = decode_all(val_files, recipe.store_size, desc="decoding validation images")
    return train, val


def _schedule(recipe: Recipe, steps_per_epoch: int, epochs: int):
    import keras

    total = max(1, steps_per_epoch * epochs)
    warmup = int(recipe.warmup_epochs * steps_per_epoch)
    if recipe.schedule == "poly":
        # The paper's linear decay to 0 (Caffe "poly" with power 1).
        return keras.optimizers.schedules.PolynomialDecay(recipe.learning_rate, total, end_learning_rate=0.0, power=1.0)
    if warmup:
        from squeezekit.training.schedules import WarmupCosineDecay  # CosineDecay's rates, cheaper to trace

        return WarmupCosineDecay(0.0, max(1, total - warmup), warmup_target=recipe.learning_rate, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(recipe.learning_rate, total)


def _optimizer(recipe: Recipe, steps_per_epoch: int, epochs: int):
    import keras

    schedule = _schedule(recipe, steps_per_epoch, epochs)
    accumulation = recipe.gradient_accumulation if recipe.gradient_accumulation > 1 else None
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=recipe.weight_decay or None,
                                    gradient_accumulation_steps=accumulation)
    return keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay, gradient_accumulation_steps=accumulation)


def _extend_schedule(model, phase_recipe: Recipe, steps_per_epoch: int, first: int, last: int, planned: int, log) -> None:
    """``--resume --epochs N`` on a run planned for fewer epochs: the optimizer (its momentum, its step
    count) carries on, and its learning-rate schedule becomes the one this phase would have had had the run
    been started with N epochs. The rate at the current step is read off that longer schedule, so a
    cosine or linear decay that had nearly reached 0 rises to where the longer decay stands at this
    step, then decays to 0 at epoch N. Warm-up, being at the start, is unchanged."""
    import keras

    step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    model.optimizer.learning_rate = _schedule(phase_recipe, steps_per_epoch, last - first)
    rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    log(f"extending the run from {planned} to {phase_recipe.epochs} epochs: the learning-rate schedule is that "
        f"of a {phase_recipe.epochs}-epoch run, now at step {step} with rate {rate:.4g}")


def _jit_compile(setting):
    """Per-backend compile choice from measurements on the 2-core CPU machine (training issue): the
    TensorFlow backend trains 3.4x faster without XLA (911 vs 265 images/s); JAX always compiles."""
    if setting != "auto":
        return setting
    import keras

    return keras.backend.backend() == "jax"


def _strategy(distribute: str):
    import keras

    if distribute == "none":
        return None
    if keras.backend.backend() == "jax":
        import jax

        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
        return None
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"--distribute {distribute} needs the TensorFlow or JAX backend (KERAS_BACKEND)")
    import tensorflow as tf

    if distribute == "mirrored":
        # All local GPUs; without any, all logical CPU devices (how the tests get two replicas).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.MultiWorkerMirroredStrategy()


def build_model(config: SqueezeNetConfig, recipe: Recipe, settings: TrainSettings, classes: int):
    from squeezekit.models.squeezenet import SqueezeNet

    size = recipe.preprocessing.crop
    model = SqueezeNet(config, weights=None, input_shape=(size, size, 3), classes=classes, name=settings.arch)
    if recipe.init == "imagenet":
        from squeezekit.weights import get_weights_entry
        from squeezekit.weights.convert import assign_arrays, pretrained_arrays

        # Everything but the classifier, which gets one filter per class of the data.
        arrays = {k: v for k, v in pretrained_arrays(get_weights_entry(settings.arch)).items() if not k.startswith("conv10/")}
        head = {w.path: w.numpy() if hasattr(w, "numpy") else np.asarray(w) for w in model.get_layer("conv10").weights}
        assign_arrays(model, {**arrays, **head}, source=f"{settings.arch} ImageNet weights")
    return model


def _set_backbone_trainable(model, trainable: bool) -> None:
    for layer in model.layers:
        if layer.name != "conv10":
            layer.trainable = trainable


def _compile(model, recipe: Recipe, steps_per_epoch: int, epochs: int, classes: int, jit_compile):
    import keras

    loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if classes > 5:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
    model.compile(optimizer=_optimizer(recipe, steps_per_epoch, epochs), loss=loss, metrics=metrics,
                  jit_compile=_jit_compile(jit_compile))


def dead_classifier_units(model, images) -> list[int]:
    """The classes whose conv10 unit is 0 at every position of every one of ``images``.

    conv10 ends in a ReLU (as in the original model). A unit pushed negative for every input outputs 0
    and gets no gradient of its own: only changes to the features below it can revive it. Until then
    its class's logit is 0, and the class is predicted only when every other logit is 0 too. This is how simple bypass collapsed on CIFAR-10
    (docs/reproduction.md): two or three dead classes, 10 points each. A linear conv10
    (``classifier_relu=False``) has no dead units: a score below 0 still gets its gradient.
    """
    import keras

    from squeezekit.graph import CLASSIFIER

    if not classifier_has_relu(model):
        return []
    probe = keras.Model(model.inputs, model.get_layer(CLASSIFIER).output)
    outputs = np.asarray(keras.ops.convert_to_numpy(probe(images, training=False)))
    peak = outputs.reshape(outputs.shape[0], -1, outputs.shape[-1]).max(axis=(0, 1))
    return [int(c) for c in np.flatnonzero(peak <= 0)]


def classifier_has_relu(model) -> bool:
    """Whether ``model``'s conv10 ends in a ReLU (it carries it as its activation, never batch norm)."""
    from squeezekit.graph import CLASSIFIER

    activation = getattr(model.get_layer(CLASSIFIER), "activation", None)
    return getattr(activation, "__name__", "") == "relu"


class _EpochEnd:
    """Keras callback factory (Keras is imported lazily): checkpoints, best model, images/s, and a
    warning when classifier units die."""

    @staticmethod
    def make(run_dir: Path, state: dict, n_train: int, log, val_data=None, class_names=()):
        import keras

        from squeezekit.training.checkpoints import save_checkpoint, save_model_file

        class EpochEnd(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.best = state.get("best_val_accuracy", -1.0)
                self.dead: list[int] = []
                self.batch = None

            def check_classifier(self, epoch: int) -> None:
                try:  # a diagnostic: whatever it meets (a strategy, an unusual model) must not stop the run
                    if self.batch is None:
                        self.batch = np.asarray(next(iter(val_data))[0])
                    dead = dead_classifier_units(self.model, self.batch)
                except Exception as error:  # noqa: BLE001
                    logger.debug("classifier check skipped: %s", error)
                    return
                if dead and dead != self.dead:
                    names = ", ".join(class_names[c] if c < len(class_names) else str(c) for c in dead)
                    log(f"warning: epoch {epoch + 1}: the classifier (conv10) units of {names} output 0 on every "
                        f"image of a validation batch: a dead ReLU, which gets no gradient of its own, so these classes "
                        f"are hardly ever predicted until the features below revive it (--linear-classifier removes "
                        f"that ReLU; a lower learning rate or weight decay may also avoid it; see docs/reproduction.md)")
                self.dead = dead

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs if logs is not None else {}
                seconds = time.perf_counter() - self._start
                logs["images_per_second"] = n_train / seconds
                logs["epoch_seconds"] = seconds
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                accuracy = logs.get("val_accuracy", -1.0)
                if accuracy > self.best:
                    self.best = accuracy
                    save_model_file(self.model, run_dir / "best.keras")
                    state["best_epoch"] = epoch + 1
                state["best_val_accuracy"] = self.best
                state["train_seconds"] = state.get("train_seconds", 0.0) + seconds
                state["epoch"] = epoch + 1
                save_checkpoint(self.model, run_dir, epoch + 1, state)
                log(f"epoch {epoch + 1}: {logs['images_per_second']:.0f} images/s, val accuracy "
                    f"{100 * accuracy:.2f} % (best {100 * self.best:.2f} %)")
                if val_data is not None:
                    self.check_classifier(epoch)

        return EpochEnd()


def _model_metadata(class_names, recipe: Recipe, config: SqueezeNetConfig, settings: TrainSettings):
    from squeezekit.formats.metadata import ModelMetadata

    label_set = "imagenet-1k" if len(class_names) == 1000 else ""
    return ModelMetadata(
        labels=tuple((name, name) for name in class_names), preprocessing=recipe.preprocessing,
        source=f"squeezekit train --arch {settings.arch} --recipe {recipe.name} --data {settings.data}",
        label_set=label_set,
        extra={"config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.to_dict().items()},
               "recipe": recipe.name},
    )


def train(settings: TrainSettings, log=None) -> dict:
    """Train (or resume) and evaluate; returns the metrics written to ``metrics.json``.

    ``log`` receives progress lines (default: this module's logger)."""
    import keras

    log = log or logger.info
    recipe = resolve_recipe(settings)
    config = resolve_config(settings, recipe)  # refused before any folder is claimed
    run_dir = Path(settings.out)
    state, recipe = _open_run(settings, recipe, run_dir)
    if state is not None:  # the architecture defaults of the recipe the run started with (they change)
        config = resolve_config(settings, recipe)
    keras.utils.set_random_seed(settings.seed)
    train_images, val_images = load_data(settings, recipe, log)
    state = _run_state(state, settings, recipe, config, train_images.class_names, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _record_skipped(run_dir, train_images.skipped + val_images.skipped, log)
    train_data, val_data = _datasets(train_images, val_images, recipe, settings, state.get("epoch", 0))
    metadata = _model_metadata(train_images.class_names, recipe, config, settings)
    model = _fit(settings, recipe, config, state, run_dir, train_data, val_data, len(train_images),
                 len(train_images.class_names), log)
    best = _save_final_models(model, state, run_dir, metadata)
    return evaluate_run(best, val_data, val_images.labels, train_images.class_names, state, recipe, run_dir)


def _open_run(settings: TrainSettings, recipe: Recipe, run_dir: Path) -> tuple[dict | None, Recipe]:
    """The state of the run to resume (and its recipe), or None for a new run; refuses the wrong case."""
    from squeezekit.training.checkpoints import read_state

    state = read_state(run_dir) if settings.resume else None
    if settings.resume and state is None:
        raise ValueError(f"--resume: {run_dir} holds no checkpoint to resume from")
    if not settings.resume and (run_dir / "checkpoints" / "state.json").exists():
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if state is not None:
        recipe = _resumed_recipe(state, settings, recipe, run_dir)
    else:
        from squeezekit._outputs import claim_folder

        claim_folder(run_dir, marker=RUN_MARKER, kind="training run")
    return state, recipe


def _run_state(state: dict | None, settings: TrainSettings, recipe: Recipe, config: SqueezeNetConfig,
               class_names: list[str], run_dir: Path) -> dict:
    """A resumed run's state after checking it trains the same thing, or a new run's first state."""
    config_dict = json.loads(json.dumps(config.to_dict()))
    if state is None:
        return {"config": config_dict, "class_names": class_names, "arch": settings.arch, "seed": settings.seed,
                "recipe": asdict(recipe) | {"preprocessing": recipe.preprocessing.to_dict()}}
    if state["config"] != config_dict or state["class_names"] != class_names:
        differing = "architecture" if state["config"] != config_dict else "class set"
        raise ValueError(f"--resume: {run_dir} was trained with another {differing}; refusing to mix them")
    return state



def _record_skipped(run_dir: Path, skipped: list[tuple[str, str]], log) -> None:
    if skipped:
        from squeezekit._outputs import one_line
        from squeezekit._resources import atomic_write_bytes

        lines = "".join(f"{one_line(name)}\t{one_line(reason)}\n" for name, reason in skipped)
        atomic_write_bytes(run_dir / "skipped.txt", lines.encode("utf-8", "backslashreplace"))
        log(f"skipped {len(skipped)} unreadable file(s); their names are in {run_dir / 'skipped.txt'}")


def _datasets(train_images, val_images, recipe: Recipe, settings: TrainSettings, first_epoch: int):
    from squeezekit.data.pipeline import make_dataset

    classes = len(train_images.class_names)
    common = dict(batch_size=recipe.batch_size, preprocessing=recipe.preprocessing, num_classes=classes,
                  input_pipeline=settings.input_pipeline)
    train_data = make_dataset(train_images.images, train_images.labels, training=True, augmentation=recipe.augmentation,
                              seed=settings.seed, first_epoch=first_epoch, **common)
    val_data = make_dataset(val_images.images, val_images.labels, training=False, **common)
    return train_data, val_data


def _phases(recipe: Recipe) -> list[tuple[int, int, bool]]:
    """(first epoch, end epoch, backbone trainable): the frozen-backbone epochs, then the rest."""
    frozen = min(recipe.freeze_backbone_epochs, recipe.epochs)
    return [(0, frozen, False), (frozen, recipe.epochs, True)]


def _fit(settings, recipe, config, state, run_dir, train_data, val_data, n_train: int, classes: int, log):
    """Every phase not yet done, from the run's position; returns the trained model (None if nothing was left)."""
    import sys
    from contextlib import nullcontext

    import keras

    from squeezekit.training.checkpoints import load_checkpoint

    strategy = _strategy(settings.distribute)
    steps_per_epoch = math.ceil(n_train / recipe.batch_size)
    start_epoch = state.get("epoch", 0)
    planned = state.get("recipe", {}).get("epochs", recipe.epochs)  # less than recipe.epochs: an extended run
    if "recipe" in state:
        state["recipe"] = {**state["recipe"], "epochs": recipe.epochs}  # saved with the next checkpoint
    history_path = run_dir / "history.csv"
    model = None
    for first, last, backbone_trainable in _phases(recipe):
        if last <= first or start_epoch >= last:
            continue
        phase_recipe = recipe
        if backbone_trainable and recipe.init:  # pretrained filters train at the lower rate
            phase_recipe = recipe.replace(learning_rate=recipe.learning_rate * recipe.backbone_lr_factor)
        with strategy.scope() if strategy is not None else nullcontext():
            if start_epoch > first and model is None:
                # Mid-phase: the checkpoint holds this phase's optimizer state and schedule position.
                model = load_checkpoint(run_dir / "checkpoints" / state["checkpoint"])
                log(f"resuming after epoch {start_epoch} from {state['checkpoint']}")
                if planned != recipe.epochs:
                    _extend_schedule(model, phase_recipe, steps_per_epoch, first, last, planned, log)
            else:
                if model is None:
                    model = build_model(config, recipe, settings, classes)
                    if start_epoch:  # resuming exactly at a phase boundary: weights only, a fresh optimizer
                        loaded = load_checkpoint(run_dir / "checkpoints" / state["checkpoint"])
                        model.set_weights(loaded.get_weights())
                _set_backbone_trainable(model, backbone_trainable)
                _compile(model, phase_recipe, steps_per_epoch, last - first, classes, settings.jit_compile)
        callbacks = [
            keras.callbacks.TerminateOnNaN(),
            _EpochEnd.make(run_dir, state, n_train, log, val_data, state.get("class_names", ())),
            # After the checkpoint: a row in history.csv means the epoch is saved.
            keras.callbacks.CSVLogger(str(history_path), append=history_path.exists()),
        ]
        verbose = settings.verbose if sys.stderr.isatty() or settings.verbose != 1 else 2  # no bars in log files
        model.fit(train_data, validation_data=val_data, epochs=last, initial_epoch=max(first, start_epoch),
                  callbacks=callbacks, verbose=verbose, shuffle=False)
        start_epoch = last
    return model


def _save_final_models(model, state: dict, run_dir: Path, metadata):
    """``last.keras`` and ``best.keras`` with their metadata; returns the best model, loaded."""
    from squeezekit.formats.metadata import write_sidecar
    from squeezekit.training.checkpoints import load_checkpoint, save_model_file

    if model is None:  # the run had already finished: resume only re-evaluates
        model = load_checkpoint(run_dir / "checkpoints" / state["checkpoint"])
    save_model_file(model, run_dir / "last.keras")
    write_sidecar(run_dir / "last.keras", metadata)
    best_path = run_dir / "best.keras" if (run_dir / "best.keras").is_file() else run_dir / "last.keras"
    write_sidecar(best_path, metadata)
    return load_checkpoint(best_path)


def evaluate_run(model, val_data, labels: np.ndarray, class_names, state: dict, recipe: Recipe, run_dir: Path) -> dict:
    from squeezekit.training.plots import plot_confusion, plot_curves

    # np.asarray: tf.data yields TensorFlow tensors, which JAX's compiled predict step does not take.
    scores = np.concatenate([np.asarray(model.predict_on_batch(np.asarray(batch))) for batch, _ in val_data])
    from squeezekit.preprocessing import top_k

    ranked = top_k(scores, 5)
    top1 = ranked[:, 0] == labels
    top5 = (ranked[:, :5] == labels[:, None]).any(axis=1)
    classes = len(class_names)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, ranked[:, 0]), 1)
    per_class = {name: float(confusion[i, i] / max(1, confusion[i].sum())) for i, name in enumerate(class_names)}
    history = []
    history_path = run_dir / "history.csv"
    if history_path.is_file():
        with open(history_path) as handle:
            # A run killed between writing an epoch's row and its checkpoint repeats that epoch on resume:
            # keep the last row of each epoch.
            history = list({row["epoch"]: row for row in csv.DictReader(handle)}.values())
    speeds = [float(row["images_per_second"]) for row in history if row.get("images_per_second")]
    metrics = {
        "top1": float(top1.mean()), "top5": float(top5.mean()), "n_val": int(len(labels)), "per_class": per_class,
        "epochs": int(state.get("epoch", 0)), "best_epoch": state.get("best_epoch"),
        "wall_seconds_training": round(state.get("train_seconds", 0.0), 1),
        "images_per_second": round(float(np.median(speeds)), 1) if speeds else None,
        "parameters": int(model.count_params()), "recipe": recipe.name,
    }
    from squeezekit._resources import atomic_write_bytes

    atomic_write_bytes(run_dir / "metrics.json", json.dumps(metrics, indent=1).encode())
    plot_curves(history, run_dir / "curves.png")
    plot_confusion(confusion, class_names, run_dir / "confusion.png")
    return metrics
