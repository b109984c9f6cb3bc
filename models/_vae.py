"""Gaussian encoders and decoders for a variational auto-encoder (MLP and DCGAN-style conv).

Every module returns a pair ``(mean, raw_scale)`` of the same shape: the
mean of a diagonal Gaussian and an *unconstrained* pre-activation of its
standard deviation. Turn ``raw_scale`` into a positive scale with
``divergences.softplus_scale`` (this package imports nothing else of the
project, so the constraint is applied by the caller, in one place).

* :class:`GaussianEncoder`: ``x [..., d] -> (mu, raw) [..., latent_dim]``,
  an MLP trunk and two linear heads;
* :class:`GaussianDecoder`: ``z [..., k] -> (mean, raw) [..., out_features]``,
  the raw scale per sample (``shared_scale=False``) or one learned vector for
  all samples (``shared_scale=True``, the homoscedastic decoder);
* :class:`ConvGaussianEncoder`, :class:`ConvGaussianDecoder`: the same on
  flat images ``[..., H * W * C]``, laid out like
  :class:`~divergences.models.DCGANCritic` and
  :class:`~divergences.models.DCGANGenerator` (strided convolutions down,
  transposed convolutions up, no batch norm), with a per-pixel shared raw
  scale in the decoder.

References:
  Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
  Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep
  Convolutional Generative Adversarial Networks", ICLR 2016.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from divergences.models._dcgan import _check_shape, _upsamplings
from divergences.models._mlp import ACTIVATIONS, MLP


def _act(activation: str | Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array], jax.Array]:
    return ACTIVATIONS[activation] if isinstance(activation, str) else activation


class GaussianEncoder(nn.Module):
    """``x [..., d] -> (mean, raw_scale)``, each ``[..., latent_dim]``.

    Attributes:
      latent_dim: size of the latent code.
      width, depth, activation: the MLP trunk (as :class:`~divergences.models.MLP`).
    """

    latent_dim: int = 2
    width: int = 128
    depth: int = 2
    activation: str | Callable[[jax.Array], jax.Array] = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        for i in range(self.depth):
            h = _act(self.activation)(nn.Dense(self.width, name=f"hidden_{i}")(h))
        return nn.Dense(self.latent_dim, name="mean")(h), nn.Dense(self.latent_dim, name="raw_scale")(h)


class GaussianDecoder(nn.Module):
    """``z [..., k] -> (mean, raw_scale)``, each ``[..., out_features]``.

    Attributes:
      out_features: the data dimension.
      width, depth, activation: the MLP (as :class:`~divergences.models.MLP`).
      shared_scale: one learned raw scale per output dimension for every
        sample (True), or one per sample from the network (False, default).
    """

    out_features: int = 2
    width: int = 128
    depth: int = 2
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    shared_scale: bool = False

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        n_out = self.out_features if self.shared_scale else 2 * self.out_features
        out = MLP(width=self.width, depth=self.depth, out_features=n_out, activation=self.activation,
                  squeeze=False, name="mlp")(z)
        if self.shared_scale:
            raw = self.param("raw_scale", nn.initializers.zeros, (self.out_features,))
            return out, jnp.broadcast_to(raw, out.shape)
        return out[..., : self.out_features], out[..., self.out_features:]


class ConvGaussianEncoder(nn.Module):
    """Flat images ``[..., H * W * C]`` (or ``[..., H, W, C]``) to ``(mean, raw_scale) [..., latent_dim]``.

    ``[Conv 4x4 stride 2 -> act] x k -> Dense(2 latent_dim)``, ``k`` as in
    :class:`~divergences.models.DCGANCritic` (2 for 8x8 and 28x28 images).

    Attributes:
      image_shape: ``(H, W, C)``, square.
      latent_dim: size of the latent code.
      features: channels of the first convolution (doubled per step).
      activation: default leaky ReLU (slope 0.2), as in DCGAN.
    """

    image_shape: tuple[int, int, int] = (8, 8, 1)
    latent_dim: int = 8
    features: int = 32
    activation: str | Callable[[jax.Array], jax.Array] = "leaky_relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h_img, w_img, c_img = _check_shape(self.image_shape)
        n_down = max(_upsamplings(h_img)[0], 1)
        h = x.reshape(x.shape[:-1] + (h_img, w_img, c_img)) if x.shape[-1] == h_img * w_img * c_img else x
        width = self.features
        for i in range(n_down):
            h = _act(self.activation)(nn.Conv(width, (4, 4), strides=(2, 2), padding="SAME", name=f"down_{i}")(h))
            width *= 2
        h = h.reshape(h.shape[:-3] + (-1,))
        out = nn.Dense(2 * self.latent_dim, name="out")(h)
        return out[..., : self.latent_dim], out[..., self.latent_dim:]


class ConvGaussianDecoder(nn.Module):
    """``z [..., k]`` to ``(mean, raw_scale)`` of flat images ``[..., H * W * C]``.

    ``z -> Dense(s * s * 2c) -> act -> [ConvTranspose stride 2 -> act] x k ->
    Conv 3x3 to C channels``, as :class:`~divergences.models.DCGANGenerator`
    but with an unbounded mean (no tanh: the Gaussian's mean may sit anywhere)
    and a learned per-pixel raw scale shared by all samples.

    Attributes:
      image_shape: ``(H, W, C)``, square.
      features: channels of the last hidden feature map.
      activation: default ReLU.
    """

    image_shape: tuple[int, int, int] = (8, 8, 1)
    features: int = 32
    activation: str | Callable[[jax.Array], jax.Array] = "relu"

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        act = _act(self.activation)
        h_img, w_img, c_img = _check_shape(self.image_shape)
        n_up, side = _upsamplings(h_img)
        width = self.features * 2**n_up
        h = act(nn.Dense(side * side * width, name="project")(z)).reshape(z.shape[:-1] + (side, side, width))
        for i in range(n_up):
            width //= 2
            h = act(nn.ConvTranspose(width, (4, 4), strides=(2, 2), padding="SAME", name=f"up_{i}")(h))
        mean = nn.Conv(c_img, (3, 3), padding="SAME", name="to_image")(h).reshape(z.shape[:-1] + (h_img * w_img * c_img,))
        raw = self.param("raw_scale", nn.initializers.zeros, (h_img * w_img * c_img,))
        return mean, jnp.broadcast_to(raw, mean.shape)
