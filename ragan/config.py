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
import inspect
import json
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ragan._common import first_line, text_table
from ragan.errors import RaganError, did_you_mean

__all__ = [
    "Boolean",
    "Choice",
    "Config",
    "Float",
    "HParam",
    "Int",
    "StageConfig",
    "hparam",
    "load_overrides",
    "takes_options",
]


# --------------------------------------------------------------------------------------------
# Tuning ranges
# --------------------------------------------------------------------------------------------
class _NumberRange:
    """What :class:`Float` and :class:`Int` share: KerasTuner's ``hp.Float``/``hp.Int``, and narrowing."""

    hp_method: ClassVar[str]
    number: ClassVar[type]

    def to_hp(self, hp, name: str):
        method = getattr(hp, self.hp_method)
        return method(name, self.min_value, self.max_value, step=self.step, sampling=self.sampling)

    def narrowed(self, low: float, high: float):
        return dataclasses.replace(self, min_value=self.number(low), max_value=self.number(high))


@dataclass(frozen=True)
class Float(_NumberRange):
    """A continuous tuning range, ``sampling`` in ``"linear"``, ``"log"``, ``"reverse_log"``."""

    hp_method: ClassVar[str] = "Float"
    number: ClassVar[type] = float

    min_value: float
    max_value: float
    sampling: str = "linear"
    step: float | None = None

    def describe(self) -> str:
        kind = {"linear": "", "log": "log ", "reverse_log": "reverse-log "}[self.sampling]
        return f"{kind}{self.min_value:g}..{self.max_value:g}"


@dataclass(frozen=True)
class Int(_NumberRange):
    """An integer tuning range."""

    hp_method: ClassVar[str] = "Int"
    number: ClassVar[type] = int

    min_value: int
    max_value: int
    step: int = 1
    sampling: str = "linear"

    def describe(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        kind = "log " if self.sampling == "log" else ""
        return f"{kind}{self.min_value}..{self.max_value}{step}"


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
    check: Callable[[str, Any], Any] | None = None
    cli_flag: str | None = None
    metavar: str | None = None
    repeat: bool | str = False
    item_type: type | None = None
    optional: bool = False

    @property
    def flag(self) -> str:
        """The command-line option: declared with ``flag=``, else ``--name-with-dashes``."""
        return self.cli_flag or "--" + self.name.replace("_", "-")

    def describe_range(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        if self.min is not None and self.max is not None:
            return f"[{self.min:g}, {self.max:g}]"
        if self.min is not None:
            return f">= {self.min:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        return ""


def hparam(
    default,
    *,
    help: str,
    tune: TuneRange | None = None,
    choices=None,
    min: float | None = None,
    max: float | None = None,
    check: Callable[[str, Any], Any] | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    repeat: bool | str = False,
):
    """Declare a hyperparameter (or a stage option) as a dataclass field.

    Args:
        default: the default value (defaults live in code).
        help: one sentence saying what it does; shown by ``--help`` and ``ragan hparams``.
        tune: the KerasTuner search range (:class:`Float`, :class:`Int`, :class:`Choice`,
            :class:`Boolean`), or ``None`` when the value is not tuned by default.
        choices: the allowed values, for categorical options.
        min: inclusive lower bound checked on every assignment from a file, flag or dict.
        max: inclusive upper bound.
        check: ``check(name, value) -> value``, run on every non-``None`` value after the type
            conversion: it raises a one-line :class:`~ragan.errors.RaganError` naming ``name``, or
            returns the value normalised. A field annotated ``object`` is not converted: its check
            parses what it is given (a string from a flag or the Python value).
        flag: the command-line option when it is not ``--name-with-dashes`` (``--workers``). A
            :class:`StageConfig`'s ``bool`` option is a switch that sets the opposite of its
            default, so a ``True`` default is switched off by a flag such as ``--no-study``.
        metavar: the placeholder of the value in ``--help``.
        repeat: ``True``: the flag may be given several times, each adding one value to a list;
            ``"+"``: it also takes several values at once (``--tuner-option a=1 b=2``).

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
            "check": check,
            "cli_flag": flag,
            "metavar": metavar,
            "repeat": repeat,
        }
    }
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _base_type(annotation) -> type:
    """``float``, ``int``, ``str``, ``bool``, ``tuple``... from an annotation (``float | None`` -> float).

    ``object`` (or ``Any``) stays ``object``: such a field is parsed by its ``check``.
    """
    if annotation is Any:
        return object
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0]) if args else str
    if origin is not None:
        return origin
    return annotation if isinstance(annotation, type) else str


def _item_type(annotation) -> type | None:
    """The element type of ``tuple[int, ...]`` / ``list[str]`` (``None`` for other annotations)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _item_type(args[0]) if args else None
    if origin in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return args[0] if args and isinstance(args[0], type) else None
    return None


def _allows_none(annotation) -> bool:
    return annotation is Any or type(None) in typing.get_args(annotation)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _scalar(kind: type, value):
    """``value`` as a ``bool``/``int``/``float``/``str`` (strings from flags and files are parsed)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
    if kind is float:
        if isinstance(value, bool):
            raise ValueError
        out = float(value)
        if math.isnan(out):
            raise ValueError
        return out
    return value if isinstance(value, str) else str(value)


def _sequence(spec: HParam, value) -> tuple:
    """A tuple field from a sequence or from text: ``"0,1,2"`` (numbers also ``"0 1 2"``)."""
    if isinstance(value, str):
        if spec.item_type in (int, float) or "," not in value:
            parts = value.replace(",", " ").split() if spec.item_type in (int, float) else [value]
        else:
            parts = value.split(",")
        value = [part.strip() for part in parts if part.strip()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]  # one number for a list of numbers (seeds=0)
    items = tuple(value)
    if spec.item_type in (bool, int, float, str):
        items = tuple(_scalar(spec.item_type, item) for item in items)
    return items


def _coerce(spec: HParam, value, *, allows_none: bool, where: str):
    """Convert ``value`` (from a file, flag or dict) to the field's type, checking bounds."""
    name = f"{where}{spec.name}"
    literal = spec.choices is not None and value in spec.choices  # e.g. noise_mode='none' is a value
    if value is None or (isinstance(value, str) and value.lower() in {"none", "null"} and allows_none and not literal):
        if allows_none:
            return None
        raise RaganError(f"{name} must not be empty; default is {spec.default!r}.")
    kind = spec.type
    try:
        if kind in (tuple, list):
            out = _sequence(spec, value)
        elif kind is object or kind is dict:
            out = value
        else:
            out = _scalar(kind, value)
    except (TypeError, ValueError):
        what = f"{kind.__name__} of {spec.item_type.__name__}" if spec.item_type else kind.__name__
        raise RaganError(f"{name}={value!r} is not a valid {what}; default is {spec.default!r}.") from None
    values = out if kind in (tuple, list) and spec.choices is not None else (out,)
    for item in values:
        if spec.choices is not None and item not in spec.choices:
            listed = ", ".join(repr(c) for c in spec.choices)
            raise RaganError(
                f"{name}={item!r} is not allowed; choose one of {listed}.{did_you_mean(item, spec.choices)}"
            )
    if spec.min is not None and isinstance(out, (int, float)) and out < spec.min:
        raise RaganError(f"{name}={out!r} is below its minimum {spec.min:g}.")
    if spec.max is not None and isinstance(out, (int, float)) and out > spec.max:
        raise RaganError(f"{name}={out!r} is above its maximum {spec.max:g}.")
    if spec.check is not None:
        out = spec.check(name, out)
    return out


# --------------------------------------------------------------------------------------------
# Config base class
# --------------------------------------------------------------------------------------------
_SPECS: dict[type, list[HParam]] = {}


@dataclass
class Config:
    """Base class of every hyperparameter dataclass (subclass it with ``@dataclass``).

    Fields declared with :func:`hparam` are hyperparameters. Instances are validated: build
    them with :meth:`from_dict`, :meth:`from_file` or :meth:`from_args` to get type coercion,
    bounds checks and did-you-mean errors. A subclass may add checks across fields in
    :meth:`validate`.

    Example:
        >>> @dataclass
        ... class MyConfig(Config):
        ...     gp_weight: float = hparam(10.0, help="Gradient-penalty weight.", min=0.0)
        >>> cfg = MyConfig.from_dict({"gp_weight": "5"})
        >>> cfg.to_params()
        {'gp_weight': '5.0'}
    """

    # What one field is called in messages, and whether a bool field's flag is a switch.
    noun: ClassVar[str] = "hyperparameter"
    bool_switches: ClassVar[bool] = False

    # ---- introspection -------------------------------------------------------------------
    @classmethod
    def hparams(cls) -> list[HParam]:
        """The declared hyperparameters, in declaration order."""
        if cls not in _SPECS:
            _SPECS[cls] = _declared(cls)
        return list(_SPECS[cls])

    @classmethod
    def hparam(cls, name: str) -> HParam:
        specs = {s.name: s for s in cls.hparams()}
        if name not in specs:
            raise RaganError(f"unknown {cls.noun} {name!r} for {cls.__name__}.{did_you_mean(name, specs)}")
        return specs[name]

    # ---- construction --------------------------------------------------------------------
    def __post_init__(self):
        # Validate values given directly to the constructor too (e.g. DCGANConfig(latent_dim=-1)).
        for spec in self.hparams():
            value = getattr(self, spec.name)
            coerced = _coerce(spec, value, allows_none=spec.optional, where="")
            object.__setattr__(self, spec.name, coerced)
        self.validate()

    def validate(self) -> None:
        """Checks across fields (one field's checks are declared with it); raise a :class:`RaganError`."""

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
                raise RaganError(f"{where}unknown {cls.noun} {raw_key!r} for {cls.__name__}.{did_you_mean(key, specs)}")
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

    @classmethod
    def resolve(cls, config=None, options: Mapping[str, Any] | None = None, *, what: str = "config"):
        """The config a library function runs with: ``config``, then the keyword ``options`` on top.

        Args:
            config: ``None`` (the defaults), an instance, a mapping of overrides, or the path
                of a YAML/JSON file of overrides.
            options: name -> value given as keywords; they win over ``config``.
            what: the argument's name in error messages.

        Example:
            >>> @dataclass
            ... class C(Config):
            ...     lr: float = hparam(2e-4, help="Learning rate.", min=0)
            ...     steps: int = hparam(10, help="Steps.", min=1)
            >>> C.resolve({"lr": 0.1}, {"steps": 3})
            C(lr=0.1, steps=3)
        """
        if config is None:
            base = None
        elif isinstance(config, cls):
            base = config
        elif isinstance(config, Config):
            raise RaganError(f"{what} must be a {cls.__name__} (or a dict or a file), not {type(config).__name__}.")
        elif isinstance(config, Mapping):
            base = cls.from_dict(config, source=what)
        elif isinstance(config, (str, os.PathLike)):
            base = cls.from_file(config)
        else:
            raise RaganError(
                f"{what} must be a {cls.__name__}, a dict, a YAML/JSON file or None, not {type(config).__name__}."
            )
        if not options:
            return base if base is not None else cls()
        return cls.from_dict(options, base=base)

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
            switch = cls.bool_switches and spec.type is bool
            group.add_argument(
                spec.flag,
                dest=f"hp_{spec.name}",
                default=None,
                help=_help_text(spec, switch).replace("%", "%%"),
                # Values are parsed by _coerce so that flags, files and dicts agree on rules.
                **(
                    {"action": "store_const", "const": not spec.default}
                    if switch
                    else {"metavar": _metavar(spec), **_repeat(spec.repeat)}
                ),
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
        return text_table(rows)


def _declared(cls) -> list[HParam]:
    hints = typing.get_type_hints(cls)
    out = []
    for field in dataclasses.fields(cls):
        meta = field.metadata.get(_META_KEY)
        if meta is None:
            continue
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        out.append(
            HParam(
                name=field.name,
                type=_base_type(hints[field.name]),
                default=default,
                item_type=_item_type(hints[field.name]),
                optional=_allows_none(hints[field.name]),
                **meta,
            )
        )
    return out


def _repeat(repeat) -> dict:
    """argparse settings of a flag given once (``False``), repeated (``True``) or taking several values (``"+"``)."""
    if repeat == "+":
        return {"action": "extend", "nargs": "+"}
    return {"action": "append" if repeat else "store"}


def _metavar(spec: HParam) -> str:
    if spec.metavar:
        return spec.metavar
    if spec.type is bool:
        return "BOOL"
    if spec.choices is not None:
        return "{" + ",".join(str(c) for c in spec.choices if c is not None) + "}"
    if spec.item_type is not None:
        return f"{spec.item_type.__name__.upper()},..."
    return spec.type.__name__.upper() if spec.type is not object else "VALUE"


def _help_text(spec: HParam, switch: bool) -> str:
    """``--help`` text of one field: its help, default, range and tuning range."""
    if switch:
        return spec.help
    extra = []
    if spec.choices is None or spec.metavar:  # otherwise the choices are the flag's metavar
        rng = spec.describe_range()
        if rng:
            extra.append(f"allowed {rng}")
    if spec.tune is not None:
        extra.append(f"tuned over {spec.tune.describe()}")
    parts = [] if spec.default is None else [f"default {_shown(spec.default)}"]
    parts += extra
    if not parts:
        return spec.help
    text = spec.help[:-1] if spec.help.endswith(".") else spec.help
    return f"{text} ({'; '.join(parts)})."


def _shown(value) -> str:
    """A default as a user types it: ``0,1,2`` for a tuple, ``crop`` for a string."""
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass
class StageConfig(Config):
    """Base class of the options of a stage (:class:`~ragan.data.prepare_options.PrepareConfig`, ...).

    Declared with :func:`hparam` like a model's hyperparameters, one declaration gives the
    stage's command-line flags (``ragan STAGE --help``), the keywords of its library function
    (:func:`takes_options`), and the keys of its ``--config`` YAML/JSON file. A ``bool`` option is
    a command-line switch that sets the opposite of its default.

    Example:
        >>> @dataclass
        ... class CopyConfig(StageConfig):
        ...     overwrite: bool = hparam(False, help="Replace a non-empty output folder.")
        >>> parser = argparse.ArgumentParser()
        >>> CopyConfig.add_arguments(parser)
        >>> CopyConfig.from_cli(parser.parse_args(["--overwrite"]))
        CopyConfig(overwrite=True)
    """

    noun: ClassVar[str] = "option"
    bool_switches: ClassVar[bool] = True

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, title: str | None = None) -> None:
        """The ``--config FILE`` option and one flag per declared option."""
        parser.add_argument(
            "--config",
            default=None,
            metavar="FILE",
            help="YAML/JSON file of these options (name: value); flags given here win over it",
        )
        super().add_arguments(parser, title=title or "options")

    @classmethod
    def from_cli(cls, args: argparse.Namespace):
        """The options of a command line: the defaults, then ``--config FILE``, then the flags given."""
        base = cls.from_file(args.config) if getattr(args, "config", None) else None
        return cls.from_args(args, base=base)


def takes_options(config_class: type[Config]):
    """Give a stage function one keyword per option of ``config_class``, as its signature and docs.

    The function keeps ``config=None, **options`` and starts with
    ``config = config_class.resolve(config, options)``; this decorator only makes
    :func:`inspect.signature`, :func:`help` and IDEs show each option with its default, and adds
    an ``Options:`` section (the declared help) to the docstring before ``Returns:``.

    Example:
        >>> @dataclass
        ... class CopyConfig(StageConfig):
        ...     overwrite: bool = hparam(False, help="Replace a non-empty output folder.")
        >>> @takes_options(CopyConfig)
        ... def copy(source, *, config=None, **options):
        ...     return CopyConfig.resolve(config, options)
        >>> import inspect
        >>> str(inspect.signature(copy))
        '(source, *, config=None, overwrite: bool = False)'
        >>> copy("a", overwrite=True).overwrite
        True
    """

    def decorate(function):
        signature = inspect.signature(function)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        hints = typing.get_type_hints(config_class)
        specs = config_class.hparams()
        clash = {p.name for p in own} & {s.name for s in specs}
        if clash:
            raise TypeError(f"{function.__name__} declares {sorted(clash)} both as parameters and as options")
        added = [
            inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=s.default, annotation=hints[s.name])
            for s in specs
        ]
        function.__signature__ = signature.replace(parameters=own + added)
        function.__doc__ = _with_options(function.__doc__ or "", config_class)
        return function

    return decorate


def _with_options(doc: str, config_class: type[Config]) -> str:
    """``doc`` with an ``Options:`` section listing ``config_class``'s fields, before ``Returns:``."""
    lines = doc.splitlines()
    indent = next((line[: len(line) - len(line.lstrip())] for line in lines[1:] if line.strip()), "    ")
    section = [
        f"{indent}Options (keywords, or the fields of ``config``, a :class:`{config_class.__name__}`, dict or "
        "YAML/JSON file):"
    ]
    for spec in config_class.hparams():
        section.append(f"{indent}    {spec.name}: {_help_text(spec, switch=False)}")
    section.append("")
    at = next((i for i, line in enumerate(lines) if line.strip() in ("Returns:", "Raises:", "Example:")), len(lines))
    return "\n".join(lines[:at] + section + lines[at:])


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
    except Exception as error:  # noqa: BLE001 - yaml.YAMLError / json.JSONDecodeError: the user's file
        raise RaganError(f"config file {str(path)!r} is not valid: {first_line(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RaganError(f"config file {str(path)!r} must hold a mapping of name: value.")
    return data
