"""The exceptions squeezekit raises for a bad weight, model or data file and for failed work.

Readers of third-party binary formats fail in many low-level ways (short reads, bad offsets, index
errors, reshape errors). Turning all of them into one ``ValueError`` subclass that names the file lets
callers catch a single type and lets users see *which* file is wrong and what was expected, instead of
an ``IndexError`` deep inside numpy or, worse, a silently wrong model.
"""

from __future__ import annotations

import os


class WeightFileError(ValueError):
    """A weight or network-definition file is malformed, truncated or inconsistent.

    ``path`` is the offending file (or a placeholder such as ``"<bytes>"`` for in-memory input);
    the message always starts with it.
    """

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        self.path = os.fspath(path)
        self.detail = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self):  # keep the two-argument constructor picklable (multiprocessing, xdist)
        return (type(self), (self.path, self.detail))


class TrialsFailedError(RuntimeError):
    """Some trials of an exploration did not finish; the others are kept and a rerun retries these."""
