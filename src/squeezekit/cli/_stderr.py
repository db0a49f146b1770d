"""Keep TensorFlow's start-up chatter off the command line's stderr (unless ``--verbose``).

TensorFlow 2.21 logs through absl before anything can configure it: ``TF_CPP_MIN_LOG_LEVEL`` does not
reach its oneDNN notice or absl's "before absl::InitializeLog()" warning, and they are written by C++
straight to file descriptor 2, in this process and in every child process. So the command runs with
fd 2 connected to a pipe; a thread passes everything through to the real stderr, line by line, except
lines that match the known start-up patterns below. Progress bars (``\\r``-terminated) and partial lines
pass at once, so nothing the user should see is delayed or lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

# Library notices that TF_CPP_MIN_LOG_LEVEL=3 would have silenced, had they honoured it: absl-formatted
# lines from C++ sources (``I0000 00:00:1796172874.93 7009 port.cc:153] ...``), absl's pre-init warning,
# the MLIR quantiser's settings line and LiteRT's delegate notice. squeezekit's own messages never match.
NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} [\d:.]+ +\d+ [\w.]+\.(cc|h):\d+\] .*"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    rb"|fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)\r?$"
)
_PREFIXES = (b"WARNING: All", b"INFO: Created", b"To enable", b"fully_quantize", b"I", b"W", b"E")  # a partial line that may still become noise


def _pump(read_fd: int, write_fd: int) -> None:
    pending = b""
    while True:
        try:
            block = os.read(read_fd, 65536)
        except OSError:
            block = b""
        pending += block
        lines = re.split(rb"(?<=[\n\r])", pending)
        pending = b"" if not block else lines.pop()
        if pending and not any(pending.startswith(p[: len(pending)]) for p in _PREFIXES):
            lines.append(pending)  # cannot be a notice: show it now (a prompt, a progress bar)
            pending = b""
        out = b"".join(line for line in lines if line and not NOISE.match(line.rstrip(b"\n")))
        if out:
            try:
                os.write(write_fd, out)
            except OSError:
                pass
        if not block:
            return


@contextlib.contextmanager
def filtered_stderr():
    """Run the body with fd 2 filtered (see the module docstring); a no-op where fd 2 cannot be replaced."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_fd, write_fd = os.pipe()
    except (OSError, ValueError):
        yield
        return
    thread = threading.Thread(target=_pump, args=(read_fd, saved), daemon=True, name="squeezekit-stderr")
    thread.start()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer in this process closes: the pump drains and ends
        thread.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(read_fd)
        os.close(saved)
