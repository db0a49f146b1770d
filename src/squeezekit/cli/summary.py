"""Print the SqueezeNet paper's Table 1 for an architecture.

Per layer: output size, filter size/stride, the Fire module's s1x1 / e1x1 / e3x3 filter counts,
parameters and multiply-accumulates; then the totals, the model size at 32, 8 and 6 bits per weight,
and the ratio to AlexNet's parameters (the paper's "50x fewer"). No Keras needed.

examples:
  squeezekit summary squeezenet1_1
  squeezekit summary squeezenet1_0 --squeeze-ratio 0.25 --pct-3x3 0.75 --json
  squeezekit summary squeezenet1_1 --input-size 32 --classes 10 --bypass simple
"""

from __future__ import annotations

import argparse
import json

from squeezekit.cli._arch import add_architecture_arguments, config_from_args
from squeezekit.graph import ALEXNET_PARAMETERS, ModelTable, layer_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_architecture_arguments(parser)
    parser.add_argument("--input-size", type=int, default=224, help="square input size (default: %(default)s)")
    parser.add_argument("--channels", type=int, default=3, help="input channels (default: %(default)s)")
    parser.add_argument("--classes", type=int, default=1000, help="number of classes (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def run(args: argparse.Namespace) -> int:
    if args.classes < 1:
        raise ValueError(f"Expected --classes >= 1. Received: --classes {args.classes}")
    if args.channels < 1:
        raise ValueError(f"Expected --channels >= 1. Received: --channels {args.channels}")
    config = config_from_args(args)
    table = layer_table(config, args.input_size, channels=args.channels, classes=args.classes)
    if args.json:
        print(json.dumps({"arch": args.arch, "config": _jsonable(config.to_dict()), **table.to_dict()}))
    else:
        print(format_table(args.arch, table))
    return 0


def _jsonable(values: dict) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}


def _size(num_bytes: float) -> str:
    return f"{num_bytes / 2**20:7.2f} MiB ({num_bytes:,.0f} B)"


def format_table(arch: str, table: ModelTable) -> str:
    header = f"{'layer':<12} {'output':>14} {'filter':>9} {'s1x1':>5} {'e1x1':>5} {'e3x3':>5} {'params':>10} {'MACs':>13}"
    lines = [f"{arch}, input {'x'.join(map(str, table.input_shape))}", header, "-" * len(header)]
    for row in table.rows:
        h, w, c = row.output_shape
        cells = [
            f"{row.name:<12}", f"{f'{h}x{w}x{c}':>14}", f"{row.kernel:>9}",
            *(f"{'' if v is None else v:>5}" for v in (row.squeeze, row.expand1x1, row.expand3x3)),
            f"{row.parameters:>10,}" if row.parameters else f"{'':>10}",
            f"{row.macs:>13,}" if row.macs else f"{'':>13}",
        ]
        lines.append(" ".join(cells))
    lines.append("-" * len(header))
    lines.append(f"{'total':<12} {'':>14} {'':>9} {'':>5} {'':>5} {'':>5} {table.parameters:>10,} {table.macs:>13,}")
    lines.append("")
    for bits in (32, 8, 6):
        lines.append(f"size at {bits:>2} bits/weight: {_size(table.size_bytes(bits))}")
    lines.append(
        f"AlexNet has {ALEXNET_PARAMETERS:,} parameters: {table.alexnet_ratio:.1f}x this model's {table.parameters:,}"
    )
    return "\n".join(lines)
