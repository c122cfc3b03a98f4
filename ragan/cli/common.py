"""Pieces several subcommands share: finding MODEL among the words, the real/synthetic/out options."""

from __future__ import annotations

import argparse
from collections.abc import Collection


def model_word(
    argv: list[str], switches: Collection[str], *, multi_value: Collection[str] = (), optional_value=None
) -> str | None:
    """The first word that is neither an option nor an option's value: MODEL of ``ragan train``/``tune``.

    Args:
        argv: the words after the subcommand.
        switches: options that take no value.
        multi_value: options that take several ``NAME=VALUE`` words (``--set a=1 b=2``).
        optional_value: ``(option, value)`` of an option whose value may be left out (``--resume auto``).

    Example:
        >>> model_word(["--data", "d", "--resume", "auto", "dcgan"], {"--resume"}, optional_value=("--resume", "auto"))
        'dcgan'
        >>> model_word(["--set", "a=1", "b=2", "wgan_gp"], set(), multi_value={"--set"})
        'wgan_gp'
    """
    skip_next = in_multi = False
    previous = None
    for word in argv:
        if skip_next:
            skip_next = False
        elif word.startswith("-"):
            in_multi = word in multi_value
            skip_next = word not in switches and "=" not in word and not in_multi
        elif not (in_multi and "=" in word) and (previous, word) != optional_value:
            return word
        previous = word
    return None


def add_dataset_arguments(parser: argparse.ArgumentParser, *, real: str, synthetic: str, out: str) -> None:
    """``--real DIR``, ``--synthetic DIR`` (prepared datasets) and ``--out DIR``, all required."""
    for flag, help_text in (("--real", real), ("--synthetic", synthetic), ("--out", out)):
        parser.add_argument(flag, metavar="DIR", required=True, help=help_text)
