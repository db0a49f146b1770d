"""Shared by the benchmarks: print a result's Markdown and save it as benchmarks/results/NAME.{json,md}."""

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def write_results(name: str, result: dict, markdown: str) -> None:
    print(markdown)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    (RESULTS / f"{name}.md").write_text(markdown)
