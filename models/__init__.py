"""Flax modules (generators, critics, discriminators) used by `divergences` and `train`.

This package imports nothing else of the project. Parameters are plain pytrees
(`flax.linen`), so the train steps that use them stay pure functions.
"""

from divergences.models._mlp import ACTIVATIONS as ACTIVATIONS
from divergences.models._mlp import MLP as MLP
from divergences.models._dcgan import DCGANCritic as DCGANCritic
from divergences.models._dcgan import DCGANGenerator as DCGANGenerator
from divergences.models._vae import GaussianEncoder as GaussianEncoder
from divergences.models._vae import GaussianDecoder as GaussianDecoder
from divergences.models._vae import ConvGaussianEncoder as ConvGaussianEncoder
from divergences.models._vae import ConvGaussianDecoder as ConvGaussianDecoder
from divergences.models._flow import AffineCoupling as AffineCoupling
from divergences.models._flow import RealNVP as RealNVP
from divergences.models._flow import alternating_mask as alternating_mask
from divergences.models._spline import NeuralSplineFlow as NeuralSplineFlow
from divergences.models._spline import SplineCoupling as SplineCoupling
from divergences.models._spline import rational_quadratic_spline as rational_quadratic_spline
