"""User-facing errors.

Every problem caused by the user's input (a bad argument, a missing file, a corrupt dataset)
is raised as a :class:`RaganError`. Its message is one line that names the argument or file,
the value and what is allowed; the CLI prints it as ``ragan: error: <message>`` and exits 2,
with no traceback. Anything else escaping is a bug in ragan.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["RaganError", "did_you_mean", "check_choice"]


class RaganError(ValueError):
    """An error in the user's input, reported as one clean line by the CLI."""

    def __init__(self, message: str):
        # Keep the message on one line whatever the caller passed.
        super().__init__(" ".join(str(message).split()))


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""`` when none is close."""
    matches = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""


def check_choice(name: str, value, allowed: Iterable) -> None:
    """Raise a :class:`RaganError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise RaganError(f"{name}={value!r} is not allowed; choose one of {listed}.{did_you_mean(value, allowed)}")
