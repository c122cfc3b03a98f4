"""The search space of a study, from the model's declared hyperparameters, and its HyperModel.

Every hyperparameter declared with ``hparam(..., tune=...)`` in the model's config class (and in
:class:`~ragan.training.config.TrainConfig`, e.g. ``batch_size``) is searched over its declared
range unless the user changes it. A user's search specification (a dict, a YAML file or the
``--set/--range/--choices`` flags) maps names to

* a single value: the hyperparameter is fixed (``latent_dim: 64``, ``log_every: 10``);
* ``[low, high]``: a declared Float/Int range is narrowed;
* a list of values: a declared Choice is narrowed (any list of 3+ values is a choice);
* ``{"min": low, "max": high, "sampling": "log", "step": s}``: a range, also for a
  hyperparameter that declares none (``ema_decay``), or to widen a declared one;
* ``{"choices": [a, b, ...]}``: a choice, also for a float such as a learning rate.

The training length is not a hyperparameter here: the tuner sets it (``kimg`` per trial, or
Hyperband's budget), so ``kimg`` and ``steps`` are refused.

Example:
    >>> space = build_search_space("dcgan", {"latent_dim": 64, "g_learning_rate": [1e-4, 5e-4]})
    >>> print(space.table())
    name             section   search              origin
    ---------------  --------  ------------------  ------
    latent_dim       model     fixed 64            fixed
    base_filters     model     {32, 64, 128}       declared
    g_learning_rate  model     log 0.0001..0.0005  narrowed
    d_learning_rate  model     log 1e-05..0.001    declared
    beta_1           model     {0.0, 0.5}          declared
    batch_size       training  {32, 64, 128}       declared
    >>> hypermodel = GANHyperModel(space)
    >>> trial = hypermodel.build(keras_tuner.HyperParameters())
    >>> trial.model_config.latent_dim
    64
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragan._common import first_line, text_table
from ragan.config import Choice, Config, Float, Int, load_overrides
from ragan.errors import RaganError, did_you_mean
from ragan.tuning._keras_tuner import keras_tuner  # imported there, after TensorFlow's quiet import

__all__ = [
    "BUDGET_OPTIONS",
    "GANHyperModel",
    "SearchDimension",
    "SearchSpace",
    "TrialConfig",
    "build_search_space",
    "describe_declared",
    "load_search_file",
]

MODEL = "model"
TRAINING = "training"
# Set by the tuner for every trial; a user value would silently fight the tuner's budget.
BUDGET_OPTIONS = ("kimg", "steps")
_RANGE_KEYS = {"min", "max", "sampling", "step"}
_SAMPLINGS = ("linear", "log", "reverse_log")


@dataclass(frozen=True)
class SearchDimension:
    """One hyperparameter of a study: a range to search, or a fixed value.

    Attributes:
        name: the hyperparameter's name (as declared with :func:`ragan.hparam`).
        section: ``"model"`` (the GAN's config class) or ``"training"`` (TrainConfig).
        range: a :class:`~ragan.config.Float`/``Int``/``Choice``/``Boolean``, or ``None`` when fixed.
        value: the fixed value (when ``range`` is ``None``).
        origin: ``"declared"`` (the declared range), ``"narrowed"`` (a declared range the user
            narrowed), ``"user"`` (a range the user gave) or ``"fixed"``.
    """

    name: str
    section: str
    range: Any = None
    value: Any = None
    origin: str = "declared"

    @property
    def searched(self) -> bool:
        return self.range is not None

    def describe(self) -> str:
        return self.range.describe() if self.searched else f"fixed {self.value!r}"

    def to_json(self) -> dict:
        out = {"name": self.name, "section": self.section, "origin": self.origin}
        if self.searched:
            out["range"] = self.range.describe()
        else:
            out["value"] = list(self.value) if isinstance(self.value, tuple) else self.value
        return out


@dataclass(frozen=True)
class TrialConfig:
    """What one trial trains: the model's config and the training options (without the length)."""

    model_config: Config
    training: dict


@dataclass(frozen=True)
class SearchSpace:
    """The searched and fixed hyperparameters of a study (see the module docstring).

    Build it with :func:`build_search_space`; :meth:`draw` turns a KerasTuner
    ``HyperParameters`` object into a :class:`TrialConfig`.

    Example:
        >>> space = build_search_space("wgan_gp", {"gp_weight": [5, 15], "d_steps": 5})
        >>> [d.name for d in space.fixed], "gp_weight" in [d.name for d in space.searched]
        (['d_steps'], True)
    """

    model_name: str
    config_class: type
    dimensions: tuple[SearchDimension, ...] = field(default_factory=tuple)

    @property
    def searched(self) -> list[SearchDimension]:
        return [d for d in self.dimensions if d.searched]

    @property
    def fixed(self) -> list[SearchDimension]:
        return [d for d in self.dimensions if not d.searched]

    def draw(self, hp) -> TrialConfig:
        """Register the searched dimensions on ``hp`` and return the trial's configuration.

        Raises:
            RaganError: the drawn combination is not a valid config (e.g. a bound violated).
        """
        from ragan.training.config import TrainConfig

        values = {MODEL: {}, TRAINING: {}}
        for dimension in self.dimensions:
            if dimension.searched:
                values[dimension.section][dimension.name] = dimension.range.to_hp(hp, dimension.name)
            else:
                values[dimension.section][dimension.name] = dimension.value
        model_config = self.config_class.from_dict(values[MODEL], source="tuner")
        # Validated now, so a bad combination fails the trial before any training starts.
        TrainConfig.from_dict(values[TRAINING], source="tuner")
        return TrialConfig(model_config=model_config, training=dict(values[TRAINING]))

    def to_json(self) -> list[dict]:
        """JSON description (stored in ``study.json``; a resumed study must have the same)."""
        return [dimension.to_json() for dimension in self.dimensions]

    def params(self) -> dict[str, str]:
        """Flat MLflow parameters: ``space.<name>`` -> range or fixed value."""
        return {f"space.{d.name}": d.describe() for d in self.dimensions}

    def table(self) -> str:
        """A plain-text table of the dimensions: name, section, searched range or fixed value."""
        rows = [("name", "section", "search", "origin")]
        rows += [(d.name, d.section, d.describe(), d.origin) for d in self.dimensions]
        return text_table(rows)


class GANHyperModel(keras_tuner.HyperModel):
    """A KerasTuner HyperModel whose ``build(hp)`` returns a trial's :class:`TrialConfig`.

    ragan's tuner trains with :func:`ragan.train` rather than ``Model.fit``, so the hypermodel
    hands back configurations, not compiled models; KerasTuner uses ``build`` to learn the search
    space (every ``hp.Float``/``hp.Int``/``hp.Choice`` it registers).

    Args:
        space: the study's :class:`SearchSpace`.

    Example:
        >>> hypermodel = GANHyperModel(build_search_space("dcgan"))
        >>> hp = keras_tuner.HyperParameters()
        >>> hypermodel.build(hp).model_config.latent_dim in (64, 128, 256)
        True
    """

    def __init__(self, space: SearchSpace):
        super().__init__(name=f"ragan_{space.model_name}")
        self.space = space

    def build(self, hp) -> TrialConfig:
        return self.space.draw(hp)


# --------------------------------------------------------------------------------------------
# Building a space from the declarations and the user's specification
# --------------------------------------------------------------------------------------------
def load_search_file(path: str | Path) -> dict:
    """Read a YAML/JSON search specification: a flat mapping ``name: value | [low, high] | {...}``.

    Example:
        >>> _ = Path("search.json").write_text('{"latent_dim": 64, "g_learning_rate": [0.0001, 0.0005]}')
        >>> load_search_file("search.json")
        {'latent_dim': 64, 'g_learning_rate': [0.0001, 0.0005]}
    """
    return load_overrides(path)


def _config_class(model) -> tuple[str, type]:
    from ragan.registry import get_gan

    if isinstance(model, type) and issubclass(model, Config):
        return model.__name__, model
    cls = get_gan(model) if isinstance(model, str) else model
    name = getattr(cls, "gan_name", None)
    if name is None:
        raise RaganError(f"model={model!r} is not a registered GAN name such as 'dcgan'.")
    return name, cls.config_class


def _coerced(config_class: type, name: str, value, where: str):
    """``value`` converted and bound-checked by the field's own rules (flags and files agree)."""
    try:
        return getattr(config_class.from_dict({name: value}), name)
    except RaganError as error:
        raise RaganError(f"{where}: {error}") from None


def _explicit_range(config_class: type, spec, entry: Mapping, where: str):
    """A range from ``{"min", "max", "sampling", "step"}`` or ``{"choices": [...]}``."""
    keys = set(entry)
    if keys == {"choices"}:
        values = entry["choices"]
        if not isinstance(values, (list, tuple)) or len(values) < 1:
            raise RaganError(f"{where}: 'choices' must be a non-empty list, got {values!r}.")
        coerced = [_coerced(config_class, spec.name, v, where) for v in values]
        if len(set(coerced)) != len(coerced):
            raise RaganError(f"{where}: the choices {values!r} repeat a value.")
        return Choice(*coerced)
    if not keys or not keys <= _RANGE_KEYS or not {"min", "max"} <= keys:
        raise RaganError(
            f"{where}: a range is written {{min: LOW, max: HIGH[, sampling: linear|log, step: S]}} "
            f"or {{choices: [A, B, ...]}}; got keys {sorted(keys)}."
        )
    if spec.type not in (int, float):
        raise RaganError(
            f"{where}: {spec.name} is a {spec.type.__name__}; only int and float hyperparameters take a "
            "min/max range (use choices)."
        )
    low = _coerced(config_class, spec.name, entry["min"], where)
    high = _coerced(config_class, spec.name, entry["max"], where)
    if low > high:
        raise RaganError(f"{where}: min={low!r} is above max={high!r}.")
    declared = spec.tune if isinstance(spec.tune, (Float, Int)) else None
    # A range for a declared Float/Int keeps its declared sampling unless another is given.
    sampling = entry.get("sampling", declared.sampling if declared is not None else "linear")
    if sampling not in _SAMPLINGS:
        raise RaganError(
            f"{where}: sampling={sampling!r} is not allowed; choose one of {', '.join(map(repr, _SAMPLINGS))}."
            f"{did_you_mean(str(sampling), _SAMPLINGS)}"
        )
    if sampling != "linear" and low <= 0:
        raise RaganError(f"{where}: {sampling} sampling needs min > 0, got {low!r}.")
    step = entry.get("step")
    if spec.type is int:
        if sampling == "reverse_log":
            raise RaganError(f"{where}: integer ranges take linear or log sampling.")
        return Int(int(low), int(high), step=int(step or 1), sampling=sampling)
    return Float(float(low), float(high), sampling=sampling, step=None if step is None else float(step))


def _dimension(config_class: type, section: str, spec, value, where: str) -> SearchDimension:
    """The dimension for a user's entry about the declared field ``spec``."""
    declared = spec.tune
    if isinstance(value, Mapping):
        explicit = _explicit_range(config_class, spec, value, where)
        within = (
            isinstance(declared, (Float, Int))
            and type(explicit) is type(declared)
            and declared.min_value <= explicit.min_value
            and explicit.max_value <= declared.max_value
        ) or (
            isinstance(declared, Choice)
            and isinstance(explicit, Choice)
            and set(explicit.values) <= set(declared.values)
        )
        return SearchDimension(spec.name, section, range=explicit, origin="narrowed" if within else "user")
    if isinstance(value, (list, tuple)) and spec.type not in (list, tuple):
        values = list(value)
        numeric_pair = len(values) == 2 and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        if isinstance(declared, (Float, Int)) and numeric_pair:
            low, high = (_coerced(config_class, spec.name, v, where) for v in values)
            if low > high:
                raise RaganError(f"{where}: a range is [low, high] with low <= high, got {values!r}.")
            if declared.sampling != "linear" and low <= 0:
                raise RaganError(f"{where}: the declared {declared.sampling} range needs low > 0, got {low!r}.")
            return SearchDimension(spec.name, section, range=declared.narrowed(low, high), origin="narrowed")
        if len(values) == 2 and numeric_pair and declared is None and spec.type in (int, float):
            raise RaganError(
                f"{where}: {spec.name} declares no tuning range, so [low, high] is ambiguous; write "
                f"{{min: {values[0]}, max: {values[1]}}} for a range or {{choices: {values}}} for two values."
            )
        choice = _explicit_range(config_class, spec, {"choices": values}, where)
        origin = "narrowed" if isinstance(declared, Choice) and set(choice.values) <= set(declared.values) else "user"
        return SearchDimension(spec.name, section, range=choice, origin=origin)
    return SearchDimension(spec.name, section, value=_coerced(config_class, spec.name, value, where), origin="fixed")


def _check_declarable(dimension: SearchDimension, where: str) -> None:
    """KerasTuner's own checks (e.g. log sampling needs positive bounds), as a one-line error."""
    if not dimension.searched:
        return
    try:
        dimension.range.to_hp(keras_tuner.HyperParameters(), dimension.name)
    except (ValueError, TypeError) as error:
        raise RaganError(
            f"{where}: {dimension.describe()} is not a valid search range ({first_line(error)})."
        ) from None


def build_search_space(model, search: Mapping[str, Any] | str | Path | None = None) -> SearchSpace:
    """The study's search space: the declared ranges, changed by ``search``.

    Args:
        model: a registered GAN name (``"dcgan"``), GAN class or config class.
        search: the user's specification (see the module docstring): a mapping, or the path of a
            YAML/JSON file holding one. Names may use ``-`` or ``_``.

    Returns:
        A :class:`SearchSpace`: the model's declared ranges first, then the training options'.

    Raises:
        RaganError: an unknown name (with a did-you-mean), ``kimg``/``steps`` (the tuner's
            budget), a value or range outside a field's bounds, or a malformed range.

    Example:
        >>> space = build_search_space("dcgan", {"base_filters": 8, "ema_decay": {"min": 0.99, "max": 0.9999}})
        >>> [(d.name, d.describe()) for d in space.dimensions if d.origin != "declared"]
        [('base_filters', 'fixed 8'), ('ema_decay', '0.99..0.9999')]
    """
    from ragan.training.config import TrainConfig

    model_name, config_class = _config_class(model)
    source = "search"
    if isinstance(search, (str, Path)):
        source = str(search)
        search = load_search_file(search)
    specs = {MODEL: {s.name: s for s in config_class.hparams()}, TRAINING: {s.name: s for s in TrainConfig.hparams()}}
    classes = {MODEL: config_class, TRAINING: TrainConfig}
    clash = set(specs[MODEL]) & set(specs[TRAINING])
    if clash:
        raise RaganError(
            f"{config_class.__name__} declares {sorted(clash)}, which are also training options; "
            "rename them so a search can tell them apart."
        )
    user: dict[str, tuple[str, Any]] = {}
    for raw_key, value in dict(search or {}).items():
        key = str(raw_key).replace("-", "_")
        where = f"{source}: {raw_key}"
        if key in BUDGET_OPTIONS:
            raise RaganError(
                f"{where}: the tuner sets each trial's training length; use kimg_per_trial "
                "(--kimg-per-trial) or, for Hyperband, max_kimg/min_kimg instead."
            )
        section = MODEL if key in specs[MODEL] else TRAINING if key in specs[TRAINING] else None
        if section is None:
            known = sorted(set(specs[MODEL]) | set(specs[TRAINING]))
            raise RaganError(
                f"{where}: unknown hyperparameter for {model_name}: neither a {config_class.__name__} field nor a "
                f"training option.{did_you_mean(key, known)}"
            )
        if key in user:
            raise RaganError(f"{where}: {key} is given twice.")
        user[key] = (section, value)

    dimensions = []
    for section in (MODEL, TRAINING):
        for name, spec in specs[section].items():
            where = f"{source}: {name}"
            if name in user:
                dimension = _dimension(classes[section], section, spec, user[name][1], where)
            elif spec.tune is not None and name not in BUDGET_OPTIONS:
                dimension = SearchDimension(name, section, range=spec.tune, origin="declared")
            else:
                continue
            _check_declarable(dimension, where)
            dimensions.append(dimension)
    if not any(d.searched for d in dimensions):
        raise RaganError(
            f"{source}: every hyperparameter of the study is fixed; leave at least one to search "
            f"(see 'ragan tune {model_name} --help')."
        )
    return SearchSpace(model_name=model_name, config_class=config_class, dimensions=tuple(dimensions))


def describe_declared(model) -> str:
    """Text for ``ragan tune MODEL --help``: the declared search ranges and the other names."""
    from ragan.training.config import TrainConfig

    model_name, config_class = _config_class(model)
    rows = [("name", "section", "searched over", "default", "meaning")]
    others = []
    for section, cls in ((MODEL, config_class), (TRAINING, TrainConfig)):
        for spec in cls.hparams():
            if spec.tune is not None and spec.name not in BUDGET_OPTIONS:
                rows.append((spec.name, section, spec.tune.describe(), repr(spec.default), spec.help))
            elif spec.name not in BUDGET_OPTIONS:
                others.append(spec.name)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"search space of {model_name} (declared ranges):", ""]
    for index, row in enumerate(rows):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths) + "  " + "-" * 7)
    lines += [
        "",
        "Other hyperparameters (fixed at their defaults unless you --set them or give a --range/--choices):",
        "  " + ", ".join(others),
    ]
    return "\n".join(lines)
