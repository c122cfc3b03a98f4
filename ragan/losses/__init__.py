"""Loss maths of ragan's GANs as pure functions of logits (one loss per example).

Example:
    >>> from ragan.losses import dcgan_discriminator_loss
    >>> real_logits, fake_logits = np.array([2.0, 0.0, -1.0]), np.array([-2.0, 0.0, 1.0])
    >>> dcgan_discriminator_loss(real_logits, fake_logits).shape   # one loss per example
    TensorShape([3])
"""

from ragan.losses.adversarial import (
    auxiliary_classifier_loss,
    dcgan_discriminator_loss,
    dcgan_generator_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)
from ragan.losses.penalties import gradient_penalty, path_length_penalty, r1_penalty

__all__ = [
    "auxiliary_classifier_loss",
    "dcgan_discriminator_loss",
    "dcgan_generator_loss",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "path_length_penalty",
    "r1_penalty",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
]
