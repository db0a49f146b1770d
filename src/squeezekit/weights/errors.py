"""Kept for the readers' imports: the exception lives in ``squeezekit.errors`` (no import cycle there)."""

from squeezekit.errors import WeightFileError

__all__ = ["WeightFileError"]
