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


class DownloadError(WeightFileError):
    """A file could not be downloaded (no network, a broken connection): the work failed, not the input."""


class ExportError(RuntimeError):
    """An export could not be completed or verified (a runtime crashed on it, outputs differ); nothing was
    published."""


class TrialsFailedError(RuntimeError):
    """Some trials of an exploration did not finish; the others are kept and a rerun retries these."""


class ParameterError(ValueError):
    """A bad argument of a library function, worded for whoever called it.

    ``template`` names parameters in braces (``"Expected {bits} in 1..8. Received: {bits}=9"``):
    ``str()`` reads them as Python parameters (``bits``), and the CLI spells them as its options
    (``--bits``) with :meth:`render`, so the library never needs to know its command-line flags.
    """

    def __init__(self, template: str) -> None:
        import string

        self.template = template
        self.parameters = sorted({name for _, name, _, _ in string.Formatter().parse(template) if name})
        super().__init__(self.render(lambda name: name))

    def render(self, spell) -> str:
        return self.template.format(**{name: spell(name) for name in self.parameters})


def literal(value) -> str:
    """``repr(value)`` made safe to put inside a :class:`ParameterError` template."""
    return repr(value).replace("{", "{{").replace("}", "}}")
