"""Every stage's options are declared once: the CLI flags, the library keywords and the YAML keys are its fields.

For each stage the test walks the config dataclass and checks that
* the subcommand has exactly one flag per field (and no option of its own beyond the few listed here),
* the library function takes every field as a keyword with the declared default (and nothing else),
* a YAML ``--config`` file with every field is read back to the same config, by the class and by the CLI,
* each flag reaches the library: its default typed on the command line gives the default, a switch flips it.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

import pytest
import yaml

from ragan.cli.main import build_parser, main
from ragan.errors import RaganError


@dataclass(frozen=True)
class Stage:
    config: str  # module:class
    functions: tuple[str, ...]  # module:function taking the options as keywords
    argv: tuple[str, ...]  # the subcommand with its required arguments
    patched: str  # module:function the CLI calls (replaced by a recorder)
    own_options: frozenset  # the subcommand's options that are not stage options (dest names)
    own_keywords: frozenset = frozenset({"config", "progress"})  # keywords of the functions that are not options


STAGES = {
    "prepare": Stage(
        "ragan.data.prepare_options:PrepareConfig",
        ("ragan.data.prepare:prepare_dataset",),
        ("prepare", "in", "--out", "o"),
        "ragan.data.prepare:prepare_dataset",
        frozenset({"help", "out", "quiet", "verbose", "config"}),
    ),
    "generate": Stage(
        "ragan.generation:GenerateConfig",
        ("ragan.generation:generate",),
        ("generate", "run", "--n", "3", "--out", "o"),
        "ragan.generation:generate",
        frozenset({"help", "n", "out", "quiet", "verbose", "config"}),
    ),
    "evaluate": Stage(
        "ragan.evaluation.config:EvaluateConfig",
        ("ragan.evaluation.report:evaluate",),
        ("evaluate", "--real", "r", "--synthetic", "s", "--out", "o"),
        "ragan.evaluation.report:evaluate",
        frozenset({"help", "real", "synthetic", "out", "quiet", "verbose", "config"}),
        frozenset({"config", "progress", "out"}),
    ),
    "tune": Stage(
        "ragan.tuning.config:TuneConfig",
        ("ragan.tuning.tuner:tune", "ragan.tuning.validation:plan_study"),
        ("tune", "dcgan", "--data", "d", "--out", "o"),
        "ragan.tuning.tuner:tune",
        frozenset({"help", "data", "out", "quiet", "verbose", "config", "set", "range", "choices", "dry_run"}),
    ),
}


def _load(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _subparser(argv):
    parser = build_parser(list(argv))
    subparsers = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001 - argparse has no public walk
    return subparsers.choices[argv[0]]


@pytest.fixture
def recorder(monkeypatch):
    """``record(stage)``: replace the library function the CLI calls; returns the dict it fills."""

    def record(stage: Stage) -> dict:
        module, name = stage.patched.split(":")
        captured: dict = {}

        def fake(*args, config, progress=True, **kwargs):
            captured.clear()
            captured["config"] = config
            return _Stop()

        monkeypatch.setattr(importlib.import_module(module), name, fake)
        return captured

    return record


class _Stop(Exception):
    """Returned by the recorder: the CLI then fails on it, after the library call was recorded."""


def _run(argv, captured):
    captured.clear()
    try:
        status = main(list(argv))
    except (AttributeError, TypeError):
        status = None  # the CLI printing the recorder's result: the call itself was recorded
    assert "config" in captured, f"{argv}: exit status {status}, the library was not called"
    return captured["config"]


def _typed(value) -> str:
    """A default as a user types it on the command line: ``0,1,2`` for a tuple."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_the_cli_has_one_flag_per_option_and_no_other_options(name):
    stage = STAGES[name]
    config_class = _load(stage.config)
    fields = [spec.name for spec in config_class.hparams()]
    optional = [action for action in _subparser(stage.argv)._actions if action.option_strings]  # noqa: SLF001
    by_dest = {action.dest: action for action in optional}
    assert sorted(dest for dest in by_dest if dest.startswith("hp_")) == sorted(f"hp_{f}" for f in fields)
    assert {dest for dest in by_dest if not dest.startswith("hp_")} == stage.own_options
    for spec in config_class.hparams():
        assert by_dest[f"hp_{spec.name}"].option_strings == [spec.flag], spec.name
        assert by_dest[f"hp_{spec.name}"].help, spec.name


@pytest.mark.parametrize("name", sorted(STAGES))
def test_the_library_takes_every_option_as_a_keyword_with_its_default(name):
    stage = STAGES[name]
    config_class = _load(stage.config)
    defaults = {spec.name: spec.default for spec in config_class.hparams()}
    for path in stage.functions:
        parameters = inspect.signature(_load(path)).parameters
        keywords = {n: p for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert "config" in keywords and set(keywords) - stage.own_keywords == set(defaults), path
        for option, default in defaults.items():
            assert keywords[option].default == default, f"{path}: {option}"
        assert config_class.__name__ in _load(path).__doc__  # the generated Options section


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_yaml_file_with_every_option_reads_back_and_reaches_the_library(name, tmp_path, recorder):
    stage = STAGES[name]
    config_class = _load(stage.config)
    defaults = config_class()
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(defaults.to_dict()))
    assert set(yaml.safe_load(path.read_text())) == {spec.name for spec in config_class.hparams()}
    assert config_class.from_file(path) == defaults
    captured = recorder(stage)
    assert _run([*stage.argv, "--config", str(path)], captured) == defaults
    # A misspelt key is an error naming the file, with a did-you-mean.
    first = config_class.hparams()[0].name
    path.write_text(yaml.safe_dump({first + "x": defaults.to_dict()[first]}))
    with pytest.raises(RaganError, match=rf"{path.name}: unknown option '{first}x'.*Did you mean '{first}'"):
        config_class.from_file(path)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_flag_reaches_the_library(name, recorder):
    stage = STAGES[name]
    config_class = _load(stage.config)
    captured = recorder(stage)
    defaults = config_class()
    assert _run(stage.argv, captured) == defaults
    for spec in config_class.hparams():
        if spec.type is bool:
            expected = defaults.replace(**{spec.name: not spec.default})
            assert _run([*stage.argv, spec.flag], captured) == expected, spec.name
        elif spec.default is not None:
            assert _run([*stage.argv, spec.flag, _typed(spec.default)], captured) == defaults, spec.name


def test_flags_win_over_the_config_file(tmp_path, recorder):
    captured = recorder(STAGES["prepare"])
    path = tmp_path / "prepare.yaml"
    path.write_text("image_size: 32\nseed: 5\nexclude: ['*_mask*']\n")
    config = _run([*STAGES["prepare"].argv, "--config", str(path), "--seed", "7"], captured)
    assert (config.image_size, config.seed, config.exclude) == (32, 7, ("*_mask*",))


def test_library_keywords_win_over_the_config(tmp_path):
    from ragan.evaluation.config import EvaluateConfig

    path = tmp_path / "evaluate.yaml"
    path.write_text("seeds: [3, 4]\nquick: true\n")
    config = EvaluateConfig.resolve(str(path), {"quick": False, "max_images": 20})
    assert (config.seeds, config.quick, config.max_images) == ((3, 4), False, 20)
    with pytest.raises(RaganError, match=r"unknown option 'max_image' for EvaluateConfig.*Did you mean 'max_images'"):
        EvaluateConfig.resolve(None, {"max_image": 20})
