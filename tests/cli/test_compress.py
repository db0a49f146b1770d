"""`squeezekit compress` on a small trained-style model: report, .sqz written, predict and evaluate
read it; fine-tuning runs end to end; bad input is a one-line error with exit status 2."""

import json

import numpy as np
import pytest

from compression_helpers import SMALL

pytest.importorskip("keras")

CLASSES = ["apple", "pear", "plum"]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A .keras SqueezeNet (batch norm, complex bypass) with its metadata, and a labelled image folder."""
    from PIL import Image

    from small_model import write_batch_norm_keras

    root = tmp_path_factory.mktemp("small")
    path = write_batch_norm_keras(root / "small.keras", SMALL, CLASSES)
    rng = np.random.default_rng(0)
    for label in CLASSES:
        (root / "images" / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / "images" / label / f"{i}.png")
    return path, root / "images"


def test_compress_predict_evaluate(small_model, tmp_path, run_cli):
    model, images = small_model
    out = tmp_path / "small.sqz"
    status, stdout, err = run_cli("compress", model, "--prune", "conv1=1,*=0.4", "--bits", "4", "-o", out,
                                  "--eval", images, "--json")
    assert status == 0, err
    report = json.loads(stdout)
    assert report["bytes"] == out.stat().st_size
    # The file itself, decoded: per-layer density, and at most 2^4 distinct weights per layer.
    from squeezekit.formats.sqz import read_sqz

    decoded = {layer.name: layer for layer in read_sqz(out).layers}
    weights = {name: layer.dense_weights() for name, layer in decoded.items()}
    assert np.count_nonzero(weights["conv1"]) == weights["conv1"].size
    assert np.count_nonzero(weights["fire9/expand3x3"]) / weights["fire9/expand3x3"].size == pytest.approx(0.4, abs=0.01)
    assert all(len(np.unique(w[w != 0])) <= 2 ** 4 for w in weights.values())
    assert {row["layer"] for row in report["layers"]} == set(decoded)
    assert [stage["stage"] for stage in report["stages"]][0] == "source (float32)"

    status, stdout, err = run_cli("compress", model, "--bits", "6", "-o", tmp_path / "t.sqz")
    assert status == 0 and "indices (fixed → Huffman)" in stdout and "wrote" in stdout, err

    status, stdout, err = run_cli("predict", "--model", out, "--json", images / "pear" / "0.png")
    assert status == 0, err
    assert json.loads(stdout)["predictions"][0]["label"] in CLASSES
    status, stdout, err = run_cli("evaluate", out, images, "--json")
    assert status == 0, err
    assert json.loads(stdout)["n"] == 12


def test_compress_with_fine_tuning(small_model, tmp_path, run_cli):
    model, images = small_model
    status, stdout, err = run_cli("compress", model, "--prune", "*=0.5", "--prune-steps", "2", "--bits", "3",
                                  "--data", images, "--finetune-epochs", "1", "--finetune-images", "12",
                                  "-o", tmp_path / "ft.sqz", "--json")
    assert status == 0, err
    stages = [stage["stage"] for stage in json.loads(stdout)["stages"]]
    assert stages[-1] == "compressed (.sqz)" and any("before centroid fine-tuning" in s for s in stages)


def test_compress_to_a_byte_budget(small_model, tmp_path, run_cli):
    model, _ = small_model
    status, stdout, err = run_cli("compress", model, "--prune", "*=0.5", "--bits", "4", "-o", tmp_path / "a.sqz",
                                  "--json")
    assert status == 0, err
    plain = json.loads(stdout)["bytes"]
    budget = int(0.85 * plain)
    status, stdout, err = run_cli("compress", model, "--prune", "*=0.5", "--bits", "4", "--max-bytes", budget,
                                  "-o", tmp_path / "b.sqz", "--json")
    assert status == 0, err
    assert (tmp_path / "b.sqz").stat().st_size == json.loads(stdout)["bytes"] <= budget
    assert "entropy-constrained sharing: rate" in err
    status, _, err = run_cli("compress", model, "--prune", "*=0.5", "--max-bytes", "1k", "-o", tmp_path / "c.sqz")
    assert status == 2 and "--max-bytes >= " in err and "positions, codebooks and biases alone" in err
    assert not (tmp_path / "c.sqz").exists()


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--max-bytes", "lots"], "expected a number of bytes such as 400000 or 400k"),
        (["--max-bytes", "0"], "expected a positive number of bytes"),
        (["--max-bytes", "100k", "--kmeans-init", "linear"], "needs --kmeans-init='optimal'"),
        (["--prune", "conv1=2"], "density 2.0 must be in (0, 1]"),
        (["--prune", "x=y"], "is not DENSITY"),
        (["--bits", "9"], "--bits in 1..8"),
        (["--finetune-epochs", "1"], "needs --data"),
        (["-o", "out.onnx"], "must end in .sqz"),
        (["--data", "/no/such/folder", "--finetune-epochs", "1"], "no such file"),
    ],
)
def test_bad_input(small_model, tmp_path, run_cli, extra, fragment):
    model, _ = small_model
    status, _, err = run_cli("compress", model, "-o", tmp_path / "x.sqz", *extra)
    assert status == 2
    assert fragment in err.strip().splitlines()[-1]
    assert not (tmp_path / "x.sqz").exists()


def test_unknown_model_and_damaged_sqz(tmp_path, run_cli):
    status, _, err = run_cli("compress", "resnet50")
    assert status == 2 and "resnet50: no such model file or folder, and not a pretrained name" in err
    bad = tmp_path / "bad.sqz"
    bad.write_bytes(b"\x89SQZ\r\n\x1a\n\x01\x00" + bytes(62))  # version 1, checksum wrong
    status, _, err = run_cli("compress", bad, "-o", tmp_path / "y.sqz")
    assert status == 2 and "checksum" in err
