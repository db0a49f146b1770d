"""`squeezekit evaluate` on real photos laid out in both supported ways, and its bad inputs."""

import json
import shutil

import pytest

pytest.importorskip("keras")


PHOTOS = ["n01440764_tench.JPEG", "n01860187_black_swan.JPEG", "n02105162_malinois.JPEG", "n02793495_barn.JPEG",
          "n03662601_lifeboat.JPEG", "n04487394_trombone.JPEG", "n01530575_brambling.JPEG", "n02123045_tabby.JPEG"]


@pytest.fixture
def sample(data_dir):
    return data_dir / "imagenet" / "sample-1000"


def test_wnid_subfolders_with_broken_files(tmp_path, sample, run_cli):
    for name in PHOTOS:
        folder = tmp_path / name.split("_")[0]
        folder.mkdir(exist_ok=True)
        shutil.copy(sample / name, folder / name)
    (tmp_path / "n01440764" / "notes.txt").write_text("not an image")
    truncated = (sample / PHOTOS[1]).read_bytes()[:300]
    (tmp_path / "n01860187" / "cut.JPEG").write_bytes(truncated)
    (tmp_path / "n01860187" / "empty.jpg").write_bytes(b"")
    status, out, err = run_cli("evaluate", "squeezenet1_1", tmp_path, "--batch-size", "3", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["n"] == len(PHOTOS)
    assert report["skipped"] == 3
    assert {entry["file"].rsplit("/", 1)[-1] for entry in report["skipped_files"]} == {"notes.txt", "cut.JPEG", "empty.jpg"}
    assert all(entry["reason"] for entry in report["skipped_files"])
    # The first six are photos both models classify correctly.
    assert 6 / 8 <= report["top1"] <= report["top5"] <= 1.0


def test_flat_wnid_files_and_limit(sample, run_cli):
    status, out, err = run_cli("evaluate", "squeezenet1_1", sample, "--limit", "10", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["n"] == 10 and 0.0 <= report["top1"] <= report["top5"] <= 1.0


def test_human_readable_output_reports_skips(tmp_path, sample, run_cli):
    shutil.copy(sample / PHOTOS[0], tmp_path / PHOTOS[0])
    (tmp_path / "n01440764_broken.JPEG").write_bytes(b"GIF89a nonsense")
    status, out, err = run_cli("evaluate", "squeezenet1_1", tmp_path)
    assert status == 0
    assert "top-1 100.00 %" in out and "1 images" in out
    assert "skipped 1 file" in err and err.count("n01440764_broken.JPEG") == 1  # named once, not "x: x: ..."


@pytest.mark.parametrize(
    "make_args, fragment",
    [
        (lambda tmp: ["squeezenet1_1", tmp], "no labelled image files"),
        (lambda tmp: ["squeezenet3_0", tmp], "squeezenet3_0: no such model file or folder, and not a pretrained name"),
        (lambda tmp: ["squeezenet1_1", tmp / "missing"], "not a folder"),
        (lambda tmp: ["squeezenet1_1", tmp, "--batch-size", "0"], "--batch-size"),
    ],
)
def test_usage_errors_exit_2(tmp_path, run_cli, data_dir, make_args, fragment):
    status, out, err = run_cli("evaluate", *make_args(tmp_path))
    assert status == 2
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_class_folders_that_are_not_labels(tmp_path, sample, run_cli):
    (tmp_path / "cats").mkdir()
    shutil.copy(sample / PHOTOS[0], tmp_path / "cats" / "a.jpg")
    status, _, err = run_cli("evaluate", "squeezenet1_1", tmp_path)
    assert status == 2 and "wnid" in err


def test_altered_weight_file_names_file_and_hash(tmp_path, data_dir, monkeypatch, run_cli):
    """A corrupted source is refused with the file and the expected hash, and the user's file stays."""
    fake_data = tmp_path / "data"
    source = data_dir / "weights" / "squeezenet_v1.1_openvino_ir_fp16"
    target = fake_data / "weights" / "squeezenet_v1.1_openvino_ir_fp16"
    target.mkdir(parents=True)
    shutil.copy(source / "squeezenet1.1.xml", target)
    blob = bytearray((source / "squeezenet1.1.bin").read_bytes())
    blob[1000] ^= 0x01
    (target / "squeezenet1.1.bin").write_bytes(bytes(blob))
    shutil.copytree(data_dir / "imagenet", fake_data / "imagenet", ignore=shutil.ignore_patterns("sample-1000"))
    monkeypatch.setenv("SQUEEZEKIT_DATA_DIR", str(fake_data))
    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    status, _, err = run_cli("evaluate", "squeezenet1_1", data_dir / "imagenet" / "sample-1000", "--limit", "1")
    assert status == 2  # a damaged input file: 2 in every command
    assert "squeezenet1.1.bin" in err and "4405e29f9d7b91fbd950358c470eed04edfe82a14d766a948add81493803f563" in err
    assert (target / "squeezenet1.1.bin").read_bytes() == bytes(blob)
