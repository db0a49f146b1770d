"""Design-space exploration (paper sections 5 and 6): train every configuration of a sweep of
metaparameters with the same recipe, data and seeds, and report accuracy against model size.

A *sweep* varies one metaparameter around the base architecture, as each line of the paper's
Figure 3 does: ``squeeze_ratio=0.125,0.25,0.5`` trains the base with each squeeze ratio; fixed
values for that sweep follow an ``@``: ``pct_3x3=0.01,0.5,0.99@squeeze_ratio=0.5`` (the paper's 3x3
sweep at SR 0.5). Several sweeps run together; a configuration that two sweeps share is trained once.

Every trial is an ordinary ``squeezekit train`` run in ``OUT/trials/<key>/``; a trial with a
``trial.json`` is finished and skipped, an interrupted one resumes from its last checkpoint. A key
reads as the overrides that make the trial differ from the recipe's base and ends in a hash of the
architecture it trains, whole, and its seed: when a recipe's own architecture changes (the ``cifar``
recipe's conv10 became linear), its trials get new keys and are trained again rather than mixed with
trials of the old architecture.

Trials are handed out by KerasTuner (an oracle that queues the trial keys) rather than by a
scheduler of our own. Why KerasTuner: it is Keras' own tuner, a pure-Python install beside Keras, and
its distributed mode needs no cluster software: one *chief* process holds the oracle and serves trials
over gRPC, any number of *worker* processes (on this host or others, one per device) ask it for the
next trial, and all are configured by three environment variables, as ``TF_CONFIG`` configures
tf.distribute. Ray Tune would add a cluster runtime for the same job. Without those variables the
same oracle runs in-process and trials run in turn. Results live in the trial folders, so ``OUT`` must
be shared by all processes (a network folder); the chief writes the report when every trial is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from squeezekit.config import SqueezeNetConfig, config_fields
from squeezekit.registry import get_preset

logger = logging.getLogger(__name__)

__all__ = ["Sweep", "Trial", "parse_sweep", "plan_trials", "run_exploration", "scheduler_role"]

RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class Sweep:
    parameter: str
    values: tuple
    fixed: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        fixed = ", ".join(f"{k}={v}" for k, v in self.fixed.items())
        return self.parameter + (f" ({fixed})" if fixed else "")


@dataclass(frozen=True)
class Trial:
    overrides: dict  # architecture overrides on top of the recipe's
    seed: int
    config: dict  # the whole architecture it trains (SqueezeNetConfig.to_dict()): what the key's hash names

    @property
    def key(self) -> str:
        text = json.dumps({"config": self.config, "seed": self.seed}, sort_keys=True)
        readable = "-".join(f"{k}={v}" for k, v in sorted(self.overrides.items())) or "base"
        return f"{readable}-seed{self.seed}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _field_types() -> dict[str, type]:
    """The sweepable metaparameters and their types (``fire_widths``, a tuple per module, is not one)."""
    defaults = SqueezeNetConfig()
    return {name: type(getattr(defaults, name)) for name in config_fields() if name != "fire_widths"}


def _parse_value(parameter: str, text: str):
    kind = _field_types()[parameter]
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return kind(text) if kind in (int, float, str) else text
    except ValueError:
        raise ValueError(f"--sweep {parameter}: {text!r} is not a valid {kind.__name__}") from None


def parse_sweep(text: str) -> Sweep:
    """``name=v1,v2,...[@fixed=value,...]`` -> :class:`Sweep` (names are SqueezeNetConfig fields)."""
    body, _, fixed_text = text.partition("@")
    parameter, sep, values_text = body.partition("=")
    parameter = parameter.strip().replace("-", "_")
    known = _field_types()
    if not sep or parameter not in known:
        raise ValueError(f"--sweep {text!r}: expected NAME=V1,V2,... with NAME one of {', '.join(sorted(known))}")
    values = tuple(_parse_value(parameter, v.strip()) for v in values_text.split(",") if v.strip())
    if not values:
        raise ValueError(f"--sweep {text!r}: no values")
    fixed = {}
    for item in filter(None, (p.strip() for p in fixed_text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            raise ValueError(f"--sweep {text!r}: fixed value {item!r} is not NAME=VALUE with a known NAME")
        fixed[name] = _parse_value(name, value.strip())
    return Sweep(parameter, values, fixed)


def plan_trials(base: str, recipe_overrides: dict, sweeps: list[Sweep], seeds: int, input_size: int
                ) -> tuple[list[Trial], dict[str, list[tuple[object, str]]]]:
    """The distinct trials of ``sweeps``, and per sweep label its ``(value, trial key)`` points.

    Every configuration is built and checked against ``input_size`` here, so an impossible value or
    one that does not fit the input fails before any training.
    """
    from squeezekit.graph import check_input_size

    if seeds < 1:
        raise ValueError(f"Expected --seeds >= 1. Received: {seeds}")
    trials: dict[str, Trial] = {}
    points: dict[str, list[tuple[object, str]]] = {}
    base_config = get_preset(base).replace(**recipe_overrides)
    for sweep in sweeps:
        for value in sweep.values:
            overrides = {**sweep.fixed, sweep.parameter: value}
            try:
                config = base_config.replace(**overrides)
                check_input_size(config, input_size, input_size)
            except ValueError as error:
                raise ValueError(f"--sweep {sweep.parameter}={value}: {error}") from None
            # Only what differs from the base names the trial, so that one configuration reached by
            # two sweeps (pct_3x3=0.5 at SR 0.5 and SR=0.5 at the base's 50 % 3x3) is trained once.
            overrides = {name: v for name, v in overrides.items() if getattr(base_config, name) != v}
            architecture = json.loads(json.dumps(config.to_dict()))  # JSON's types: tuples become lists
            for seed in range(seeds):
                trial = Trial(overrides, seed, architecture)
                trials.setdefault(trial.key, trial)
                points.setdefault(sweep.label, []).append((value, trial.key))
    return list(trials.values()), points


def _model_figures(config: SqueezeNetConfig, classes: int, input_size: int) -> dict:
    from squeezekit.graph import layer_table

    table = layer_table(config, input_size=input_size, classes=classes)
    return {"parameters": table.parameters, "macs": table.macs,
            "size_bytes": {str(bits): table.size_bytes(bits) for bits in (32, 8, 6)}}


TRIAL_FILE = "trial.json"  # in each trial folder, written last: the trial is finished


def _trial_dir(out: Path, trial: Trial) -> Path:
    return out / "trials" / trial.key


def parse_trial_summary(values) -> dict:
    """A finished trial's ``trial.json``, every field the report uses checked."""
    from squeezekit._schema import integer, mapping, real, required

    summary = mapping(values, "trial")
    mapping(required(summary, "overrides"), "overrides")
    integer(required(summary, "seed"), "seed", 0, 1 << 32)
    integer(required(summary, "epochs"), "epochs", 1, 1 << 20)
    real(required(summary, "top1"), "top1", 0.0, 1.0)
    if summary.get("top5") is not None:
        real(summary["top5"], "top5", 0.0, 1.0)
    for key in ("train_seconds", "images_per_second"):
        if summary.get(key) is not None:
            real(summary[key], key, 0.0, 1e12)
    integer(required(summary, "parameters"), "parameters", 0, 1 << 40)
    integer(required(summary, "macs"), "macs", 0, 1 << 50)
    sizes = mapping(required(summary, "size_bytes"), "size_bytes")
    for bits in ("32", "8", "6"):
        real(required(sizes, bits, "size_bytes."), f"size_bytes.{bits}", 0.0, 1e13)
    return summary


def _finished_summary(out: Path, trial: Trial) -> dict | None:
    """The trial's summary when it finished; None when it has not (or its record is damaged: it then runs
    again, resuming from its own checkpoints, which costs one evaluation)."""
    from squeezekit._schema import read_document
    from squeezekit.errors import WeightFileError

    path = _trial_dir(out, trial) / TRIAL_FILE
    if not path.is_file():
        return None
    try:
        return read_document(path, parse_trial_summary, "trial record")
    except WeightFileError as error:
        logger.warning(f"{error}; the trial runs again")
        return None


def scheduler_role() -> str:
    """``"local"``, or ``"chief"``/``"worker"`` of a distributed KerasTuner search (from the
    ``KERASTUNER_TUNER_ID``/``KERASTUNER_ORACLE_IP``/``KERASTUNER_ORACLE_PORT`` variables)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "local"
    for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if not os.environ.get(name):
            raise ValueError(f"KERASTUNER_ORACLE_IP is set but {name} is not: a distributed search needs "
                             "KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID (chief or a worker name)")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def run_exploration(
    *,
    data: str,
    out: str | os.PathLike,
    sweeps: list[Sweep],
    base: str = "squeezenet1_1",
    recipe: str = "cifar",
    val: str | None = None,
    epochs: int | None = None,
    seeds: int = 1,
    budget_minutes: float | None = None,
    report_only: bool = False,
    log=None,
) -> dict:
    """Train (or skip, or resume) every trial, then write results.json, results.md and the plots.

    With ``report_only`` nothing is trained: the report covers the trials finished so far (a study
    spread over sittings or machines can be read part way).

    In a distributed search (see :func:`scheduler_role`) a worker only runs the trials the chief
    hands it and returns the report of what is finished so far; the chief writes the report.
    """
    log = log or logger.info
    import importlib.util

    if importlib.util.find_spec("keras") is None and not report_only:
        raise ValueError("exploration trains with Keras, which is not installed: pip install 'squeezekit[train]'")
    from squeezekit._resources import atomic_write_bytes
    from squeezekit.training.recipes import get_recipe

    role = scheduler_role()
    out = Path(out)
    recipe_spec = get_recipe(recipe)
    input_size = recipe_spec.preprocessing.crop
    trials, points = plan_trials(base, recipe_spec.arch_overrides, sweeps, seeds, input_size)
    epochs = recipe_spec.epochs if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"Expected --epochs >= 1. Received: {epochs}")
    from squeezekit._outputs import claim_folder

    claim_folder(out, marker=".squeezekit-study", kind="design-space study",
                 recognise=lambda folder: (folder / "trials").is_dir() or (folder / RESULTS_FILE).is_file())
    pending = [t for t in trials if _finished_summary(out, t) is None]
    if report_only:
        if role != "local":
            raise ValueError("--report-only reads the trial folders; run it without the KERASTUNER_* variables")
        log(f"{len(trials) - len(pending)} of {len(trials)} trials finished; reporting those, training none")
        pending = []
    elif budget_minutes is not None and pending and role != "worker":
        seconds_per_epoch = _estimate_epoch_seconds(data, base, recipe, val, pending[0], out)
        if budget_minutes * 60 < seconds_per_epoch:
            raise ValueError(f"--budget-minutes {budget_minutes}: one epoch takes about {seconds_per_epoch / 60:.1f} "
                             "minutes on this machine; raise the budget")
        affordable = int(budget_minutes * 60 // (seconds_per_epoch * len(pending)))
        if affordable < 1:
            raise ValueError(f"--budget-minutes {budget_minutes}: {len(pending)} trials of one epoch take about "
                             f"{len(pending) * seconds_per_epoch / 60:.0f} minutes; raise the budget or sweep fewer values")
        if affordable < epochs:
            log(f"budget: {len(pending)} trials x {affordable} epochs (of {epochs}) fit in {budget_minutes:g} minutes")
            epochs = affordable
    log(f"{len(trials)} trials, {len(trials) - len(pending)} finished, {len(pending)} to run, {epochs} epochs each"
        + ("" if role == "local" else f" ({role} of a distributed KerasTuner search)"))

    def run_trial(key: str, trial_epochs: int) -> dict:
        from squeezekit.training.trainer import TrainSettings, train

        trial = next(t for t in trials if t.key == key)
        run_dir = _trial_dir(out, trial)
        resume = (run_dir / "checkpoints" / "state.json").is_file()
        log(f"trial {key}" + (" (resuming)" if resume else ""))
        start = time.perf_counter()
        metrics = train(TrainSettings(data=data, out=str(run_dir), arch=base, recipe=recipe, val=val,
                                      epochs=trial_epochs, seed=trial.seed, resume=resume,
                                      arch_overrides=trial.overrides, verbose=2), log=log)
        config = SqueezeNetConfig.from_dict(trial.config)
        summary = {
            "overrides": trial.overrides, "config": trial.config, "seed": trial.seed, "epochs": trial_epochs,
            "top1": metrics["top1"], "top5": metrics.get("top5"),
            "train_seconds": metrics.get("wall_seconds_training", time.perf_counter() - start),
            "images_per_second": metrics.get("images_per_second"),
            **_model_figures(config, len(metrics.get("per_class", {})) or 10, input_size),
        }
        atomic_write_bytes(run_dir / TRIAL_FILE, json.dumps(summary, indent=1).encode())
        return summary

    if pending or role == "worker":
        _search_with_kerastuner(out, [t.key for t in pending], epochs, run_trial, role, log)
    finished = {}
    for trial in trials:
        summary = _finished_summary(out, trial)
        if summary is not None:
            finished[trial.key] = summary
    report = {"base": base, "recipe": recipe, "data": data, "sweeps": {
        label: [{"value": value, "trial": key} for value, key in pairs] for label, pairs in points.items()},
        "trials": finished}
    if role == "worker":
        return report
    atomic_write_bytes(out / RESULTS_FILE, json.dumps(finished, indent=1).encode())
    write_report(out, report)
    failed = [t.key for t in trials if t.key not in finished]
    if failed and not report_only:
        from squeezekit.errors import TrialsFailedError

        raise TrialsFailedError(f"{len(failed)} trial(s) did not finish: {', '.join(failed)}; their logs are in "
                                f"{out / 'trials'}. Rerun the same command to retry them (finished trials are kept).")
    return report


def _search_with_kerastuner(out: Path, keys: list[str], epochs: int, run_trial, role: str, log) -> None:
    """Hand the trials out with KerasTuner: in this process (``local``), or over gRPC from the ``chief`` to
    the ``worker`` processes. The trial key and the epochs are the two "hyperparameters", so every worker
    trains what the chief decided (budgeted epochs included)."""
    import traceback

    try:
        import keras_tuner
    except ImportError:
        raise ValueError("exploration schedules its trials with KerasTuner, which is not installed: "
                         "pip install keras-tuner (or 'squeezekit[train]')") from None

    class SweepTuner(keras_tuner.engine.base_tuner.BaseTuner):
        def run_trial(self, trial, *args, **kwargs):
            values = trial.hyperparameters.values
            try:
                summary = run_trial(values["trial"], int(values["epochs"]))
            except Exception:
                # KerasTuner records a failed trial and goes on with the others; say why here.
                log(f"trial {values['trial']} failed:\n{traceback.format_exc()}")
                raise
            return {"top1": summary["top1"]}

    space = keras_tuner.HyperParameters()
    # A worker's own space is never searched (its oracle is replaced by a client of the chief's), so
    # a worker with nothing pending locally still gets a valid, unused placeholder.
    space.Choice("trial", keys or ["none"], ordered=False)
    space.Fixed("epochs", epochs)
    oracle = _trial_queue_oracle(keras_tuner, keys, epochs, objective=keras_tuner.Objective("top1", "max"),
                                 max_trials=max(len(keys), 1), hyperparameters=space,
                                 max_consecutive_failed_trials=len(keys) + 1)  # try every trial; we report the failures
    # A fresh oracle per invocation: what is finished is known from the trial folders, and an
    # interrupted trial resumes from its own checkpoints. Workers keep their state apart from the chief's.
    project = "oracle" if role != "worker" else f"worker-{os.environ.get('KERASTUNER_TUNER_ID')}"
    tuner = SweepTuner(oracle, directory=str(out / "kerastuner"), project_name=project, overwrite=True)
    tuner.search(verbose=0)


def _trial_queue_oracle(keras_tuner, keys: list[str], epochs: int, **oracle_arguments):
    """A KerasTuner oracle that gives each worker asking for a trial the next key nobody has been given.

    KerasTuner's own GridSearchOracle derives a new combination only from a trial that has ended (or
    the first one), so it keeps at most two trials running whatever the number of workers: on one GPU
    shared by twelve workers, eight never got a trial. The trials of a study are independent; a queue
    is all it needs.
    """

    class TrialQueueOracle(keras_tuner.Oracle):
        def populate_space(self, trial_id):
            given = {trial.hyperparameters.values.get("trial") for trial in self.trials.values()}
            waiting = [key for key in keys if key not in given]
            if not waiting:
                # A worker told STOPPED leaves; the chief waits for the ongoing trials before it exits.
                return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}
            return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING,
                    "values": {"trial": waiting[0], "epochs": epochs}}

    return TrialQueueOracle(**oracle_arguments)


def _estimate_epoch_seconds(data, base, recipe, val, trial: Trial, out: Path) -> float:
    """Seconds per training epoch of ``trial``, from timing a few steps of its model (once per sweep)."""
    import numpy as np

    cache = out / "epoch-estimate.json"
    if cache.is_file():
        from squeezekit._schema import mapping, read_document, real, required
        from squeezekit.errors import WeightFileError

        try:
            return read_document(cache, lambda values: real(required(mapping(values, "estimate"), "seconds_per_epoch"),
                                                            "seconds_per_epoch", 0.0, 1e9), "epoch estimate")
        except WeightFileError:
            pass  # measured again below
    import keras

    from squeezekit.data.sources import scan, splits_of
    from squeezekit.models.squeezenet import SqueezeNet
    from squeezekit.training.recipes import get_recipe
    from squeezekit.training.trainer import _jit_compile

    spec = get_recipe(recipe)
    files = scan(data, "train" if "train" in splits_of(data) else None)
    size = spec.preprocessing.crop
    config = SqueezeNetConfig.from_dict(trial.config)
    model = SqueezeNet(config, input_shape=(size, size, 3), classes=len(files.class_names))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy",
                  jit_compile=_jit_compile("auto"))
    batch = min(spec.batch_size, len(files))
    x = np.zeros((batch, size, size, 3), np.float32)
    y = np.eye(len(files.class_names), dtype=np.float32)[np.zeros(batch, int)]
    model.train_on_batch(x, y)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    seconds = sorted(times)[1] * math.ceil(len(files) / batch) * 1.15  # + input pipeline and validation
    from squeezekit._resources import atomic_write_bytes

    atomic_write_bytes(cache, json.dumps({"seconds_per_epoch": seconds}).encode())
    return seconds


def write_report(out: Path, report: dict) -> None:
    """``results.md`` (one table per sweep) and ``tradeoff.png`` (top-1 against the swept value, a panel per sweep)."""
    from squeezekit.reports import exploration_markdown, tradeoff_plot

    markdown, curves = exploration_markdown(report)
    from squeezekit._resources import atomic_write_bytes

    atomic_write_bytes(out / "results.md", markdown.encode())
    tradeoff_plot(out / "tradeoff.png", curves, report)
