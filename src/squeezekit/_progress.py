"""A progress bar: tqdm when installed (the train extra), else a minimal one on stderr.

The base install (numpy and Pillow) must show progress on downloads too, so it cannot rely on tqdm.
"""

from __future__ import annotations

import sys
import time


class _PlainBar:
    def __init__(self, total=None, desc="", unit="it", unit_scale=False, disable=False, **_):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.disable = disable or not sys.stderr.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if not self.disable and (now - self._last > 0.2 or (self.total and self.n >= self.total)):
            self._last = now
            done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
            percent = f" {100 * self.n / self.total:5.1f}%" if self.total else ""
            sys.stderr.write(f"\r{self.desc}: {done} {self.unit}{percent} ({now - self._start:.0f} s)")
            sys.stderr.flush()

    def set_postfix_str(self, text):
        pass

    def close(self):
        if not self.disable:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress_bar(total=None, desc="", unit="it", **kwargs):
    """A context-managed bar with ``update(n)``; silent when stderr is not a terminal."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainBar(total=total, desc=desc, unit=unit, **kwargs)
    kwargs.setdefault("disable", None)  # tqdm: None hides the bar when stderr is not a terminal
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, **kwargs)
