"""Command-line interface (see ``squeezekit --help``)."""
