"""Shared fixtures.

Real data comes from ``SQUEEZEKIT_DATA_DIR`` (the layout of ``../shared/data``). In CI the data is
always present, so a test that needs it fails there instead of silently skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


# Absolute from the start: tests that change the working folder (a CLI run in tmp_path) still find it
# when it was given relative, as in `SQUEEZEKIT_DATA_DIR=../shared/data ./scripts/test`.
if os.environ.get("SQUEEZEKIT_DATA_DIR"):
    os.environ["SQUEEZEKIT_DATA_DIR"] = os.path.abspath(os.environ["SQUEEZEKIT_DATA_DIR"])


def _data_dir_or_none() -> Path | None:
    value = os.environ.get("SQUEEZEKIT_DATA_DIR")
    if value and Path(value).is_dir():
        return Path(value).resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder; fails under CI when it is missing, skips elsewhere."""
    path = _data_dir_or_none()
    if path is None:
        message = "SQUEEZEKIT_DATA_DIR is not set to an existing folder (see ../shared/data/README.md)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def pytest_collection_modifyitems(config, items):
    """Every test that reaches the real data (through the ``data_dir`` fixture, directly or via another
    fixture) carries the ``data`` marker, so ``-m 'not data'`` selects exactly the self-contained tests."""
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()) and item.get_closest_marker("data") is None:
            item.add_marker(pytest.mark.data)


@pytest.fixture
def run_cli(capsys):
    """squeezekit's command line, called in this process: ``run_cli(*argv)`` -> (exit status, stdout, stderr)."""
    from squeezekit.cli.main import main

    def run(*argv):
        status = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run
