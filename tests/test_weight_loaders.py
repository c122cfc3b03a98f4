"""Foreign weight files through the registry's hook: generation and ``--init-from`` ask it, name no model."""

from __future__ import annotations

import pytest
from training_fixtures import tiny_prepared  # noqa: F401  (pytest fixture)

import ragan.registry as registry
from ragan.errors import RaganError

TINY = {"latent_dim": 8, "base_filters": 8, "conditional": True}


@pytest.fixture
def npw_loader(monkeypatch):
    """A loader for ``.npw`` files making a tiny conditional DCGAN at 16 px; records its calls."""
    calls = []

    def load(path, *, channels=None):
        from ragan.models import DCGAN

        calls.append(("load", str(path), channels))
        gan = DCGAN(TINY, image_size=16, channels=channels or 1, num_classes=2)
        return gan, {"file": "weights.npw", "sha256": "0" * 64}

    def architecture(path):
        calls.append(("architecture", str(path)))
        return {"latent_dim": 8, "base_filters": 8}, {"image_size": 16, "channels": 1, "num_classes": 2}

    monkeypatch.setattr(registry, "_WEIGHT_LOADERS", dict(registry._WEIGHT_LOADERS))  # noqa: SLF001 - undone after
    registry.register_weight_loader(
        ".npw", gan="dcgan", load=load, architecture=architecture, description="a test weights file"
    )
    return calls


def test_stylegan2_registers_its_pickle_loader():
    loader = registry.weight_loader_for("networks/ffhq.PKL")
    assert loader is not None and loader.gan == "stylegan2" and "StyleGAN2-ADA" in loader.description
    assert registry.weight_loader_for("runs/dcgan") is None and registry.weight_loader_for("model.keras") is None


def test_generation_loads_a_foreign_file_through_the_registry(npw_loader, tmp_path):
    from ragan.generation import load_generator

    gan = load_generator(tmp_path / "g.npw")
    assert npw_loader == [("load", str(tmp_path / "g.npw"), None)]
    assert gan.gan_name == "dcgan" and gan.class_names == ["class_0", "class_1"]
    assert gan.run_metadata == {"imported_from": {"file": "weights.npw", "sha256": "0" * 64}}


def test_init_from_a_foreign_file_is_checked_through_the_registry(npw_loader, tiny_prepared, tmp_path):
    from ragan.training.plan import plan_run

    plan = plan_run("dcgan", tiny_prepared, tmp_path / "run", config={"conditional": True}, init_from="w.npw")
    assert npw_loader == [("architecture", "w.npw")]
    assert (plan.model_config.latent_dim, plan.model_config.base_filters) == (8, 8)  # the file's architecture
    with pytest.raises(RaganError, match=r"init_from='w.npw': a test weights file can start only a dcgan run"):
        plan_run("wgan_gp", tiny_prepared, tmp_path / "run", init_from="w.npw")
    registry.register_weight_loader(
        ".npw",
        gan="dcgan",
        load=None,
        architecture=lambda path: ({}, {"image_size": 32, "channels": 1, "num_classes": 2}),
        description="a test weights file",
    )
    with pytest.raises(RaganError, match=r"makes 32 px images but the data is 16 px"):
        plan_run("dcgan", tiny_prepared, tmp_path / "run", init_from="w.npw")
    assert not (tmp_path / "run").exists()


def test_one_loader_per_suffix():
    registry.list_gans()  # the built-in models are imported: stylegan2's loader is registered
    with pytest.raises(RaganError, match=r"\.pkl files are already read by the stylegan2 loader"):
        registry.register_weight_loader(".pkl", gan="dcgan", load=None, architecture=None, description="x")
    with pytest.raises(RaganError, match="suffix"):
        registry.register_weight_loader("pkl", gan="dcgan", load=None, architecture=None, description="x")
