"""A DCGAN-style generator and critic for small images (8x8 and 28x28).

Both modules work on *flat* vectors, so that the training code and the
sample-based divergences (which take ``[n, d]`` arrays) see images exactly as
they see 2-D points: the generator returns ``[batch, H * W * C]`` and the
critic reshapes its ``[batch, H * W * C]`` input to ``[batch, H, W, C]``.

Layout (Radford et al. 2016, without batch norm so that the critic stays
usable with a gradient penalty, where batch norm would couple the samples):

* generator: ``z -> Dense(s * s * 2c) -> act -> [ConvTranspose stride 2 -> act]
  x k -> Conv 3x3 to C channels -> tanh``, with ``s = H / 2**k``;
* critic: ``[Conv 4x4 stride 2 -> (LayerNorm) -> leaky_relu] x k -> Dense(1)``.

References:
  Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep
  Convolutional Generative Adversarial Networks", ICLR 2016.
  Miyato et al., "Spectral Normalization for Generative Adversarial Networks",
  ICLR 2018.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from divergences.models._mlp import ACTIVATIONS


def _upsamplings(height: int) -> tuple[int, int]:
    """Number of stride-2 upsamplings and the starting side for a square image."""
    if height % 4 == 0 and height // 4 >= 2:
        return 2, height // 4
    if height % 2 == 0:
        return 1, height // 2
    return 0, height


def _check_shape(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    if len(image_shape) != 3 or any(int(s) < 1 for s in image_shape):
        raise ValueError(f"`image_shape` must be (height, width, channels), got {image_shape!r}")
    h, w, c = (int(s) for s in image_shape)
    if h != w:
        raise ValueError(f"`image_shape` must be square, got {image_shape!r}")
    return h, w, c


class DCGANGenerator(nn.Module):
    """Noise ``[batch, z]`` to flat images ``[batch, H * W * C]`` in ``[-1, 1]``.

    Attributes:
      image_shape: ``(H, W, C)`` of the images, square (8x8 and 28x28 tested).
      features: channels of the last hidden feature map (doubled per
        resolution step going down).
      activation: name in :data:`models.ACTIVATIONS` or a callable.
      layer_norm: a LayerNorm after each hidden layer.
      flat: return ``[batch, H * W * C]`` (True) or ``[batch, H, W, C]``.
    """

    image_shape: tuple[int, int, int] = (8, 8, 1)
    features: int = 32
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    layer_norm: bool = False
    flat: bool = True

    @nn.compact
    def __call__(self, z: jax.Array, *, update_stats: bool = False) -> jax.Array:
        del update_stats  # no statistics in the generator; kept for a uniform call signature
        act = ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation
        h_img, w_img, c_img = _check_shape(self.image_shape)
        n_up, side = _upsamplings(h_img)
        width = self.features * 2**n_up
        h = nn.Dense(side * side * width, name="project")(z)
        h = h.reshape(z.shape[:-1] + (side, side, width))
        if self.layer_norm:
            h = nn.LayerNorm(name="norm_project")(h)
        h = act(h)
        for i in range(n_up):
            width //= 2
            h = nn.ConvTranspose(width, (4, 4), strides=(2, 2), padding="SAME", name=f"up_{i}")(h)
            if self.layer_norm:
                h = nn.LayerNorm(name=f"norm_up_{i}")(h)
            h = act(h)
        h = nn.Conv(c_img, (3, 3), padding="SAME", name="to_image")(h)
        out = jnp.tanh(h)
        if self.flat:
            out = out.reshape(z.shape[:-1] + (h_img * w_img * c_img,))
        return out


class DCGANCritic(nn.Module):
    """Flat images ``[batch, H * W * C]`` (or ``[batch, H, W, C]``) to ``[batch]`` values.

    Attributes:
      image_shape: ``(H, W, C)`` the flat input is reshaped to.
      features: channels of the first convolution (doubled per step).
      spectral_norm: spectral normalisation on every layer (power-iteration
        state in ``"batch_stats"``; call with ``update_stats=True`` and
        ``mutable=["batch_stats"]`` while training).
      layer_norm: a LayerNorm after each hidden convolution (safe with a
        gradient penalty; batch norm is deliberately not offered).
      activation: name in :data:`models.ACTIVATIONS` or a callable
        (default leaky ReLU with slope 0.2, as in DCGAN).
    """

    image_shape: tuple[int, int, int] = (8, 8, 1)
    features: int = 32
    spectral_norm: bool = False
    layer_norm: bool = False
    activation: str | Callable[[jax.Array], jax.Array] = "leaky_relu"

    @nn.compact
    def __call__(self, x: jax.Array, *, update_stats: bool = False) -> jax.Array:
        act = ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation
        h_img, w_img, c_img = _check_shape(self.image_shape)
        n_down, _ = _upsamplings(h_img)
        n_down = max(n_down, 1)

        def wrap(layer: nn.Module, name: str) -> Callable[[jax.Array], jax.Array]:
            if self.spectral_norm:
                sn = nn.SpectralNorm(layer, name=f"{name}_sn")
                return lambda t: sn(t, update_stats=update_stats)
            return layer

        if x.shape[-1] == h_img * w_img * c_img:
            h = x.reshape(x.shape[:-1] + (h_img, w_img, c_img))
        else:
            h = x
        width = self.features
        for i in range(n_down):
            h = wrap(nn.Conv(width, (4, 4), strides=(2, 2), padding="SAME", name=f"down_{i}"), f"down_{i}")(h)
            if self.layer_norm:
                h = nn.LayerNorm(name=f"norm_{i}")(h)
            h = act(h)
            width *= 2
        h = h.reshape(h.shape[:-3] + (-1,))
        return wrap(nn.Dense(1, name="out"), "out")(h)[..., 0]
