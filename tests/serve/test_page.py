"""The page in a real headless Chromium: uploads, in-browser inference (onnxruntime-web), the camera."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.data

from live_server import Server  # noqa: E402
from squeezekit.config import Preprocessing  # noqa: E402
from squeezekit.preprocessing import resize_and_crop  # noqa: E402

PHOTOS = ["n02793495_barn.JPEG", "n03662601_lifeboat.JPEG", "n07745940_strawberry.JPEG",
          "n01860187_black_swan.JPEG", "n02123045_tabby.JPEG", "n04285008_sports_car.JPEG"]


@pytest.fixture(scope="module")
def photos(data_dir):
    folder = data_dir / "imagenet" / "sample-1000"
    paths = [folder / name for name in PHOTOS if (folder / name).is_file()]
    assert len(paths) >= 4, "sample photos missing"
    return paths


@pytest.fixture(scope="module")
def served(data_dir, browser_runtime, tmp_path_factory):
    """A server with the pretrained v1.1 as float32 and int8 ONNX artefacts (both checked by squeezekit)."""
    import os

    from squeezekit.runtime import Classifier
    from squeezekit.runtime.pretrained import pretrained_artefact
    from squeezekit.serve import ServeSettings, create_app

    saved = os.environ.get("SQUEEZEKIT_HOME")
    os.environ["SQUEEZEKIT_HOME"] = str(tmp_path_factory.mktemp("home"))
    try:
        models = {"fp32": ("squeezenet1_1 float32", Classifier.load(pretrained_artefact("squeezenet1_1", "float32")))}
        int8 = pretrained_artefact("squeezenet1_1", "auto")
        if int8.name.endswith("-int8.onnx"):
            models["int8"] = ("squeezenet1_1 int8", Classifier.load(int8))
    finally:
        if saved is None:
            os.environ.pop("SQUEEZEKIT_HOME")
        else:
            os.environ["SQUEEZEKIT_HOME"] = saved
    server = Server(create_app(models, ServeSettings(browser_runtime=str(browser_runtime))))
    yield server
    server.stop()


def _server_top5(served, model: str, data: bytes) -> list[str]:
    status, _, answer = served.json("POST", f"/predictions/{model}", data)
    assert status == 200, answer
    return [p["id"] for p in answer["predictions"]]


def _wait(driver, condition: str, timeout: float = 120):
    """Wait until the JavaScript expression ``condition`` is truthy; return its value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(f"return {condition}")
        if value:
            return value
        time.sleep(0.1)
    status = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"timed out waiting for {condition}; the page says: {status!r}")


def _open(driver, served, model: str):
    driver.get(f"http://127.0.0.1:{served.port}/")
    _wait(driver, "document.getElementById('model').options.length > 0")
    driver.execute_script(f"document.getElementById('model').value = {json.dumps(model)}")


def _classify_file(driver, path, where: str) -> dict:
    driver.execute_script("squeezekitPage.state.last = null")
    driver.find_element("id", "file").send_keys(str(path))
    last = _wait(driver, f"squeezekitPage.state.last && squeezekitPage.state.last.where === '{where}' "
                         "&& squeezekitPage.state.last")
    shown = [li.get_attribute("data-id") for li in driver.find_elements("css selector", "#results li")]
    assert shown == [p["id"] for p in last["predictions"]]  # what is drawn is what was answered
    return last


def test_an_upload_shows_the_servers_top5(chromium, served, photos):
    driver = chromium()
    _open(driver, served, "fp32")
    for photo in photos[:3]:
        last = _classify_file(driver, photo, "server")
        assert [p["id"] for p in last["predictions"]] == _server_top5(served, "fp32", photo.read_bytes())
        assert "ms on the server" in driver.find_element("id", "status").text


def test_the_browsers_preprocessing_is_pillows_bit_for_bit(chromium, served, photos):
    """A lossless PNG of a real photo, decoded and preprocessed in the page, equals squeezekit's pixels."""
    driver = chromium()
    _open(driver, served, "fp32")
    for photo, size in ((photos[0], (500, 333)), (photos[1], (240, 320)), (photos[2], (200, 200))):
        image = Image.open(photo).convert("RGB").resize(size)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        expected = resize_and_crop(image, Preprocessing())
        pixels = driver.execute_async_script("""
            const [data, done] = arguments;
            const blob = await (await fetch("data:image/png;base64," + data)).blob();
            const decoded = await squeezekitPreprocess.decodeRGB(blob);
            done(Array.from(squeezekitPreprocess.resizeAndCrop(decoded.rgb, decoded.width, decoded.height, 256, 227)));
        """, base64.b64encode(buffer.getvalue()).decode())
        np.testing.assert_array_equal(np.asarray(pixels, np.uint8).reshape(227, 227, 3), expected)


@pytest.mark.parametrize("model", ["fp32", "int8"])
def test_in_browser_inference_gives_the_servers_top5(chromium, served, photos, model):
    if model not in [m["modelName"] for m in served.json("GET", "/models")[2]["models"]]:
        pytest.skip("the int8 artefact did not pass its check on this machine")
    driver = chromium()
    _open(driver, served, model)
    driver.find_element("id", "local").click()
    _wait(driver, "document.getElementById('status').textContent.includes('in this browser')")
    assert driver.execute_script("return self.crossOriginIsolated") is True  # WASM threads allowed
    agree = 0
    for photo in photos:
        last = _classify_file(driver, photo, "browser")
        browser, server = [p["id"] for p in last["predictions"]], _server_top5(served, model, photo.read_bytes())
        assert browser[0] == server[0], (photo.name, browser, server)
        agree += browser == server
    assert agree == len(photos), f"top-5 identical on {agree} of {len(photos)} photos"


def _y4m(path, image: Image.Image, frames: int = 20) -> None:
    """A Y4M (I420, BT.601 limited range) video of one still image, for Chromium's fake camera."""
    rgb = np.asarray(image.convert("RGB"), np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    sub = lambda c: c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))  # noqa: E731
    planes = b"".join(np.clip(np.round(p), 0, 255).astype(np.uint8).tobytes() for p in (y, sub(u), sub(v)))
    height, width = rgb.shape[:2]
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n" + planes)


def test_the_camera_classifies_live_frames(chromium, served, photos, tmp_path):
    photo = Image.open(photos[0]).convert("RGB").resize((640, 480))
    video = tmp_path / "camera.y4m"
    _y4m(video, photo)
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    expected = _server_top5(served, "fp32", buffer.getvalue())[0]
    driver = chromium(fake_video=video)
    _open(driver, served, "fp32")
    driver.find_element("id", "camera").click()
    last = _wait(driver, "squeezekitPage.state.last && squeezekitPage.state.last")
    assert last["predictions"][0]["id"] == expected, last
    driver.find_element("id", "camera").click()  # and off again
