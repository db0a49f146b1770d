"""`squeezekit explore`: a two-configuration sweep end to end on a tiny real subset (results, table
and plot written; rerun skips the finished trials), the same sweep spread over a KerasTuner chief and
two worker processes (each free worker gets a trial at once), a failed trial, a report of a study
part way, and clear errors before any training."""

import json
import os
import socket
import subprocess
import sys

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
    assert len(list(out.glob("trials/*/trial.json"))) == 2
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/metrics.json")}

    assert main(args) == 0  # resume: both trials finished, nothing retrained
    assert "0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("trials/*/metrics.json")} == stamps


def test_a_configuration_two_sweeps_share_is_one_trial():
    from squeezekit.explore import parse_sweep, plan_trials

    sweeps = [parse_sweep("squeeze_ratio=0.125,0.5"), parse_sweep("pct_3x3=0.25,0.5@squeeze_ratio=0.5"),
              parse_sweep("bypass=none,simple")]
    trials, points = plan_trials("squeezenet1_1", {}, sweeps, seeds=2, input_size=224)
    assert len(trials) == 2 * 4  # base, SR 0.5 (= pct 0.5 at SR 0.5), pct 0.25 at SR 0.5, simple bypass
    keys = {label: [key for _, key in pairs] for label, pairs in points.items()}
    assert keys["squeeze_ratio"][2:4] == keys["pct_3x3 (squeeze_ratio=0.5)"][2:4]
    assert keys["squeeze_ratio"][:2] == keys["bypass"][:2]
    assert all(key.startswith("base-seed") for key in keys["bypass"][:2])


def test_a_trial_key_names_the_whole_architecture():
    """The same sweep on a recipe whose own architecture differs (conv10 linear or not) gives trials
    that read the same but have other keys, so a study folder never mixes the two; the key is the
    architecture and seed, not the order or spelling of the overrides."""
    from squeezekit.config import SqueezeNetConfig
    from squeezekit.explore import parse_sweep, plan_trials

    sweep = [parse_sweep("squeeze_ratio=0.25")]
    (relu,), _ = plan_trials("squeezenet1_1", {}, sweep, seeds=1, input_size=224)
    (linear,), _ = plan_trials("squeezenet1_1", {"classifier_relu": False}, sweep, seeds=1, input_size=224)
    assert relu.key.rsplit("-", 1)[0] == linear.key.rsplit("-", 1)[0] == "squeeze_ratio=0.25-seed0"
    assert relu.key != linear.key
    assert SqueezeNetConfig.from_dict(linear.config).classifier_relu is False
    assert SqueezeNetConfig.from_dict(linear.config).squeeze_ratio == 0.25
    (pinned,), _ = plan_trials("squeezenet1_1", {}, [parse_sweep("squeeze_ratio=0.25@classifier_relu=false")],
                               seeds=1, input_size=224)
    assert pinned.key.endswith(linear.key.rsplit("-", 1)[1]) and pinned.key != linear.key  # same hash


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


def test_failed_trial_exits_1_and_the_rerun_retries_only_it(tiny_cifar, tmp_path, capsys, monkeypatch):
    from squeezekit.training import trainer

    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    real_train = trainer.train

    def train_failing_wide(settings, **kwargs):
        if settings.arch_overrides.get("squeeze_ratio") == 0.25:
            raise MemoryError("simulated: out of memory")
        return real_train(settings, **kwargs)

    monkeypatch.setattr(trainer, "train", train_failing_wide)
    out = tmp_path / "explore"
    args = ["explore", "--data", str(tiny_cifar), "--sweep", "squeeze_ratio=0.125,0.25", "--epochs", "1",
            "--out", str(out)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "1 trial(s) did not finish: squeeze_ratio=0.25-" in captured.err
    assert "simulated: out of memory" in captured.out  # the failed trial's traceback is shown
    assert [p.parent.name.split("-")[0] for p in out.glob("trials/*/trial.json")] == ["base"]  # SR 0.125 is v1.1's
    assert "| 0.125 |" in (out / "results.md").read_text()  # the report covers what finished

    def train_nothing(settings, **kwargs):
        raise AssertionError("--report-only trained a trial")

    monkeypatch.setattr(trainer, "train", train_nothing)
    (out / "results.md").unlink()
    assert main(args + ["--report-only"]) == 0  # the study part way: no error, no training
    assert "1 of 2 trials finished; reporting those, training none" in capsys.readouterr().out
    report = (out / "results.md").read_text()
    assert "| 0.125 |" in report and "| 0.25 |" not in report

    monkeypatch.setattr(trainer, "train", real_train)
    assert main(args) == 0
    assert "2 trials, 1 finished, 1 to run" in capsys.readouterr().out
    assert len(list(out.glob("trials/*/trial.json"))) == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_every_free_worker_gets_a_trial_while_others_still_run(tmp_path):
    """The chief's oracle hands each worker that asks the next trial nobody has, without waiting for
    running trials to end (KerasTuner's grid oracle kept two of twelve workers busy on one GPU), in the
    plan's order, then tells the workers that ask after the last one to stop."""
    keras_tuner = pytest.importorskip("keras_tuner")
    from squeezekit.explore import _trial_queue_oracle

    keys = ["base-seed0", "base-seed1", "bypass=simple-seed0"]
    space = keras_tuner.HyperParameters()
    space.Choice("trial", keys, ordered=False)
    space.Fixed("epochs", 3)
    oracle = _trial_queue_oracle(keras_tuner, keys, 3, objective=keras_tuner.Objective("top1", "max"),
                                 max_trials=len(keys), hyperparameters=space)
    oracle._set_project_dir(str(tmp_path), "oracle")
    trials = [oracle.create_trial(f"tuner{i}") for i in range(3)]  # none of them has ended
    assert [t.status for t in trials] == ["RUNNING"] * 3
    assert [t.hyperparameters.values for t in trials] == [{"trial": key, "epochs": 3} for key in keys]
    assert oracle.create_trial("tuner3").status == "STOPPED"
    assert oracle.create_trial("tuner0").hyperparameters.values["trial"] == keys[0]  # still its own trial


def test_distributed_search_chief_and_two_workers(tiny_cifar, tmp_path):
    """KerasTuner's chief/worker mode: the chief serves the trials and writes the report, each trial is
    trained by exactly one worker, and the workers share OUT."""
    out = tmp_path / "explore"
    port = str(_free_port())
    command = [sys.executable, "-m", "squeezekit", "explore", "--data", str(tiny_cifar), "--sweep",
               "squeeze_ratio=0.125,0.25", "--epochs", "1", "--out", str(out)]
    base_env = {**os.environ, "SQUEEZEKIT_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3",
                "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
    processes = {name: subprocess.Popen(command, env={**base_env, "KERASTUNER_TUNER_ID": name}, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for name in ("chief", "tuner0", "tuner1")}
    logs = {}
    try:
        for name, process in processes.items():
            logs[name] = process.communicate(timeout=600)[0]
    finally:
        for process in processes.values():
            process.kill()
    for name, process in processes.items():
        assert process.returncode == 0, f"{name}:\n{logs[name][-3000:]}"
    ran = [line.split()[1] for name in ("tuner0", "tuner1") for line in logs[name].splitlines()
           if line.startswith("trial ")]
    assert sorted(key.split("-")[0] for key in ran) == ["base", "squeeze_ratio=0.25"]
    assert not [line for line in logs["chief"].splitlines() if line.startswith("trial ")]  # the chief only serves
    assert "worker done" in logs["tuner0"] and "wrote" in logs["chief"]
    assert len(json.loads((out / "results.json").read_text())) == 2
    assert (out / "tradeoff.png").is_file()


def test_distributed_search_needs_all_three_variables(tiny_cifar, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    status = main(["explore", "--data", str(tiny_cifar), "--sweep", "squeeze_ratio=0.125", "--out", str(tmp_path / "x")])
    assert status == 2
    assert "KERASTUNER_ORACLE_PORT" in capsys.readouterr().err
