"""Checkpoints that let a run continue exactly, written atomically.

A checkpoint is one ``.npz`` file holding, in order,

* every variable of the GAN (``gan.variables``: generator, discriminator, EMA generator, the
  ``SeedGenerator`` state all training noise comes from, the ADA augmentation probability,
  the loss trackers),
* every variable of both optimizers (iteration counters, first and second moments),
* a JSON record of the step, kimg and the variables' paths and shapes.

Restoring assigns the arrays to the variables of a freshly built and compiled GAN of the same
configuration, so a resumed run computes the same next step as the uninterrupted one would.
Variables are matched by position and checked by shape and dtype (paths are not compared:
Keras derives them from layer names that depend on how many layers a process created before).

The file is written to ``<name>.tmp``, flushed and ``fsync``-ed, then renamed over its final name,
and the directory entry is synced too: a crash (even ``kill -9``) leaves either the old set of
checkpoints or the new one, never a torn file. A checkpoint whose floating-point values are not
all finite is refused, so a diverged run can never replace the last good checkpoint.

Example:
    >>> from ragan.models import DCGAN
    >>> gan = DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16)
    >>> gan.compile()
    >>> manager = CheckpointManager("runs/x/checkpoints", keep=2)
    >>> manager.save(gan, step=500, extra={"kimg": 32.0})
    PosixPath('runs/x/checkpoints/ckpt-000000500.npz')
    >>> manager.restore(gan, manager.latest())["step"]
    500
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ragan._common import first_line
from ragan.errors import RaganError

__all__ = [
    "CheckpointManager",
    "NonFiniteCheckpointError",
    "atomic_write_bytes",
    "atomic_write_text",
    "checkpoint_variables",
    "transfer_weights",
]

_NAME = re.compile(r"^ckpt-(\d{9})\.npz$")
_META_KEY = "__meta__"
# What reading a truncated or corrupted .npz raises (zip CRCs catch flipped bytes).
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


class NonFiniteCheckpointError(RaganError):
    """Refusal to checkpoint NaN/inf weights (the run has diverged)."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename, fsync directory."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        # A full disk (ENOSPC, or EFBIG under a file-size limit) leaves no torn temporary file
        # behind, and the error names the file that could not be written.
        temporary.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror or str(error), str(path)) from None
    os.replace(temporary, path)
    _fsync_directory(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # some file systems (and Windows) do not open directories
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def checkpoint_variables(gan) -> list:
    """The variables a checkpoint holds, in a fixed order: GAN, then G's and D's optimizer."""
    variables = list(gan.variables)
    for optimizer in (gan.g_optimizer, gan.d_optimizer):
        variables.extend(optimizer.variables)
    # A variable shared by two lists (none today) must be saved once.
    seen, unique = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            unique.append(variable)
    return unique


def _to_numpy(variable) -> np.ndarray:
    value = variable.numpy() if hasattr(variable, "numpy") else variable.value.numpy()
    return np.asarray(value)


class CheckpointManager:
    """Save, list, prune and restore the checkpoints of one run directory.

    Args:
        directory: where ``ckpt-<step>.npz`` files live (created on the first save).
        keep: how many of the newest checkpoints to keep; older ones are deleted after a save.

    Example:
        >>> manager = CheckpointManager("runs/x/checkpoints")
        >>> manager.latest() is None
        True
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 2):
        self.directory = Path(directory)
        self.keep = max(1, int(keep))

    def path_for(self, step: int) -> Path:
        return self.directory / f"ckpt-{int(step):09d}.npz"

    def checkpoints(self) -> list[Path]:
        """Existing checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if _NAME.match(p.name)]
        return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))

    def latest(self) -> Path | None:
        """The newest checkpoint, or ``None``."""
        found = self.checkpoints()
        return found[-1] if found else None

    def save(self, gan, step: int, extra: dict | None = None) -> Path:
        """Write a checkpoint of ``gan`` (and its optimizers) at ``step``; prune old ones.

        Raises:
            NonFiniteCheckpointError: a floating-point variable holds NaN or inf; nothing is written.
        """
        arrays = {}
        records = []
        for index, variable in enumerate(checkpoint_variables(gan)):
            value = _to_numpy(variable)
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise NonFiniteCheckpointError(
                    f"variable {getattr(variable, 'path', variable.name)!r} is not finite at step {step}; "
                    "the checkpoint was not written."
                )
            arrays[f"v{index:05d}"] = value
            records.append(
                {
                    "path": str(getattr(variable, "path", variable.name)),
                    "shape": list(value.shape),
                    "dtype": str(value.dtype),
                }
            )
        meta = {"format": "ragan-checkpoint", "version": 1, "step": int(step), **(extra or {}), "variables": records}
        arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = atomic_write_bytes(self.path_for(step), buffer.getvalue())
        self._prune()
        return path

    def _prune(self) -> None:
        for old in self.checkpoints()[: -self.keep]:
            old.unlink(missing_ok=True)
        for stale in self.directory.glob("*.npz.tmp"):
            stale.unlink(missing_ok=True)

    @staticmethod
    def read_meta(path: str | os.PathLike) -> dict:
        """The JSON record of a checkpoint (step, kimg, variable list...)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return json.loads(bytes(data[_META_KEY]).decode("utf-8"))
        except _UNREADABLE as error:
            raise RaganError(
                f"checkpoint '{path}' cannot be read ({first_line(error)}); delete it to fall back to an older one."
            ) from None

    @staticmethod
    def verify(path: str | os.PathLike) -> dict:
        """Read every array of checkpoint ``path`` back; return its record.

        Raises:
            RaganError: the file is truncated or corrupted (the zip checksums do not match).
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data[_META_KEY]).decode("utf-8"))
                for index in range(len(meta["variables"])):
                    data[f"v{index:05d}"]
        except _UNREADABLE as error:
            raise RaganError(f"checkpoint '{path}' cannot be read ({first_line(error)})") from None
        return meta

    def latest_readable(self) -> tuple[Path | None, list[str]]:
        """The newest checkpoint that reads back whole, and why each newer one could not be used.

        Example:
            >>> from ragan.models import DCGAN
            >>> gan = DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16)
            >>> gan.compile()
            >>> manager = CheckpointManager("runs/x/checkpoints")
            >>> _ = manager.save(gan, step=10)
            >>> newest = manager.save(gan, step=12)
            >>> _ = newest.write_bytes(newest.read_bytes()[:1000])   # truncated, as by a full disk
            >>> latest, problems = manager.latest_readable()
            >>> latest.name, problems   # doctest: +ELLIPSIS
            ('ckpt-000000010.npz', ["checkpoint '...ckpt-000000012.npz' cannot be read (...)"])
        """
        problems = []
        for path in reversed(self.checkpoints()):
            try:
                self.verify(path)
            except RaganError as error:
                problems.append(str(error))
                continue
            return path, problems
        return None, problems

    def restore(self, gan, path: str | os.PathLike) -> dict:
        """Assign the values in checkpoint ``path`` to ``gan`` and its optimizers; return its record.

        Raises:
            RaganError: the checkpoint does not match the model (a different configuration).
        """
        variables = checkpoint_variables(gan)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data[_META_KEY]).decode("utf-8"))
                values = [data[f"v{index:05d}"] for index in range(len(meta["variables"]))]
        except _UNREADABLE as error:
            raise RaganError(
                f"checkpoint '{path}' cannot be read ({first_line(error)}); delete it to fall back to an older one."
            ) from None
        if len(values) != len(variables):
            raise RaganError(
                f"checkpoint '{path}' holds {len(values)} variables but this model has {len(variables)}; "
                "it was written by a model with a different configuration."
            )
        for index, (variable, value, record) in enumerate(zip(variables, values, meta["variables"])):
            shape = tuple(int(d) for d in variable.shape)
            if tuple(value.shape) != shape:
                raise RaganError(
                    f"checkpoint '{path}': variable #{index} ({record['path']}) has shape {tuple(value.shape)} "
                    f"but the model's ({getattr(variable, 'path', variable.name)}) is {shape}; "
                    "it was written by a model with a different configuration."
                )
        for variable, value in zip(variables, values):
            variable.assign(value.astype(_dtype_name(variable), copy=False))
        return meta


def _dtype_name(variable) -> str:
    dtype = variable.dtype
    return getattr(dtype, "name", str(dtype))


# ----------------------------------------------------------------------------------------------
# Transfer learning
# ----------------------------------------------------------------------------------------------
def transfer_weights(source, target) -> dict:
    """Copy the weights of ``source``'s networks into ``target``'s where layers match.

    Layers are matched by name within the generator, the discriminator and the EMA generator
    (ragan's networks name every layer); a layer is copied only when all its weight shapes agree,
    so a model trained on another dataset can start a new one even when, say, the number of
    classes differs (the per-class layers are then skipped). When ``source`` has no EMA generator,
    ``target``'s starts as a copy of its (transferred) generator. Optimizer state is not copied.

    Args:
        source: the trained GAN (e.g. loaded from another run's ``model.keras``).
        target: the freshly built GAN of this run.

    Returns:
        ``{"loaded": [...], "skipped": [...]}``: ``"network/layer"`` names, skipped ones with the
        reason, e.g. ``"generator/project_bn_class_scale (shape (2, 256) here, (4, 256) in the source)"``.

    Example:
        A conditional model trained on 2 classes starting one of 3 classes:

        >>> from ragan.models import DCGAN
        >>> tiny = {"latent_dim": 8, "base_filters": 8, "conditional": True}
        >>> source = DCGAN(tiny, image_size=16, num_classes=2)   # e.g. load_gan("runs/a/model.keras")
        >>> report = transfer_weights(source, DCGAN(tiny, image_size=16, num_classes=3))
        >>> [name for name in report["skipped"] if name.startswith("discriminator/")]   # per-class layers
        ['discriminator/class_embedding (shape (3, 16) here, (2, 16) in the source)']
    """
    own_transfer = getattr(target, "transfer_from", None)
    if callable(own_transfer):
        return own_transfer(source)
    loaded, skipped = [], []
    for part in ("generator", "discriminator", "ema_generator"):
        destination = getattr(target, part, None)
        origin = getattr(source, part, None)
        if destination is None:
            continue
        if origin is None:
            if part == "ema_generator":
                destination.set_weights(target.generator.get_weights())
                loaded.append("ema_generator (copied from the transferred generator)")
            else:
                skipped.append(f"{part} (the source has none)")
            continue
        by_name = {layer.name: layer for layer in origin.layers if layer.weights}
        for layer in destination.layers:
            if not layer.weights:
                continue
            label = f"{part}/{layer.name}"
            match = by_name.get(layer.name)
            if match is None:
                skipped.append(f"{label} (not in the source)")
                continue
            here = [tuple(w.shape) for w in layer.weights]
            there = [tuple(w.shape) for w in match.weights]
            if here != there:
                shown_here = here[0] if len(here) == 1 else here
                shown_there = there[0] if len(there) == 1 else there
                skipped.append(f"{label} (shape {shown_here} here, {shown_there} in the source)")
                continue
            layer.set_weights(match.get_weights())
            loaded.append(label)
    return {"loaded": loaded, "skipped": skipped}
