r"""A normalizing flow of rational-quadratic spline couplings (Neural Spline Flow), exact inverse and log-determinant.

Conventions, as in :mod:`divergences.models._flow`: ``__call__`` is the
**normalizing** direction, data ``x`` to latent ``z``, returning
``(z, log|det dz/dx|)`` per sample; ``inverse`` is the generative direction,
``z`` to ``x``, returning ``(x, log|det dx/dz|)``. Both are closed forms (no
iterative inversion), exact up to float rounding.

The elementwise map is a monotone rational-quadratic spline on
:math:`[-B, B]` with :math:`K` bins and the **identity outside** (the
"linear tails" of Durkan et al., with slope 1 so that the map and its
derivative are continuous at :math:`\pm B`). Knots
:math:`(x^k, y^k)_{k=0..K}` run from :math:`(-B, -B)` to :math:`(B, B)`; bin
widths and heights are :math:`2B` times a softmax of unconstrained values
(each bin at least ``min_bin_width`` / ``min_bin_height`` of the range), and
the :math:`K - 1` interior derivatives are a softplus plus ``min_derivative``
(the two boundary derivatives are 1). In bin :math:`k`, with
:math:`w = x^{k+1} - x^k`, :math:`h = y^{k+1} - y^k`, :math:`s = h / w`,
:math:`\xi = (x - x^k) / w` and derivatives :math:`\delta^k, \delta^{k+1}`,

.. math::
    g(x) = y^k + \frac{h\,[s\,\xi^2 + \delta^k \xi(1-\xi)]}
                      {s + (\delta^{k+1} + \delta^k - 2s)\,\xi(1-\xi)},
    \qquad
    g'(x) = \frac{s^2\,[\delta^{k+1}\xi^2 + 2s\,\xi(1-\xi) + \delta^k (1-\xi)^2]}
                 {[s + (\delta^{k+1} + \delta^k - 2s)\,\xi(1-\xi)]^2}

(Durkan et al. 2019, section 3.1; Gregory and Delbourgo 1982). The inverse
solves :math:`a\xi^2 + b\xi + c = 0` for :math:`y` in bin :math:`k`, with
:math:`a = h(s - \delta^k) + (y - y^k)(\delta^{k+1} + \delta^k - 2s)`,
:math:`b = h\delta^k - (y - y^k)(\delta^{k+1} + \delta^k - 2s)` and
:math:`c = -s(y - y^k)`, by the root in its stable form
:math:`\xi = 2c / (-b - \sqrt{b^2 - 4ac})` (no cancellation: :math:`c \le 0`
and the denominator is negative), and :math:`x = x^k + w\xi`.

A coupling layer passes the coordinates with mask 1 through unchanged and
transforms each other coordinate by its own spline, whose :math:`3K - 1`
parameters an MLP computes from the passed-through coordinates; the
log-determinant is the sum of :math:`\log g'` over the transformed
coordinates (a triangular Jacobian after reordering). In 2-D each layer
transforms one coordinate conditioned on the other. The MLP's last layer
starts at zero and the derivative's softplus is shifted so that zero gives
:math:`\delta = 1`: uniform bins with unit derivatives, so that every layer
starts as the identity.

References:
  Durkan, Bekasov, Murray and Papamakarios, "Neural Spline Flows",
  NeurIPS 2019.
  Gregory and Delbourgo, "Piecewise rational quadratic interpolation to
  monotonic data", IMA Journal of Numerical Analysis, 1982.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from divergences.models._flow import alternating_mask, fixed_rotations, flow_forward, flow_inverse
from divergences.models._mlp import ACTIVATIONS


def _check_spline_options(bins: int, bound: float, min_bin_width: float, min_bin_height: float,
                          min_derivative: float) -> None:
    if int(bins) < 2:
        raise ValueError(f"`bins` must be >= 2 (one bin is the identity); got {bins}")
    if not float(bound) > 0:
        raise ValueError(f"`bound` must be > 0; got {bound}")
    for name, value in (("min_bin_width", min_bin_width), ("min_bin_height", min_bin_height)):
        if not 0 <= float(value) * int(bins) < 1:
            raise ValueError(f"`{name}` times `bins` must be in [0, 1); got {value} * {bins}")
    if not 0 <= float(min_derivative) < 1:
        raise ValueError(f"`min_derivative` must be in [0, 1) (the identity needs derivative 1); got {min_derivative}")


def _knots(raw: jax.Array, bound: float, min_share: float) -> jax.Array:
    """``[..., K]`` unconstrained values -> ``[..., K + 1]`` increasing knots from ``-bound`` to ``bound``."""
    k = raw.shape[-1]
    share = min_share + (1.0 - min_share * k) * jax.nn.softmax(raw, axis=-1)
    cum = jnp.cumsum(share, axis=-1)
    knots = 2.0 * bound * cum[..., :-1] - bound
    ends = jnp.full(raw.shape[:-1] + (1,), bound, raw.dtype)
    return jnp.concatenate([-ends, knots, ends], axis=-1)  # the ends exact, whatever the rounding of the sum


def _take(a: jax.Array, idx: jax.Array) -> jax.Array:
    return jnp.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def rational_quadratic_spline(x: jax.typing.ArrayLike, raw_widths: jax.typing.ArrayLike,
                              raw_heights: jax.typing.ArrayLike, raw_derivatives: jax.typing.ArrayLike, *,
                              bound: float = 3.0, inverse: bool = False, min_bin_width: float = 1e-3,
                              min_bin_height: float = 1e-3, min_derivative: float = 1e-3,
                              ) -> tuple[jax.Array, jax.Array]:
    r"""A monotone rational-quadratic spline on ``[-bound, bound]``, the identity outside, elementwise.

    .. math::
        y = g(x), \qquad \log\lvert g'(x)\rvert,

    with :math:`g` as in the module docstring: ``K`` bins, widths and heights
    ``2 * bound * (min + (1 - K min) softmax(raw))``, interior derivatives
    ``min_derivative + softplus(raw + log(expm1(1 - min_derivative)))`` (so
    that raw values 0 give derivative 1), boundary derivatives 1. All-zero
    raw values give the identity.

    Args:
      x: ``[...]`` points (``y`` when ``inverse``).
      raw_widths: ``[..., K]`` unconstrained bin widths.
      raw_heights: ``[..., K]`` unconstrained bin heights.
      raw_derivatives: ``[..., K - 1]`` unconstrained derivatives at the
        interior knots.
      bound: ``B``, the half-width of the spline's square ``[-B, B]^2``.
      inverse: evaluate :math:`g^{-1}` (the quadratic root in its stable
        form) instead of :math:`g`.
      min_bin_width, min_bin_height: each bin's least share of ``2B``.
      min_derivative: the least derivative at the interior knots.

    Returns:
      ``(y, log|dy/dx|)``, both ``[...]``; with ``inverse``,
      ``(x, log|dx/dy|)``. Outside ``[-B, B]`` the identity, log-derivative 0.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from divergences.models import rational_quadratic_spline
      >>> x = jnp.array([-5.0, -1.0, 0.3, 2.0])
      >>> w, h, d = (jax.random.normal(k, (4, n)) for k, n in zip(jax.random.split(jax.random.key(0), 3), (8, 8, 7)))
      >>> y, log_dy = rational_quadratic_spline(x, w, h, d, bound=3.0)
      >>> x_back, log_dx = rational_quadratic_spline(y, w, h, d, bound=3.0, inverse=True)
      >>> bool(jnp.allclose(x_back, x, atol=1e-5)), bool(jnp.allclose(log_dx, -log_dy, atol=1e-5)), float(y[0])
      (True, True, -5.0)

    References:
      Durkan, Bekasov, Murray and Papamakarios, "Neural Spline Flows",
      NeurIPS 2019, section 3.1 (the transform, its derivative) and the
      appendix (the inverse).
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    raw_widths, raw_heights, raw_derivatives = (jnp.asarray(a, x.dtype) for a in (raw_widths, raw_heights, raw_derivatives))
    k = raw_widths.shape[-1]
    if raw_heights.shape[-1] != k or raw_derivatives.shape[-1] != k - 1:
        raise ValueError(f"`raw_heights` must have K = {k} and `raw_derivatives` K - 1 = {k - 1} entries on the last "
                         f"axis; got {raw_heights.shape[-1]} and {raw_derivatives.shape[-1]}")
    _check_spline_options(k, bound, min_bin_width, min_bin_height, min_derivative)
    xs = _knots(raw_widths, bound, min_bin_width)
    ys = _knots(raw_heights, bound, min_bin_height)
    shift = math.log(math.expm1(1.0 - min_derivative))
    ones = jnp.ones(raw_derivatives.shape[:-1] + (1,), x.dtype)
    deriv = jnp.concatenate([ones, min_derivative + jax.nn.softplus(raw_derivatives + shift), ones], axis=-1)

    inside = jnp.abs(x) <= bound
    # The tails take the identity; inside, the spline at a safe point 0 keeps their gradients finite. (A clip
    # instead would halve the gradient at x = +-B, where jax splits a tie's gradient between min and max.)
    u = jnp.where(inside, x, 0.0)
    knots_in = ys if inverse else xs
    idx = jnp.sum(u[..., None] >= knots_in[..., 1:-1], axis=-1)  # the bin, 0..K-1
    x_k, y_k = _take(xs, idx), _take(ys, idx)
    w, h = _take(xs, idx + 1) - x_k, _take(ys, idx + 1) - y_k
    d_k, d_k1 = _take(deriv, idx), _take(deriv, idx + 1)
    s = h / w
    curv = d_k1 + d_k - 2.0 * s
    if inverse:
        dy = u - y_k
        a = h * (s - d_k) + dy * curv
        b = h * d_k - dy * curv
        c = -s * dy
        disc = jnp.maximum(b * b - 4.0 * a * c, 0.0)
        # The denominator is < 0: a + b = h s > 0, so either a >= 0 (then a c <= 0 and the square root is at
        # least |b|, with b > 0 if a c = 0) or a < 0 and b > 0.
        xi = 2.0 * c / (-b - jnp.sqrt(disc))
        out = x_k + w * xi
    else:
        xi = (u - x_k) / w  # in [0, 1] up to rounding, which the formulas tolerate
        t = xi * (1.0 - xi)
        out = y_k + h * (s * xi * xi + d_k * t) / (s + curv * t)
    t = xi * (1.0 - xi)
    log_deriv = (2.0 * jnp.log(s) + jnp.log(d_k1 * xi * xi + 2.0 * s * t + d_k * (1.0 - xi) ** 2)
                 - 2.0 * jnp.log(s + curv * t))
    if inverse:
        log_deriv = -log_deriv
    return jnp.where(inside, out, x), jnp.where(inside, log_deriv, 0.0)


class SplineCoupling(nn.Module):
    """One rational-quadratic spline coupling layer on ``[..., d]``.

    Attributes:
      mask: ``d`` zeros and ones; coordinates with 1 pass through unchanged
        and condition the splines of the others (at least one 0).
      bins: ``K``, the spline's bins.
      bound: ``B``; the spline acts on ``[-B, B]``, the identity outside.
      width, depth, activation: the conditioner MLP (``depth`` hidden layers),
        whose zero-initialised last layer outputs ``3K - 1`` values per
        transformed coordinate.
      min_bin_width, min_bin_height, min_derivative: see
        :func:`rational_quadratic_spline`.
    """

    mask: tuple[int, ...]
    bins: int = 8
    bound: float = 3.0
    width: int = 64
    depth: int = 2
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    min_bin_width: float = 1e-3
    min_bin_height: float = 1e-3
    min_derivative: float = 1e-3

    def setup(self):
        _check_spline_options(self.bins, self.bound, self.min_bin_width, self.min_bin_height, self.min_derivative)
        if all(self.mask):
            raise ValueError(f"`mask` must leave at least one coordinate to transform (a 0); got {self.mask}")
        self.hidden = [nn.Dense(self.width, name=f"hidden_{i}") for i in range(self.depth)]
        n_free = len(self.mask) - sum(self.mask)
        self.out = nn.Dense(n_free * (3 * self.bins - 1), kernel_init=nn.initializers.zeros,
                            bias_init=nn.initializers.zeros, name="out")

    def _transform(self, x: jax.Array, inverse: bool) -> tuple[jax.Array, jax.Array]:
        act = ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation
        h = x * jnp.asarray(self.mask, x.dtype)
        for layer in self.hidden:
            h = act(layer(h))
        free = np.flatnonzero(np.asarray(self.mask) == 0)
        k = self.bins
        raw = self.out(h).reshape(x.shape[:-1] + (len(free), 3 * k - 1))
        y, log_deriv = rational_quadratic_spline(
            x[..., free], raw[..., :k], raw[..., k : 2 * k], raw[..., 2 * k :], bound=self.bound, inverse=inverse,
            min_bin_width=self.min_bin_width, min_bin_height=self.min_bin_height, min_derivative=self.min_derivative)
        return x.at[..., free].set(y), jnp.sum(log_deriv, axis=-1)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Normalizing direction: ``x -> (z, log|det dz/dx|)``, shapes ``[..., d]`` and ``[...]``."""
        return self._transform(x, inverse=False)

    def inverse(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Generative direction: ``z -> (x, log|det dx/dz|)``."""
        return self._transform(z, inverse=True)  # the passed-through coordinates are the same on both sides


class NeuralSplineFlow(nn.Module):
    """A stack of rational-quadratic spline couplings with alternating masks, on ``[..., dim]``.

    The same interface and options as :class:`divergences.models.RealNVP`,
    with :class:`SplineCoupling` layers instead of affine ones:
    ``log p(x) = log N(z; 0, I) + log|det dz/dx|`` with
    ``(z, log|det dz/dx|) = flow(x)``.

    Attributes:
      dim: the data dimension (at least 2: a coupling needs a coordinate to
        condition on).
      n_layers: number of coupling layers (at least 2 so that every
        coordinate is transformed).
      bins, bound: each spline's ``K`` and ``B`` (the identity outside
        ``[-B, B]``, in the units after the elementwise affine map).
      width, depth, activation: each layer's conditioner MLP.
      min_bin_width, min_bin_height, min_derivative: see
        :func:`rational_quadratic_spline`.
      elementwise_affine: a learned per-coordinate shift and log-scale
        before the couplings (on the data side).
      rotations: a fixed orthogonal matrix (drawn once from ``seed``, not
        trained) after every coupling but the last, as in ``RealNVP``.
      seed: seeds the rotations.

    ``__call__(x) -> (z, log|det dz/dx|)``; ``inverse(z) -> (x, log|det dx/dz|)``
    (call it with ``model.apply(params, z, method="inverse")``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from divergences.models import NeuralSplineFlow
      >>> flow = NeuralSplineFlow(dim=2, n_layers=4, bins=8, bound=4.0, width=16)
      >>> x = jnp.array([[0.5, -1.0], [5.0, 2.0]])
      >>> params = flow.init(jax.random.key(0), x)
      >>> z, log_det = flow.apply(params, x)  # every layer starts as the identity
      >>> bool(jnp.allclose(z, x, atol=1e-6)), log_det.shape
      (True, (2,))
      >>> x_back, _ = flow.apply(params, z, method="inverse")
      >>> x_back.shape
      (2, 2)

    References:
      Durkan, Bekasov, Murray and Papamakarios, "Neural Spline Flows",
      NeurIPS 2019.
    """

    dim: int
    n_layers: int = 8
    bins: int = 8
    bound: float = 3.0
    width: int = 64
    depth: int = 2
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    min_bin_width: float = 1e-3
    min_bin_height: float = 1e-3
    min_derivative: float = 1e-3
    elementwise_affine: bool = True
    rotations: bool = False
    seed: int = 0

    def _rotations(self) -> list[np.ndarray]:
        return fixed_rotations(self.dim, self.n_layers - 1, self.seed) if self.rotations else []

    def setup(self):
        if self.dim < 2 or self.n_layers < 1:
            raise ValueError(f"`dim` must be >= 2 and `n_layers` >= 1; got {self.dim} and {self.n_layers}")
        self.layers = [
            SplineCoupling(mask=alternating_mask(self.dim, i), bins=self.bins, bound=self.bound, width=self.width,
                           depth=self.depth, activation=self.activation, min_bin_width=self.min_bin_width,
                           min_bin_height=self.min_bin_height, min_derivative=self.min_derivative,
                           name=f"coupling_{i}")
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
