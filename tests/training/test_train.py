"""`squeezekit train` end to end on a tiny real dataset: outputs, resume after SIGKILL, bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("keras")

TRAIN = [sys.executable, "-m", "squeezekit", "train", "--recipe", "cifar", "--batch-size", "16"]


def _env(tmp_path):
    return {**os.environ, "SQUEEZEKIT_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _train(tmp_path, *args, timeout=300):
    return subprocess.run([*TRAIN, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=_env(tmp_path))


def _train_here(tmp_path, monkeypatch, capsys, *args) -> tuple[int, str]:
    """The same command in this process (no interpreter and TensorFlow start-up): (exit status, stderr)."""
    from squeezekit.cli.main import main

    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    capsys.readouterr()
    try:
        status = main([*TRAIN[3:], *map(str, args)])
    except SystemExit as exit:  # argparse's usage errors
        status = exit.code
    return status, capsys.readouterr().err


def test_run_folder_holds_models_history_metrics_and_plots(tiny_cifar, tmp_path):
    run = tmp_path / "run"
    result = _train(tmp_path, "--data", tiny_cifar, "--epochs", "2", "--out", run, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["n_val"] == 24 and metrics["epochs"] == 2 and 0 <= metrics["top1"] <= metrics["top5"] <= 1
    assert set(metrics["per_class"]) == {"airplane", "cat", "ship"}
    assert metrics["images_per_second"] > 0 and metrics["parameters"] > 0
    for name in ("best.keras", "best.keras.json", "last.keras", "last.keras.json", "history.csv", "metrics.json",
                 "curves.png", "confusion.png", "checkpoints/state.json", "checkpoints/epoch-0002.keras"):
        assert (run / name).is_file(), name
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    sidecar = json.loads((run / "best.keras.json").read_text())
    assert [label for label, _ in sidecar["labels"]] == ["airplane", "cat", "ship"]
    # The trained model is usable by the other commands.
    evaluated = subprocess.run([sys.executable, "-m", "squeezekit", "evaluate", str(run / "best.keras"),
                                str(tiny_cifar / "test"), "--json"], capture_output=True, text=True, timeout=300,
                               env=_env(tmp_path))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(metrics["top1"])


def test_metaparameter_options_change_the_recipes_architecture(tiny_cifar, tmp_path):
    run = tmp_path / "run"
    result = _train(tmp_path, "--data", tiny_cifar, "--epochs", "1", "--out", run, "--bypass", "complex",
                    "--squeeze-ratio", "0.25")
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((run / "best.keras.json").read_text())["extra"]["config"]
    assert config["bypass"] == "complex" and config["squeeze_ratio"] == 0.25
    assert config["conv1_kernel"] == 3 and config["batch_norm"] is True  # the recipe's overrides stay


def _wait_for(predicate, timeout, process):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("moment", ["after-a-checkpoint", "during-a-checkpoint-write"])
def test_sigkill_then_resume(tiny_cifar, tmp_path, moment):
    """Killing a real run loses at most the current epoch; the surviving checkpoint loads; --resume finishes."""
    run = tmp_path / "run"
    process = subprocess.Popen([*TRAIN, "--data", str(tiny_cifar), "--epochs", "4", "--out", str(run)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(tmp_path))
    checkpoints = run / "checkpoints"
    try:
        if moment == "after-a-checkpoint":
            seen = _wait_for(lambda: (checkpoints / "state.json").is_file(), 240, process)
        else:
            # A temporary ".epoch-...keras" exists only while a checkpoint is being written.
            seen = _wait_for(lambda: checkpoints.is_dir() and any(p.name.startswith(".epoch-") for p in checkpoints.iterdir()),
                             240, process)
        assert seen, "the run ended before the moment to kill it"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    state_path = checkpoints / "state.json"
    if state_path.is_file():
        from squeezekit.training.checkpoints import load_checkpoint

        state = json.loads(state_path.read_text())
        load_checkpoint(checkpoints / state["checkpoint"])  # never a broken checkpoint
        result = _train(tmp_path, "--data", tiny_cifar, "--epochs", "4", "--out", run, "--resume", "--json")
    else:  # killed while writing the very first checkpoint: nothing to resume, start again
        shutil.rmtree(run)
        result = _train(tmp_path, "--data", tiny_cifar, "--epochs", "4", "--out", run, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["epochs"] == 4
    assert json.loads(state_path.read_text())["epoch"] == 4
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".")]


def test_resume_continues_with_the_runs_own_settings(tiny_cifar, tmp_path):
    """Options left out on --resume come from the run, not from the recipe's defaults, and the optimizer
    continues from the checkpoint's step count."""
    import keras

    from squeezekit.training.checkpoints import load_checkpoint

    run = tmp_path / "run"
    process = subprocess.Popen([*TRAIN, "--data", str(tiny_cifar), "--epochs", "3", "--out", str(run)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(tmp_path))
    try:
        assert _wait_for(lambda: (run / "checkpoints" / "state.json").is_file(), 240, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    state_file = run / "checkpoints" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["epoch"] < 3 and state["config"]["classifier_relu"] is False  # the recipe's linear conv10
    # A run started before the recipe made conv10 linear resumes with the ReLU it started with.
    del state["recipe"]["arch_overrides"]["classifier_relu"]
    state["config"]["classifier_relu"] = True
    state_file.write_text(json.dumps(state))

    changed = _train(tmp_path, "--data", tiny_cifar, "--out", run, "--resume", "--epochs", "2", "--lr", "0.5")
    assert changed.returncode == 2, changed.stderr[-1500:]
    assert "--epochs 3 -> 2" in changed.stderr and "--lr 0.1 -> 0.5" in changed.stderr, changed.stderr[-1500:]

    result = _train(tmp_path, "--data", tiny_cifar, "--out", run, "--resume", "--lr", "0.1", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["epochs"] == 3  # not the recipe's 28
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["config"]["classifier_relu"] is True
    model = load_checkpoint(run / "checkpoints" / state["checkpoint"])
    steps_per_epoch = -(-72 // 16)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 3 * steps_per_epoch


def test_resume_with_more_epochs_extends_the_run_on_the_longer_schedule(tiny_cifar, tmp_path):
    """--resume --epochs 3 on a finished 2-epoch run trains one more epoch, on the learning-rate schedule of
    a 3-epoch run: at the extension point the rate is the one a run started with --epochs 3 has there."""
    import csv

    run = tmp_path / "run"
    assert _train(tmp_path, "--data", tiny_cifar, "--epochs", "2", "--out", run).returncode == 0
    extended = _train(tmp_path, "--data", tiny_cifar, "--out", run, "--resume", "--epochs", "3", "--json")
    assert extended.returncode == 0, extended.stderr[-2000:]
    assert json.loads(extended.stdout.strip().splitlines()[-1])["epochs"] == 3
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 3 and state["recipe"]["epochs"] == 3
    with open(run / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in history] == [0, 1, 2]
    (line,) = [line for line in extended.stderr.splitlines() + extended.stdout.splitlines() if "extending the run" in line]
    rate_at_extension = float(line.rsplit("rate ", 1)[1])

    # The reference: Keras' own cosine decay with warm-up over a 3-epoch run of the cifar recipe (learning
    # rate 0.1, one warm-up epoch; 72 photos in batches of 16). history's learning_rate is the rate after
    # each epoch's last step: row 1 is the rate at step 2 * steps.
    import keras

    steps = -(-72 // 16)
    reference = keras.optimizers.schedules.CosineDecay(0.0, 2 * steps, warmup_target=0.1, warmup_steps=steps)
    assert rate_at_extension == pytest.approx(float(reference(2 * steps)), rel=1e-3)
    assert float(history[1]["learning_rate"]) < 1e-6 < rate_at_extension  # the old schedule had ended at 0
    assert float(history[2]["learning_rate"]) == pytest.approx(float(reference(3 * steps)), abs=1e-6)


def test_bad_inputs_are_clear_errors_and_keep_results(tiny_cifar, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert _train(tmp_path, "--data", tiny_cifar, "--epochs", "1", "--out", run).returncode == 0
    before = (run / "checkpoints" / "state.json").read_text()

    other = tmp_path / "other"
    shutil.copytree(tiny_cifar / "test", other / "val")
    (other / "val" / "ship").rename(other / "val" / "truck")
    cases = {
        "another run": (["--data", tiny_cifar, "--epochs", "1", "--out", run], "--resume"),
        "resume other arch": (["--data", tiny_cifar, "--out", run, "--resume", "--arch", "squeezenet1_0"],
                              "another architecture"),
        "val classes differ": (["--data", tiny_cifar / "train", "--val", other / "val", "--epochs", "1", "--out", tmp_path / "r2"],
                               "validation classes differ"),
        "nothing to resume": (["--data", tiny_cifar, "--epochs", "1", "--out", tmp_path / "empty", "--resume"], "no checkpoint"),
        "resume with a bypass": (["--data", tiny_cifar, "--out", run, "--resume", "--bypass", "complex"],
                                 "another architecture"),
        "unknown bypass": (["--data", tiny_cifar, "--epochs", "1", "--out", tmp_path / "r3", "--bypass", "sideways"],
                           "bypass"),
    }
    for name, (args, fragment) in cases.items():
        status, stderr = _train_here(tmp_path, monkeypatch, capsys, *args)
        assert status == 2, (name, stderr[-1500:])
        last = stderr.strip().splitlines()[-1]
        assert fragment in last and "Traceback" not in stderr, (name, last)
    assert (run / "checkpoints" / "state.json").read_text() == before


def test_data_problems(tiny_cifar, tmp_path, monkeypatch, capsys):
    one_class = tmp_path / "one"
    shutil.copytree(tiny_cifar / "train" / "cat", one_class / "cat")
    empty = tmp_path / "empty-class"
    shutil.copytree(tiny_cifar / "train", empty)
    (empty / "dog").mkdir()
    for data, fragment in ((one_class, "at least 2"), (empty, "without images")):
        status, stderr = _train_here(tmp_path, monkeypatch, capsys, "--data", data, "--epochs", "1", "--out", tmp_path / "r")
        assert status == 2 and fragment in stderr.strip().splitlines()[-1], stderr[-1500:]

    broken = tmp_path / "broken"
    shutil.copytree(tiny_cifar, broken)
    (broken / "train" / "cat" / "zero.jpg").write_bytes(b"")
    (broken / "train" / "cat" / "notes.txt").write_text("hello")
    first = next((broken / "train" / "ship").iterdir())
    first.write_bytes(first.read_bytes()[:100])
    (broken / "train" / "cat" / "two\nlines.png").write_bytes(b"\x89PNG but not really")
    result = _train(tmp_path, "--data", broken, "--epochs", "1", "--out", tmp_path / "r3")
    assert result.returncode == 0, result.stderr[-1500:]
    lines = (tmp_path / "r3" / "skipped.txt").read_text().splitlines()
    assert len(lines) == 4, lines  # one line per file, a newline in a name escaped
    names = dict(line.split("\t") for line in lines)
    assert sorted(name.rsplit("/", 1)[-1] for name in names) == sorted(
        ["zero.jpg", "notes.txt", first.name, "two\\nlines.png"])
    for name, reason in names.items():  # names are file names, reasons say why, no Python object reprs
        assert reason and "object at 0x" not in reason and "<" not in reason, (name, reason)
        assert name.rsplit("/", 1)[-1] not in reason, (name, reason)


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tiny_cifar, tmp_path, monkeypatch, capsys):
    """The second epoch's checkpoint hits "No space left on device" halfway through the file: the run
    stops with a one-line error (exit 1), the first checkpoint stays in charge and loads, no partial
    file is left, and --resume continues from it once there is space again."""
    import errno

    import keras

    from squeezekit.cli.main import main
    from squeezekit.training.checkpoints import load_checkpoint

    real_save = keras.Model.save
    saves = []

    def save_then_fill_the_disk(model, filepath, *args, **kwargs):
        if "checkpoints" in str(filepath):
            saves.append(filepath)
        if len(saves) == 2 and "checkpoints" in str(filepath):
            with open(filepath, "wb") as partial:
                partial.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(model, filepath, *args, **kwargs)

    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(keras.Model, "save", save_then_fill_the_disk)
    run = tmp_path / "run"
    args = ["train", "--recipe", "cifar", "--batch-size", "16", "--data", str(tiny_cifar), "--epochs", "2",
            "--out", str(run)]
    assert main(args) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "No space left on device" in error and "previous checkpoint is intact" in error
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0001.keras", "state.json"]
    load_checkpoint(run / "checkpoints" / "epoch-0001.keras")

    monkeypatch.setattr(keras.Model, "save", real_save)
    assert main([*args, "--resume"]) == 0
    assert json.loads((run / "checkpoints" / "state.json").read_text())["epoch"] == 2


def test_a_short_seeded_fine_tuning_learns(tiny_imagenette, tmp_path):
    """One epoch of the finetune recipe on 90 real photos of three classes must beat chance (33 %) by far:
    a broken loss, label order, preprocessing or weight loading would sit near chance."""
    result = _train(tmp_path, "--recipe", "finetune", "--data", tiny_imagenette / "train", "--val", tiny_imagenette / "val",
                    "--epochs", "1", "--seed", "0", "--out", tmp_path / "run", "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["n_val"] == 30
    assert metrics["top1"] >= 0.8, metrics


def test_dead_classifier_units_are_found():
    # A class whose conv10 unit is negative everywhere outputs 0 after the ReLU: found; the others not.
    import numpy as np

    from squeezekit.models.squeezenet import SqueezeNet
    from squeezekit.training.trainer import dead_classifier_units
    from squeezekit.weights.convert import assign_arrays

    from compression_helpers import SMALL, random_arrays

    arrays = random_arrays(SMALL, classes=3, seed=1)
    model = SqueezeNet(SMALL, classes=3, input_shape=(32, 32, 3))
    assign_arrays(model, arrays)
    images = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    for bias, dead in (([1e4, 1e4, 1e4], []), ([1e4, -1e4, 1e4], [1]), ([-1e4, 1e4, -1e4], [0, 2])):
        arrays["conv10/bias"] = np.array(bias, dtype=arrays["conv10/bias"].dtype)
        assign_arrays(model, arrays)
        assert dead_classifier_units(model, images) == dead
    # Without conv10's ReLU a negative score is a score, not a dead unit.
    linear = SqueezeNet(SMALL.replace(classifier_relu=False), classes=3, input_shape=(32, 32, 3))
    assign_arrays(linear, arrays)
    assert dead_classifier_units(linear, images) == []


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_jax_and_torch_train_without_tensorflow(tiny_cifar, tmp_path, backend):
    """A JAX or PyTorch user needs no TensorFlow: batches come from the NumPy pipeline."""
    pytest.importorskip(backend)
    from pathlib import Path

    run = tmp_path / "run"
    helper = Path(__file__).resolve().parents[1] / "without_tensorflow.py"
    result = subprocess.run([sys.executable, str(helper), *TRAIN[3:], "--data", str(tiny_cifar), "--epochs", "1",
                             "--out", str(run), "--json"], capture_output=True, text=True, timeout=300,
                            env={**_env(tmp_path), "KERAS_BACKEND": backend})
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["epochs"] == 1 and metrics["n_val"] == 24 and metrics["images_per_second"] > 0
    assert (run / "best.keras").is_file() and (run / "checkpoints" / "epoch-0001.keras").is_file()


def test_without_tensorflow_helper_really_hides_it(tmp_path):
    from pathlib import Path

    helper = Path(__file__).resolve().parents[1] / "without_tensorflow.py"
    code = f"import runpy, sys; sys.argv = ['x']; exec(open({str(helper)!r}).read().split('if __name__')[0]); import tensorflow"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "No module named 'tensorflow'" in result.stderr
