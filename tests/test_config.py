"""Hyperparameters declared once: dict/file/flag/tuner views of one declaration."""

import argparse
import json
from dataclasses import dataclass

import pytest

from ragan.config import Boolean, Choice, Config, Float, Int, hparam, load_overrides
from ragan.errors import RaganError


@dataclass
class ToyConfig(Config):
    gp_weight: float = hparam(10.0, help="Gradient-penalty weight.", tune=Float(1.0, 20.0, sampling="log"), min=0.0)
    latent_dim: int = hparam(128, help="Latent size.", tune=Choice(64, 128, 256), min=1)
    d_steps: int = hparam(1, help="Critic steps.", tune=Int(1, 5), min=1, max=10)
    loss: str = hparam("hinge", help="Loss family.", choices=("hinge", "wasserstein", "bce"))
    use_ema: bool = hparam(True, help="Keep an EMA generator.", tune=Boolean())
    name: str | None = hparam(None, help="Optional tag.")


def test_defaults_and_roundtrip():
    cfg = ToyConfig()
    assert cfg.gp_weight == 10.0 and cfg.latent_dim == 128 and cfg.name is None
    again = ToyConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    assert cfg.to_params("model.")["model.gp_weight"] == "10.0"


def test_coercion_from_strings_and_dashes():
    cfg = ToyConfig.from_dict({"gp-weight": "5", "latent_dim": "64", "use_ema": "false", "name": "none"})
    assert cfg.gp_weight == 5.0 and isinstance(cfg.gp_weight, float)
    assert cfg.latent_dim == 64 and cfg.use_ema is False and cfg.name is None


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"gp_wieght": 3}, "Did you mean 'gp_weight'"),
        ({"latent_dim": 1.5}, "not a valid int"),
        ({"latent_dim": 0}, "below its minimum"),
        ({"d_steps": 11}, "above its maximum"),
        ({"loss": "hinje"}, "Did you mean 'hinge'"),
        ({"use_ema": "maybe"}, "not a valid bool"),
        ({"gp_weight": "nan"}, "not a valid float"),
    ],
)
def test_bad_values_are_one_line_errors(values, fragment):
    with pytest.raises(RaganError) as info:
        ToyConfig.from_dict(values, source="run.yaml")
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert message.startswith("run.yaml: ")


def test_constructor_validates_too():
    with pytest.raises(RaganError, match="below its minimum"):
        ToyConfig(latent_dim=-3)


def test_override_files(tmp_path):
    (tmp_path / "a.yaml").write_text("gp_weight: 2.5\nloss: bce\n")
    (tmp_path / "b.json").write_text('{"latent_dim": 256}')
    (tmp_path / "bad.yaml").write_text("gp_weight: [1, 2\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "c.toml").write_text("x = 1")
    cfg = ToyConfig.from_file(tmp_path / "a.yaml")
    assert (cfg.gp_weight, cfg.loss) == (2.5, "bce")
    assert ToyConfig.from_file(tmp_path / "b.json", base=cfg).latent_dim == 256
    for name, fragment in [
        ("bad.yaml", "is not valid"),
        ("list.yaml", "mapping"),
        ("c.toml", ".yaml, .yml or .json"),
        ("missing.yaml", "does not exist"),
    ]:
        with pytest.raises(RaganError, match=fragment):
            load_overrides(tmp_path / name)
    (tmp_path / "typo.yaml").write_text("latnt_dim: 3\n")
    with pytest.raises(RaganError, match=r"typo.yaml: unknown hyperparameter 'latnt_dim'.*latent_dim"):
        ToyConfig.from_file(tmp_path / "typo.yaml")


def test_cli_flags_only_override_what_was_given():
    parser = argparse.ArgumentParser()
    ToyConfig.add_arguments(parser)
    help_text = parser.format_help()
    assert "--gp-weight" in help_text and "Gradient-penalty weight (default 10.0" in help_text
    assert "log 1..20" in help_text  # the tuning range is shown
    args = parser.parse_args(["--d-steps", "3"])
    base = ToyConfig(gp_weight=7.0)
    cfg = ToyConfig.from_args(args, base=base)
    assert cfg.d_steps == 3 and cfg.gp_weight == 7.0
    with pytest.raises(RaganError, match="command line: d_steps"):
        ToyConfig.from_args(parser.parse_args(["--d-steps", "x"]))


def test_table_lists_every_hparam():
    table = ToyConfig.table()
    for spec in ToyConfig.hparams():
        assert spec.name in table and spec.help in table


def test_search_space_of_a_config_class_narrows_fixes_and_draws_within_ranges():
    """The search space of a config class (ragan.tuning.hypermodel.build_search_space, the one builder)."""
    keras_tuner = pytest.importorskip("keras_tuner")
    from ragan.tuning.hypermodel import build_search_space

    space = build_search_space(ToyConfig, {"gp_weight": [2, 4], "latent_dim": [64], "d_steps": 2})
    by_name = {d.name: d for d in space.dimensions}
    assert by_name["gp_weight"].range == Float(2.0, 4.0, sampling="log")
    assert by_name["latent_dim"].range == Choice(64)
    assert by_name["d_steps"].range is None and by_name["d_steps"].value == 2
    assert isinstance(by_name["use_ema"].range, Boolean)
    with pytest.raises(RaganError, match="Did you mean 'gp_weight'"):
        build_search_space(ToyConfig, {"gpweight": 1})
    with pytest.raises(RaganError, match="above its maximum"):
        build_search_space(ToyConfig, {"d_steps": 11})
    hp = keras_tuner.HyperParameters()
    cfg = space.draw(hp).model_config
    assert isinstance(cfg, ToyConfig)
    assert 2.0 <= cfg.gp_weight <= 4.0 and cfg.latent_dim == 64 and cfg.d_steps == 2
    assert set(hp.values) == {"gp_weight", "latent_dim", "use_ema", "batch_size"}
