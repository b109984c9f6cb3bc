r"""A normalizing flow of affine coupling layers (RealNVP) with an exact inverse and log-determinant.

Direction convention: ``__call__`` is the **normalizing** direction, data
``x`` to latent ``z``, and returns ``(z, log|det dz/dx|)`` per sample, which
is what a log-likelihood needs:
``log p(x) = log N(z; 0, I) + log|det dz/dx|`` (``divergences.flow_log_prob``).
``inverse`` is the generative direction, ``z`` to ``x``, and returns
``(x, log|det dx/dz|)``, the negative of the forward log-determinant at that
point. Both are exact (no iterative inversion), up to float rounding.

An affine coupling layer with a binary mask :math:`m` (1 = passed through)
maps

.. math::
    z = m \odot x + (1 - m) \odot \big(x \odot e^{s(m \odot x)} + t(m \odot x)\big),
    \qquad \log\lvert\det J\rvert = \sum_j (1 - m_j)\, s_j(m \odot x),

a triangular Jacobian after reordering (Dinh et al. 2017). The log-scale is
soft-clamped, :math:`s = c \tanh(\tilde s / c)` with :math:`c` =
``max_log_scale``, so that one layer cannot blow up early in training, and the
conditioner's last layer starts at zero, so that every layer starts as the
identity. Consecutive layers alternate the mask (even and odd coordinates),
so that every coordinate is transformed. An optional first layer is a learned
elementwise affine map :math:`z = (x - b) e^{-a}` (log-determinant
:math:`-\sum_j a_j`), like Glow's actnorm without the data-dependent
initialisation.

References:
  Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
  ICLR 2017.
  Kingma and Dhariwal, "Glow: Generative Flow with Invertible 1x1
  Convolutions", NeurIPS 2018 (actnorm, zero-initialised last layers).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from divergences.models._mlp import ACTIVATIONS


def alternating_mask(dim: int, layer: int) -> tuple[int, ...]:
    """The mask of coupling layer ``layer``: 1 on the even coordinates for even layers, on the odd ones for odd layers."""
    return tuple(int((j + layer) % 2 == 0) for j in range(dim))


def fixed_rotations(dim: int, n: int, seed: int) -> list[np.ndarray]:
    """``n`` Haar-distributed orthogonal ``[dim, dim]`` matrices (float64), drawn from ``seed``; none when ``dim < 2``.

    The fixed (untrained) rotations that a coupling stack puts between its
    layers: log-determinant 0, inverse the transpose.
    """
    if dim < 2:
        return []
    rng = np.random.default_rng([seed, dim])
    out = []
    for _ in range(n):
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        out.append(q * np.sign(np.diag(r)))  # the sign fix makes Q Haar-distributed
    return out


def stack_forward(layers, rotations: list[np.ndarray], x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Normalizing direction of coupling ``layers`` with ``rotations[i]`` after layer ``i``: ``(z, sum of log-dets)``."""
    log_det = jnp.zeros(x.shape[:-1], x.dtype)
    for i, layer in enumerate(layers):
        x, ld = layer(x)
        log_det = log_det + ld
        if i < len(rotations):
            x = x @ jnp.asarray(rotations[i], x.dtype).T
    return x, log_det


def stack_inverse(layers, rotations: list[np.ndarray], z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Generative direction of :func:`stack_forward`: ``(x, sum of log|det dx/dz|)``."""
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    for i in reversed(range(len(layers))):
        if i < len(rotations):
            z = z @ jnp.asarray(rotations[i], z.dtype)
        z, ld = layers[i].inverse(z)
        log_det = log_det + ld
    return z, log_det


def flow_forward(flow, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Normalizing direction of a coupling flow module (``layers``, ``_rotations()``, optional elementwise affine first)."""
    log_det = jnp.zeros(x.shape[:-1], x.dtype)
    if flow.elementwise_affine:
        x = (x - flow.loc) * jnp.exp(-flow.log_scale)
        log_det = log_det - jnp.sum(flow.log_scale)
    z, ld = stack_forward(flow.layers, flow._rotations(), x)
    return z, log_det + ld


def flow_inverse(flow, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Generative direction of :func:`flow_forward`: ``(x, log|det dx/dz|)``."""
    x, log_det = stack_inverse(flow.layers, flow._rotations(), z)
    if flow.elementwise_affine:
        x = x * jnp.exp(flow.log_scale) + flow.loc
        log_det = log_det + jnp.sum(flow.log_scale)
    return x, log_det


class AffineCoupling(nn.Module):
    """One affine coupling layer on ``[..., d]``.

    Attributes:
      mask: ``d`` zeros and ones; coordinates with 1 pass through unchanged
        and condition the affine map of the others.
      width, depth, activation: the conditioner MLP (``depth`` hidden layers).
      max_log_scale: the soft clamp ``c`` of the log-scale (``|s| < c``).
    """

    mask: tuple[int, ...]
    width: int = 64
    depth: int = 2
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    max_log_scale: float = 3.0

    def setup(self):
        self.hidden = [nn.Dense(self.width, name=f"hidden_{i}") for i in range(self.depth)]
        d = len(self.mask)
        self.out = nn.Dense(2 * d, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros, name="out")

    def _shift_log_scale(self, x_masked: jax.Array) -> tuple[jax.Array, jax.Array]:
        act = ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation
        h = x_masked
        for layer in self.hidden:
            h = act(layer(h))
        out = self.out(h)
        d = len(self.mask)
        free = 1.0 - jnp.asarray(self.mask, x_masked.dtype)
        c = self.max_log_scale
        log_scale = c * jnp.tanh(out[..., :d] / c) * free
        return out[..., d:] * free, log_scale

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Normalizing direction: ``x -> (z, log|det dz/dx|)``, shapes ``[..., d]`` and ``[...]``."""
        m = jnp.asarray(self.mask, x.dtype)
        shift, log_scale = self._shift_log_scale(m * x)
        z = m * x + (1.0 - m) * (x * jnp.exp(log_scale) + shift)
        return z, jnp.sum(log_scale, axis=-1)

    def inverse(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Generative direction: ``z -> (x, log|det dx/dz|)``."""
        m = jnp.asarray(self.mask, z.dtype)
        shift, log_scale = self._shift_log_scale(m * z)  # m * z == m * x
        x = m * z + (1.0 - m) * ((z - shift) * jnp.exp(-log_scale))
        return x, -jnp.sum(log_scale, axis=-1)


class RealNVP(nn.Module):
    """A stack of affine coupling layers with alternating masks, on ``[..., dim]``.

    Attributes:
      dim: the data dimension.
      n_layers: number of coupling layers (at least 2 so that every
        coordinate is transformed when ``dim >= 2``).
      width, depth, activation: each layer's conditioner MLP.
      max_log_scale: the soft clamp of each layer's log-scale.
      elementwise_affine: a learned per-coordinate shift and log-scale
        before the couplings (on the data side).
      rotations: a fixed orthogonal matrix (drawn once from ``seed``, not
        trained; log-determinant 0, inverse its transpose) after every
        coupling but the last, so that consecutive couplings split the
        coordinates along different directions instead of the same two axis
        sets (which helps most in low dimension).
      seed: seeds the rotations.

    ``__call__(x) -> (z, log|det dz/dx|)``; ``inverse(z) -> (x, log|det dx/dz|)``
    (call it with ``model.apply(params, z, method="inverse")``).
    """

    dim: int
    n_layers: int = 8
    width: int = 64
    depth: int = 2
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    max_log_scale: float = 3.0
    elementwise_affine: bool = True
    rotations: bool = False
    seed: int = 0

    def _rotations(self) -> list[np.ndarray]:
        return fixed_rotations(self.dim, self.n_layers - 1, self.seed) if self.rotations else []

    def setup(self):
        if self.dim < 1 or self.n_layers < 1:
            raise ValueError(f"`dim` and `n_layers` must be >= 1; got {self.dim} and {self.n_layers}")
        self.layers = [
            AffineCoupling(mask=alternating_mask(self.dim, i), width=self.width, depth=self.depth,
                           activation=self.activation, max_log_scale=self.max_log_scale, name=f"coupling_{i}")
            for i in range(self.n_layers)
        ]
        if self.elementwise_affine:
            self.loc = self.param("loc", nn.initializers.zeros, (self.dim,))
            self.log_scale = self.param("log_scale", nn.initializers.zeros, (self.dim,))

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Normalizing direction: ``x [..., dim] -> (z [..., dim], log|det dz/dx| [...])``."""
        return flow_forward(self, x)

    def inverse(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Generative direction: ``z [..., dim] -> (x [..., dim], log|det dx/dz| [...])``."""
        return flow_inverse(self, z)
