"""Command-line interface (``ragan``); see :mod:`ragan.cli.main`."""

from ragan.cli.main import main

__all__ = ["main"]
