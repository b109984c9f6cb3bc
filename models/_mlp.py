"""A configurable multilayer perceptron for generators and critics on vector data."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "leaky_relu": lambda x: nn.leaky_relu(x, 0.2),
    "elu": nn.elu,
    "gelu": nn.gelu,
    "tanh": jnp.tanh,
    "silu": nn.silu,
}


class MLP(nn.Module):
    """``x -> Dense(width) -> act -> ... -> Dense(out_features)``.

    Attributes:
      width: hidden width.
      depth: number of hidden layers (0 gives a single linear map).
      out_features: output size (1 for a critic or discriminator: one logit
        or critic value per sample, returned with shape ``[batch]`` when
        ``squeeze`` is True).
      activation: a name in ``ACTIVATIONS`` or a callable.
      spectral_norm: wrap every Dense in :class:`flax.linen.SpectralNorm`
        (Miyato et al. 2018). Its power-iteration vectors live in the
        ``"batch_stats"`` collection: call with ``update_stats=True`` and
        ``mutable=["batch_stats"]`` while training.
      layer_norm: a LayerNorm after each hidden Dense (safe with a gradient
        penalty, unlike batch norm, which couples samples).
      squeeze: drop the last axis when ``out_features == 1``.

    Input ``[batch, d]`` (any leading shape), output ``[batch, out_features]``
    or ``[batch]``.
    """

    width: int = 128
    depth: int = 3
    out_features: int = 1
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    spectral_norm: bool = False
    layer_norm: bool = False
    squeeze: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, update_stats: bool = False) -> jax.Array:
        act = ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation

        def dense(features: int, name: str) -> Callable[[jax.Array], jax.Array]:
            layer = nn.Dense(features, name=name)
            if self.spectral_norm:
                sn = nn.SpectralNorm(layer, name=f"{name}_sn")
                return lambda h: sn(h, update_stats=update_stats)
            return layer

        h = x
        for i in range(self.depth):
            h = dense(self.width, f"hidden_{i}")(h)
            if self.layer_norm:
                h = nn.LayerNorm(name=f"norm_{i}")(h)
            h = act(h)
        out = dense(self.out_features, "out")(h)
        if self.squeeze and self.out_features == 1:
            out = out[..., 0]
        return out
