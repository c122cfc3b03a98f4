"""ragan.train / ragan train: run directory, exact resume, kill -9, divergence, transfer, CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from training_fixtures import checkpoint_arrays, make_prepared, tiny_images, tiny_prepared  # noqa: F401 (fixture)

import ragan
from ragan.cli.main import main
from ragan.errors import RaganError
from ragan.training.checkpoint import CheckpointManager
from ragan.training.config import TrainConfig
from tests.runs import TINY_FLAGS, TINY_MODEL, flags, one_line_error, ragan_command, run_cli
from tests.runs import TINY_TRAINING as TINY_RUN

TINY_TRAINING = {**TINY_RUN, "sample_every": 4}  # sample grids within the tests' few steps


def max_difference(first: Path, second: Path) -> float:
    a, b = checkpoint_arrays(first), checkpoint_arrays(second)
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) for k in a)


@pytest.fixture(scope="module")
def finished_run(tiny_prepared, tmp_path_factory):
    """A 6-step conditional DCGAN run (checkpoints every 2 steps, grids every 4) and its output."""
    import io
    from contextlib import redirect_stdout

    out = tmp_path_factory.mktemp("runs") / "finished"
    printed = io.StringIO()
    with redirect_stdout(printed):
        run = ragan.train("dcgan", data=tiny_prepared, out=out, config=TINY_MODEL, steps=6, **TINY_TRAINING)
    return run, printed.getvalue()


def test_run_directory_holds_config_checkpoints_grids_and_model(finished_run, tiny_prepared):
    run, printed = finished_run
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "dcgan"
    assert config["model_config"]["latent_dim"] == 16 and config["model_config"]["conditional"] is True
    assert config["training"]["steps"] == 6 and config["training"]["batch_size"] == 8
    assert config["schedule"]["total_steps"] == 6
    assert config["data"]["path"] == str(Path(tiny_prepared).resolve())
    assert config["data"]["class_names"] == ["disc", "bar"] and config["data"]["num_examples"] == 64
    assert config["versions"]["tensorflow"] and config["versions"]["keras"] and config["versions"]["ragan"]

    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == 6 and info["class_names"] == ["disc", "bar"]
    assert info["dtype"] == "uint8"  # the training data's pixel type: generation writes the same
    assert (run / info["model"]).is_file()
    assert len(info["mlflow"]["run_id"]) == 32

    # Only the newest keep_checkpoints=2 checkpoints remain; the final one is at step 6.
    steps = [CheckpointManager.read_meta(p)["step"] for p in CheckpointManager(run / "checkpoints").checkpoints()]
    assert steps == [4, 6]
    assert not list((run / "checkpoints").glob("*.tmp"))

    # Grids at step 4 (interval) and 6 (end): 8x8 tiles of 16 px with 1 px gaps, greyscale uint8.
    grids = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert grids == ["grid-00000.032.png", "grid-00000.048.png"]
    with Image.open(run / "samples" / grids[-1]) as grid:
        assert grid.mode == "L" and grid.size == (8 * 16 + 7, 8 * 16 + 7)
        pixels = np.asarray(grid)
    assert pixels.std() > 0  # not a blank image

    gan = ragan.models.load_gan(run / "model.keras")
    assert gan.conditional and gan.num_classes == 2 and gan.ema_generator is not None
    images = gan.generate(4, labels=[0, 1, 0, 1], seed=3)
    assert images.shape == (4, 16, 16, 1) and np.all(np.abs(images) <= 1)

    # Progress: one line per tick with step, kimg and both losses, then where the outputs are.
    ticks = [line for line in printed.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in ticks] == ["2/6", "4/6", "6/6"]
    assert all("d_loss" in line and "g_loss" in line and "img/s" in line for line in ticks)
    assert "mlflow ui --backend-store-uri sqlite:///" in printed and str(run / "model.keras") in printed


def test_mlflow_run_in_local_sqlite_store(finished_run):
    from mlflow import MlflowClient

    run, _ = finished_run
    info = json.loads((run / "run.json").read_text())
    assert info["mlflow"]["tracking_uri"] == f"sqlite:///{run.resolve()}/mlflow.db"
    client = MlflowClient(info["mlflow"]["tracking_uri"])
    record = client.get_run(info["mlflow"]["run_id"])
    assert record.info.status == "FINISHED"
    params = record.data.params
    assert params["model.name"] == "dcgan" and params["model.latent_dim"] == "16"
    assert params["training.batch_size"] == "8" and params["data.num_examples"] == "64"
    history = client.get_metric_history(record.info.run_id, "g_loss")
    assert [m.step for m in history] == [2, 4, 6]
    assert {"d_loss", "images_per_sec", "sec_per_kimg", "kimg"} <= set(record.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(record.info.run_id)}
    assert {"config.json", "samples", "model"} <= artifacts
    model_files = {a.path for a in client.list_artifacts(record.info.run_id, "model")}
    assert model_files == {"model/model.keras", "model/run.json"}
    # The artifacts live inside the run directory, not in ./mlruns of the working directory.
    assert list((run / "mlartifacts").rglob("grid-00000.048.png"))


def test_mlflow_tags_are_on_the_run_while_it_trains(tiny_prepared, tmp_path):
    """ragan tune nests each trial under its study's run from the start: the tags must be there
    while the run trains, not only once it has finished."""
    from mlflow import MlflowClient

    from ragan._tf import import_keras

    out = tmp_path / "tagged"
    seen = []

    class ReadTags(import_keras().callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            deadline = time.monotonic() + 60  # the run is created by the tracking thread
            while time.monotonic() < deadline:
                info = json.loads((out / "run.json").read_text()).get("mlflow") or {}
                if info.get("run_id"):
                    run = MlflowClient(info["tracking_uri"]).get_run(info["run_id"])
                    seen.append((run.info.status, dict(run.data.tags)))
                    return
                time.sleep(0.1)

    ragan.train(
        "dcgan",
        data=tiny_prepared,
        out=out,
        config=TINY_MODEL,
        steps=4,
        callbacks=[ReadTags()],
        mlflow_tags={"mlflow.parentRunId": "0" * 32, "team": "radiology"},
        progress=False,
        **TINY_TRAINING,
    )
    assert seen and seen[0][0] == "RUNNING"
    assert seen[0][1]["mlflow.parentRunId"] == "0" * 32 and seen[0][1]["team"] == "radiology"


@pytest.mark.slow
def test_resume_continues_exactly_and_in_the_same_mlflow_run(tiny_prepared, tmp_path):
    from mlflow import MlflowClient

    model = {**TINY_MODEL, "augment": "ada"}  # ADA probability is state too
    options = dict(config=model, progress=False, **TINY_TRAINING)
    straight = ragan.train("dcgan", data=tiny_prepared, out=tmp_path / "straight", steps=6, **options)
    first = ragan.train("dcgan", data=tiny_prepared, out=tmp_path / "split", steps=4, **options)
    run_id = json.loads((first / "run.json").read_text())["mlflow"]["run_id"]
    resumed = ragan.train("dcgan", out=tmp_path / "split", resume=True, steps=6, progress=False)

    difference = max_difference(straight / "checkpoints/ckpt-000000006.npz", resumed / "checkpoints/ckpt-000000006.npz")
    assert difference == 0.0
    info = json.loads((resumed / "run.json").read_text())
    assert info["step"] == 6 and info["mlflow"]["run_id"] == run_id
    client = MlflowClient(info["mlflow"]["tracking_uri"])
    assert [m.step for m in client.get_metric_history(run_id, "d_loss")] == [2, 4, 6]
    assert client.get_run(run_id).data.tags["ragan.resumed_at_step"] == "4"

    # Finished and asked again for the same length: nothing to do.
    assert ragan.train("dcgan", out=tmp_path / "split", resume=True, progress=False) == resumed


def test_resume_refuses_changed_hyperparameters(finished_run):
    run, _ = finished_run
    with pytest.raises(RaganError, match=r"cannot change model hyperparameters .*latent_dim 16 -> 32"):
        ragan.train("dcgan", out=run, resume=True, config={"latent_dim": 32}, progress=False)
    with pytest.raises(RaganError, match=r"cannot change batch_size 8 -> 16"):
        ragan.train("dcgan", out=run, resume=True, batch_size=16, progress=False)


def test_existing_run_needs_resume(finished_run, tiny_prepared):
    run, _ = finished_run
    with pytest.raises(RaganError, match="already holds a training run; pass --resume"):
        ragan.train("dcgan", data=tiny_prepared, out=run, config=TINY_MODEL, steps=2, progress=False)


@pytest.mark.slow
def test_kill_9_then_resume_reaches_the_uninterrupted_result(tiny_prepared, tmp_path):
    steps = 40
    out = tmp_path / "killed"
    command = ragan_command("train", "dcgan", "--data", tiny_prepared, "--out", out, *TINY_FLAGS, "--steps", steps)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manager = CheckpointManager(out / "checkpoints")
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if manager.latest() is not None:
                break
            time.sleep(0.05)
        assert process.poll() is None, f"training ended before it could be killed: {process.stderr.read()!r}"
        assert manager.latest() is not None, "no checkpoint appeared in time"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = CheckpointManager.read_meta(manager.latest())["step"]
    assert 0 < killed_at < steps

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    resumed_from = int(re.search(r"resuming .* from step (\d+)", resumed.stdout).group(1))
    assert killed_at <= resumed_from < steps
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == steps

    # The same run without interruption, in this process: identical weights and optimizer state.
    straight = ragan.train(
        "dcgan",
        data=tiny_prepared,
        out=tmp_path / "straight",
        config=TINY_MODEL,
        progress=False,
        steps=steps,
        batch_size=8,
        log_every=2,
        checkpoint_every=2,
        sample_every=1000,
    )
    final = f"checkpoints/ckpt-{steps:09d}.npz"
    assert max_difference(straight / final, out / final) == 0.0


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tiny_prepared, tmp_path):
    from ragan._tf import import_keras

    class PoisonAtStep3(import_keras().callbacks.Callback):
        """Simulates a blow-up: one discriminator weight becomes NaN after step 3."""

        def on_train_batch_end(self, batch, logs=None):
            if self.model.g_optimizer.iterations.numpy() == 3:
                kernel = self.model.discriminator.trainable_weights[0]
                kernel.assign(np.full(kernel.shape, np.nan, np.float32))

    out = tmp_path / "diverged"
    with pytest.raises(ragan.training.TrainingDiverged) as caught:
        ragan.train(
            "dcgan",
            data=tiny_prepared,
            out=out,
            config=TINY_MODEL,
            steps=10,
            progress=False,
            callbacks=[PoisonAtStep3()],
            **{**TINY_TRAINING, "log_every": 1, "checkpoint_every": 2},
        )
    message = str(caught.value)
    assert "\n" not in message and "d_loss=nan at step 4" in message and "ckpt-000000002.npz (step 2)" in message
    checkpoints = CheckpointManager(out / "checkpoints").checkpoints()
    assert [p.name for p in checkpoints] == ["ckpt-000000002.npz"]
    assert all(np.all(np.isfinite(a)) for a in checkpoint_arrays(checkpoints[0]).values() if a.dtype.kind == "f")
    assert not (out / "model.keras").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "diverged"


@pytest.mark.slow
def test_diverging_cli_run_exits_nonzero_with_one_line(tiny_prepared, tmp_path):
    explosive = flags({**TINY_MODEL, "g_learning_rate": 1e30, "d_learning_rate": 1e30, "batch_size": 8, "steps": 4})
    result = run_cli("train", "dcgan", "--data", tiny_prepared, "--out", tmp_path / "r", *explosive, "--quiet")
    assert one_line_error(result).startswith("ragan: error: training diverged:"), result.stderr


def test_init_from_loads_matching_layers_and_reports_the_rest(finished_run, tmp_path, capsys):
    from ragan._tf import import_keras

    source_run, _ = finished_run
    source = ragan.models.load_gan(source_run / "model.keras")
    images, labels = tiny_images(48, seed=1)
    three_classes = make_prepared(tmp_path / "three", images, labels % 3, ["a", "b", "c"])
    seen = {}

    class RecordStart(import_keras().callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["up_8"] = [w.copy() for w in self.model.generator.get_layer("up_8").get_weights()]
            seen["embedding"] = self.model.generator.get_layer("project_bn_class_scale").get_weights()[0].shape

    ragan.train(
        "dcgan",
        data=three_classes,
        out=tmp_path / "transfer",
        config=TINY_MODEL,
        init_from=source_run,
        steps=2,
        callbacks=[RecordStart()],
        **TINY_TRAINING,
    )
    printed = capsys.readouterr().out
    assert (
        "skipped" in printed
        and "generator/project_bn_class_scale (shape (3, 16) here, (2, 16) in the source)" in printed
    )
    assert "discriminator/class_embedding" in printed
    for got, expected in zip(seen["up_8"], source.generator.get_layer("up_8").get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert seen["embedding"] == (3, 16)


def test_unsupported_image_size_is_refused_before_the_run_folder_exists(tmp_path, capsys):
    """MedMNIST's own 28 px: one line, and no half-made run folder that blocks the retry."""
    images, labels = tiny_images(count=8, size=28)
    data = make_prepared(tmp_path / "prepared28", images, labels, ["disc", "bar"])
    out = tmp_path / "run"
    code = main(["train", "dcgan", "--data", str(data), "--out", str(out), "--steps", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"data '{data}'" in err and "image_size=28" in err and "16, 32, 64, 128, 256" in err
    assert not out.exists()


def test_mixed_precision_runs_on_cpu_from_the_command_line_and_resumes(tiny_prepared, tmp_path, capsys):
    """--mixed-precision true on a CPU: float16 emulated with loss scaling (warned about), finite losses,
    a checkpoint, and a resumed run that continues it in mixed precision."""
    from ragan._tf import import_tf

    if import_tf().config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: the CPU path is not taken")
    out = tmp_path / "run"
    tiny = flags({"cfg": "small", "latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 16})
    common = ["train", "stylegan2", "--data", tiny_prepared, "--out", out, *tiny, *flags(TINY_RUN)]
    common += ["--augment", "none", "--mixed-precision", "true"]
    code = main([str(word) for word in [*common, "--steps", "2"]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "mixed precision without a GPU: float16 is emulated" in captured.err
    record = json.loads((out / "run.json").read_text())
    losses = {k: v for k, v in record["last_tick"].items() if k.endswith("loss")}
    assert {"d_loss", "g_loss"} <= set(losses) and all(np.isfinite(list(losses.values()))), record["last_tick"]
    assert CheckpointManager(out / "checkpoints").latest().name == "ckpt-000000002.npz"
    code = main([str(word) for word in [*common, "--steps", "4", "--resume", "auto"]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "resum" in (captured.out + captured.err).lower()
    assert CheckpointManager(out / "checkpoints").latest().name == "ckpt-000000004.npz"
    assert json.loads((out / "run.json").read_text())["step"] == 4


def test_train_config_units_and_validation():
    assert TrainConfig(kimg=2, batch_size=32).total_steps() == 63
    assert TrainConfig(kimg=2, steps=5).total_steps() == 5
    with pytest.raises(RaganError, match="distribution='mirored' is not allowed.*Did you mean 'mirrored'"):
        TrainConfig.from_dict({"distribution": "mirored"})


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def test_cli_help_lists_model_hyperparameters_and_training_options(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "dcgan", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--latent-dim",
        "--real-label-smoothing",
        "--conditional",
        "--kimg",
        "--checkpoint-every",
        "--mixed-precision",
        "--distribution",
        "--resume",
        "--init-from",
        "--tracking-uri",
        "--dry-run",
    ):
        assert flag in text, flag
    assert "dcgan hyperparameters" in text and "training options" in text


def test_cli_dry_run_merges_file_and_flags(tiny_prepared, tmp_path, capsys):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("model:\n  latent_dim: 32\n  ema_decay: 0\ntraining:\n  kimg: 3\n  batch_size: 16\n")
    code = main(
        [
            "train",
            "dcgan",
            "--data",
            str(tiny_prepared),
            "--out",
            str(tmp_path / "r"),
            "--config",
            str(config_file),
            "--latent-dim",
            "48",
            "--dry-run",
        ]
    )
    assert code == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["model_config"]["latent_dim"] == 48  # the flag beats the file
    assert resolved["model_config"]["ema_decay"] == 0.0  # from the file
    assert resolved["training"]["kimg"] == 3.0 and resolved["schedule"]["total_steps"] == 188
    assert not (tmp_path / "r").exists()  # a dry run writes nothing

    flat = tmp_path / "flat.yaml"
    flat.write_text("latent_dim: 24\nsteps: 7\n")
    base = ["train", "dcgan", "--data", str(tiny_prepared), "--out", str(tmp_path / "r")]
    assert main([*base, "--config", str(flat), "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["model_config"]["latent_dim"] == 24 and resolved["schedule"]["total_steps"] == 7


def test_cli_errors_are_one_line(tiny_prepared, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("latent_dimm: 24\n")
    base = ["train", "dcgan", "--data", str(tiny_prepared), "--out", str(tmp_path / "r")]
    assert main([*base, "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown option 'latent_dimm'" in err and "Did you mean 'latent_dim'?" in err

    assert main(["train", "dcgn", "--data", str(tiny_prepared), "--out", str(tmp_path / "r")]) == 2
    assert "Did you mean 'dcgan'?" in capsys.readouterr().err

    assert main(["train", "dcgan", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    assert "is not a prepared ragan dataset" in capsys.readouterr().err

    assert main(["train", "dcgan", "--data", str(tiny_prepared), "--out", str(tmp_path / "r"), "--kimg", "-1"]) == 2
    assert "kimg=-1.0 is below its minimum" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "r")


# ----------------------------------------------------------------------------------------------
# Pieces, without training
# ----------------------------------------------------------------------------------------------
def test_progress_reporter_draws_a_bar_on_terminals_and_lines_elsewhere():
    import io

    from ragan.training.callbacks import ProgressReporter, TrainingState

    state = TrainingState(total_steps=10, batch_size=100, step=0, start_step=0)
    terminal, log_file = io.StringIO(), io.StringIO()
    bar = ProgressReporter(state, stream=terminal, interactive=True)
    lines = ProgressReporter(state, stream=log_file, interactive=False)
    for step in range(1, 11):
        state.step = step
        for reporter in (bar, lines):
            reporter.on_train_batch_end(step - 1, {"d_loss": 1.0 / step, "g_loss": np.array([2.0])})
        if step % 5 == 0:
            state.tick = {"images_per_sec": 123.0}
            for reporter in (bar, lines):
                reporter.on_epoch_end(step // 5 - 1, {"d_loss": 0.5, "g_loss": 2.0})
    written = log_file.getvalue().splitlines()
    assert len(written) == 2
    assert written[0].startswith("step 5/10  kimg 0.500/1.000  d_loss 0.5  g_loss 2  ETA 0:00:")
    assert written[1].startswith("step 10/10  kimg 1.000/1.000") and written[1].endswith("123 img/s")
    drawn = terminal.getvalue()
    final = drawn.rstrip("\n").split("\r")[-1]  # tqdm redraws its one line in place
    assert final.startswith("train: 100%") and "10/10" in final, final
    assert "kimg 1.000/1.000  d_loss 0.5  g_loss 2  123 img/s" in final
    assert "kimg 0.500/1.000" in drawn  # drawn at the first tick too
    assert drawn.endswith("\n") and drawn.count("\n") == 1  # closed at the end, one line


def test_checkpoint_manager_keeps_the_newest_and_refuses_nan(tmp_path):
    from ragan.models import DCGAN
    from ragan.training.checkpoint import NonFiniteCheckpointError

    gan = DCGAN({"latent_dim": 8, "base_filters": 4}, image_size=16)
    gan.compile()
    manager = CheckpointManager(tmp_path, keep=2)
    for step in (1, 2, 3):
        manager.save(gan, step, {"kimg": step / 1000})
    assert [p.name for p in manager.checkpoints()] == ["ckpt-000000002.npz", "ckpt-000000003.npz"]
    assert CheckpointManager.read_meta(manager.latest())["kimg"] == 0.003

    saved = {v.path: np.array(v.numpy()) for v in gan.generator.weights}
    kernel = gan.generator.get_layer("project").kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    with pytest.raises(NonFiniteCheckpointError, match="not finite at step 4"):
        manager.save(gan, 4)
    assert manager.latest().name == "ckpt-000000003.npz" and not list(tmp_path.glob("*.tmp"))

    manager.restore(gan, manager.latest())
    for variable in gan.generator.weights:
        np.testing.assert_array_equal(variable.numpy(), saved[variable.path])

    other = DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16)
    other.compile()
    with pytest.raises(RaganError, match="different configuration"):
        manager.restore(other, manager.latest())


def test_strategy_selection(monkeypatch):
    from ragan.training.strategy import describe_strategy, is_chief, select_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy = select_strategy("auto")
    assert strategy.num_replicas_in_sync == 1 and is_chief(strategy)
    assert describe_strategy(strategy).startswith("one device")
    with pytest.raises(RaganError, match="needs the TF_CONFIG"):
        select_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(RaganError, match="TF_CONFIG is not valid JSON"):
        select_strategy("auto")
    # A one-task cluster is not a multi-worker run.
    one_task = {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(one_task))
    assert select_strategy("auto").num_replicas_in_sync == 1
