"""Small helpers that several stages share: one-line error text, integer checks, JSON files, quiet loggers."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
from collections.abc import Iterator
from pathlib import Path

from ragan.errors import RaganError

__all__ = ["check_positive_int", "first_line", "json_ready", "muted_loggers", "read_json", "text_table"]


def first_line(error: BaseException | str, limit: int = 200) -> str:
    """The first line of an exception's message (at most ``limit`` characters), for one-line errors.

    An exception without a message gives its type's name.

    Example:
        >>> first_line(ValueError("bad header\\n  at byte 12"))
        'bad header'
        >>> first_line(KeyError())
        'KeyError'
        >>> first_line("x" * 300, limit=5)
        'xxxxx'
    """
    text = str(getattr(error, "message", None) or error).strip()
    if not text:
        return type(error).__name__
    return text.splitlines()[0][:limit]


def check_positive_int(name: str, value, *, allow_none: bool = False) -> int | None:
    """Return ``value`` if it is an integer >= 1 (bools excluded), else raise a one-line :class:`RaganError`.

    Example:
        >>> check_positive_int("batch_size", 32)
        32
        >>> check_positive_int("epochs", 0)
        Traceback (most recent call last):
        ragan.errors.RaganError: epochs=0 is not allowed; it must be a positive integer.
        >>> check_positive_int("seed", None, allow_none=True) is None
        True
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise RaganError(f"{name}={value!r} is not allowed; it must be a positive integer.")
    return int(value)


def read_json(path: str | Path) -> dict:
    """A JSON file's content, or a one-line :class:`RaganError` naming the file and the problem.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "run.json").write_text('{"kimg": 4}')
        >>> read_json(folder / "run.json")
        {'kimg': 4}
        >>> _ = (folder / "bad.json").write_text("{")
        >>> read_json(folder / "bad.json")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ragan.errors.RaganError: cannot read '.../bad.json': Expecting property name ...
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: a file nesting thousands deep
        raise RaganError(f"cannot read '{path}': {first_line(error)}") from None


@contextlib.contextmanager
def muted_loggers(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise the named loggers to ``level`` for the ``with`` block, then restore their levels.

    Keeps libraries' chatter (MLflow, alembic, urllib3, ...) off the user's terminal while ragan reports
    a failure itself, in one line.

    Example:
        >>> with muted_loggers("mlflow", "urllib3"):
        ...     logging.getLogger("mlflow").level == logging.ERROR
        True
        >>> logging.getLogger("mlflow").level == logging.ERROR
        False
    """
    loggers = [logging.getLogger(name) for name in names]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, saved):
            logger.setLevel(old)


def text_table(rows: list[tuple[str, ...]]) -> str:
    """Rows as aligned columns under a rule; the last column is free text, not padded.

    Example:
        >>> print(text_table([("name", "meaning"), ("lr", "Learning rate.")]))
        name  meaning
        ----  -------
        lr    Learning rate.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1])
        if index == 0:
            lines.append("  ".join("-" * width for width in widths) + "  " + "-" * len(row[-1]))
    return "\n".join(lines)


def json_ready(value):
    """numpy scalars/arrays to Python, non-finite floats to None (report.json is strict JSON).

    Example:
        >>> import numpy as np
        >>> json_ready({"a": np.float32(0.5), "b": [np.int64(2), float("nan")], "c": np.arange(2)})
        {'a': 0.5, 'b': [2, None], 'c': [0, 1]}
    """
    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value
