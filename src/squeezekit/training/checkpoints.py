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


def read_state(run_dir: Path) -> dict | None:
    path = run_dir / "checkpoints" / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: unreadable checkpoint state ({error})") from None
    if not (run_dir / "checkpoints" / state["checkpoint"]).is_file():
        raise ValueError(f"{path}: names {state['checkpoint']}, which is missing")
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
