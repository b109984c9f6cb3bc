"""divergences: divergence estimators and GAN objectives in JAX.

The code lives in private modules; this file re-exports the public surface,
one name per line.
"""

from divergences import closed_form as closed_form

# Validation contract.
from divergences._validation import checked as checked

# Exact divergences between discrete distributions.
from divergences._discrete import f_divergence as f_divergence
from divergences._discrete import js_divergence as js_divergence
from divergences._discrete import kl_divergence as kl_divergence
from divergences._discrete import total_variation as total_variation

# Sample-based estimators.
from divergences._binned import binned_divergence as binned_divergence
from divergences._knn import knn_kl_divergence as knn_kl_divergence
from divergences._mmd import median_bandwidth as median_bandwidth
from divergences._mmd import mmd as mmd
from divergences._mmd import resolve_kernel as resolve_kernel
from divergences._wasserstein import max_sliced_wasserstein as max_sliced_wasserstein
from divergences._wasserstein import sliced_wasserstein as sliced_wasserstein
from divergences._wasserstein import wasserstein_1d as wasserstein_1d

# GAN objectives and variational (dual) estimators.
from divergences._gan import gan_discriminator_loss as gan_discriminator_loss
from divergences._gan import gan_generator_loss as gan_generator_loss
from divergences._gan import optimal_discriminator as optimal_discriminator
from divergences._gan import wasserstein_critic_loss as wasserstein_critic_loss
from divergences._gan import wasserstein_generator_loss as wasserstein_generator_loss
from divergences._gan import gradient_penalty as gradient_penalty
from divergences._gan import weight_clipping as weight_clipping
from divergences._fgan import FGAN_DIVERGENCES as FGAN_DIVERGENCES
from divergences._fgan import fgan_activation as fgan_activation
from divergences._fgan import fgan_conjugate as fgan_conjugate
from divergences._fgan import fgan_conjugate_activation as fgan_conjugate_activation
from divergences._fgan import fgan_objective as fgan_objective

# Two-sample tests and uncertainty.

__version__ = "0.1.0"
