"""Reports rendered for people: Markdown tables and plots of what the library functions return.

The library returns data (``run_bench``'s report, ``compress``'s layer rows, an exploration's
results); the CLI, the benchmarks and the study folder render it with these functions.
"""

from __future__ import annotations

import json
from pathlib import Path


def bench_markdown(report: dict) -> str:
    """The Markdown table of a ``run_bench`` report, with the runtime overheads and the targets."""
    lines = [
        f"Model {report['model']}, input {report['input_size']}x{report['input_size']}, {report['threads']} threads, "
        f"{report['n_images']} images from {report['images']}.",
        "",
        "| engine | median ms (batch 1) | p90 ms | images/s (batch 32) | file size | peak memory | top-1 agreement with fp32 | top-1 accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    def cell(value, pattern: str, scale: float = 1.0) -> str:
        return "-" if value is None else pattern.format(value * scale)

    for r in report["engines"]:
        if "error" in r:
            lines.append(f"| {r['engine']} | failed: {r['error']} | | | | | | |")
            continue
        cells = [
            r["engine"], f"{r['latency_batch_1']['median_ms']:.2f}", f"{r['latency_batch_1']['p90_ms']:.2f}",
            cell(r.get("throughput_batch_32"), "{:.0f}"), cell(r.get("size_bytes"), "{:.2f} MB", 1e-6),
            f"{r['peak_memory_mb']:.0f} MB", cell(r.get("top1_agreement_with_fp32"), "{:.1f} %", 100),
            cell(r.get("top1_accuracy"), "{:.1f} %", 100),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    overheads = [f"{r['engine']} {100 * r['runtime_overhead']:+.1f} % ({r['runtime_batch_1_ms']:.2f} vs "
                 f"{r['raw_engine_batch_1_ms']:.2f} ms)" for r in report["engines"] if "runtime_overhead" in r]
    if overheads:
        lines += ["", "Runtime overhead over the raw engine call, batch 1, preprocessing excluded: " + "; ".join(overheads) + "."]
    if "predict_process" in report:
        p = report["predict_process"]
        lines += ["", f"`squeezekit predict` on one image as a whole process ({Path(p['model']).name}): median "
                      f"{p['median_s']:.3f} s over {p['runs']} runs."]
    if report.get("targets"):
        lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
        for name, t in report["targets"].items():
            value = t["value"]
            shown = (", ".join(f"{k} {100 * v:+.1f} %" for k, v in value.items()) if isinstance(value, dict)
                     else f"{value:,.3f}" if isinstance(value, float) else f"{value:,}")
            lines.append(f"| {name} | {shown}{' (' + t['engine'] + ')' if 'engine' in t else ''} | {t['target']} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def compression_markdown(rows: list[dict], total_bytes: int) -> str:
    """A Markdown table of :func:`layer_report` rows with a total line."""
    lines = ["| layer | parameters | density | bits | indices (fixed → Huffman) | positions (4-bit gaps → Huffman) "
             "| codebook + bias | layer bytes |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['parameters']:,} | {100 * r['density']:.1f} % | {r['bits']} | "
                     f"{r['indices_bytes_fixed']:,} → {r['indices_bytes']:,} | "
                     f"{r['positions_bytes_fixed']:,} → {r['positions_bytes']:,} | "
                     f"{r['codebook_bytes'] + r['bias_bytes']:,} | {r['total_bytes']:,} |")
    params = sum(r["parameters"] for r in rows)
    kept = sum(r["density"] * r["parameters"] for r in rows)
    fixed = sum(r["indices_bytes_fixed"] + r["positions_bytes_fixed"] + r["codebook_bytes"] + r["bias_bytes"]
                for r in rows)
    lines.append(f"| **total** | {params:,} | {100 * kept / params:.1f} % | | "
                 f"{sum(r['indices_bytes_fixed'] for r in rows):,} → {sum(r['indices_bytes'] for r in rows):,} | "
                 f"{sum(r['positions_bytes_fixed'] for r in rows):,} → {sum(r['positions_bytes'] for r in rows):,} | "
                 f"{sum(r['codebook_bytes'] + r['bias_bytes'] for r in rows):,} | "
                 f"{fixed:,} → {total_bytes:,} (whole file) |")
    return "\n".join(lines)


def slim_markdown(stages: list[dict]) -> str:
    """A Markdown table of ``slim``'s stages: parameters, MACs and (when measured) accuracy, each relative to the source."""
    first = stages[0]
    lines = ["| stage | parameters | MACs | top-1 | top-5 | conv1 + Fire widths (squeeze/expand1x1/expand3x3) |",
             "|---|---:|---:|---:|---:|---|"]
    for row in stages:
        accuracy = [f"{100 * row[k]:.2f} %" if k in row else "-" for k in ("top1", "top5")]
        widths = f"{row['conv1_filters']}; " + " ".join("/".join(map(str, w)) for w in row["fire_widths"])
        lines.append(f"| {row['stage']} | {row['parameters']:,} ({row['parameters'] / first['parameters']:.2f}x) | "
                     f"{row['macs'] / 1e6:.1f} M ({row['macs'] / first['macs']:.2f}x) | {accuracy[0]} | {accuracy[1]} | {widths} |")
    return "\n".join(lines)


def exploration_markdown(report: dict) -> tuple[str, dict]:
    """``results.md`` of an exploration report (one table per sweep), and the curves for :func:`tradeoff_plot`."""
    import numpy as np

    trials = report["trials"]
    lines = [f"# Design-space exploration: {report['base']}, recipe {report['recipe']}", ""]
    curves = {}
    for label, pairs in report["sweeps"].items():
        lines += [f"## {label}", "", "| value | parameters | MACs | size 32-bit | size 8-bit | size 6-bit | top-1 | top-5 | "
                  "seeds | epochs | train time | images/s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        by_value: dict = {}
        for pair in pairs:
            if pair["trial"] in trials:
                by_value.setdefault(json.dumps(pair["value"]), []).append(trials[pair["trial"]])
        curve = []
        for value_text, runs in by_value.items():
            top1 = np.array([r["top1"] for r in runs])
            top5 = [r["top5"] for r in runs if r.get("top5") is not None]
            first = runs[0]
            spread = f" ± {100 * top1.std(ddof=1):.2f}" if len(runs) > 1 else ""
            lines.append(
                f"| {json.loads(value_text)} | {first['parameters']:,} | {first['macs'] / 1e6:.1f} M | "
                f"{first['size_bytes']['32'] / 1e6:.2f} MB | {first['size_bytes']['8'] / 1e6:.2f} MB | "
                f"{first['size_bytes']['6'] / 1e6:.2f} MB | "
                f"{100 * top1.mean():.2f}{spread} % | {100 * np.mean(top5):.2f} % | {len(runs)} | "
                f"{', '.join(str(e) for e in sorted({r['epochs'] for r in runs}))} | "
                f"{np.mean([r['train_seconds'] for r in runs]) / 60:.1f} min | "
                f"{np.mean([r['images_per_second'] or 0 for r in runs]):.0f} |")
            curve.append((json.loads(value_text), first["size_bytes"]["32"] / 1e6, 100 * top1.mean(),
                          100 * top1.std(ddof=1) if len(runs) > 1 else 0.0))
        curves[label] = curve
        if not curve:
            lines.append("| no trial of this sweep has finished |" + " |" * 11)
        lines.append("")
    return "\n".join(lines), curves


def tradeoff_plot(path: Path, curves: dict, report: dict) -> None:
    """One panel per sweep, as the paper's Figure 3: top-1 against the swept value (categories such as
    the bypass in the order swept), error bars over seeds, each point labelled with its model size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = {label: curve for label, curve in curves.items() if curve} or {"no trial finished yet": []}
    figure, axes = plt.subplots(1, len(drawn), figsize=(4.2 * len(drawn), 4.2), sharey=True, squeeze=False)
    for axis, (label, curve) in zip(axes[0], drawn.items()):
        numeric = all(isinstance(p[0], (int, float)) and not isinstance(p[0], bool) for p in curve)
        order = sorted(curve, key=lambda point: point[0]) if numeric else curve
        x = [p[0] for p in order] if numeric else list(range(len(order)))
        axis.errorbar(x, [p[2] for p in order], yerr=[p[3] for p in order], marker="o", capsize=3)
        for position, (_, size, top1, _) in zip(x, order):
            axis.annotate(f"{size:.2f} MB", (position, top1), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if not numeric:
            axis.set_xticks(x, [str(p[0]) for p in order])
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("top-1 accuracy (%), mean ± std over seeds")
    figure.suptitle(f"{report['base']} on {Path(report['data']).name}, recipe {report['recipe']} "
                    "(labels: model size, 32-bit weights)", fontsize=10)
    figure.tight_layout()
    from squeezekit._outputs import staged

    with staged(Path(path)) as partial:
        figure.savefig(partial, dpi=120)
    plt.close(figure)
