"""Keras callbacks of a ragan training run: step counting, divergence, progress, logging,
checkpoints and sample grids.

:func:`ragan.train` drives ``GAN.fit`` with one Keras *epoch* per tick (``log_every`` steps), so
users' own Keras callbacks work unchanged (an "epoch" to them is a tick). The callbacks here share
one :class:`TrainingState` and run in this order at the end of every tick:

1. :class:`StepCounter` keeps the global step (it is first so the others see the current step);
2. :class:`DivergenceGuard` stops the run at the first NaN/inf loss (checked after every step);
   :class:`StopOnSignal` stops it after the step during which SIGTERM/SIGINT arrived;
3. :class:`TickLogger` computes images/s and s/kimg and sends the tick's mean losses to MLflow;
4. :class:`ProgressReporter` shows a tqdm progress bar (terminal) or one line per tick (log files);
5. :class:`PeriodicCheckpoint` writes a checkpoint when its interval elapsed in this tick;
6. :class:`SampleGrids` writes the fixed-noise grid when its interval elapsed in this tick.

Nothing is written after a divergence, so the newest checkpoint is always the last good one.

Example:
    >>> from ragan.models import DCGAN
    >>> gan = DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16)
    >>> gan.compile(run_eagerly=True)   # eager: quicker for a 4-step demo
    >>> images = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
    >>> state = TrainingState(total_steps=4, batch_size=8)
    >>> callbacks = [StepCounter(state), DivergenceGuard(state)]
    >>> _ = gan.fit(images, batch_size=8, epochs=2, callbacks=callbacks, verbose=0)   # 2 ticks of 2 steps
    >>> state.step, state.diverged
    (4, None)
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragan._tf import import_keras

keras = import_keras()

__all__ = [
    "TrainingState",
    "StepCounter",
    "DivergenceGuard",
    "StopOnSignal",
    "TickLogger",
    "ProgressReporter",
    "Periodic",
    "PeriodicCheckpoint",
    "SampleGrids",
    "sample_grid",
    "save_sample_grid",
    "grid_preview",
    "grid_labels",
]


def scalar(value) -> float:
    """A float from a log value (Python number, NumPy scalar, or shape-``[1]`` array)."""
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    return float(array[0]) if array.size else float("nan")


@dataclass
class TrainingState:
    """What the callbacks of one run share.

    Attributes:
        total_steps: the step the run ends at.
        batch_size: the global batch size (images per step).
        step: steps completed so far (global, across resumes).
        start_step: the step this session started from (0, or the checkpoint's step).
        diverged: ``None``, or a one-line description of the first non-finite loss.
        interrupted: ``None``, or the signal (SIGTERM, SIGINT) that stopped the run after ``step``.
        last_checkpoint: the newest checkpoint written in this session.
        last_grid: the newest sample grid written in this session.
        tick: the last tick's record (losses, timing), for progress and summaries.
    """

    total_steps: int
    batch_size: int
    step: int = 0
    start_step: int = 0
    diverged: str | None = None
    interrupted: int | None = None
    last_checkpoint: Path | None = None
    last_grid: Path | None = None
    tick: dict = field(default_factory=dict)
    tick_start_step: int = 0
    tick_start_time: float = 0.0
    session_start_time: float = field(default_factory=time.perf_counter)

    def kimg(self, step: int | None = None) -> float:
        return (self.step if step is None else step) * self.batch_size / 1000.0

    def crossed(self, every: int) -> bool:
        """Whether a multiple of ``every`` lies in the tick that just ended ``(tick_start, step]``."""
        return self.step // every > self.tick_start_step // every


class StepCounter(keras.callbacks.Callback):
    """Keep ``state.step`` (global steps done) and the tick's start; must come first."""

    def __init__(self, state: TrainingState):
        super().__init__()
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        self.state.tick_start_step = self.state.step
        self.state.tick_start_time = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        # Keras passes the index of the last step run in this epoch (0-based).
        self.state.step = self.state.tick_start_step + int(batch) + 1


class DivergenceGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite loss and record where it happened."""

    def __init__(self, state: TrainingState):
        super().__init__()
        self.state = state

    def on_train_batch_end(self, batch, logs=None):
        if self.state.diverged is not None:
            return
        for name, value in (logs or {}).items():
            number = scalar(value)
            if not math.isfinite(number):
                self.state.diverged = f"{name}={number} at step {self.state.step} (kimg {self.state.kimg():.3f})"
                self.model.stop_training = True
                return


class StopOnSignal(keras.callbacks.Callback):
    """Stop training after the step during which SIGTERM or SIGINT arrived.

    The signal is recorded by :func:`ragan._interrupt.handle_signals` (graceful mode); the run
    then checkpoints at ``state.step`` and exits. In a multi-worker run all workers must stop at the
    same step, or the next collective would wait forever: ``agree(stop) -> bool`` combines every
    worker's answer after each step (see :func:`ragan.training.strategy.any_worker`), so a signal
    received by any worker stops all of them after the same step.

    Args:
        state: the shared :class:`TrainingState` (``state.interrupted`` is set).
        agree: ``None`` in a single process; the cross-worker decision otherwise.
    """

    def __init__(self, state: TrainingState, agree: Callable[[bool], bool] | None = None):
        super().__init__()
        self.state = state
        self.agree = agree

    def on_train_batch_end(self, batch, logs=None):
        import signal

        from ragan._interrupt import stop_requested

        signum = stop_requested()
        stop = signum is not None
        if self.agree is not None:
            stop = self.agree(stop)
        if stop:
            self.state.interrupted = signum if signum is not None else int(signal.SIGTERM)
            self.model.stop_training = True


class TickLogger(keras.callbacks.Callback):
    """Per tick: mean losses, images/s, s/kimg and kimg, to ``state.tick`` and the tracker."""

    def __init__(self, state: TrainingState, tracker=None):
        super().__init__()
        self.state = state
        self.tracker = tracker

    def on_epoch_end(self, epoch, logs=None):
        state = self.state
        steps = state.step - state.tick_start_step
        seconds = max(time.perf_counter() - state.tick_start_time, 1e-9)
        images = steps * state.batch_size
        record = {name: scalar(value) for name, value in (logs or {}).items()}
        record.update(
            {
                "kimg": state.kimg(),
                "images_per_sec": images / seconds,
                "sec_per_kimg": seconds / (images / 1000.0) if images else float("nan"),
                "sec_per_tick": seconds,
            }
        )
        state.tick = record
        if self.tracker is not None and state.diverged is None and steps > 0:
            self.tracker.log_metrics(record, step=state.step)


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressReporter(keras.callbacks.Callback):
    """A tqdm progress bar with kimg, the losses and img/s on a terminal; one line per tick otherwise.

    Args:
        state: the shared :class:`TrainingState`.
        stream: where to write (default ``sys.stdout``).
        interactive: ``None`` = bar when ``stream`` is a terminal.
    """

    def __init__(self, state: TrainingState, stream=None, interactive: bool | None = None):
        super().__init__()
        self.state = state
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._bar = None
        self._logs: dict = {}

    def _fields(self, logs: dict, eta: str | None = None) -> list[str]:
        """``kimg done/total``, the losses, ``eta`` if given, and the last tick's img/s."""
        state = self.state
        digits = 1 if state.kimg(state.total_steps) >= 10 else 3
        fields = [f"kimg {state.kimg():.{digits}f}/{state.kimg(state.total_steps):.{digits}f}"]
        fields += [f"{name} {scalar(value):.4g}" for name, value in logs.items()]
        rate = state.tick.get("images_per_sec")
        return fields + ([eta] if eta else []) + ([f"{rate:.0f} img/s"] if rate else [])

    def _line(self, logs: dict) -> str:
        """The line of a tick in a log file: step, kimg, losses, ETA, img/s (tqdm draws its own ETA)."""
        state = self.state
        eta = None
        done_this_session = state.step - state.start_step
        if done_this_session > 0:
            elapsed = time.perf_counter() - state.session_start_time
            eta = f"ETA {_format_duration((state.total_steps - state.step) * elapsed / done_this_session)}"
        return "  ".join([f"step {state.step}/{state.total_steps}", *self._fields(logs, eta)])

    def _draw(self, logs: dict, *, refresh: bool) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.state.total_steps,
                initial=self.state.start_step,
                desc="train",
                unit="step",
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0.2,
            )
        self._bar.set_postfix_str("  ".join(self._fields(logs)), refresh=False)
        self._bar.update(self.state.step - self._bar.n)
        if refresh:
            self._bar.refresh()

    def on_train_batch_end(self, batch, logs=None):
        self._logs = dict(logs or {})
        if self.interactive:
            self._draw(self._logs, refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or self._logs)
        if not self.interactive:
            self.stream.write(self._line(logs) + "\n")
            self.stream.flush()
            return
        self._draw(logs, refresh=True)
        state = self.state
        if state.step >= state.total_steps or state.diverged or state.interrupted is not None:
            self._bar.close()
            self._bar = None


class Periodic(keras.callbacks.Callback):
    """Call ``action(step)`` at the end of each tick in which ``every`` steps elapsed.

    Not after a divergence (the newest file stays the last good one), nor at the run's last step
    (the end of the run writes its own). The result goes to the :class:`TrainingState` attribute
    named by the class attribute ``record``.

    Args:
        state: the shared :class:`TrainingState`.
        action: ``action(step) -> Path`` writes the file.
        every: interval in steps.
    """

    record: str | None = None

    def __init__(self, state: TrainingState, action: Callable[[int], Path], every: int):
        super().__init__()
        self.state = state
        self.action = action
        self.every = int(every)

    def on_epoch_end(self, epoch, logs=None):
        state = self.state
        if state.diverged is None and state.step < state.total_steps and state.crossed(self.every):
            result = self.action(state.step)
            if self.record:
                setattr(state, self.record, result)


class PeriodicCheckpoint(Periodic):
    """Write a checkpoint (``action`` = ``save(step) -> Path``) every ``every`` steps."""

    record = "last_checkpoint"


class SampleGrids(Periodic):
    """Write the fixed-noise sample grid (``action`` = ``write(step) -> Path``) every ``every`` steps."""

    record = "last_grid"


# ----------------------------------------------------------------------------------------------
# Sample grids
# ----------------------------------------------------------------------------------------------
def grid_shape(image_size: int) -> tuple[int, int]:
    """Rows and columns of a sample grid: 8x8 up to 64 px, 6x6 at 128 px, 4x4 at 256 px."""
    if image_size <= 64:
        return 8, 8
    return (6, 6) if image_size <= 128 else (4, 4)


def grid_labels(num_classes: int, rows: int, cols: int) -> np.ndarray | None:
    """Row ``r`` of a conditional model's grid shows class ``r % num_classes``."""
    if not num_classes:
        return None
    return ((np.arange(rows * cols) // cols) % num_classes).astype(np.int32)


def sample_grid(images: np.ndarray, rows: int, cols: int, padding: int = 1) -> np.ndarray:
    """Tile float images in [-1, 1] ``(rows*cols, H, W, C)`` into one uint8 image.

    Example:
        >>> sample_grid(np.zeros((4, 8, 8, 1), np.float32), 2, 2).shape
        (17, 17, 1)
    """
    count, height, width, channels = images.shape
    if count != rows * cols:
        raise ValueError(f"{count} images do not fill a {rows}x{cols} grid.")
    pixels = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    canvas = np.zeros((rows * height + (rows - 1) * padding, cols * width + (cols - 1) * padding, channels), np.uint8)
    for index in range(count):
        row, col = divmod(index, cols)
        top, left = row * (height + padding), col * (width + padding)
        canvas[top : top + height, left : left + width] = pixels[index]
    return canvas


def save_sample_grid(gan, path: str | Path, *, seed: int) -> Path:
    """Render ``gan``'s fixed-noise grid (EMA generator, fixed latents and labels) to a PNG.

    The latents come from ``seed`` (not from the training noise), so every grid of a run shows
    the same latents and grids from a resumed run match an uninterrupted one.

    Example:
        >>> save_sample_grid(gan, "runs/x/samples/grid-0002.000.png", seed=0)   # doctest: +SKIP
    """
    from PIL import Image

    rows, cols = grid_shape(gan.image_size)
    labels = grid_labels(gan.num_classes if gan.conditional else 0, rows, cols)
    images = gan.generate(rows * cols, labels=labels, seed=seed)
    canvas = sample_grid(images, rows, cols)
    mode = "L" if canvas.shape[-1] == 1 else "RGB"
    picture = Image.fromarray(canvas[..., 0] if mode == "L" else canvas, mode=mode)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.png")
    picture.save(temporary, format="PNG")
    temporary.replace(path)
    return path


# Sample grids wider than this are logged to MLflow downsized (a 4x4 grid of 1024-px images is 4099 px).
GRID_PREVIEW_SIDE = 1280
PREVIEW_DIR = "preview"


def grid_preview(path: str | Path, *, max_side: int = GRID_PREVIEW_SIDE) -> Path:
    """The sample grid to log to MLflow: ``path`` itself when at most ``max_side`` px, else a copy
    downsized by an integer factor (box filter) in ``preview/`` beside it; the full-size grid stays on disk.

    Example (needs a grid on disk, hence skipped):
        >>> grid_preview("runs/x/samples/grid-0002.000.png")   # a 4x4 grid of 1024-px images  # doctest: +SKIP
        PosixPath('runs/x/samples/preview/grid-0002.000.png')
    """
    from PIL import Image

    path = Path(path)
    with Image.open(path) as picture:
        factor = -(-max(picture.size) // max_side)
        if factor <= 1:
            return path
        small = picture.reduce(factor)
    preview = path.parent / PREVIEW_DIR / path.name
    preview.parent.mkdir(exist_ok=True)
    temporary = preview.with_name(preview.name + ".tmp.png")
    small.save(temporary, format="PNG")
    temporary.replace(preview)
    return preview
