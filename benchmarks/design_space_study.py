"""Issue 18 §2: the paper's three experiments (Fig. 3a squeeze ratio, Fig. 3b share of 3x3 filters at SR
0.5, Table 3 bypasses) on CIFAR-10 with the `cifar` recipe, two seeds each, as one `squeezekit explore`
study spread over several worker processes on one machine.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/design_space_study.py --epochs 12 --workers 6
    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/design_space_study.py --epochs 12 --report-only

Every configuration has conv10 without its ReLU (`classifier_relu=false`, `--linear-classifier`): with
the ReLU, simple bypass loses whole classes to dead conv10 units and the bypass row would measure that
collapse rather than the bypass (docs/reproduction.md, benchmarks/bypass_fix.py).

The study is `squeezekit explore`'s own: a chief serves the trials over KerasTuner's gRPC on 127.0.0.1
and each worker trains the next trial nobody has (`squeezekit explore --help`). Several workers share
one GPU well; on the 2-core CPU machine use one. Rerunning skips finished trials (a trial's key is its
configuration and seed), and the trials recorded in the results file are restored into OUT first, so
the study can be spread over sittings and machines. `--report-only` trains nothing.

Writes OUT/results.md and OUT/tradeoff.png (explore's report), and benchmarks/results/
design_space_study_{E}ep.{json,md,png}: every finished trial's summary, the tables, and the plot.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from _results import RESULTS, write_results

STUDY_SWEEPS = ("bypass=none,simple,complex@classifier_relu=false",
                "squeeze_ratio=0.125,0.25,0.5,0.75,1.0@classifier_relu=false",
                "pct_3x3=0.01,0.25,0.5,0.75,0.99@squeeze_ratio=0.5,classifier_relu=false")
SEEDS = 2


def explore_command(data: str, out: Path, sweeps, epochs: int, *extra: str) -> list[str]:
    sweep_args = [arg for sweep in sweeps for arg in ("--sweep", sweep)]
    return [sys.executable, "-m", "squeezekit", "explore", "--data", data, *sweep_args, "--seeds", str(SEEDS),
            "--epochs", str(epochs), "--out", str(out), *extra]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_study(data: str, out: Path, sweeps, epochs: int, workers: int) -> None:
    """A chief and `workers` worker processes, each logging to OUT/logs/NAME.log; returns when the chief does."""
    (out / "logs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port()),
           "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1"}
    processes = {}
    for name in ["chief"] + [f"tuner{i}" for i in range(workers)]:
        with open(out / "logs" / f"{name}.log", "a") as log:
            processes[name] = subprocess.Popen(explore_command(data, out, sweeps, epochs),
                                               env={**env, "KERASTUNER_TUNER_ID": name}, stdout=log, stderr=log)
        if name == "chief":
            time.sleep(5)  # the workers' first call must find the chief's server
    try:
        while processes["chief"].poll() is None:
            done = len(list(out.glob("trials/*/trial.json")))
            print(f"\r{done} trials finished", end="", flush=True)
            time.sleep(10)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
    print()


def restore_recorded_trials(results: Path, out: Path, sweeps) -> None:
    """Put every trial this study has already trained where explore looks for it, under its current key.

    The trials recorded in benchmarks/results but missing from OUT (another machine or sitting trained
    them) get their trial.json back, which is all explore needs to count them finished. Trials in OUT
    under an earlier key are moved to the current one; an unfinished one resumes there. Keys changed
    when they began to hash the whole architecture, which the cifar recipe's linear conv10 then changed.
    A trial is matched by the architecture it trained and its seed: its record's "config", else its
    run's state.json, else (records older than both) its overrides on today's recipe, which is exact
    here because every sweep of this study names conv10's ReLU itself (classifier_relu=false).
    """
    from squeezekit.explore import parse_sweep, plan_trials
    from squeezekit.registry import get_preset
    from squeezekit.training.recipes import get_recipe

    recipe = get_recipe("cifar")
    base = get_preset("squeezenet1_1").replace(**recipe.arch_overrides)
    planned, _ = plan_trials("squeezenet1_1", recipe.arch_overrides, [parse_sweep(s) for s in sweeps], SEEDS,
                             recipe.preprocessing.crop)
    by_identity = {(json.dumps(t.config, sort_keys=True), t.seed): t for t in planned}

    def planned_trial(config: dict | None, overrides: dict, seed: int):
        config = config or json.loads(json.dumps(base.replace(**overrides).to_dict()))
        return by_identity.get((json.dumps(config, sort_keys=True), seed))

    recorded = json.loads(results.read_text())["trials"] if results.is_file() else {}
    for key, summary in recorded.items():
        trial = planned_trial(summary.get("config"), summary["overrides"], summary["seed"])
        record = out / "trials" / (trial.key if trial else key) / "trial.json"
        if not record.exists():
            record.parent.mkdir(parents=True)
            summary = {**summary, **({"overrides": trial.overrides, "config": trial.config} if trial else {})}
            record.write_text(json.dumps(summary, indent=1))
            print(f"restored {record.parent.name} from {results.name}")
    keys = {t.key for t in planned}
    for folder in sorted(p for p in (out / "trials").glob("*") if p.is_dir() and p.name not in keys):
        record, state = folder / "trial.json", folder / "checkpoints" / "state.json"
        if record.is_file():  # finished
            summary = json.loads(record.read_text())
            trial = planned_trial(summary.get("config"), summary["overrides"], summary["seed"])
        elif state.is_file():  # interrupted: it resumes under its new key
            summary, values = None, json.loads(state.read_text())
            trial = planned_trial(values["config"], {}, values["seed"])
        else:
            continue
        if trial is None or (out / "trials" / trial.key).exists():
            continue
        if summary is not None:
            record.write_text(json.dumps({**summary, "overrides": trial.overrides, "config": trial.config}, indent=1))
        folder.rename(out / "trials" / trial.key)
        print(f"moved {folder.name} to {trial.key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12, help="epochs of every trial, with a schedule made for that length (default: 12)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes training at once (default: 1)")
    parser.add_argument("--sweep", action="append", help="study these sweeps instead (as squeezekit explore's)")
    parser.add_argument("--out", default=None, help="explore's folder (default: runs/design-space-study-Eep)")
    parser.add_argument("--report-only", action="store_true", help="train nothing; tabulate the finished trials")
    parser.add_argument("--machine", help="where the trials ran, for the results (default: this machine; with "
                                          "--report-only, given for trials trained by squeezekit explore itself)")
    args = parser.parse_args()
    data = str(Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "cifar10" / "cifar10-jpeg.zip")
    sweeps = args.sweep or STUDY_SWEEPS
    out = Path(args.out or f"runs/design-space-study-{args.epochs}ep")
    name = f"design_space_study_{args.epochs}ep" + ("" if sweeps == STUDY_SWEEPS else "_" + "_".join(
        s.split("=")[0] for s in sweeps))
    recorded = RESULTS / f"{name}.json"
    restore_recorded_trials(recorded, out, sweeps)
    if not args.report_only:
        run_study(data, out, sweeps, args.epochs, args.workers)
    report = subprocess.run(explore_command(data, out, sweeps, args.epochs, "--report-only"), check=True,
                            capture_output=True, text=True).stdout
    progress = next(line for line in report.splitlines() if "trials finished" in line)  # "N of M trials finished; ..."
    trials = json.loads((out / "results.json").read_text())
    machines = json.loads(recorded.read_text()).get("machines", []) if recorded.is_file() else []
    machine = args.machine or f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    machines += [machine] if machine not in machines and (args.machine or not args.report_only) else []
    shutil.copyfile(out / "tradeoff.png", RESULTS / f"{name}.png")
    command = " ".join(["python benchmarks/design_space_study.py", f"--epochs {args.epochs}"]
                       + [f"--sweep '{s}'" for s in args.sweep or ()])
    markdown = (out / "results.md").read_text().replace("# Design-space exploration", "# Design-space study", 1)
    markdown += (f"\n{progress.split(';')[0]} (the others are not in the tables); trained on {'; '.join(machines)}.\n\n"
                 f"`SQUEEZEKIT_DATA_DIR=../shared/data {command} --workers N`\n")
    write_results(name, {"sweeps": list(sweeps), "epochs": args.epochs, "seeds": SEEDS, "machines": machines,
                         "trials": trials}, markdown)


if __name__ == "__main__":
    main()
