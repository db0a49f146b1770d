"""Nothing lost: commands refuse to replace what they did not write, and an old output survives any failure.

Each class of defect is tested through the one mechanism (``squeezekit._outputs``) and through the
commands that use it, with several variants of pre-existing contents and of failures.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squeezekit._outputs import check_target, claim_folder, discard, publish, staging_path


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (or ``root`` itself) with its SHA-256: byte-identical means equal snapshots."""
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def users_folder(path: Path) -> Path:
    (path / "notes").mkdir(parents=True)
    (path / "thesis.tex").write_text("years of work")
    (path / "notes" / "todo.txt").write_bytes(os.urandom(64))
    return path


# --- the mechanism ------------------------------------------------------------------------------


@pytest.mark.parametrize("existing", ["file", "folder", "empty folder", "symlink"])
def test_an_existing_target_needs_overwrite(tmp_path, existing):
    target = tmp_path / "model.onnx"
    if existing == "file":
        target.write_bytes(b"old")
    elif existing == "symlink":
        target.symlink_to(tmp_path)
    else:
        target.mkdir()
        if existing == "folder":
            users_folder(target / "inside")
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="already exists; pass --overwrite"):
        check_target(target, overwrite=False, kind="ONNX model")
    if existing != "file":  # with --overwrite, only a file of the same kind may be replaced
        with pytest.raises(ValueError, match="never replaces it, even with --overwrite"):
            check_target(target, overwrite=True, kind="ONNX model")
    else:
        check_target(target, overwrite=True, kind="ONNX model")
    assert snapshot(tmp_path) == before


def test_a_folder_is_replaced_only_when_it_is_of_the_same_kind(tmp_path):
    def is_saved_model(p: Path) -> bool:
        return p.is_dir() and (p / "saved_model.pb").is_file()

    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "saved_model.pb").write_bytes(b"old graph")
    check_target(ours, overwrite=True, kind="SavedModel", is_same_kind=is_saved_model)
    staged = staging_path(ours)
    staged.mkdir()
    (staged / "saved_model.pb").write_bytes(b"new graph")
    publish(staged, ours)
    assert (ours / "saved_model.pb").read_bytes() == b"new graph"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours"]  # the old copy is gone, nothing left over


def test_staged_files_are_hidden_beside_the_target_and_discarded(tmp_path):
    target = tmp_path / "sub" / "model.tflite"
    staged = staging_path(target)
    assert staged.parent == target.parent and staged.suffix == ".tflite" and staged.name.startswith(".")
    staged.write_bytes(b"half")
    discard(staged)
    assert not staged.exists() and not target.exists()


def test_an_unwritable_or_impossible_parent_is_refused_before_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        check_target(tmp_path / "file" / "model.onnx", overwrite=False, kind="ONNX model")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user whom permissions do not stop (root)")
        with pytest.raises(ValueError, match="permission denied"):
            check_target(locked / "model.onnx", overwrite=False, kind="ONNX model")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("contents", ["users files", "one hidden file", "a file, not a folder"])
def test_claim_folder_refuses_the_users_folders(tmp_path, contents):
    folder = tmp_path / "out"
    if contents == "a file, not a folder":
        folder.write_text("mine")
    elif contents == "one hidden file":
        folder.mkdir()
        (folder / ".profile").write_text("mine")
    else:
        users_folder(folder)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="not a"):
        claim_folder(folder, marker=".squeezekit-run", kind="training run")
    assert snapshot(tmp_path) == before


def test_claim_folder_takes_new_empty_and_its_own_folders(tmp_path):
    claim_folder(tmp_path / "new", marker=".m", kind="run")
    (tmp_path / "new" / "checkpoint").write_text("ours")
    claim_folder(tmp_path / "new", marker=".m", kind="run")  # its own, again
    (tmp_path / "empty").mkdir()
    claim_folder(tmp_path / "empty", marker=".m", kind="run")
    old = users_folder(tmp_path / "old-run")
    claim_folder(old, marker=".m", kind="run", recognise=lambda f: (f / "thesis.tex").exists())


# --- the commands -------------------------------------------------------------------------------

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from small_model import write_images, write_small_keras

    root = tmp_path_factory.mktemp("small")
    return write_small_keras(root / "small.keras"), write_images(root / "images")


@pytest.mark.parametrize("overwrite", [False, True])
def test_export_never_deletes_a_users_folder(small, tmp_path, run_cli, overwrite):
    model, images = small
    target = users_folder(tmp_path / "documents")
    before = snapshot(target)
    status, _, err = run_cli("export", model, "--format", "saved_model", "--calibration", images, "-o", target,
                             *(["--overwrite"] if overwrite else []))
    assert status == 2 and str(target) in err
    assert snapshot(target) == before


@pytest.mark.parametrize("format, suffix", [("onnx", ".onnx"), ("litert", ".tflite")])
def test_export_over_a_good_file_without_overwrite_is_refused(small, tmp_path, run_cli, format, suffix):
    model, images = small
    target = tmp_path / f"good{suffix}"
    target.write_bytes(b"a good model")
    status, _, err = run_cli("export", model, "--format", format, "--calibration", images, "-o", target)
    assert status == 2 and "pass --overwrite" in err
    assert target.read_bytes() == b"a good model"


@pytest.mark.parametrize("failure", ["check fails", "writer raises", "checker raises"])
def test_a_failed_export_leaves_the_old_file_whole(small, tmp_path, monkeypatch, failure):
    import numpy as np

    import squeezekit.export.api as api

    model, images = small
    target = tmp_path / "good.onnx"
    target.write_bytes(b"the user's good model")
    if failure == "check fails":
        monkeypatch.setattr(api, "_runner", lambda *a: (lambda batch: np.roll(np.ones((len(batch), 3)) * [1, 0, 0], 1, 1)))
    elif failure == "writer raises":
        monkeypatch.setattr(api, "_export_onnx", lambda *a: (Path(a[2]).write_bytes(b"half"), 1 / 0))
    else:
        monkeypatch.setattr(api, "compare", lambda *a: 1 / 0)
    if failure == "check fails":
        result = api.export_model(str(model), "onnx", calibration=images, output=target, overwrite=True)
        assert not result.passed and result.path == api.failed_path(target) and result.path.is_file()
    else:
        with pytest.raises(ZeroDivisionError):
            api.export_model(str(model), "onnx", calibration=images, output=target, overwrite=True)
    assert target.read_bytes() == b"the user's good model"
    leftovers = {p.name for p in tmp_path.iterdir()} - {"good.onnx", "good.FAILED-CHECK.onnx"}
    assert leftovers == set()


def test_a_passing_export_with_overwrite_replaces_the_file(small, tmp_path, run_cli):
    model, images = small
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    status, _, err = run_cli("export", model, "--format", "onnx", "--calibration", images, "-o", target,
                             "--overwrite")
    assert status == 0, err
    assert target.read_bytes()[:4] != b"old" and target.stat().st_size > 10_000


@pytest.mark.parametrize("delay", [1.0, 4.0, 7.0])
def test_sigkill_during_export_leaves_the_old_file(small, tmp_path, delay):
    model, images = small
    target = tmp_path / "model.tflite"
    target.write_bytes(b"the old model")
    process = subprocess.Popen([sys.executable, "-m", "squeezekit", "export", str(model), "--format", "litert",
                                "--calibration", str(images), "-o", str(target), "--overwrite"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    content = target.read_bytes()
    # Killed before the rename: the old bytes. After it (a fast machine): a whole model, never a mix.
    assert content == b"the old model" or (content[4:8] == b"TFL3" and len(content) > 10_000)


def test_train_and_explore_refuse_a_folder_that_is_not_theirs(tmp_path, run_cli):
    images = tmp_path / "images"
    from small_model import write_images

    write_images(images)
    for command in (["train", "--recipe", "cifar", "--data", images, "--epochs", "1"],
                    ["explore", "--recipe", "cifar", "--data", images, "--sweep", "squeeze_ratio=0.25,0.5", "--epochs", "1"]):
        out = users_folder(tmp_path / f"documents-{command[0]}")
        before = snapshot(out)
        status, _, err = run_cli(*command, "--out", out)
        assert status == 2 and "not a" in err, err
        assert snapshot(out) == before


def test_explore_refuses_zero_epochs_like_train(tmp_path, run_cli):
    status, _, err = run_cli("explore", "--data", tmp_path, "--sweep", "squeeze_ratio=0.25", "--epochs", "0",
                             "--out", tmp_path / "study")
    assert status == 2 and "--epochs" in err


def test_saved_models_get_the_users_file_mode(small, tmp_path):
    from squeezekit.opener import open_model
    from squeezekit.training.checkpoints import save_model_file

    model = open_model(small[0], "keras").model
    old = os.umask(0o022)
    try:
        save_model_file(model, tmp_path / "best.keras")
    finally:
        os.umask(old)
    assert (tmp_path / "best.keras").stat().st_mode & 0o777 == 0o644

