"""Building blocks of ragan's GANs: convolutional stacks and differentiable augmentation (DiffAugment, ADA)."""

from ragan.layers.ada import (
    ADA_PIPELINES,
    ADA_TRANSFORMS,
    ada_adjust,
    ada_augment,
    parse_ada_pipeline,
)
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
    "ADA_PIPELINES",
    "ADA_TRANSFORMS",
    "AUGMENTATIONS",
    "SUPPORTED_IMAGE_SIZES",
    "ada_adjust",
    "ada_augment",
    "ada_update",
    "build_discriminator",
    "build_generator",
    "check_channels",
    "check_image_size",
    "diff_augment",
    "filters_at",
    "num_resolution_blocks",
    "parse_ada_pipeline",
    "parse_augment_policy",
    "random_color",
    "random_cutout",
    "random_translation",
]
