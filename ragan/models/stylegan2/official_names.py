"""The official StyleGAN2-ADA name of every variable of ragan's StyleGAN2 networks.

ragan's layers mirror the official module tree (``synthesis.b32.conv0.affine.weight``...), so a
weight moves between the two by name; only the layouts differ (channels-last kernels here):

* dense weights: official ``(out, in)``, here ``(in, out)``;
* convolution weights: official ``(out, in, kh, kw)``, here ``(kh, kw, in, out)``;
* the 4x4 constant: official ``(C, 4, 4)``, here ``(4, 4, C)``.
"""

from __future__ import annotations

import numpy as np

from ragan.models.stylegan2 import networks as nets

__all__ = ["from_official", "named_variables", "to_official"]


def _layer_variables(layer, prefix: str):
    if isinstance(layer, nets.FullyConnected):
        yield f"{prefix}weight", layer.weight, "dense"
        if layer.bias is not None:
            yield f"{prefix}bias", layer.bias, "same"
    elif isinstance(layer, nets.Conv2dLayer):
        yield f"{prefix}weight", layer.weight, "conv"
        if layer.bias is not None:
            yield f"{prefix}bias", layer.bias, "same"
    elif isinstance(layer, nets.SynthesisLayer):
        yield from _layer_variables(layer.affine, f"{prefix}affine.")
        yield f"{prefix}weight", layer.weight, "conv"
        yield f"{prefix}noise_const", layer.noise_const, "same"
        yield f"{prefix}noise_strength", layer.noise_strength, "same"
        yield f"{prefix}bias", layer.bias, "same"
    elif isinstance(layer, nets.ToRGB):
        yield from _layer_variables(layer.affine, f"{prefix}affine.")
        yield f"{prefix}weight", layer.weight, "conv"
        yield f"{prefix}bias", layer.bias, "same"
    elif isinstance(layer, nets.MappingNetwork):
        if layer.embed is not None:
            yield from _layer_variables(layer.embed, f"{prefix}embed.")
        for index, fc in enumerate(layer.fcs):
            yield from _layer_variables(fc, f"{prefix}fc{index}.")
        if layer.w_avg is not None:
            yield f"{prefix}w_avg", layer.w_avg, "same"
    else:
        raise TypeError(f"no official names for {type(layer).__name__}")


def named_variables(network):
    """``(official_name, variable, layout)`` for every variable of a :class:`~.networks.Generator`
    or :class:`~.networks.Discriminator`; ``layout`` is ``dense``, ``conv``, ``const`` or ``same``."""
    if isinstance(network, nets.Generator):
        yield from _layer_variables(network.mapping, "mapping.")
        for block in network.synthesis.blocks:
            prefix = f"synthesis.b{block.resolution}."
            if block.conv0 is None:
                yield f"{prefix}const", block.const, "const"
            else:
                yield from _layer_variables(block.conv0, f"{prefix}conv0.")
            yield from _layer_variables(block.conv1, f"{prefix}conv1.")
            yield from _layer_variables(block.torgb, f"{prefix}torgb.")
    elif isinstance(network, nets.Discriminator):
        for block in network.blocks:
            prefix = f"b{block.resolution}."
            for name in ("fromrgb", "conv0", "conv1", "skip"):
                layer = getattr(block, name)
                if layer is not None:
                    yield from _layer_variables(layer, f"{prefix}{name}.")
        if network.mapping is not None:
            yield from _layer_variables(network.mapping, "mapping.")
        for name in ("conv", "fc", "out"):
            yield from _layer_variables(getattr(network.b4, name), f"b4.{name}.")
    else:
        raise TypeError(f"no official names for {type(network).__name__}")


def from_official(array: np.ndarray, layout: str) -> np.ndarray:
    """An official tensor in ragan's layout."""
    array = np.asarray(array, dtype=np.float32)
    if layout == "dense":
        return array.T
    if layout == "conv":
        return array.transpose(2, 3, 1, 0)
    if layout == "const":
        return array.transpose(1, 2, 0)
    return array


def to_official(array: np.ndarray, layout: str) -> np.ndarray:
    """A ragan tensor in the official layout."""
    array = np.asarray(array)
    if layout == "dense":
        return array.T
    if layout == "conv":
        return array.transpose(3, 2, 0, 1)
    if layout == "const":
        return array.transpose(2, 0, 1)
    return array
