"""The `ragan` console script: version, one-line errors, no tracebacks."""

import subprocess
import sys

import pytest

from ragan.cli.main import main
from tests.runs import one_line_error, run_cli


def test_version():
    from ragan import __version__

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"ragan {__version__}"


@pytest.mark.parametrize("args", [["frobnicate"], ["hparams", "--no-such-flag"]])
def test_usage_errors_are_one_line(args):
    one_line_error(run_cli(*args))


def test_ragan_error_is_printed_as_one_line(capsys, monkeypatch):
    import ragan.cli.hparams as hparams_cli
    from ragan.errors import RaganError

    def boom(args):
        raise RaganError("data='x' is not\na prepared dataset")

    monkeypatch.setattr(hparams_cli, "run", boom)
    assert main(["hparams"]) == 2
    err = capsys.readouterr().err
    assert err == "ragan: error: data='x' is not a prepared dataset\n"


def test_an_output_path_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli(
        "prepare", "sample:pneumoniamnist", "--out", str(blocker / "prepared"), "--image-size", "16", "--quiet"
    )
    line = one_line_error(result)
    assert line.startswith("ragan: error: ") and str(blocker) in line and "Not a directory" in line
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize(
    "command, hint",
    [("train", "re-run it with --resume to continue"), ("prepare", "re-run the same command to continue")],
)
def test_ctrl_c_says_how_to_continue(command, hint, capsys, monkeypatch):
    module = __import__(f"ragan.cli.{command}", fromlist=["run"])

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "run", interrupted)
    parser_args = {
        "train": ["train", "dcgan", "--data", "d", "--out", "o"],
        "prepare": ["prepare", "in", "--out", "o"],
    }[command]
    assert main(parser_args) == 130
    assert capsys.readouterr().err == f"ragan: interrupted; {hint}.\n"


def test_import_is_lazy_and_quiet():
    code = "import sys, ragan; assert 'tensorflow' not in sys.modules; print(ragan.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_hparams_of_a_built_in_gan_from_a_fresh_process():
    result = run_cli("hparams", "dcgan", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "latent_dim" in result.stdout and "real_label_smoothing" in result.stdout


def test_tensorflow_startup_noise_is_silenced():
    code = "import ragan; from ragan._tf import import_tf; tf = import_tf(); tf.constant(1) + 1"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


PLUGIN = '''
from dataclasses import dataclass
import ragan
from ragan.losses import hinge_discriminator_loss, hinge_generator_loss


@dataclass
class HingeDCConfig(ragan.models.GANConfig):
    margin_note: float = ragan.hparam(1.0, help="A plugin-only hyperparameter.", min=0)


@ragan.register_gan("hinge_dc", config=HingeDCConfig)
class HingeDC(ragan.models.GAN):
    """A user's GAN loaded as a plugin."""

    def discriminator_loss(self, real_logits, fake_logits):
        return hinge_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits):
        return hinge_generator_loss(fake_logits)
'''


def test_user_gan_plugin_via_import_flag_and_environment(tmp_path):
    plugin = tmp_path / "my_gans.py"
    plugin.write_text(PLUGIN)
    by_flag = run_cli("--import", str(plugin), "hparams", "hinge_dc")
    assert by_flag.returncode == 0, by_flag.stderr
    assert "margin_note" in by_flag.stdout and "A plugin-only hyperparameter." in by_flag.stdout
    import os

    env = dict(os.environ, RAGAN_PLUGINS=str(plugin))
    listed = run_cli("hparams", env=env)
    assert listed.returncode == 0 and "hinge_dc" in listed.stdout
    missing = run_cli("--import", str(tmp_path / "nope.py"), "hparams")
    assert missing.returncode == 2 and "nope.py" in missing.stderr and "Traceback" not in missing.stderr
    unknown = run_cli("hparams", "hinge_dcc")
    assert unknown.returncode == 2 and "hinge_dcc" in unknown.stderr
