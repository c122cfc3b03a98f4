"""Hyperparameters declared once.

A model's hyperparameters are the fields of a :class:`Config` dataclass, each declared with
:func:`hparam`. That one declaration feeds

* the CLI (``ragan train MODEL --help``, ``ragan hparams MODEL``),
* the KerasTuner search space (:func:`ragan.tuning.hypermodel.build_search_space`),
* the MLflow run parameters (:meth:`Config.to_params`),
* the saved model's config (:meth:`Config.to_dict` / :meth:`Config.from_dict`),
* YAML/JSON override files, in which an unknown key is an error with a did-you-mean.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class MyConfig(Config):
    ...     gp_weight: float = hparam(10.0, help="Gradient-penalty weight.",
    ...                               tune=Float(1.0, 20.0, sampling="log"), min=0.0)
    >>> MyConfig.from_dict({"gp_weight": 5}).gp_weight
    5.0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragan._common import first_line
from ragan.errors import RaganError, did_you_mean

__all__ = [
    "Boolean",
    "Choice",
    "Config",
    "Float",
    "HParam",
    "Int",
    "hparam",
    "load_overrides",
]


# --------------------------------------------------------------------------------------------
# Tuning ranges
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Float:
    """A continuous tuning range, ``sampling`` in ``"linear"``, ``"log"``, ``"reverse_log"``."""

    min_value: float
    max_value: float
    sampling: str = "linear"
    step: float | None = None

    def describe(self) -> str:
        kind = {"linear": "", "log": "log ", "reverse_log": "reverse-log "}[self.sampling]
        return f"{kind}{self.min_value:g}..{self.max_value:g}"

    def to_hp(self, hp, name: str):
        return hp.Float(name, self.min_value, self.max_value, step=self.step, sampling=self.sampling)

    def narrowed(self, low: float, high: float) -> Float:
        return dataclasses.replace(self, min_value=float(low), max_value=float(high))


@dataclass(frozen=True)
class Int:
    """An integer tuning range."""

    min_value: int
    max_value: int
    step: int = 1
    sampling: str = "linear"

    def describe(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        kind = "log " if self.sampling == "log" else ""
        return f"{kind}{self.min_value}..{self.max_value}{step}"

    def to_hp(self, hp, name: str):
        return hp.Int(name, self.min_value, self.max_value, step=self.step, sampling=self.sampling)

    def narrowed(self, low: float, high: float) -> Int:
        return dataclasses.replace(self, min_value=int(low), max_value=int(high))


@dataclass(frozen=True)
class Choice:
    """A categorical tuning range."""

    values: tuple

    def __init__(self, *values):
        if len(values) == 1 and isinstance(values[0], (list, tuple)):
            values = tuple(values[0])
        object.__setattr__(self, "values", tuple(values))

    def describe(self) -> str:
        return "{" + ", ".join(str(v) for v in self.values) + "}"

    def to_hp(self, hp, name: str):
        return hp.Choice(name, list(self.values))


@dataclass(frozen=True)
class Boolean:
    """A true/false tuning choice."""

    def describe(self) -> str:
        return "{false, true}"

    def to_hp(self, hp, name: str):
        return hp.Boolean(name)


TuneRange = Float | Int | Choice | Boolean


# --------------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------------
_META_KEY = "ragan_hparam"


@dataclass(frozen=True)
class HParam:
    """What :func:`hparam` recorded about one field, plus its name and Python type."""

    name: str
    type: type
    default: Any
    help: str
    tune: TuneRange | None = None
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def describe_range(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        if self.min is not None or self.max is not None:
            low = "-inf" if self.min is None else f"{self.min:g}"
            high = "inf" if self.max is None else f"{self.max:g}"
            return f"[{low}, {high}]"
        return ""


def hparam(
    default,
    *,
    help: str,
    tune: TuneRange | None = None,
    choices=None,
    min: float | None = None,
    max: float | None = None,
):
    """Declare a hyperparameter as a dataclass field.

    Args:
        default: the default value (defaults live in code).
        help: one sentence saying what it does; shown by ``--help`` and ``ragan hparams``.
        tune: the KerasTuner search range (:class:`Float`, :class:`Int`, :class:`Choice`,
            :class:`Boolean`), or ``None`` when the value is not tuned by default.
        choices: the allowed values, for categorical options.
        min: inclusive lower bound checked on every assignment from a file, flag or dict.
        max: inclusive upper bound.

    Example:
        >>> @dataclass
        ... class C(Config):
        ...     lr: float = hparam(2e-4, help="Learning rate.", tune=Float(1e-5, 1e-3, "log"), min=0)
    """
    metadata = {
        _META_KEY: {
            "help": help,
            "tune": tune,
            "choices": tuple(choices) if choices is not None else None,
            "min": min,
            "max": max,
        }
    }
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _base_type(annotation) -> type:
    """``float``, ``int``, ``str``, ``bool``, ``tuple``... from an annotation (``float | None`` -> float)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0]) if args else str
    if origin is not None:
        return origin
    return annotation if isinstance(annotation, type) else str


def _allows_none(annotation) -> bool:
    return type(None) in typing.get_args(annotation)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(spec: HParam, value, *, allows_none: bool, where: str):
    """Convert ``value`` (from a file, flag or dict) to the field's type, checking bounds."""
    name = f"{where}{spec.name}"
    if value is None or (isinstance(value, str) and value.lower() in {"none", "null"} and allows_none):
        if allows_none:
            return None
        raise RaganError(f"{name} must not be empty; default is {spec.default!r}.")
    kind = spec.type
    try:
        if kind is bool:
            if isinstance(value, bool):
                out = value
            elif isinstance(value, (int, float)) and value in (0, 1):
                out = bool(value)
            elif isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                out = value.lower() in _TRUE
            else:
                raise ValueError
        elif kind is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            out = int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        elif kind is float:
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if math.isnan(out):
                raise ValueError
        elif kind in (tuple, list):
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split() if v]
            out = tuple(value)
        else:
            out = str(value) if not isinstance(value, str) else value
    except (TypeError, ValueError):
        raise RaganError(f"{name}={value!r} is not a valid {kind.__name__}; default is {spec.default!r}.") from None
    if spec.choices is not None and out not in spec.choices:
        listed = ", ".join(repr(c) for c in spec.choices)
        raise RaganError(f"{name}={out!r} is not allowed; choose one of {listed}.{did_you_mean(out, spec.choices)}")
    if spec.min is not None and isinstance(out, (int, float)) and out < spec.min:
        raise RaganError(f"{name}={out!r} is below its minimum {spec.min:g}.")
    if spec.max is not None and isinstance(out, (int, float)) and out > spec.max:
        raise RaganError(f"{name}={out!r} is above its maximum {spec.max:g}.")
    return out


# --------------------------------------------------------------------------------------------
# Config base class
# --------------------------------------------------------------------------------------------
@dataclass
class Config:
    """Base class of every hyperparameter dataclass (subclass it with ``@dataclass``).

    Fields declared with :func:`hparam` are hyperparameters. Instances are validated: build
    them with :meth:`from_dict`, :meth:`from_file` or :meth:`from_args` to get type coercion,
    bounds checks and did-you-mean errors.

    Example:
        >>> @dataclass
        ... class MyConfig(Config):
        ...     gp_weight: float = hparam(10.0, help="Gradient-penalty weight.", min=0.0)
        >>> cfg = MyConfig.from_dict({"gp_weight": "5"})
        >>> cfg.to_params()
        {'gp_weight': '5.0'}
    """

    # ---- introspection -------------------------------------------------------------------
    @classmethod
    def hparams(cls) -> list[HParam]:
        """The declared hyperparameters, in declaration order."""
        hints = typing.get_type_hints(cls)
        out = []
        for field in dataclasses.fields(cls):
            meta = field.metadata.get(_META_KEY)
            if meta is None:
                continue
            default = (
                field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
            )
            out.append(
                HParam(
                    name=field.name,
                    type=_base_type(hints[field.name]),
                    default=default,
                    help=meta["help"],
                    tune=meta["tune"],
                    choices=meta["choices"],
                    min=meta["min"],
                    max=meta["max"],
                )
            )
        return out

    @classmethod
    def hparam(cls, name: str) -> HParam:
        specs = {s.name: s for s in cls.hparams()}
        if name not in specs:
            raise RaganError(f"unknown hyperparameter {name!r} for {cls.__name__}.{did_you_mean(name, specs)}")
        return specs[name]

    # ---- construction --------------------------------------------------------------------
    def __post_init__(self):
        # Validate values given directly to the constructor too (e.g. DCGANConfig(latent_dim=-1)).
        hints = typing.get_type_hints(type(self))
        for spec in self.hparams():
            value = getattr(self, spec.name)
            coerced = _coerce(spec, value, allows_none=_allows_none(hints[spec.name]), where="")
            object.__setattr__(self, spec.name, coerced)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, *, source: str = "", base=None):
        """Build a config from ``values`` (overrides on top of ``base`` or the defaults).

        Args:
            values: name -> value; names may use ``-`` or ``_``. Unknown names are an error.
            source: where the values came from (a file name), used in error messages.
            base: a config whose values are the starting point instead of the defaults.
        """
        values = dict(values or {})
        specs = {s.name: s for s in cls.hparams()}
        where = f"{source}: " if source else ""
        resolved = {}
        for raw_key, value in values.items():
            key = str(raw_key).replace("-", "_")
            if key not in specs:
                raise RaganError(
                    f"{where}unknown hyperparameter {raw_key!r} for {cls.__name__}.{did_you_mean(key, specs)}"
                )
            resolved[key] = value
        start = base.to_dict() if base is not None else {}
        start.update(resolved)
        try:
            return cls(**start)
        except RaganError as error:
            raise RaganError(f"{where}{error}") from None

    @classmethod
    def from_file(cls, path: str | Path, *, base=None):
        """Read overrides from a YAML or JSON file (see :func:`load_overrides`)."""
        return cls.from_dict(load_overrides(path), source=str(path), base=base)

    def replace(self, **changes):
        """A copy with some values changed (validated)."""
        return type(self).from_dict(changes, base=self)

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable name -> value of every hyperparameter."""
        out = {}
        for spec in self.hparams():
            value = getattr(self, spec.name)
            out[spec.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def to_params(self, prefix: str = "") -> dict[str, str]:
        """Flat string parameters for MLflow (``prefix`` namespaces them, e.g. ``"model."``)."""
        return {f"{prefix}{k}": str(v) for k, v in self.to_dict().items()}

    # ---- CLI -----------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, title: str | None = None) -> None:
        """Add one ``--flag`` per hyperparameter; unset flags stay ``None`` (= keep default)."""
        group = parser.add_argument_group(title or f"{cls.__name__} hyperparameters")
        for spec in cls.hparams():
            extra = []
            rng = spec.describe_range()
            if rng:
                extra.append(f"allowed {rng}")
            if spec.tune is not None:
                extra.append(f"tuned over {spec.tune.describe()}")
            suffix = f" ({'; '.join(extra)})" if extra else ""
            help_text = f"{spec.help} Default: {spec.default!r}{suffix}.".replace("%", "%%")
            metavar = spec.type.__name__.upper() if spec.choices is None else None
            group.add_argument(
                spec.flag,
                dest=f"hp_{spec.name}",
                default=None,
                help=help_text,
                metavar=metavar if spec.type is not bool else "BOOL",
                # Values are parsed by _coerce so that flags, files and dicts agree on rules.
            )

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, base=None):
        """The config from parsed flags (only the flags the user gave), on top of ``base``."""
        given = {
            spec.name: getattr(args, f"hp_{spec.name}")
            for spec in cls.hparams()
            if getattr(args, f"hp_{spec.name}", None) is not None
        }
        return cls.from_dict(given, source="command line", base=base)

    @classmethod
    def table(cls) -> str:
        """A plain-text table: name, type, default, allowed/tuning range, help."""
        rows = [("name", "type", "default", "range", "tuned over", "meaning")]
        for s in cls.hparams():
            rows.append(
                (
                    s.name,
                    s.type.__name__,
                    repr(s.default),
                    s.describe_range() or "-",
                    s.tune.describe() if s.tune is not None else "-",
                    s.help,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = []
        for i, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5])
            if i == 0:
                lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
        return "\n".join(lines)


def load_overrides(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON file holding a flat mapping of overrides."""
    path = Path(path)
    if not path.is_file():
        raise RaganError(f"config file {str(path)!r} does not exist.")
    from ragan._untrusted import read_small_text, safe_yaml_load

    text = read_small_text(path, f"config file {str(path)!r}")  # a size cap, then no YAML aliases
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            data = safe_yaml_load(text, f"config file {str(path)!r}")
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise RaganError(f"config file {str(path)!r} must end in .yaml, .yml or .json, not {path.suffix!r}.")
    except RaganError:
        raise
    except Exception as error:  # yaml.YAMLError / json.JSONDecodeError
        raise RaganError(f"config file {str(path)!r} is not valid: {first_line(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RaganError(f"config file {str(path)!r} must hold a mapping of name: value.")
    return data
