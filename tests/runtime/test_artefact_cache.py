"""Pretrained artefacts in SQUEEZEKIT_HOME heal: a damaged one is rebuilt once, through the CLI too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from squeezekit._cache import record_path


@pytest.fixture
def home_copy(artefacts, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(artefacts.home, home)
    return home


def _predict(home, photo, data_dir, *extra):
    env = {**os.environ, "SQUEEZEKIT_HOME": str(home), "SQUEEZEKIT_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "squeezekit", "predict", str(photo), "--top-k", "1", *extra],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("damage", ["truncated", "record deleted", "record of another build"])
def test_damaged_float32_artefact_is_rebuilt_once_and_predict_succeeds(artefacts, home_copy, photos, data_dir, damage):
    fp32 = home_copy / "artefacts" / artefacts.float32.name
    good = fp32.read_bytes()
    if damage == "truncated":
        fp32.write_bytes(good[: len(good) // 3])
    elif damage == "record deleted":
        record_path(fp32).unlink()
    else:
        record = json.loads(record_path(fp32).read_text())
        record_path(fp32).write_text(json.dumps({**record, "built_from": "something else"}))
    first = _predict(home_copy, photos["barn"], data_dir)
    assert first.returncode == 0, first.stderr
    rebuilt_lines = [line for line in first.stderr.splitlines() if "rebuilding" in line]
    assert len(rebuilt_lines) == 1 and str(fp32) in rebuilt_lines[0], first.stderr
    assert fp32.read_bytes() == good  # the same bytes as the first build: deterministic
    second = _predict(home_copy, photos["barn"], data_dir)
    assert second.returncode == 0 and "rebuilding" not in second.stderr
    assert not [p for p in (home_copy / "artefacts").iterdir() if ".partial-" in p.name]


def test_int8_check_record_altered_is_rebuilt(artefacts, home_copy, photos, data_dir):
    int8 = next((home_copy / "artefacts").glob("*-int8.onnx"))
    record = json.loads(record_path(int8).read_text())
    record_path(int8).write_text(json.dumps({**record, "report": {"passed": "maybe"}}))
    proc = _predict(home_copy, photos["barn"], data_dir)
    assert proc.returncode == 0, proc.stderr
    assert sum("rebuilding this int8 ONNX model" in line for line in proc.stderr.splitlines()) == 1
    assert isinstance(json.loads(record_path(int8).read_text())["report"]["passed"], bool)
