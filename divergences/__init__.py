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
from divergences._discrete import F_DIVERGENCES as F_DIVERGENCES
from divergences._discrete import DIVERGENCE_ALIASES as DIVERGENCE_ALIASES

# Sample-based estimators.
from divergences._binned import binned_divergence as binned_divergence
from divergences._knn import knn_kl_divergence as knn_kl_divergence
from divergences._mmd import median_bandwidth as median_bandwidth
from divergences._mmd import mmd as mmd
from divergences._mmd import PolynomialKernel as PolynomialKernel
from divergences._mmd import resolve_kernel as resolve_kernel
from divergences._mmd import Kernel as Kernel
from divergences._mmd import GaussianKernel as GaussianKernel
from divergences._mmd import LaplaceKernel as LaplaceKernel
from divergences._mmd import InverseMultiquadricKernel as InverseMultiquadricKernel
from divergences._mmd import EnergyKernel as EnergyKernel
from divergences._mmd import CallableKernel as CallableKernel
from divergences._mmd import KERNELS as KERNELS
from divergences._mmd import KERNEL_ALIASES as KERNEL_ALIASES
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
from divergences._losses import hinge_discriminator_loss as hinge_discriminator_loss
from divergences._losses import hinge_generator_loss as hinge_generator_loss
from divergences._losses import lsgan_discriminator_loss as lsgan_discriminator_loss
from divergences._losses import lsgan_generator_loss as lsgan_generator_loss
from divergences._losses import relativistic_discriminator_loss as relativistic_discriminator_loss
from divergences._losses import relativistic_generator_loss as relativistic_generator_loss
from divergences._losses import r1_penalty as r1_penalty
from divergences._losses import r2_penalty as r2_penalty
from divergences._fgan import FGAN_DIVERGENCES as FGAN_DIVERGENCES
from divergences._fgan import fgan_activation as fgan_activation
from divergences._fgan import fgan_conjugate as fgan_conjugate
from divergences._fgan import fgan_conjugate_activation as fgan_conjugate_activation
from divergences._fgan import fgan_objective as fgan_objective
from divergences._neural import LIPSCHITZ_METHODS as LIPSCHITZ_METHODS
from divergences._neural import estimate_f_divergence as estimate_f_divergence
from divergences._neural import estimate_wasserstein_dual as estimate_wasserstein_dual
from divergences._neural import NeuralEstimate as NeuralEstimate
from divergences._neural import UnreliableEstimateWarning as UnreliableEstimateWarning
from divergences._linear_gan import RandomFourierFeatures as RandomFourierFeatures
from divergences._linear_gan import linear_gan_dual as linear_gan_dual
from divergences._linear_gan import linear_gan_logits as linear_gan_logits
from divergences._linear_gan import linear_gan_primal as linear_gan_primal
from divergences._linear_gan import linear_gan_weights as linear_gan_weights
from divergences._linear_gan import random_fourier_features as random_fourier_features
from divergences._linear_gan import solve_linear_gan_dual as solve_linear_gan_dual
from divergences._linear_gan import PrecisionWarning as PrecisionWarning

# Sample-quality metrics in a feature space.
from divergences._features import DensityCoverage as DensityCoverage
from divergences._features import FrechetState as FrechetState
from divergences._features import KIDResult as KIDResult
from divergences._features import PrecisionRecall as PrecisionRecall
from divergences._features import density_coverage as density_coverage
from divergences._features import frechet_compute as frechet_compute
from divergences._features import frechet_distance as frechet_distance
from divergences._features import frechet_init as frechet_init
from divergences._features import frechet_update as frechet_update
from divergences._features import kernel_inception_distance as kernel_inception_distance
from divergences._features import precision_recall as precision_recall

# Two-sample tests and uncertainty.
from divergences._classifier_test import ClassifierTestResult as ClassifierTestResult
from divergences._classifier_test import classifier_two_sample_test as classifier_two_sample_test
from divergences._two_sample import BootstrapResult as BootstrapResult
from divergences._two_sample import TwoSampleResult as TwoSampleResult
from divergences._two_sample import bootstrap as bootstrap
from divergences._two_sample import two_sample_test as two_sample_test

# Likelihood-based objectives (VAE, IWAE, normalizing flows).
from divergences._likelihood import diag_gaussian_kl_standard as diag_gaussian_kl_standard
from divergences._likelihood import diag_gaussian_log_prob as diag_gaussian_log_prob
from divergences._likelihood import flow_log_prob as flow_log_prob
from divergences._likelihood import gaussian_elbo as gaussian_elbo
from divergences._likelihood import iwae_bound as iwae_bound
from divergences._likelihood import softplus_scale as softplus_scale

__version__ = "0.1.0"

# The public surface is the list of re-exports above, written once: `__all__`
# is read from it (every public name bound in this file, the subpackages
# `models` and `train` excepted, which are imported as `divergences.models`
# and `divergences.train`).
__all__ = sorted(
    _name for _name, _value in list(globals().items())
    if not _name.startswith("_") and _name not in ("models", "train")
)
