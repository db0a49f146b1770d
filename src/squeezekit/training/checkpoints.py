"""Checkpoints that survive SIGKILL at any moment, and resuming from them.

Each epoch the whole model (weights and optimizer state, hence the schedule position) is saved to
``checkpoints/epoch-NNNN.keras`` through a temporary file and a rename; then ``checkpoints/state.json``
(also written through a rename) is pointed at it; only then is the previous checkpoint removed. A kill
before the state update leaves the previous, complete checkpoint in charge; a kill after it leaves the
new one. No reader ever sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from squeezekit._resources import make_readable

STATE_FILE = "state.json"


def load_checkpoint(path: str | os.PathLike):
    """A checkpoint (or any ``.keras`` file squeezekit trained) as a compiled Keras model, with its
    optimizer state: the custom layers and learning-rate schedules it refers to are registered first."""
    import keras

    import squeezekit.models.fire  # noqa: F401  (Fire, and the batch norm it uses)
    import squeezekit.models.pooling  # noqa: F401
    import squeezekit.training.schedules  # noqa: F401

    return keras.models.load_model(os.fspath(path))


class CheckpointError(OSError):
    """A checkpoint could not be written (full disk, permissions); the previous one is intact."""


def _save_model_atomically(model, path: Path) -> None:
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".keras", delete=False)
    handle.close()
    temporary = Path(handle.name)
    try:
        model.save(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        make_readable(temporary)  # the temporary file was created 0600; the model gets the user's umask
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise CheckpointError(f"could not write checkpoint {path} ({error.strerror or error}); "
                                  "the previous checkpoint is intact") from None
        raise


def _write_json_atomically(path: Path, data: dict) -> None:
    from squeezekit._resources import atomic_write_bytes

    try:
        atomic_write_bytes(path, json.dumps(data, indent=1).encode())
    except OSError as error:
        raise CheckpointError(f"could not write {path} ({error.strerror or error}); the previous one is intact") from None


def parse_state(values) -> dict:
    """A run's ``state.json``, every field checked (see ``squeezekit._schema``)."""
    from squeezekit._schema import FieldError, file_name, integer, mapping, real, required, sequence, text

    state = mapping(values, "state")
    if not file_name(required(state, "checkpoint"), "checkpoint").endswith(".keras"):
        raise FieldError("checkpoint", f"must name a .keras file, not {state['checkpoint']!r}")
    integer(required(state, "epoch"), "epoch", 0, 1 << 20)
    mapping(required(state, "config"), "config")
    for i, name in enumerate(sequence(required(state, "class_names"), "class_names", min_length=1, max_length=100_000)):
        text(name, f"class_names[{i}]", 1000)
    if "recipe" in state:
        recipe = mapping(state["recipe"], "recipe")
        if "epochs" in recipe:
            integer(recipe["epochs"], "recipe.epochs", 1, 1 << 20)
    for key in ("best_epoch", "seed"):
        if state.get(key) is not None:
            integer(state[key], key, 0, 1 << 32)
    for key in ("best_val_accuracy", "train_seconds"):
        if key in state:
            real(state[key], key, -1.0, 1e12)
    if "arch" in state:
        text(state["arch"], "arch", 200)
    return state


def read_state(run_dir: Path) -> dict | None:
    """The run's checkpoint state, checked; None when the run has none."""
    from squeezekit._schema import read_document
    from squeezekit.errors import WeightFileError

    path = run_dir / "checkpoints" / STATE_FILE
    if not path.is_file():
        return None
    state = read_document(path, parse_state, "checkpoint state")
    if not (run_dir / "checkpoints" / state["checkpoint"]).is_file():
        raise WeightFileError(path, f"names {state['checkpoint']}, which is missing")
    return state


def save_checkpoint(model, run_dir: Path, epoch: int, state: dict) -> Path:
    """Save after ``epoch`` (1-based count of finished epochs) and return the checkpoint's path."""
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    previous = None
    state_path = folder / STATE_FILE
    if state_path.is_file():
        try:
            previous = json.loads(state_path.read_text()).get("checkpoint")
        except ValueError:
            previous = None
    name = f"epoch-{epoch:04d}.keras"
    _save_model_atomically(model, folder / name)
    _write_json_atomically(state_path, {**state, "epoch": epoch, "checkpoint": name})
    if previous and previous != name:
        (folder / previous).unlink(missing_ok=True)
    return folder / name


def save_model_file(model, path: Path) -> None:
    """Save a result model (best.keras, last.keras) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_model_atomically(model, path)
