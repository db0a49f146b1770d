"""Fixtures for the page tests: a real server with the pretrained models, onnxruntime-web, Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _missing(what: str):
    """Skip on a developer's machine; in CI (which installs everything) it is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing, and CI must have it (.ci/run installs it)")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="session")
def browser_runtime(tmp_path_factory) -> Path:
    """onnxruntime-web's dist folder: $SQUEEZEKIT_ORT_WEB_DIR, or the pinned version fetched with npm."""
    from squeezekit.serve.app import ORT_WEB_VERSION

    given = os.environ.get("SQUEEZEKIT_ORT_WEB_DIR")
    if given:
        return Path(given)
    if shutil.which("npm") is None:
        _missing("npm (to fetch onnxruntime-web)")
    folder = tmp_path_factory.mktemp("ort-web")
    subprocess.run(["npm", "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--silent"], cwd=folder, check=True,
                   capture_output=True, timeout=300)
    (tarball,) = folder.glob("onnxruntime-web-*.tgz")
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith("package/dist/ort.wasm.min.js")
                   or m.name.startswith("package/dist/ort-wasm-simd-threaded.")]
        archive.extractall(folder, members=members, filter="data")
    return folder / "package" / "dist"


@pytest.fixture(scope="session")
def chromium():
    """chromium(fake_video=None) -> a headless Chromium driven by selenium (phone-sized window)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        _missing("chromium and chromium-driver")
    drivers = []

    def start(fake_video: Path | None = None):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=412,915",
                         "--disable-gpu"):
            options.add_argument(argument)
        if fake_video is not None:
            options.add_argument("--use-fake-device-for-media-stream")
            options.add_argument("--use-fake-ui-for-media-stream")
            options.add_argument(f"--use-file-for-fake-video-capture={fake_video}")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_script_timeout(120)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()
