"""The cache mechanism (``squeezekit._cache``): verified files, healing once, no leftovers, never a failure."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import squeezekit._cache as cache
from squeezekit._cache import cached_file, record_path


class Builder:
    """A build that writes known bytes and counts its calls."""

    def __init__(self, content: bytes = b"built content " * 100):
        self.content, self.calls = content, 0

    def __call__(self, path):
        self.calls += 1
        path.write_bytes(self.content)
        return {"passed": True, "n": self.calls}


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if cache._PARTIAL in p.name)


def test_built_once_then_reused_with_its_report(tmp_path):
    build = Builder()
    path, report = cached_file(tmp_path / "a.bin", "inputs v1", build, what="thing")
    assert path == tmp_path / "a.bin" and path.read_bytes() == build.content and report == {"passed": True, "n": 1}
    record = json.loads(record_path(path).read_text())
    assert record["built_from"] == "inputs v1" and record["size"] == len(build.content)
    again, report = cached_file(tmp_path / "a.bin", "inputs v1", build, what="thing")
    assert again == path and build.calls == 1 and report["n"] == 1
    assert _leftovers(tmp_path) == []


DAMAGES = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:-7]),
    "emptied": lambda path: path.write_bytes(b""),
    "one byte flipped": lambda path: path.write_bytes(bytes([path.read_bytes()[0] ^ 1]) + path.read_bytes()[1:]),
    "foreign file, same size": lambda path: path.write_bytes(b"x" * path.stat().st_size),
    "record missing (an older squeezekit)": lambda path: record_path(path).unlink(),
    "record not JSON": lambda path: record_path(path).write_text("{ broken"),
    "record of other inputs": lambda path: record_path(path).write_text(
        json.dumps({**json.loads(record_path(path).read_text()), "built_from": "inputs v0"})),
    "record checksum altered": lambda path: record_path(path).write_text(
        json.dumps({**json.loads(record_path(path).read_text()), "sha256": "0" * 64})),
    "record report altered": lambda path: record_path(path).write_text(
        json.dumps({**json.loads(record_path(path).read_text()), "report": {"passed": "yes"}})),
    "record a list": lambda path: record_path(path).write_text("[1, 2]"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_or_mismatched_file_is_rebuilt_once_with_one_line(tmp_path, caplog, damage):
    build = Builder()
    target = tmp_path / "cache" / "a.bin"
    valid = lambda report: isinstance(report.get("passed"), bool)  # noqa: E731
    cached_file(target, "inputs v1", build, what="thing", valid_report=valid)
    DAMAGES[damage](target)
    with caplog.at_level(logging.WARNING, logger="squeezekit"):
        path, report = cached_file(target, "inputs v1", build, what="thing", valid_report=valid)
    assert build.calls == 2 and path.read_bytes() == build.content and report["n"] == 2
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"{target}: ") and "rebuilding this thing" in line and "SQUEEZEKIT_HOME" in line
    caplog.clear()
    cached_file(target, "inputs v1", build, what="thing", valid_report=valid)  # healed: no third build
    assert build.calls == 2 and caplog.records == []
    assert _leftovers(target.parent) == []


def test_a_cache_that_cannot_be_created_costs_speed_not_a_failure(tmp_path):
    blocker = tmp_path / "home"
    blocker.write_text("a file where the cache folder should be")
    build = Builder()
    path, report = cached_file(blocker / "artefacts" / "a.bin", "inputs v1", build, what="thing")
    assert path.read_bytes() == build.content and report["passed"] and not str(path).startswith(str(blocker))
    assert blocker.read_text().startswith("a file")


def test_a_full_cache_keeps_the_file_for_this_run_and_leaves_nothing(tmp_path, monkeypatch):
    build = Builder()
    real_replace = os.replace

    def full(source, destination):
        if str(destination).endswith("a.bin"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, destination)

    monkeypatch.setattr(cache.os, "replace", full)
    path, _ = cached_file(tmp_path / "a.bin", "inputs v1", build, what="thing")
    assert path.read_bytes() == build.content and path.parent != tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_build_leaves_no_scratch_and_the_old_file_alone(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"something else")  # no record: to be rebuilt

    def broken(path):
        path.write_bytes(b"half")
        raise RuntimeError("the build broke")

    with pytest.raises(RuntimeError, match="the build broke"):
        cached_file(target, "inputs v1", broken, what="thing")
    assert target.read_bytes() == b"something else" and _leftovers(tmp_path) == []


def test_scratch_of_a_killed_build_is_removed_by_the_next(tmp_path):
    """SIGKILL in the middle of a build leaves its scratch folder; the next build (another process) removes it."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from squeezekit._cache import cached_file
        def build(path):
            path.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        cached_file(Path({str(tmp_path / 'a.bin')!r}), "inputs v1", build, what="thing")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert len(_leftovers(tmp_path)) == 1 and not (tmp_path / "a.bin").exists()
    live = tmp_path / f".a.bin{cache._PARTIAL}{os.getpid()}-abcdef"  # a build still running: kept
    live.mkdir()
    cached_file(tmp_path / "a.bin", "inputs v1", Builder(), what="thing")
    assert _leftovers(tmp_path) == [live.name]


def test_the_decoded_images_cache_heals(tmp_path, monkeypatch, caplog):
    from PIL import Image

    from squeezekit.data.decode import decode_all
    from squeezekit.data.sources import scan

    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "data" / label / f"{i}.png")
    files = scan(tmp_path / "data")
    first = decode_all(files, 16)
    (stored,) = (tmp_path / "home" / "datasets").glob("*.npz")
    stored.write_bytes(stored.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="squeezekit"):
        second = decode_all(files, 16)
    np.testing.assert_array_equal(second.images, first.images)
    assert len([r for r in caplog.records if "rebuilding this cache of decoded images" in r.getMessage()]) == 1
    third = decode_all(files, 16)
    np.testing.assert_array_equal(third.labels, first.labels)
