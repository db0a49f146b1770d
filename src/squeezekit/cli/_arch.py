"""Command-line options that pick an architecture: a preset plus metaparameter overrides."""

from __future__ import annotations

import argparse

from squeezekit.config import SqueezeNetConfig
from squeezekit.registry import PRESETS, get_preset

# Option name -> (config field, type, help).
_OVERRIDES = {
    "--squeeze-ratio": ("squeeze_ratio", float, "squeeze filters / expand filters (SR; v1.0: 0.125)"),
    "--pct-3x3": ("pct_3x3", float, "share of 3x3 filters in the expand layers (v1.0: 0.5)"),
    "--base-e": ("base_e", int, "expand filters of the first Fire module (v1.0: 128)"),
    "--incr-e": ("incr_e", int, "expand filters added every FREQ Fire modules (v1.0: 128)"),
    "--freq": ("freq", int, "Fire modules between increments of the expand filters (v1.0: 2)"),
    "--bypass": ("bypass", str, "shortcuts around Fire modules: none, simple or complex (paper section 6)"),
    "--pool-rounding": ("pool_rounding", str, "max-pool output size rounding: ceil (Caffe, default) or floor"),
    "--dropout": ("dropout", float, "dropout rate before conv10 (v1.0: 0.5)"),
}


def add_architecture_arguments(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    help_text = f"architecture preset: {', '.join(sorted(PRESETS))}"
    if positional:
        parser.add_argument("arch", metavar="ARCH", help=help_text)
    else:
        parser.add_argument("--arch", default="squeezenet1_1", help=help_text + " (default: %(default)s)")
    group = parser.add_argument_group("metaparameter overrides (paper section 5)")
    for option, (field, kind, text) in _OVERRIDES.items():
        group.add_argument(option, dest=field, type=kind, default=None, help=text)
    group.add_argument("--batch-norm", action="store_true", default=None,
                       help="batch normalisation after every convolution (not in the paper)")
    relu = group.add_mutually_exclusive_group()
    relu.add_argument("--linear-classifier", dest="classifier_relu", action="store_false", default=None,
                      help="conv10 without its ReLU (not in the paper; the cifar recipe's default): no class's "
                           "score can be stuck at 0 (a dead unit), as happens with simple bypass on CIFAR-10 "
                           "(docs/reproduction.md)")
    relu.add_argument("--classifier-relu", dest="classifier_relu", action="store_true", default=None,
                      help="conv10 with its ReLU, as in the paper (the presets' default)")


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The metaparameters given on the command line (--batch-norm aside), by config field."""
    overrides = {field: getattr(args, field) for field, _, _ in _OVERRIDES.values() if getattr(args, field) is not None}
    if args.classifier_relu is not None:
        overrides["classifier_relu"] = args.classifier_relu
    return overrides


def config_from_args(args: argparse.Namespace) -> SqueezeNetConfig:
    overrides = overrides_from_args(args)
    if args.batch_norm:
        overrides["batch_norm"] = True
    return get_preset(args.arch).replace(**overrides)
