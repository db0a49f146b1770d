"""The command line: output, JSON, exit statuses and one-line errors."""

import json
import os
import shutil
import subprocess
import sys

import pytest



def test_summary_table(run_cli):
    status, out, err = run_cli("summary", "squeezenet1_0", "--input-size", "227")
    assert status == 0, err
    assert "1,248,424" in out and "fire9" in out and "55x55x96" in out
    assert "48.8x" in out  # AlexNet's 60,965,224 parameters / 1,248,424


def test_summary_json_with_overrides(run_cli):
    status, out, _ = run_cli("summary", "squeezenet1_1", "--squeeze-ratio", "0.25", "--pct-3x3", "0.75",
                             "--classes", "10", "--input-size", "32", "--json")
    assert status == 0
    report = json.loads(out)
    fire2 = next(layer for layer in report["layers"] if layer["name"] == "fire2")
    assert (fire2["s1x1"], fire2["e1x1"], fire2["e3x3"]) == (32, 32, 96)
    assert report["config"]["squeeze_ratio"] == 0.25
    assert report["size_bytes"]["6"] == pytest.approx(report["parameters"] * 6 / 8)


def test_classifier_relu_both_ways_and_the_cifar_recipe_default():
    """--linear-classifier and --classifier-relu set conv10's ReLU either way over any default, not both."""
    import argparse

    from squeezekit.cli._arch import add_architecture_arguments, overrides_from_args
    from squeezekit.training.trainer import TrainSettings, resolve_config, resolve_recipe

    parser = argparse.ArgumentParser()
    add_architecture_arguments(parser, positional=False)
    given = {argv: overrides_from_args(parser.parse_args(argv)).get("classifier_relu")
             for argv in ((), ("--linear-classifier",), ("--classifier-relu",))}
    assert given == {(): None, ("--linear-classifier",): False, ("--classifier-relu",): True}
    with pytest.raises(SystemExit):
        parser.parse_args(["--linear-classifier", "--classifier-relu"])

    def conv10_relu(recipe: str, overrides: dict) -> bool:
        settings = TrainSettings(data="unused", out="unused", recipe=recipe, arch_overrides=overrides)
        return resolve_config(settings, resolve_recipe(settings)).classifier_relu

    assert conv10_relu("cifar", {}) is False and conv10_relu("cifar", {"classifier_relu": True}) is True
    assert conv10_relu("paper", {}) is True  # the paper's model keeps the paper's ReLU


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["summary", "squeezenet1_1", "--squeeze-ratio", "0"], "squeeze_ratio"),
        (["summary", "squeezenet1_1", "--pct-3x3", "1.5"], "pct_3x3"),
        (["summary", "squeezenet7"], "Unknown architecture"),
        (["summary", "squeezenet1_1", "--input-size", "12"], "at least 25"),
        (["summary", "squeezenet1_1", "--classes", "0"], "--classes"),
        (["summary", "squeezenet1_1", "--bypass", "dense"], "bypass"),
    ],
)
def test_bad_input_is_one_line_and_status_2(run_cli, argv, fragment):
    status, out, err = run_cli(*argv)
    assert status == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_console_script_exit_status_and_help():
    """The installed entry point itself: --help, and status 2 on usage errors, in a fresh process."""
    exe = shutil.which("squeezekit", path=os.path.dirname(sys.executable)) or "squeezekit"
    help_run = subprocess.run([exe, "summary", "--help"], capture_output=True, text=True, timeout=120)
    assert help_run.returncode == 0 and "--squeeze-ratio" in help_run.stdout
    bad = subprocess.run([exe, "summary", "squeezenet1_1", "--freq", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "freq" in bad.stderr and "Traceback" not in bad.stderr
    none = subprocess.run([exe], capture_output=True, text=True, timeout=120)
    assert none.returncode == 2


def test_summary_does_not_import_keras():
    code = "import sys; from squeezekit.cli.main import main; main(['summary', 'squeezenet1_1']); " \
           "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, sorted(sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_command_builds_only_its_own_options():
    """`squeezekit predict` imports no other command's module (summary's pulls in the model description),
    and the top-level help still names every command."""
    code = ("import sys; from squeezekit.cli.main import COMMANDS, main\n"
            "try:\n    main(['predict', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('squeezekit.cli.') "
            "and m.rsplit('.', 1)[1] in COMMANDS))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--top-k" in result.stdout and result.stdout.strip().splitlines()[-1] == "['predict']"
    from squeezekit.cli.main import COMMANDS

    exe = shutil.which("squeezekit", path=os.path.dirname(sys.executable)) or "squeezekit"
    top = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert top.returncode == 0 and all(name in top.stdout for name in COMMANDS)
    wrong = subprocess.run([exe, "predikt", "x.jpg"], capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


@pytest.mark.parametrize("argv", [["predict", "--samples", "--threads", "100000"], ["predict", "--samples", "--threads", "0"],
                                  ["bench", "--threads", "5000"]])
def test_thread_counts_are_bounded(run_cli, argv):
    status, _, err = run_cli(*argv)
    assert status == 2 and "--threads in 1..256" in err


@pytest.mark.parametrize("command", ["bench", "compress", "export"])
@pytest.mark.parametrize("case", ["existing file", "a folder", "under a file"])
def test_output_paths_are_checked_before_any_work(command, case, tmp_path, run_cli, monkeypatch):
    """A bad output path is refused at once: the model is never opened, the existing file is unchanged."""
    import squeezekit.opener

    def never(*args, **kwargs):
        raise AssertionError("the work started before the output path was checked")

    monkeypatch.setattr(squeezekit.opener, "open_model", never)
    monkeypatch.setattr("squeezekit.benchmark.run_bench", never)
    suffix = {"bench": ".json", "compress": ".sqz", "export": ".onnx"}[command]
    target = tmp_path / f"out{suffix}"
    if case == "existing file":
        target.write_bytes(b"the user's file")
    elif case == "a folder":
        target.mkdir()
        (target / "keep.txt").write_text("keep")
    else:
        (tmp_path / "file").write_text("a file, not a folder")
        target = tmp_path / "file" / f"out{suffix}"
    argv = {"bench": ["bench", "--model", "squeezenet1_1", "--json", str(target)],
            "compress": ["compress", "squeezenet1_1", "-o", str(target)],
            "export": ["export", "squeezenet1_1", "--format", "onnx", "-o", str(target)]}[command]
    status, out, err = run_cli(*argv, *(["--overwrite"] if case == "a folder" else []))
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and str(target.parent if case == "under a file" else target) in err
    if case == "existing file":
        assert target.read_bytes() == b"the user's file" and "--overwrite" in err
    if case == "a folder":
        assert (target / "keep.txt").read_text() == "keep"


def test_an_error_naming_the_cache_says_so_and_how_to_move_it(tmp_path, monkeypatch):
    from squeezekit.cli.main import describe_error
    from squeezekit.errors import WeightFileError

    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    inside = describe_error(WeightFileError(tmp_path / "home" / "converted" / "a.npz", "cannot be read"))
    assert inside.startswith(f"{tmp_path}/home/converted/a.npz: cannot be read (")
    assert "squeezekit's cache" in inside and "set SQUEEZEKIT_HOME" in inside
    outside = describe_error(WeightFileError(tmp_path / "mine.sqz", "checksum mismatch\nsecond line"))
    assert outside == f"{tmp_path}/mine.sqz: checksum mismatch\\nsecond line"
