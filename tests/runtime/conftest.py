"""Fixtures of the TensorFlow-free runtime tests.

The pretrained artefacts (float32 and int8 ONNX models of SqueezeNet v1.1) are built once per test
session, in a subprocess where importing TensorFlow or Keras raises, into a temporary
``SQUEEZEKIT_HOME``. ``squeezekit predict`` then runs in the same kind of subprocess against that
home, without ``SQUEEZEKIT_DATA_DIR``: once built, a pretrained name needs nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TIMEOUT_S = 120  # every subprocess; a hang fails the test instead of the whole run
BUILD_TIMEOUT_S = 300  # the first build quantises and checks an int8 model (~10 s on a laptop)

# Put first on sys.meta_path: any import of these packages (or their submodules) raises ImportError.
BLOCK_FRAMEWORKS = """
import importlib.abc, os, sys

class _BlockFrameworks(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"importing {name} is blocked in this test")
        return None

sys.meta_path.insert(0, _BlockFrameworks())
"""

# Runs `squeezekit ARGS...`; with SQUEEZEKIT_TEST_MODULES set, also writes the top-level names of the
# third-party modules that were imported.
PREDICT_PROGRAM = BLOCK_FRAMEWORKS + """
from squeezekit.cli.main import main

status = main(sys.argv[1:])
if os.environ.get("SQUEEZEKIT_TEST_MODULES"):
    names = {name.partition(".")[0] for name in sys.modules} - set(sys.stdlib_module_names)
    with open(os.environ["SQUEEZEKIT_TEST_MODULES"], "w") as file:
        file.write(" ".join(sorted(names)))
sys.exit(status)
"""

# Photos of the shared sample that SqueezeNet v1.1 classifies correctly and confidently (top-1 > 0.9).
PHOTOS = {
    "barn": "n02793495_barn.JPEG",
    "lifeboat": "n03662601_lifeboat.JPEG",
    "strawberry": "n07745940_strawberry.JPEG",
    "black_swan": "n01860187_black_swan.JPEG",
}


@dataclass(frozen=True)
class Artefacts:
    home: Path  # the SQUEEZEKIT_HOME they were built in
    default: Path  # what `--model squeezenet1_1` uses (int8 when it passed its check)
    float32: Path


def subprocess_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SQUEEZEKIT_DATA_DIR"}
    env.update(SQUEEZEKIT_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


@pytest.fixture(scope="session")
def artefacts(data_dir, tmp_path_factory) -> Artefacts:
    home = tmp_path_factory.mktemp("squeezekit-home")
    program = BLOCK_FRAMEWORKS + (
        "from squeezekit.runtime.pretrained import pretrained_artefact\n"
        "print(pretrained_artefact('squeezenet1_1'))\n"
        "print(pretrained_artefact('squeezenet1_1', 'float32'))\n"
    )
    env = subprocess_env(home, SQUEEZEKIT_DATA_DIR=str(data_dir))
    proc = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    default, float32 = proc.stdout.strip().splitlines()[-2:]
    return Artefacts(home, Path(default), Path(float32))


@pytest.fixture(scope="session")
def photos(data_dir) -> dict[str, Path]:
    folder = data_dir / "imagenet" / "sample-1000"
    paths = {key: folder / name for key, name in PHOTOS.items()}
    missing = [p.name for p in paths.values() if not p.is_file()]
    assert not missing, f"sample photos missing: {missing}"
    return paths


@pytest.fixture
def copy_photo(photos):
    """copy_photo(key, destination): a writable copy of a sample photo."""

    def copy(key: str, destination: Path) -> Path:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photos[key], destination)
        return destination

    return copy


@pytest.fixture(scope="session")
def squeezekit_cli(artefacts):
    """squeezekit_cli(*args, cwd=None, modules=None, env=None): run `squeezekit ARGS` with TensorFlow/Keras
    unimportable; ``env`` adds environment variables (e.g. SQUEEZEKIT_DATA_DIR, which is removed by default)."""

    def run(*args: str, cwd: Path | None = None, modules: Path | None = None, env: dict | None = None,
            timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
        extra = {"SQUEEZEKIT_TEST_MODULES": str(modules)} if modules else {}
        return subprocess.run([sys.executable, "-c", PREDICT_PROGRAM, *map(str, args)], cwd=cwd,
                              env=subprocess_env(artefacts.home, **extra, **(env or {})), capture_output=True,
                              text=True, timeout=timeout)

    return run


def json_lines(stdout: str) -> dict[str, dict]:
    """`predict --json` output as {file: object}."""
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return {row["file"]: row for row in rows}


@pytest.fixture(scope="session")
def parse_json_lines():
    return json_lines


@pytest.fixture(scope="session")
def run_blocked_python():
    """run_blocked_python(code, env=None): ``python -c`` with TensorFlow and Keras unimportable."""

    def run(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", BLOCK_FRAMEWORKS + code], env=env, capture_output=True,
                              text=True, timeout=TIMEOUT_S)

    return run
