"""`squeezekit explore`: a two-configuration sweep end to end on a tiny real subset (results, table
and plot written; rerun skips the finished trials), and clear errors before any training."""

import json

import pytest

from squeezekit.cli.main import main

pytest.importorskip("keras")


def test_two_configuration_sweep_and_resume(tiny_cifar, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    out = tmp_path / "explore"
    args = ["explore", "--data", str(tiny_cifar), "--sweep", "squeeze_ratio=0.125,0.25", "--epochs", "1",
            "--out", str(out), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(report["trials"]) == 2
    for trial in report["trials"].values():
        assert 0 <= trial["top1"] <= 1 and trial["parameters"] > 0 and trial["macs"] > 0
    small, large = (report["trials"][p["trial"]] for p in report["sweeps"]["squeeze_ratio"])
    assert small["parameters"] < large["parameters"]
    assert (out / "results.md").read_text().count("| 0.125 |") == 1
    assert (out / "tradeoff.png").stat().st_size > 10_000
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/metrics.json")}

    assert main(args) == 0  # resume: both trials finished, nothing retrained
    assert "0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("trials/*/metrics.json")} == stamps


@pytest.mark.parametrize(
    "sweep, fragment",
    [
        ("squeeze_ratios=0.5", "expected NAME=V1,V2"),
        ("squeeze_ratio=0", "squeeze_ratio"),
        ("pct_3x3=1.5", "pct_3x3"),
        ("squeeze_ratio=abc", "not a valid float"),
        ("bypass=none,sideways", "bypass"),
        ("conv1_stride=8", "at least"),
    ],
)
def test_refusals_before_training(tiny_cifar, tmp_path, capsys, sweep, fragment):
    status = main(["explore", "--data", str(tiny_cifar), "--sweep", sweep, "--out", str(tmp_path / "x")])
    assert status == 2
    assert fragment in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "x" / "trials").exists()


def test_budget_too_small_for_one_epoch(tiny_cifar, tmp_path, capsys):
    status = main(["explore", "--data", str(tiny_cifar), "--sweep", "squeeze_ratio=0.25,0.5", "--budget-minutes",
                   "0.0001", "--out", str(tmp_path / "x")])
    assert status == 2
    assert "raise the budget" in capsys.readouterr().err
    assert not (tmp_path / "x" / "trials").exists()
