"""Files squeezekit builds for itself under ``SQUEEZEKIT_HOME``, and how they heal: one mechanism.

Each cached file ``NAME`` has a record ``NAME.record.json`` beside it: what the file was built from (a
fingerprint of its inputs and of the squeezekit that built it), its size and SHA-256, and what the
build reported (an int8 model's check). :func:`cached_file` returns the file only when its record
matches; a damaged, truncated, altered or foreign file (or record) is rebuilt once, with one line on
stderr saying so. Builds happen in a private scratch folder beside the file (named after the building
process, so a later build removes what a killed one left) and are renamed into place only when
finished. A cache that cannot be written (read-only, full) costs speed, never a failure: the file is
then built in a temporary folder for this process only.
"""

from __future__ import annotations

import atexit
import glob
import json
import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from squeezekit._resources import HOME_VARIABLE, atomic_write_bytes, cache_dir, sha256_of, writer_is_gone

logger = logging.getLogger("squeezekit.cache")
RECORD_SUFFIX = ".record.json"
_PARTIAL = ".partial-"


def record_path(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def _read_record(path: Path, built_from: str, valid_report) -> tuple[dict | None, str]:
    """``(the build's report, "")`` when ``path`` is what its record says; else ``(None, why not)``."""
    record_file = record_path(path)
    if not record_file.is_file():
        return None, "it has no record of what it was built from"
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or not isinstance(record.get("report", {}), dict) \
                or not valid_report(record.get("report", {})):
            raise ValueError("not the record of this build")
    except (OSError, ValueError) as error:
        return None, f"its record is unreadable ({str(error)[:80]})"
    if record.get("built_from") != built_from:
        return None, "it was built from other inputs or by another squeezekit"
    try:
        if os.path.getsize(path) != record.get("size") or sha256_of(path) != record.get("sha256"):
            return None, "it is truncated or altered (its checksum does not match)"
    except OSError as error:
        return None, f"it cannot be read ({error.strerror or error})"
    return record.get("report", {}), ""


def _remove_abandoned_builds(folder: Path, name: str) -> None:
    """Scratch folders of builds whose process is gone (a SIGKILL, a power cut)."""
    for scratch in folder.glob(f".{glob.escape(name)}{_PARTIAL}*"):
        if writer_is_gone(scratch.name[len(f".{name}{_PARTIAL}"):].split("-")[0]):
            shutil.rmtree(scratch, ignore_errors=True)


_session_folder: Path | None = None


def _session_dir() -> Path:
    """A temporary folder for this process, for builds the cache cannot hold; removed at exit."""
    global _session_folder
    if _session_folder is None:
        _session_folder = Path(tempfile.mkdtemp(prefix="squeezekit-cache-"))
        atexit.register(shutil.rmtree, _session_folder, True)
    return _session_folder


def cached_file(path: Path, built_from: str, build: Callable[[Path], dict | None], *, what: str,
                valid_report: Callable[[dict], bool] = lambda report: True) -> tuple[Path, dict]:
    """``(path, report)`` of a verified cached file, built by ``build(destination) -> report`` when needed.

    ``built_from`` fingerprints everything the file depends on; ``what`` names it in the one line said
    when an existing copy has to be rebuilt; ``valid_report`` checks the report a record holds.
    """
    if path.exists():
        report, problem = _read_record(path, built_from, valid_report)
        if report is not None:
            return path, report
        logger.warning(f"{path}: {problem}; rebuilding this {what} (it is squeezekit's cache, under "
                       f"{HOME_VARIABLE}={cache_dir()})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_builds(path.parent, path.name)
        scratch = path.parent / f".{path.name}{_PARTIAL}{os.getpid()}-{secrets.token_hex(3)}"
        scratch.mkdir()
    except OSError:
        return _build_outside(path, build)
    try:
        built = scratch / path.name
        report = build(built) or {}
        record = {"built_from": built_from, "size": built.stat().st_size, "sha256": sha256_of(built),
                  "report": report}
        try:
            os.replace(built, path)
            atomic_write_bytes(record_path(path), json.dumps(record, indent=1).encode())
        except OSError:  # a full cache: the file is kept for this run only, the work goes on
            kept = _session_dir() / f"{secrets.token_hex(4)}-{path.name}"
            shutil.move(built if built.exists() else path, kept)  # the rename, or only the record, failed
            return kept, report
        return path, report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _build_outside(path: Path, build) -> tuple[Path, dict]:
    logger.debug(f"{path.parent}: cannot be written; building {path.name} for this run only")
    destination = _session_dir() / f"{secrets.token_hex(4)}-{path.name}"
    return destination, build(destination) or {}
