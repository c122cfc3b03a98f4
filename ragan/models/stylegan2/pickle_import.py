"""Official StyleGAN2-ADA network pickles as ragan models: ``ragan import-weights FILE.pkl``.

:func:`import_network_pickle` reads a pickle with the restricted reader of
:mod:`ragan.models.stylegan2.pickle_reader` (no code from the file runs, PyTorch is not needed),
builds a :class:`~ragan.models.stylegan2.StyleGAN2` with the same configuration (resolution,
channels, widths, mapping layers, conditioning, clamp, minibatch group), and loads ``G``, ``D``,
``G_ema``, ``w_avg`` and the augmentation probability into it. :func:`write_imported_run` saves
the result as a run folder that ``ragan generate``, ``ragan evaluate --run`` and
``ragan train stylegan2 --init-from`` use.

Changing the number of channels: an RGB network can start a greyscale (1-channel) model. The
conversion keeps the network's behaviour on grey images: toRGB weights and biases are averaged
over the colours (the grey output is the mean of R, G and B), and fromRGB weights are summed over
the colours and rescaled for the new fan-in (an RGB network fed the same grey value in R, G and B
sees exactly what the converted network sees). Grey to RGB repeats the channel.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ragan._network_pickle import network_config, read_network_pickle
from ragan.errors import RaganError
from ragan.models.stylegan2.official_names import from_official, named_variables

__all__ = [
    "ARCHITECTURE_KEYS",
    "import_network_pickle",
    "is_network_pickle",
    "network_pickle_config",
    "write_imported_run",
]


def is_network_pickle(path) -> bool:
    """Whether ``path`` names a ``.pkl`` file (an official network pickle, presumably)."""
    return str(path).lower().endswith(".pkl")


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: The settings that decide the networks' shapes (a model built with them takes the weights).
ARCHITECTURE_KEYS = (
    "latent_dim",
    "w_dim",
    "mapping_layers",
    "channel_base",
    "channel_max",
    "conv_clamp",
    "d_architecture",
)


def network_pickle_config(path) -> tuple[dict, dict]:
    """``(architecture, shape)`` of the network in an official pickle: the StyleGAN2Config values
    of :data:`ARCHITECTURE_KEYS`, and ``{"image_size", "channels", "num_classes"}``."""
    path = os.fspath(path)
    config, shape = network_config(path, read_network_pickle(path))
    return {key: config[key] for key in ARCHITECTURE_KEYS}, shape


def _convert_channels(name: str, array: np.ndarray, have: int, want: int) -> np.ndarray:
    """An official tensor for ``want`` image channels instead of ``have`` (see the module doc)."""
    if have == want:
        return array
    if ".torgb." in name or name.startswith("torgb"):
        if name.endswith("torgb.weight"):  # (out=colours, in, 1, 1)
            mean = array.mean(axis=0, keepdims=True)
            return mean if want == 1 else np.repeat(array, want, axis=0)
        if name.endswith("torgb.bias"):
            return array.mean(keepdims=True).reshape(1) if want == 1 else np.repeat(array, want)
    if name.endswith("fromrgb.weight"):  # (out, in=colours, 1, 1); the run-time gain is 1/sqrt(in)
        if want == 1:
            return array.sum(axis=1, keepdims=True) / np.sqrt(have)
        return np.repeat(array, want, axis=1) / np.sqrt(want)
    return array


def _load_network(network, module, *, path: str, what: str, have_channels: int, want_channels: int) -> None:
    tensors = module.tensors()
    for name, variable, layout in named_variables(network):
        if name not in tensors:
            raise RaganError(f"{path}: {what} has no tensor {name!r}; it is not a StyleGAN2-ADA network of this shape.")
        array = np.asarray(tensors[name], np.float32)
        try:
            value = from_official(_convert_channels(name, array, have_channels, want_channels), layout)
        except ValueError:  # a tensor of the wrong number of dimensions (numpy's AxisError included)
            value = array
        if tuple(value.shape) != tuple(variable.shape):
            raise RaganError(
                f"{path}: {what} tensor {name!r} has shape {tuple(array.shape)}, which does not fit "
                f"{tuple(variable.shape)}; the pickle's configuration is not one ragan can rebuild."
            )
        variable.assign(value)


def import_network_pickle(path, *, channels: int | None = None, seed: int = 0, data: dict | None = None):
    """A :class:`~ragan.models.stylegan2.StyleGAN2` holding an official pickle's networks.

    Args:
        path: the ``.pkl`` file (e.g. NVIDIA's ``ffhq.pkl`` or a snapshot of your own run).
        channels: image channels of the model to build (default: the network's); 1 from an RGB
            network averages its colour outputs (see the module docstring).
        seed: seed of the model's training randomness (the weights come from the file).
        data: what :func:`~ragan.models.stylegan2.pickle_reader.read_network_pickle` returned for
            ``path``, when the caller has read it already (it is read here otherwise).

    Returns:
        ``(gan, info)``; ``info`` holds the source file name, its SHA-256, the networks loaded and
        the augmentation probability.

    Example:
        >>> gan, info = import_network_pickle("ffhq.pkl", channels=1)   # doctest: +SKIP
        >>> images = gan.generate(4, seed=0, truncation=0.7)           # doctest: +SKIP
    """
    path = os.fspath(path)
    if data is None:
        data = read_network_pickle(path)
    # Every check on the file's numbers comes before TensorFlow is imported or anything is built.
    config, shape = network_config(path, data)
    have = shape["channels"]
    if have not in (1, 3):
        raise RaganError(f"{path}: the network has {have} image channels; ragan imports 1- and 3-channel networks.")
    want = have if channels is None else int(channels)
    if want not in (1, 3):
        raise RaganError(f"channels={channels!r}: use 1 (greyscale) or 3 (RGB).")
    config["augment_p"] = _augment_probability(data.get("augment_pipe"))

    from ragan.models.stylegan2.model import StyleGAN2

    gan = StyleGAN2(config, image_size=shape["image_size"], channels=want, num_classes=shape["num_classes"], seed=seed)
    loaded = []
    for key, network in (("G", gan.generator), ("D", gan.discriminator), ("G_ema", gan.ema_generator)):
        module = data.get(key)
        if module is None or network is None:
            continue
        _load_network(network, module, path=path, what=key, have_channels=have, want_channels=want)
        loaded.append(key)
    if "G" not in loaded and "G_ema" in loaded:
        for source, target in zip(gan.ema_generator.weights, gan.generator.weights):
            target.assign(source)
    if "G_ema" not in loaded and gan.ema_generator is not None:
        for source, target in zip(gan.generator.weights, gan.ema_generator.weights):
            target.assign(source)
    gan.augment_probability.assign(config["augment_p"])
    info = {
        "file": os.path.basename(path),
        "sha256": file_sha256(path),
        "networks": loaded,
        "image_size": shape["image_size"],
        "channels_in_file": have,
        "channels": want,
        "num_classes": shape["num_classes"],
        "augment_p": config["augment_p"],
        "training_set_kwargs": {
            k: v
            for k, v in (data.get("training_set_kwargs") or {}).items()
            if isinstance(v, (str, int, float, bool, type(None)))
        },
    }
    return gan, info


def _augment_probability(augment) -> float:
    """The augmentation pipeline's ``p`` buffer, in [0, 1] (0 without one)."""
    if augment is None:
        return 0.0
    p = np.asarray(augment.tensors().get("p", 0.0), dtype=np.float64)
    if p.size != 1 or not np.isfinite(p).all():
        return 0.0
    return float(min(max(float(p.reshape(())), 0.0), 1.0))


def write_imported_run(gan, info: dict, out, *, class_names=None, overwrite: bool = False) -> Path:
    """Save an imported network as a run folder (``model.keras``, ``config.json``, ``run.json``),
    published atomically; ``ragan generate OUT`` and ``--init-from OUT`` read it. ``class_names``
    are labels (checked: no ``/``, ``..`` or control characters)."""
    import shutil

    from ragan._files import PartialLock, publish_directory
    from ragan._untrusted import check_class_names
    from ragan.training.run_files import CONFIG_FILE, MODEL_FILE, RUN_FILE

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise RaganError(f"output {str(out)!r} exists and is not empty; pass --overwrite to replace it.")
    names = check_class_names(class_names or [], "class_names")
    if names and len(names) != gan.num_classes:
        raise RaganError(f"class_names has {len(names)} names but the network has {gan.num_classes} classes.")
    if not names and gan.num_classes:
        names = [f"class_{i}" for i in range(gan.num_classes)]
    partial = out.parent / f".{out.name}.ragan-partial"
    with PartialLock(partial, "import-weights") as lock:
        lock.clear()  # what an interrupted import left behind
        try:
            gan.compile()
            gan.save(partial / MODEL_FILE)
            config = {
                "model": "stylegan2",
                "model_config": gan.config.to_dict(),
                "imported_from": info,
                "data": {"image_size": gan.image_size, "channels": gan.channels, "class_names": names},
            }
            (partial / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            run = {
                "model": MODEL_FILE,
                "status": "imported",
                "model_name": "stylegan2",
                "image_size": gan.image_size,
                "channels": gan.channels,
                "class_names": names,
                "dtype": "uint8",
                "imported_from": info,
            }
            (partial / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        publish_directory(partial, out)
    return out
