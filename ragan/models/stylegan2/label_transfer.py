"""Starting a class-conditional StyleGAN2 from an unconditional one (``--conditional true --init-from``).

The realistic small-data case: many unlabelled images, few labelled ones. A network pretrained
without labels on all the images is fine-tuned class-conditional on the labelled few. Conditioning
adds to the generator a label embedding and, in the mapping network's first layer, the input rows
that read it; to the discriminator a label mapping network and a wider output layer (the
projection). Those are new. Everything else transfers by name and shape
(:meth:`ragan.models.stylegan2.StyleGAN2.transfer_from`), and the first mapping layer keeps the
rows it had:

* the rows that read z are copied, rescaled for the wider layer's run-time weight gain
  (``lr_multiplier / sqrt(fan_in)`` with the larger fan-in), so they map z exactly as before;
* the rows that read the label embedding start at zero, so the fine-tuned generator starts as the
  pretrained one (same images for the same latents) and learns the label's effect from there;
  random rows would instead move every w at the first step.

Example:
    >>> source = np.ones((4, 3), np.float32)            # an unconditional first layer: z 4 -> w 3
    >>> widened = widened_mapping_input("mapping.fc0.weight", source, (8, 3))   # z 4 + label 4 -> w 3
    >>> widened[:4, 0].tolist(), widened[4:, 0].tolist()   # z rows scaled by sqrt(8 / 4); label rows zero
    ([1.4142135381698608, 1.4142135381698608, 1.4142135381698608, 1.4142135381698608], [0.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MAPPING_INPUT", "widened_mapping_input"]

#: The official name of the mapping network's first layer weight, shape ``(fan_in, w_dim)``.
MAPPING_INPUT = "mapping.fc0.weight"


def widened_mapping_input(name: str, source, target_shape) -> np.ndarray | None:
    """The value for a conditional network's first mapping weight from an unconditional one, else ``None``.

    Args:
        name: the official variable name (only :data:`MAPPING_INPUT` is widened).
        source: the source network's value (an array or variable), ``(z_dim, w_dim)``.
        target_shape: the conditional network's shape, ``(z_dim + embed_features, w_dim)``.

    Returns:
        ``(z_dim + embed_features, w_dim)`` float32: the z rows of ``source`` times
        ``sqrt(fan_in_target / fan_in_source)``, zero label rows; ``None`` when ``name`` is another
        variable or the shapes are not an unconditional -> conditional pair.
    """
    if name != MAPPING_INPUT:
        return None
    source = np.asarray(source)
    target_shape = tuple(int(d) for d in target_shape)
    if source.ndim != 2 or len(target_shape) != 2:
        return None
    (source_in, width), (target_in, target_width) = source.shape, target_shape
    if width != target_width or target_in <= source_in:
        return None
    widened = np.zeros(target_shape, np.float32)
    widened[:source_in] = source * math.sqrt(target_in / source_in)
    return widened
