"""Checks on values from files a user may have received from someone else.

A class name comes from a labels CSV, a ``--label-map``, a folder or zip entry, a manifest, a
run's ``run.json`` or the command line, and ragan uses it as a folder name (``ragan generate
--format png`` writes one folder per class): :func:`check_class_name` keeps it a label, never a
path. A ``--config`` YAML file is read by :func:`safe_yaml_load`: no aliases (the "billion laughs"
expansion), a size cap, plain values only. See ``SECURITY.md`` for the whole list.

Example:
    >>> check_class_name("pneumonia", "labels_csv 'labels.csv'")
    'pneumonia'
    >>> check_class_name("../x", "labels_csv 'labels.csv'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ragan.errors.RaganError: labels_csv 'labels.csv': class name '../x' is not allowed (it contains '/'); ...
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ragan.errors import RaganError

__all__ = [
    "MAX_CLASS_NAME",
    "MAX_CONFIG_BYTES",
    "check_class_name",
    "check_class_names",
    "check_run_metadata",
    "read_small_text",
    "safe_yaml_load",
]

#: Longest class name (characters): it must fit a file name on every file system.
MAX_CLASS_NAME = 200
#: Largest ``--config`` file read (bytes): options, not data.
MAX_CONFIG_BYTES = 1 << 20


def _problem(name) -> str | None:
    """Why ``name`` cannot be a class name, or ``None``."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not text"
    if not name.strip():
        return "it is empty"
    if len(name) > MAX_CLASS_NAME:
        return f"it is longer than {MAX_CLASS_NAME} characters"
    if name in (".", ".."):
        return "it names a folder"
    for separator in ("/", "\\"):
        if separator in name:
            return f"it contains {separator!r}"
    for character in name:
        # Control characters (NUL, newline, escape ...) and line/paragraph separators.
        if unicodedata.category(character) in ("Cc", "Zl", "Zp"):
            return f"it contains the control character {character!r}"
    return None


def check_class_name(name, source: str) -> str:
    """``name`` if it can be a class name, else a one-line :class:`RaganError` naming ``source``.

    A class name is a label: it must not be empty, ``.`` or ``..``, and must hold no ``/``,
    ``\\``, control character (NUL, newline ...) or more than :data:`MAX_CLASS_NAME` characters.

    Args:
        name: the class name.
        source: where it came from, for the message (``"labels_csv 'x.csv' line 4"``).

    Example:
        >>> check_class_name("COVID-19", "--class-names")
        'COVID-19'
    """
    problem = _problem(name)
    if problem is not None:
        shown = repr(name[:80] + "..." if len(name) > 80 else name) if isinstance(name, str) else repr(type(name))
        raise RaganError(
            f"{source}: class name {shown} is not allowed ({problem}); a class name is a label, not a path: "
            "use letters, digits, spaces, '-', '_' or '.'."
        )
    return name


def check_class_names(names: Iterable, source: str) -> list[str]:
    """:func:`check_class_name` on each name; the names as a list.

    Example:
        >>> check_class_names(["normal", "pneumonia"], "manifest.json")
        ['normal', 'pneumonia']
    """
    return [check_class_name(name, source) for name in names]


def check_run_metadata(meta, run_file) -> dict:
    """A run folder's ``run.json`` content, checked where ragan uses it as more than text.

    It must be a JSON object; its ``class_names`` (folder names of ``ragan generate --format
    png``) must pass :func:`check_class_name`; its ``model`` must be a relative path (the caller
    keeps it inside the run folder with :func:`ragan._files.path_inside`).

    Example:
        >>> check_run_metadata({"model": "model.keras", "class_names": ["a", "b"]}, "run.json")["class_names"]
        ['a', 'b']
    """
    if not isinstance(meta, dict):
        raise RaganError(f"{run_file}: expected a JSON object, got {type(meta).__name__}.")
    names = meta.get("class_names")
    if names is not None:
        if not isinstance(names, list):
            raise RaganError(f"{run_file}: class_names must be a list of names, got {type(names).__name__}.")
        check_class_names(names, f"{run_file}: class_names")
    model = meta.get("model")
    if model is not None and (not isinstance(model, str) or not model or Path(model).is_absolute()):
        raise RaganError(f"{run_file}: model must name a file inside the run folder, got {model!r}.")
    return meta


def safe_yaml_load(text: str, source: str):
    """The value of a YAML document, refusing aliases and anchors and more than one document.

    ``yaml.safe_load`` expands aliases: a few hundred bytes of nested aliases become gigabytes
    (the "billion laughs"). Options files never need them, so an alias is an error here, found
    while the text is parsed, before any value is built.

    Args:
        text: the YAML text (at most :data:`MAX_CONFIG_BYTES`).
        source: the file, for messages.

    Raises:
        RaganError: an alias/anchor, several documents, a file over the size cap, nesting deeper
            than Python's recursion limit or invalid YAML (one line).

    Example:
        >>> safe_yaml_load("g_learning_rate: 0.0002\\nbatch_size: 32\\n", "config.yaml")
        {'g_learning_rate': 0.0002, 'batch_size': 32}
    """
    import yaml

    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise RaganError(
            f"{source}: the file is over {MAX_CONFIG_BYTES:,} bytes; a config file holds options, not data."
        )

    class _NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                mark = event.start_mark
                raise RaganError(
                    f"{source}: line {mark.line + 1}: YAML anchors and aliases (&name, *name) are not allowed "
                    "in a ragan config; write each value out."
                )
            return super().compose_node(parent, index)

    loader = _NoAliasLoader(text)
    try:
        if not loader.check_data():
            return None
        value = loader.get_data()
        if loader.check_data():
            raise RaganError(f"{source}: holds more than one YAML document; a config file holds one mapping.")
        return value
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise RaganError(f"{source} is not valid: {detail}") from None
    except RecursionError:
        raise RaganError(f"{source}: its values nest too deeply for a config file.") from None
    finally:
        loader.dispose()


def read_small_text(path, source: str, limit: int = MAX_CONFIG_BYTES) -> str:
    """The text of ``path`` if it is at most ``limit`` bytes (read no further), else a RaganError."""
    with open(Path(path), "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise RaganError(f"{source}: the file is over {limit:,} bytes; a config file holds options, not data.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RaganError(f"{source}: not UTF-8 text (byte {error.start}).") from None
