"""The ``squeezekit`` command: one thin module per subcommand, heavy imports inside the handlers.

Exit status: 0 success, 1 the work failed (a file failed its check, a run broke), 2 bad usage or
input (unknown model, impossible metaparameter, missing file), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from squeezekit import __version__

# Subcommand name -> module in squeezekit.cli with `add_arguments(parser)` and `run(args) -> int`.
COMMANDS = {
    "summary": ("summary", "print the paper's Table 1 for an architecture: sizes, filters, parameters"),
    "evaluate": ("evaluate", "top-1/top-5 accuracy of a model on a folder of labelled images"),
    "train": ("train", "train on your own images or fine-tune the ImageNet weights; checkpoints and resume"),
    "predict": ("predict", "classify images (no TensorFlow needed): files, folders, globs"),
    "export": ("export", "export to LiteRT, ONNX or SavedModel (float or int8) and check the result"),
    "explore": ("explore", "design-space sweeps (squeeze ratio, share of 3x3 filters, bypass): accuracy vs size"),
    "compress": ("compress", "Deep Compression to a .sqz file: prune, share weights (k-means), Huffman code"),
    "bench": ("bench", "latency, throughput, size, memory and agreement of every engine and precision"),
}

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """Raised by handlers for bad command-line input; printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squeezekit",
        description="SqueezeNet for Keras 3: architectures, pretrained ImageNet weights, evaluation.",
        epilog="Run 'squeezekit COMMAND --help' for a command's options. Exit status: 0 success, "
        "1 the work failed, 2 bad usage or input.",
    )
    parser.add_argument("--version", action="version", version=f"squeezekit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"squeezekit.cli.{module_name}")
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def option_name(parameter: str) -> str:
    """The command-line spelling of a library parameter: ``finetune_epochs`` -> ``--finetune-epochs``."""
    return "--" + parameter.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter buries the output of a command-line tool.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    from squeezekit.errors import ParameterError, TrialsFailedError, WeightFileError

    try:
        return args.handler(args)
    except ParameterError as error:  # the library names its parameters; the command line has options
        print(f"squeezekit {args.command}: error: {error.render(option_name)}", file=sys.stderr)
        return EXIT_USAGE
    except (WeightFileError, TrialsFailedError) as error:
        print(f"squeezekit {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, FileNotFoundError, NotADirectoryError) as error:
        print(f"squeezekit {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # a full disk, a permission: the work failed, the message says where
        print(f"squeezekit {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"squeezekit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
