"""`.sqz` files in the TensorFlow-free runtime: `squeezekit compress` (lossless) and `predict` with
TensorFlow and Keras unimportable, checked against the Keras model of the same release."""

import json

import numpy as np


def test_compress_then_predict_without_tensorflow(squeezekit_cli, data_dir, photos, tmp_path):
    sqz = tmp_path / "v1_0.sqz"

    def cli(*args):
        return squeezekit_cli(*args, env={"SQUEEZEKIT_DATA_DIR": str(data_dir)}, timeout=300)

    compressed = cli("compress", "squeezenet1_0", "-o", sqz, "--json")
    assert compressed.returncode == 0, compressed.stderr[-2000:]
    report = json.loads(compressed.stdout)
    assert report["bytes"] == sqz.stat().st_size < 600_000
    predicted = cli("predict", "--model", sqz, "--json", "--top-k", "5", *photos.values())
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]

    from squeezekit.opener import open_model
    from squeezekit.preprocessing import load_image, preprocess_input

    opened = open_model("squeezenet1_0", "keras")

    model, metadata = opened.model, opened.metadata
    batch = preprocess_input(np.stack([load_image(p, metadata.preprocessing) for p in photos.values()]),
                             preprocessing=metadata.preprocessing)
    expected = np.asarray(model.predict_on_batch(batch))
    for row, probabilities in zip(rows, expected):
        top = [(p["id"], p["probability"]) for p in row["predictions"]]
        order = np.argsort(-probabilities)[:5]
        assert [i for i, _ in top][:1] == [metadata.labels[order[0]][0]]
        for (label, probability) in top:
            index = next(i for i, (wnid, _) in enumerate(metadata.labels) if wnid == label)
            assert abs(probability - probabilities[index]) < 1e-4


def test_damaged_sqz_is_a_usage_error(squeezekit_cli, photos, tmp_path):
    bad = tmp_path / "bad.sqz"
    bad.write_bytes(b"\x89SQZ\r\n\x1a\n\x01\x00" + bytes(98))  # version 1, checksum wrong
    result = squeezekit_cli("predict", "--model", bad, photos["barn"])
    assert result.returncode == 2
    assert "bad.sqz" in result.stderr and "checksum" in result.stderr
