"""Property: whatever sits at an output path, and wherever the work fails, it is left byte for byte.

For the commands that write artefacts (``export`` to a file and to a SavedModel folder, ``compress``),
hypothesis draws what already exists at the target (nothing, a file of random bytes, a folder of the
user's files, a symlink to a file elsewhere, a stray metadata file beside it), whether ``--overwrite``
is given, and a failure injected at a random point of the work (an exception while writing, while
checking, a full disk at the final rename, Ctrl-C). Then: either the command succeeded (exit 0, the
artefact is in place) or every pre-existing byte is where it was, and nothing new is left beside it.
A second test SIGKILLs a real ``squeezekit export`` child process after a random delay.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezekit.cli.main import main

COMMANDS = {
    "export-onnx": (lambda model, target: ["export", model, "--format", "onnx", "-o", target,
                                           "--calibration-count", "16"], "out.onnx"),
    "export-saved_model": (lambda model, target: ["export", model, "--format", "saved_model", "-o", target,
                                                  "--calibration-count", "16"], "out-model"),
    "compress": (lambda model, target: ["compress", model, "-o", target, "--bits", "4"], "out.sqz"),
}


class Injected(RuntimeError):
    pass


def _fail_after(real, exception):
    def wrapper(*args, **kwargs):
        real(*args, **kwargs)
        raise exception

    return wrapper


def _raise(exception):
    def wrapper(*args, **kwargs):
        raise exception

    return wrapper


def inject(monkeypatch, command: str, failure: str | None) -> None:
    import squeezekit.compression.pipeline as pipeline
    import squeezekit.export.api as export_api

    if failure is None:
        return
    if failure == "while writing":
        if command == "compress":
            monkeypatch.setattr(pipeline, "compress", _raise(Injected("injected: while compressing")))
        else:
            monkeypatch.setattr(export_api, "_write_artefact", _fail_after(export_api._write_artefact,
                                                                            Injected("injected: after writing")))
    elif failure == "while checking" and command != "compress":
        monkeypatch.setattr(export_api, "compare", _raise(Injected("injected: while checking")))
    elif failure == "disk full at the rename":
        full = OSError(errno.ENOSPC, "No space left on device (injected)")
        monkeypatch.setattr(os, "replace", _raise(full))
        monkeypatch.setattr(os, "rename", _raise(full))
    elif failure == "ctrl-c":
        target = pipeline if command == "compress" else export_api
        name = "compress" if command == "compress" else "predict_in_batches"
        monkeypatch.setattr(target, name, _raise(KeyboardInterrupt()))


def snapshot(path: Path):
    """Everything at ``path``, byte for byte (a symlink as its target and the bytes it points to)."""
    if path.is_symlink():
        return ("link", os.readlink(path), Path(os.readlink(path)).read_bytes())
    if path.is_dir():
        return ("dir", {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None
                        for p in sorted(path.rglob("*"))})
    if path.is_file():
        return ("file", path.read_bytes())
    return None


EXISTING = st.one_of(
    st.none(),
    st.tuples(st.just("file"), st.binary(max_size=3000)),
    st.tuples(st.just("dir"), st.dictionaries(st.sampled_from(["notes.txt", "saved_model.pb", "run/state.json",
                                                                 "variables/data", ".hidden"]),
                                              st.binary(max_size=300), max_size=3)),
    st.tuples(st.just("link"), st.binary(max_size=300)),
)


def _create(target: Path, existing, outside: Path) -> None:
    if existing is None:
        return
    kind, content = existing
    if kind == "file":
        target.write_bytes(content)
    elif kind == "dir":
        target.mkdir()
        for name, data in content.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(data)
    else:
        outside.write_bytes(content)
        target.symlink_to(outside)


@pytest.fixture(scope="module")
def small_keras(tmp_path_factory):
    from small_model import write_small_keras

    return write_small_keras(tmp_path_factory.mktemp("model") / "small.keras")


@settings(max_examples=16, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(command=st.sampled_from(sorted(COMMANDS)), existing=EXISTING, stray_sidecar=st.booleans(),
       overwrite=st.booleans(),
       failure=st.sampled_from([None, "while writing", "while checking", "disk full at the rename", "ctrl-c"]))
def test_existing_outputs_survive_every_failure(tmp_path_factory, small_keras, command, existing, stray_sidecar,
                                                overwrite, failure):
    folder = tmp_path_factory.mktemp("out")
    outside = tmp_path_factory.mktemp("elsewhere") / "precious.bin"
    arguments, name = COMMANDS[command]
    target = folder / name
    _create(target, existing, outside)
    sidecar = folder / f"{name}.json"
    if stray_sidecar:
        sidecar.write_bytes(b"the user's own notes, not squeezekit metadata")
    before = {p.name: snapshot(p) for p in folder.iterdir()}
    before_outside = snapshot(outside)

    with pytest.MonkeyPatch.context() as monkeypatch:
        inject(monkeypatch, command, failure)
        try:
            status = main([*arguments(str(small_keras), str(target)), *(["--overwrite"] if overwrite else [])])
        except Injected:  # an unexpected error escapes the command line as a traceback: still a failure
            status = None

    after = {p.name: snapshot(p) for p in folder.iterdir()}
    assert snapshot(outside) == before_outside  # a symlink's target is never written through
    if status == 0:
        assert failure is None or (failure == "while checking" and command == "compress")  # nothing injected
        assert existing is None or overwrite
        assert target.exists() and not target.is_symlink()
        return
    assert after == before, f"exit {status} with {failure!r} changed {sorted(set(after) ^ set(before)) or name}"


@pytest.fixture(scope="module")
def old_onnx(tmp_path_factory, small_keras):
    """A valid ONNX export of the small model, as the file a user already has."""
    folder = tmp_path_factory.mktemp("old")
    assert main(["export", str(small_keras), "--format", "onnx", "-o", str(folder / "old.onnx"),
                 "--calibration-count", "16"]) == 0
    return (folder / "old.onnx").read_bytes()


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delay=st.floats(0.5, 14.0), quantize=st.sampled_from(["none", "int8"]))
def test_sigkill_of_an_export_leaves_the_old_file_whole(tmp_path_factory, small_keras, old_onnx, delay, quantize):
    import onnx

    folder = tmp_path_factory.mktemp("kill")
    target = folder / "model.onnx"
    target.write_bytes(old_onnx)
    proc = subprocess.Popen([sys.executable, "-m", "squeezekit", "export", str(small_keras), "--format", "onnx",
                             "--quantize", quantize, "-o", str(target), "--overwrite", "--calibration-count", "16"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    status = proc.wait(60)
    data = target.read_bytes()
    if data != old_onnx:  # only a finished export may replace it, and then whole
        model = onnx.load_from_string(data)
        assert any(prop.key == "squeezekit" for prop in model.metadata_props)
    visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert visible == ["model.onnx"], (status, visible)
