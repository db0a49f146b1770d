"""Writing outputs without ever losing what was there: one mechanism for every artefact a command writes.

1. :func:`check_target` runs before any work: a path that exists is replaced only with ``overwrite``,
   and even then a folder only when it is an output of the same kind (``is_same_kind``): squeezekit
   never deletes a folder it did not write.
2. The artefact is written to :func:`staging_path`, a hidden name beside the target (same folder, same
   suffix, so engines recognise it), and checked there.
3. :func:`publish` renames it into place only then; :func:`discard` removes it on any failure. A
   SIGKILL at any moment leaves the old target whole (and at most a hidden ``.partial`` beside it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterator


def check_target(target: Path, *, overwrite: bool, kind: str, is_same_kind: Callable[[Path], bool] | None = None) -> None:
    """Refuse, before any work, a target that exists (without ``overwrite``) or that is not ours to replace."""
    if target.is_symlink() or target.exists():
        if not overwrite:
            raise ValueError(f"{target}: already exists; pass --overwrite to replace it, or choose another output")
        same = target.is_file() and not target.is_symlink() if is_same_kind is None else is_same_kind(target)
        if not same:
            what = "folder" if target.is_dir() else "file"
            raise ValueError(f"{target}: is a {what} that is not a {kind}; squeezekit never replaces it, even with --overwrite")
    parent = target.parent if str(target.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{parent}: is not a folder, so {target.name} cannot be written there")
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{parent}: cannot be written (permission denied)")


def staging_path(target: Path) -> Path:
    """A hidden, unused name beside ``target`` with its suffix: ``model.onnx`` -> ``.model.partial-1a2b.onnx``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.stem}.partial-{secrets.token_hex(4)}{target.suffix}")


def publish(staged: Path, target: Path) -> None:
    """Move the finished ``staged`` output to ``target``. A file replaces the old one atomically; a folder
    target (allowed by :func:`check_target`) is moved aside first and removed only once the new one is in."""
    if target.is_dir() and not target.is_symlink():
        aside = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
        os.rename(target, aside)
        try:
            os.rename(staged, target)
        except BaseException:
            os.rename(aside, target)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staged, target)


@contextlib.contextmanager
def staged(target: Path) -> Iterator[Path]:
    """``with staged(target) as path: write(path)``: the file appears at ``target`` whole, or not at all."""
    path = staging_path(target)
    try:
        yield path
        publish(path, target)
    finally:
        discard(path)


def discard(staged: Path) -> None:
    if staged.is_dir() and not staged.is_symlink():
        shutil.rmtree(staged, ignore_errors=True)
    else:
        staged.unlink(missing_ok=True)


def claim_folder(folder: Path, *, marker: str, kind: str, recognise: Callable[[Path], bool] | None = None) -> None:
    """Make ``folder`` an output folder of ``kind``: create it with its ``marker`` file, or accept it when it
    is already one (the marker, or ``recognise`` for folders written before markers). A folder that holds
    anything else is the user's, and is refused before any work."""
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise ValueError(f"{folder}: is a file, not a {kind} folder")
        if (folder / marker).is_file() or (recognise is not None and recognise(folder)):
            return
        if any(folder.iterdir()):
            raise ValueError(f"{folder}: holds files that are not a {kind}; choose a new or empty folder "
                             f"(squeezekit writes only there, or into a {kind} of its own)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / marker).write_text(f"This folder is a squeezekit {kind}.\n")


def one_line(text: str) -> str:
    """Text for one line of plain output (a listing, ``skipped.txt``, an error): newlines, tabs and other
    control characters, in file names above all, are escaped as Python writes them (``\\n``), so one
    entry stays one line. JSON output needs no such care."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
