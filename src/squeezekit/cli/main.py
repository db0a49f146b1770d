"""The ``squeezekit`` command: one thin module per subcommand, heavy imports inside the handlers.

Exit status: 0 success, 1 the work failed (a file failed its check, a run broke, a download, a full
disk), 2 bad usage or input (unknown model, impossible metaparameter, missing, damaged or ill-typed
file: the same in every command), 130 interrupted. Errors are one line on stderr; TensorFlow's
start-up chatter is silenced unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys

from squeezekit import __version__
from squeezekit.cli._stderr import filtered_stderr

# Subcommand name -> module in squeezekit.cli with `add_arguments(parser)` and `run(args) -> int`.
COMMANDS = {
    "summary": ("summary", "print the paper's Table 1 for an architecture: sizes, filters, parameters"),
    "evaluate": ("evaluate", "top-1/top-5 accuracy of a model on a folder of labelled images"),
    "train": ("train", "train on your own images or fine-tune the ImageNet weights; checkpoints and resume"),
    "predict": ("predict", "classify images (no TensorFlow needed): files, folders, globs"),
    "export": ("export", "export to LiteRT, ONNX or SavedModel (float or int8) and check the result"),
    "explore": ("explore", "design-space sweeps (squeeze ratio, share of 3x3 filters, bypass): accuracy vs size"),
    "compress": ("compress", "Deep Compression to a .sqz file: prune, share weights (k-means), Huffman code"),
    "slim": ("slim", "channel pruning: remove whole filters for a narrower, faster dense model (.keras)"),
    "bench": ("bench", "latency, throughput, size, memory and agreement of every engine and precision"),
    "serve": ("serve", "an HTTP API (TorchServe and KServe v2 routes) and a web page, on the runtime"),
}

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """Raised by handlers for bad command-line input; printed as one line, exit status 2."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or, given ``command``, one whose other subcommands are names and help only.

    Building a subcommand's options imports its module, and some of those import numpy and the model
    description at module level: ``predict`` starts about 50 ms sooner when only its own are built.
    """
    parser = argparse.ArgumentParser(
        prog="squeezekit",
        description="SqueezeNet for Keras 3: architectures, pretrained ImageNet weights, evaluation.",
        epilog="Run 'squeezekit COMMAND --help' for a command's options. Exit status: 0 success, "
        "1 the work failed, 2 bad usage or input (including a damaged or ill-typed file).",
    )
    parser.add_argument("--version", action="version", version=f"squeezekit {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="show the libraries' own log lines (TensorFlow's start-up messages, warnings)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if command is not None and name != command:
            subparsers.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(f"squeezekit.cli.{module_name}")
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__, parents=[common],
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def _quiet_libraries() -> None:
    """Silence what TensorFlow and its companions log at start-up through their own switches, set before
    the handlers import them (lazily); what these cannot reach, ``filtered_stderr`` drops."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["GRPC_VERBOSITY"] = "ERROR"
    import warnings

    for name in ("absl", "tensorflow", "h5py", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="tensorflow|keras|tf_keras|absl|google")


def describe_error(error: BaseException) -> str:
    """One line for an error: a path under the cache says it is the cache and how to move it."""
    from squeezekit._resources import HOME_VARIABLE, cache_dir

    from squeezekit._outputs import one_line

    message = one_line(str(error).strip())
    cache = str(cache_dir())
    if cache in message and HOME_VARIABLE not in message:
        message += (f" ({cache} is squeezekit's cache: deleting the file there makes squeezekit rebuild it; "
                    f"set {HOME_VARIABLE} to use another folder)")
    return message


def option_name(parameter: str) -> str:
    """The command-line spelling of a library parameter: ``finetune_epochs`` -> ``--finetune-epochs``."""
    return "--" + parameter.replace("_", "-")


def _command_of(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names, if any: its first word that is not an option."""
    word = next((item for item in argv if not item.startswith("-")), None)
    return word if word in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    if not args.verbose:
        _quiet_libraries()
    _log_to_stderr(args.verbose)
    with contextlib.nullcontext() if args.verbose else filtered_stderr():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from squeezekit.errors import DownloadError, ExportError, ParameterError, TrialsFailedError

    def fail(error: BaseException, status: int) -> int:
        print(f"squeezekit {args.command}: error: {describe_error(error)}", file=sys.stderr)
        return status

    try:
        return args.handler(args)
    except ParameterError as error:  # the library names its parameters; the command line has options
        print(f"squeezekit {args.command}: error: {error.render(option_name)}", file=sys.stderr)
        return EXIT_USAGE
    except (DownloadError, ExportError, TrialsFailedError) as error:
        return fail(error, EXIT_FAILED)
    except (ValueError, FileNotFoundError, NotADirectoryError) as error:  # WeightFileError included
        return fail(error, EXIT_USAGE)
    except OSError as error:  # a full disk, a permission: the work failed, the message says where
        return fail(error, EXIT_FAILED)
    except KeyboardInterrupt:
        print(f"squeezekit {args.command}: interrupted", file=sys.stderr)
        return 130


class _LogLine(logging.Handler):
    """squeezekit's own log lines (a cache rebuilt, a trial rerun): one plain line each on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        from squeezekit._outputs import one_line

        print(f"squeezekit: {one_line(record.getMessage())}", file=sys.stderr)


def _log_to_stderr(verbose: bool) -> None:
    logger = logging.getLogger("squeezekit")
    if not any(isinstance(handler, _LogLine) for handler in logger.handlers):
        logger.addHandler(_LogLine())
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
