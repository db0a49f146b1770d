"""`squeezekit predict` end to end: inputs, batching, output formats, bad images, exit status.

Each run is a subprocess in which TensorFlow and Keras cannot be imported (see conftest.py).
"""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

WNID = {"barn": "n02793495", "lifeboat": "n03662601", "strawberry": "n07745940", "black_swan": "n01860187"}


def _top(row: dict) -> list[tuple[str, float]]:
    return [(p["id"], p["probability"]) for p in row["predictions"]]


def _same(top: list, expected: list, atol: float = 2e-5) -> bool:
    """Same classes in the same order, probabilities within ``atol``."""
    return [i for i, _ in top] == [i for i, _ in expected] and np.allclose(
        [p for _, p in top], [p for _, p in expected], rtol=0, atol=atol)


def test_files_folders_and_globs_in_batches_as_json_lines(squeezekit_cli, copy_photo, parse_json_lines, tmp_path):
    copy_photo("barn", tmp_path / "folder" / "barn.jpg")
    copy_photo("lifeboat", tmp_path / "folder" / "nested" / "lifeboat.JPEG")
    (tmp_path / "folder" / "notes.txt").write_text("not an image suffix: skipped in folders")
    copy_photo("strawberry", tmp_path / "globbed" / "strawberry.jpg")
    copy_photo("black_swan", tmp_path / "globbed" / "black_swan.jpg")
    copy_photo("barn", tmp_path / "single.jpeg")
    proc = squeezekit_cli("predict", "folder", "globbed/*.jpg", "single.jpeg", "--json", "--top-k", "3",
                          "--batch-size", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rows = parse_json_lines(proc.stdout)
    expected = {"folder/barn.jpg": "barn", "folder/nested/lifeboat.JPEG": "lifeboat",
                "globbed/black_swan.jpg": "black_swan", "globbed/strawberry.jpg": "strawberry", "single.jpeg": "barn"}
    assert list(rows) == list(expected)  # folder contents sorted, then the glob's matches sorted, then the file
    for file, key in expected.items():
        top = _top(rows[file])
        assert len(top) == 3
        assert top[0][0] == WNID[key], (file, top)
        probabilities = [p for _, p in top]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-5
        assert all(p["label"] for p in rows[file]["predictions"])
    # The same photo, once in a batch of two and once alone in the last batch of one.
    assert _same(_top(rows["single.jpeg"]), _top(rows["folder/barn.jpg"]))


def test_text_output_is_one_line_per_image(squeezekit_cli, photos):
    proc = squeezekit_cli("predict", photos["barn"], photos["black_swan"], "--top-k", "2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    label = r"[^,()]+ \((?:0|1)\.\d{3}\)"
    for key, line in zip(["barn", "black_swan"], lines):
        assert re.fullmatch(rf"{re.escape(str(photos[key]))}: {label}, {label}", line), line
        assert line.split(": ")[1].startswith(key.replace("_", " ") + " (")


def test_a_newline_in_a_file_name_stays_one_escaped_line(squeezekit_cli, copy_photo, parse_json_lines, tmp_path):
    photo = copy_photo("barn", tmp_path / "barn\nfake: line.jpg")
    broken = tmp_path / "broken\tname.jpg"
    broken.write_bytes(b"not an image")
    proc = squeezekit_cli("predict", photo, broken, "--top-k", "1")
    assert proc.returncode == 1
    [line] = proc.stdout.splitlines()
    assert line.startswith(f"{tmp_path}/barn\\nfake: line.jpg: barn ("), line
    [error] = proc.stderr.splitlines()
    assert error.startswith(f"squeezekit predict: {tmp_path}/broken\\tname.jpg: not a readable image"), error
    assert error.count("broken") == 1, error
    as_json = parse_json_lines(squeezekit_cli("predict", photo, "--json").stdout)
    assert list(as_json) == [str(photo)]  # JSON keeps the name as it is


def _write_png16(path, rgb: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one) with the 8-bit values scaled by 257."""
    height, width, _ = rgb.shape
    rows = (rgb.astype(">u2") * 257).reshape(height, width * 3)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def _converted_versions(source, folder) -> dict[str, str]:
    """Save the photo in other modes and containers; returns file name -> how it must compare to the original.

    "same": the pixels are the original's, so the probabilities are too; "top1": lossy, same class;
    "classified": a grayscale photo may be another class; "different": a check that EXIF is really used.
    """
    folder.mkdir()
    with Image.open(source) as image:
        rgb = image.convert("RGB")
    kinds = {}

    def save(name, image, kind, **options):
        image.save(folder / name, **options)
        kinds[name] = kind

    save("rgb.png", rgb, "same")
    save("cmyk.tiff", rgb.convert("CMYK"), "same")
    save("cmyk.jpg", rgb.convert("CMYK"), "top1", quality=95)
    save("rgba.png", rgb.convert("RGBA"), "same")
    save("palette.png", rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "top1")
    save("gray.png", rgb.convert("L"), "classified")
    save("gray16.png", Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257), "same-as-gray")
    _write_png16(folder / "rgb16.png", np.asarray(rgb))
    kinds["rgb16.png"] = "same"
    # Stored turned a quarter to the left, with the EXIF orientation 6 ("turn 90 degrees clockwise to view").
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = rgb.transpose(Image.Transpose.ROTATE_90)
    save("exif-rotated.png", turned, "same", exif=exif)
    save("exif-rotated.jpg", turned, "top1", exif=exif, quality=95)
    save("rotated-without-exif.png", turned, "different")
    with Image.open(folder / "gray16.png") as check:
        assert check.mode.startswith("I"), check.mode  # really a 16-bit grayscale file
    with Image.open(folder / "rgb16.png") as check:
        assert check.mode == "RGB" and check.size == rgb.size
    return kinds


@pytest.mark.parametrize("key", ["barn", "strawberry"])
def test_converted_images_are_classified_like_the_rgb_photo(key, squeezekit_cli, photos, parse_json_lines, tmp_path):
    kinds = _converted_versions(photos[key], tmp_path / "versions")
    proc = squeezekit_cli("predict", photos[key], "versions", "--json", "--top-k", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = parse_json_lines(proc.stdout)
    original = _top(rows[str(photos[key])])
    assert original[0][0] == WNID[key]
    for name, kind in kinds.items():
        top = _top(rows[f"versions/{name}"])
        assert len(top) == 5, name
        if kind == "same":
            assert _same(top, original), (name, top, original)
        elif kind == "top1":
            assert top[0][0] == original[0][0], (name, top, original)
        elif kind == "same-as-gray":
            assert _same(top, _top(rows["versions/gray.png"])), name
        elif kind == "different":
            assert not _same(top, original), (name, top, original)


def _bad_files(folder, copy_photo) -> dict[str, str]:
    """Files that are not usable images; returns name -> words the error must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = copy_photo("barn", folder / "source.jpg").read_bytes()
    (folder / "source.jpg").unlink()
    (folder / "truncated.jpg").write_bytes(photo[: len(photo) // 2])
    (folder / "zero-bytes.png").write_bytes(b"")
    (folder / "not-an-image.jpg").write_text("<html><body>This is a web page, not a photo</body></html>\n")
    (folder / "png-signature-only.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    # A few KB on disk each: 144 megapixels (over Pillow's warning limit, which squeezekit refuses) and
    # 225 megapixels (over Pillow's error limit).
    Image.new("1", (12_000, 12_000)).save(folder / "bomb-144mp.png")
    Image.new("1", (15_000, 15_000)).save(folder / "bomb-225mp.png")
    return {"truncated.jpg": "truncated", "zero-bytes.png": "not a readable image",
            "not-an-image.jpg": "not a readable image", "png-signature-only.png": "not a readable image",
            "bomb-144mp.png": "decompression bomb", "bomb-225mp.png": "decompression bomb"}


def test_bad_files_are_reported_and_the_others_classified(squeezekit_cli, copy_photo, parse_json_lines, tmp_path):
    copy_photo("barn", tmp_path / "mixed" / "a-barn.jpg")
    copy_photo("lifeboat", tmp_path / "mixed" / "m-lifeboat.jpg")
    copy_photo("strawberry", tmp_path / "mixed" / "z-strawberry.jpg")
    reasons = _bad_files(tmp_path / "mixed", copy_photo)
    (tmp_path / "empty-folder").mkdir()
    extra = {"missing.jpg": "no such file or folder", "empty-folder": "no image files in this folder",
             "nothing-*.png": "the pattern matches no file"}
    proc = squeezekit_cli("predict", "mixed", *extra, "--json", "--batch-size", "3", "--top-k", "1", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    rows = parse_json_lines(proc.stdout)
    assert len(rows) == 3 + len(reasons) + len(extra)
    for name, key in [("a-barn.jpg", "barn"), ("m-lifeboat.jpg", "lifeboat"), ("z-strawberry.jpg", "strawberry")]:
        assert _top(rows[f"mixed/{name}"])[0][0] == WNID[key]
    for name, words in [*((f"mixed/{n}", w) for n, w in reasons.items()), *extra.items()]:
        row = rows[name]
        assert set(row) == {"file", "error"}, row
        assert row["error"].startswith(f"{name}: ") and words in row["error"], row


def test_bad_files_in_text_mode_are_one_line_each_on_stderr(squeezekit_cli, copy_photo, tmp_path):
    copy_photo("barn", tmp_path / "mixed" / "barn.jpg")
    reasons = _bad_files(tmp_path / "mixed", copy_photo)
    proc = squeezekit_cli("predict", "mixed", "missing.jpg", cwd=tmp_path)
    assert proc.returncode == 1
    [line] = proc.stdout.splitlines()
    assert line.startswith("mixed/barn.jpg: barn ("), line
    errors = proc.stderr.splitlines()
    assert len(errors) == len(reasons) + 1, proc.stderr
    assert errors[0] == "squeezekit predict: missing.jpg: no such file or folder"
    for line, (name, words) in zip(errors[1:], sorted(reasons.items())):
        assert line.startswith(f"squeezekit predict: mixed/{name}: ") and words in line, line


def test_only_bad_images_is_status_1_and_only_missing_inputs_status_2(squeezekit_cli, copy_photo, tmp_path):
    _bad_files(tmp_path / "bad", copy_photo)
    proc = squeezekit_cli("predict", "bad", "--json", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    proc = squeezekit_cli("predict", "missing.jpg", "also-missing/", "none-*.jpg", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("squeezekit predict: error: missing.jpg: no such file or folder; ")
    assert "none-*.jpg: the pattern matches no file" in proc.stderr
