"""Building blocks of ragan's GANs: convolutional stacks and differentiable augmentation."""

from ragan.layers.augment import (
    AUGMENTATIONS,
    ada_update,
    diff_augment,
    parse_augment_policy,
    random_color,
    random_cutout,
    random_translation,
)
from ragan.layers.blocks import (
    SUPPORTED_IMAGE_SIZES,
    build_discriminator,
    build_generator,
    check_channels,
    check_image_size,
    filters_at,
    num_resolution_blocks,
)

__all__ = [
    "AUGMENTATIONS",
    "SUPPORTED_IMAGE_SIZES",
    "ada_update",
    "build_discriminator",
    "build_generator",
    "check_channels",
    "check_image_size",
    "diff_augment",
    "filters_at",
    "num_resolution_blocks",
    "parse_augment_policy",
    "random_color",
    "random_cutout",
    "random_translation",
]
