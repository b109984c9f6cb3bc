"""Flax modules (generators, critics, discriminators) used by `divergences` and `train`.

This package imports nothing else of the project. Parameters are plain pytrees
(`flax.linen`), so the train steps that use them stay pure functions.
"""

from divergences.models._mlp import ACTIVATIONS as ACTIVATIONS
from divergences.models._mlp import MLP as MLP
from divergences.models._dcgan import DCGANCritic as DCGANCritic
from divergences.models._dcgan import DCGANGenerator as DCGANGenerator
