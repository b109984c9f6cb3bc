r"""Maximum mean discrepancy (MMD) between two samples, with blocked kernel sums.

Kernels are small pytree classes (like ott-jax's costs): the kernel's kind is
static (its class), the bandwidth is a leaf, so a kernel with a traced or
computed bandwidth passes through ``jit``, ``vmap`` and ``grad``. Calling a
kernel on two point sets gives their Gram matrix.

Bandwidth conventions (``h`` the bandwidth, ``r = ||a - b||`` the Euclidean
distance):

==========================  =================================================
``"gaussian"``              :math:`\exp(-r^2 / (2 h^2))`
``"laplace"``               :math:`\exp(-r / h)`
``"inverse_multiquadric"``  :math:`(1 + r^2 / h^2)^{-1/2}`
``"energy"``                :math:`-r` (no bandwidth; MMD^2 is then the
                            energy distance of Szekely and Rizzo)
``"polynomial"``            :math:`(\gamma\, a \cdot b + c_0)^p`, by default
                            :math:`(a \cdot b / d + 1)^3` (the KID kernel of
                            Binkowski et al.; :class:`PolynomialKernel` for
                            other ``degree``, ``gamma``, ``coef``)
==========================  =================================================

An array of bandwidths gives the sum of the kernels at each bandwidth (a
multi-scale kernel, as in MMD-GAN). ``bandwidth=None`` uses the median
heuristic (:func:`median_bandwidth`): ``h`` is the median Euclidean distance
between distinct points of the pooled sample, computed on at most 1,000
evenly strided points so that it costs O(1) in the sample size, and held
constant for differentiation.

Distances are computed as ``||a||^2 + ||b||^2 - 2 a.b`` (one matrix product)
after centring both samples on their pooled mean, which limits the
cancellation of that formula; squared distances are clamped at 0. For the
built-in distance kernels the centred points (and the bandwidth) are then
divided by a power of 2 near their largest magnitude, so that the squares
cannot underflow or overflow: the statistics are translation invariant and
scale-equivariant from data of scale 1e-30 to 1e30 in float32 (the energy
distance scales with the data, the bandwidth kernels are unchanged when the
bandwidth scales too). Kernels that are not functions of the distance (the
polynomial kernel, callables) see the raw points.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from divergences import _sort
from divergences import _validation as v
from divergences._numerics import matrix_sum
from divergences._numerics import safe_sqrt as _safe_sqrt  # derivative 0 (not inf/NaN) at 0

__all__ = [
    "mmd",
    "resolve_kernel",
    "median_bandwidth",
    "Kernel",
    "GaussianKernel",
    "LaplaceKernel",
    "InverseMultiquadricKernel",
    "EnergyKernel",
    "CallableKernel",
    "PolynomialKernel",
    "KERNELS",
    "KERNEL_ALIASES",
    "ESTIMATORS",
]

ESTIMATORS = ("unbiased", "biased", "linear")

# Points used by the median heuristic at most (its cost is quadratic in them).
MEDIAN_HEURISTIC_POINTS = 1000


def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
    """Squared Euclidean distances ``[n, m]`` through one matrix product."""
    aa = jnp.sum(a * a, axis=-1)
    bb = jnp.sum(b * b, axis=-1)
    d2 = aa[:, None] + bb[None, :] - 2 * (a @ b.T)
    return jnp.where(d2 > 0, d2, 0)


@jax.tree_util.register_pytree_node_class
class Kernel:
    """Base class: a translation-invariant kernel of the distance.

    Subclasses define :meth:`of_sq_dist` for one bandwidth; an array of
    bandwidths sums the kernels over its entries. Calling the kernel on
    ``a [n, d]`` and ``b [m, d]`` returns the Gram matrix ``[n, m]``.
    """

    name = "kernel"
    needs_bandwidth = True
    # A function of the distance only: `mmd` may centre the samples first.
    translation_invariant = True

    def __init__(self, bandwidth: ArrayLike | None = None):
        self.bandwidth = bandwidth

    def of_sq_dist(self, d2: jax.Array, h: jax.Array) -> jax.Array:
        raise NotImplementedError

    def __call__(self, a: jax.Array, b: jax.Array) -> jax.Array:
        d2 = _sq_dists(a, b)
        if not self.needs_bandwidth:
            return self.of_sq_dist(d2, None)
        h = jnp.asarray(self.bandwidth, d2.dtype)
        if h.ndim == 0:
            return self.of_sq_dist(d2, h)
        return sum(self.of_sq_dist(d2, h[i]) for i in range(h.shape[0]))

    def diagonal(self, a: jax.Array) -> jax.Array:
        """``k(a_i, a_i)`` for each row of ``a``, exactly (distance 0)."""
        d2 = jnp.zeros(a.shape[:1], a.dtype)
        if not self.needs_bandwidth:
            return self.of_sq_dist(d2, None)
        h = jnp.asarray(self.bandwidth, a.dtype)
        if h.ndim == 0:
            return self.of_sq_dist(d2, h)
        return sum(self.of_sq_dist(d2, h[i]) for i in range(h.shape[0]))

    def tree_flatten(self):
        return (self.bandwidth,), None

    @classmethod
    def tree_unflatten(cls, aux_data, children):
        del aux_data
        return cls(*children)

    def __repr__(self):
        return f"{type(self).__name__}(bandwidth={self.bandwidth!r})"


@jax.tree_util.register_pytree_node_class
class GaussianKernel(Kernel):
    r""":math:`k(a, b) = \exp(-\|a - b\|^2 / (2 h^2))`."""

    name = "gaussian"

    def of_sq_dist(self, d2, h):
        return jnp.exp(-d2 / (2 * h * h))


@jax.tree_util.register_pytree_node_class
class LaplaceKernel(Kernel):
    r""":math:`k(a, b) = \exp(-\|a - b\| / h)`."""

    name = "laplace"

    def of_sq_dist(self, d2, h):
        return jnp.exp(-_safe_sqrt(d2) / h)


@jax.tree_util.register_pytree_node_class
class InverseMultiquadricKernel(Kernel):
    r""":math:`k(a, b) = (1 + \|a - b\|^2 / h^2)^{-1/2}`."""

    name = "inverse_multiquadric"

    def of_sq_dist(self, d2, h):
        return jax.lax.rsqrt(1 + d2 / (h * h))


@jax.tree_util.register_pytree_node_class
class EnergyKernel(Kernel):
    r""":math:`k(a, b) = -\|a - b\|`: the (conditionally positive definite) distance kernel."""

    name = "energy"
    needs_bandwidth = False

    def of_sq_dist(self, d2, h):
        del h
        return -_safe_sqrt(d2)


@jax.tree_util.register_pytree_node_class
class CallableKernel(Kernel):
    """A user kernel ``fn(a, b) -> scalar`` on two points ``[d]``, vectorised into a Gram matrix."""

    name = "callable"
    needs_bandwidth = False
    translation_invariant = False

    def __init__(self, fn: Callable[[jax.Array, jax.Array], jax.Array]):
        self.fn = fn
        self.bandwidth = None

    def __call__(self, a, b):
        return jax.vmap(lambda ai: jax.vmap(lambda bj: self.fn(ai, bj))(b))(a)

    def diagonal(self, a):
        return jax.vmap(self.fn)(a, a)

    def tree_flatten(self):
        return (), self.fn

    @classmethod
    def tree_unflatten(cls, aux_data, children):
        return cls(aux_data)

    def __repr__(self):
        return f"CallableKernel({self.fn!r})"


@jax.tree_util.register_pytree_node_class
class PolynomialKernel(Kernel):
    r""":math:`k(a, b) = (\gamma\, a \cdot b + c_0)^p`; by default the KID kernel :math:`(a \cdot b / d + 1)^3`.

    Not a function of the distance, so :func:`mmd` does not centre the
    samples for it. ``degree`` is static (part of the kernel's type, a
    Python int); ``gamma`` and ``coef`` are leaves and may be traced.

    Args:
      degree: the power :math:`p`, an integer ``>= 1``.
      gamma: the scale of the inner product; ``None``: :math:`1/d`, with
        :math:`d` the feature dimension of the points.
      coef: the offset :math:`c_0`.
    """

    name = "polynomial"
    needs_bandwidth = False
    translation_invariant = False

    def __init__(self, degree: int = 3, gamma: ArrayLike | None = None, coef: ArrayLike = 1.0):
        self.degree = v.check_int("degree", degree, minimum=1)
        self.gamma = gamma
        self.coef = coef
        self.bandwidth = None

    def _gamma(self, a: jax.Array) -> jax.Array:
        if self.gamma is None:
            return jnp.asarray(1.0 / a.shape[-1], a.dtype)
        return jnp.asarray(self.gamma, a.dtype)

    def _of_dot(self, dot: jax.Array, a: jax.Array) -> jax.Array:
        return (self._gamma(a) * dot + jnp.asarray(self.coef, a.dtype)) ** self.degree

    def __call__(self, a, b):
        return self._of_dot(a @ b.T, a)

    def diagonal(self, a):
        return self._of_dot(jnp.sum(a * a, axis=-1), a)

    def tree_flatten(self):
        return (self.gamma, self.coef), self.degree

    @classmethod
    def tree_unflatten(cls, aux_data, children):
        obj = object.__new__(cls)
        obj.degree = aux_data
        obj.gamma, obj.coef = children
        obj.bandwidth = None
        return obj

    def __repr__(self):
        return f"PolynomialKernel(degree={self.degree}, gamma={self.gamma!r}, coef={self.coef!r})"


KERNELS = {
    "gaussian": GaussianKernel,
    "laplace": LaplaceKernel,
    "inverse_multiquadric": InverseMultiquadricKernel,
    "energy": EnergyKernel,
    "polynomial": PolynomialKernel,
}

# Common other names of the kernels (scikit-learn's "rbf" and "laplacian").
KERNEL_ALIASES = {"rbf": "gaussian", "laplacian": "laplace", "imq": "inverse_multiquadric"}


def _strided(z: jax.Array, k: int) -> jax.Array:
    n = z.shape[0]
    if n <= k:
        return z
    idx = np.round(np.linspace(0, n - 1, k)).astype(np.int32)
    return z[idx]


def median_bandwidth(x: ArrayLike, y: ArrayLike | None = None) -> jax.Array:
    r"""Median heuristic: the median distance between distinct pooled points.

    .. math::
        h = \operatorname{median}\{\|z_i - z_j\| : i < j\}, \qquad z = (x_1, \ldots, x_n, y_1, \ldots, y_m),

    computed on at most 1,000 evenly strided points of ``z`` (all of them when
    there are fewer), so its cost does not grow with the sample size. The
    result is held constant for differentiation (``stop_gradient``). It is
    scale-equivariant (``h(c z) = c h(z)``, exactly for powers of 2): the
    points are centred and divided by a power of 2 near their largest
    magnitude before squaring, so squares neither underflow (data of scale
    1e-30) nor overflow (1e30) in float32. When more than half of the pairs
    coincide (the median is 0) it falls back to the mean distance, and it is
    1 only when all points coincide (any bandwidth then gives the same
    kernel values; a zero bandwidth would make the kernels NaN).

    Args:
      x: samples, shape ``[n, d]`` (or ``[n]`` for 1-D samples).
      y: optional second sample, ``[m, d]`` (or ``[m]``), pooled with ``x``.

    Returns:
      A positive scalar, float32 at least. Under ``jit``, NaN when a sample
      is not finite (an eager call raises).

    Example:
      >>> import jax.numpy as jnp
      >>> import divergences as dv
      >>> float(dv.median_bandwidth(jnp.array([[0.0], [1.0], [3.0]])))
      2.0

    References:
      Gretton et al., "A Kernel Two-Sample Test", JMLR 13 (2012), sec. 8;
      Garreau, Jitkrittum and Kanagawa, "Large sample analysis of the median
      heuristic" (2017).
    """
    x = v.as_samples("x", x)
    z = x
    if y is not None:
        y = v.as_samples("y", y)
        v.check_same_dim("x", x, "y", y)
        dtype = v.float_dtype(x, y)
        z = jnp.concatenate([x.astype(dtype), y.astype(dtype)])
    return _median_core(jax.lax.stop_gradient(_strided(z, MEDIAN_HEURISTIC_POINTS)))


@jax.jit
def _median_core(z: jax.Array) -> jax.Array:
    k = z.shape[0]
    finite = jnp.all(jnp.isfinite(z))
    if k < 2:
        return jnp.where(finite, jnp.ones((), z.dtype), jnp.nan)
    z = z - jnp.mean(z, axis=0)
    scale = _power_of_two_scale(z)
    z = z / scale
    iu, ju = np.triu_indices(k, 1)
    d = _safe_sqrt(_sq_dists(z, z)[iu, ju])
    ds = _sort.sort(d)
    c = ds.shape[0]
    med = ds[c // 2] if c % 2 else 0.5 * (ds[c // 2 - 1] + ds[c // 2])
    mean = jnp.mean(d)
    h = jnp.where(med > 0, med, jnp.where(mean > 0, mean, 1 / scale)) * scale
    return jnp.where(finite, h, jnp.nan)


def _power_of_two_scale(z: jax.Array) -> jax.Array:
    """A power of 2 near ``max |z|`` (1 for all-zero or non-finite ``z``): dividing by it is exact."""
    top = jnp.max(jnp.abs(z))
    ok = (top > 0) & jnp.isfinite(top)
    return jnp.where(ok, jnp.exp2(jnp.floor(jnp.log2(jnp.where(ok, top, 1)))), 1).astype(z.dtype)


# The kernels of this module, all functions of ||a - b|| / h (energy: homogeneous of degree 1 in
# the points), so that dividing the points and the bandwidth by one scale changes nothing (energy:
# scales the value). A user's Kernel subclass or callable is evaluated on the points as given.
_SCALE_FREE = (GaussianKernel, LaplaceKernel, InverseMultiquadricKernel)


def _scale_free(gram: Kernel, x: jax.Array, y: jax.Array) -> tuple[Kernel, jax.Array, jax.Array, jax.Array]:
    """Divide centred points (and the bandwidth) by a power of 2 near their largest magnitude.

    Squared distances of data of scale 1e-30 underflow and of 1e30 overflow in float32; after the
    division they are of order 1. Returns ``(gram, x, y, factor)``: multiply the statistic by
    ``factor`` (the scale for the energy kernel, 1 for the others).
    """
    one = jnp.ones((), x.dtype)
    if type(gram) not in _SCALE_FREE + (EnergyKernel,):
        return gram, x, y, one
    scale = jax.lax.stop_gradient(jnp.maximum(_power_of_two_scale(x), _power_of_two_scale(y)))
    if type(gram) is EnergyKernel:
        return gram, x / scale, y / scale, scale
    return type(gram)(jnp.asarray(gram.bandwidth, x.dtype) / scale), x / scale, y / scale, one


def check_bandwidth(bandwidth: ArrayLike) -> jax.Array:
    """A bandwidth: a positive finite scalar or 1-D array. Eagerly raises; under ``jit``, NaN where invalid."""
    h = v.as_float_array("bandwidth", bandwidth)
    if h.ndim > 1:
        raise v.fail("bandwidth", f"must be a scalar or a 1-D array of bandwidths; got shape {h.shape}")
    if h.size == 0:
        raise v.fail("bandwidth", "is empty")
    ok = v.require("bandwidth", jnp.isfinite(h) & (h > 0), "must be positive and finite")
    return jnp.where(ok, h, jnp.nan)


def resolve_kernel(kernel, bandwidth, x: ArrayLike, y: ArrayLike) -> Kernel:
    """Turn ``kernel`` and ``bandwidth`` into a Gram-matrix function with the bandwidth fixed.

    Args:
      kernel: a name in ``KERNELS`` or ``KERNEL_ALIASES``, a :class:`Kernel` instance (used as
        is; ``bandwidth`` must then be ``None``), or a callable
        ``fn(a, b) -> scalar`` on two points of shape ``[d]``.
      bandwidth: a positive float, an array of positive floats (multi-scale
        sum), or ``None`` for the median heuristic over the pooled ``x`` and
        ``y`` (:func:`median_bandwidth`). Must be ``None`` for ``"energy"``
        and callables.
      x, y: the two samples, ``[n, d]`` and ``[m, d]`` (for the heuristic).

    Returns:
      A :class:`Kernel` (a pytree): ``gram(a, b)`` gives the ``[len(a), len(b)]``
      Gram matrix.

    Example:
      >>> import jax.numpy as jnp
      >>> import divergences as dv
      >>> x = jnp.array([[0.0], [1.0]])
      >>> gram = dv.resolve_kernel("rbf", 1.0, x, x)  # "rbf" is the Gaussian kernel
      >>> gram
      GaussianKernel(bandwidth=Array(1., dtype=float32))
      >>> [round(float(k), 4) for k in gram(x, x)[0]]  # exp(-1/2) off the diagonal
      [1.0, 0.6065]
    """
    if isinstance(kernel, Kernel):
        if bandwidth is not None:
            raise v.fail("bandwidth", "must be None when `kernel` is a Kernel instance (it carries its bandwidth)")
        return kernel
    if callable(kernel):
        if bandwidth is not None:
            raise v.fail("bandwidth", "must be None for a callable `kernel` (close over it instead)")
        return CallableKernel(kernel)
    name = v.check_choice("kernel", kernel, tuple(KERNELS), KERNEL_ALIASES)
    cls = KERNELS[name]
    if not cls.needs_bandwidth:
        if bandwidth is not None:
            raise v.fail("bandwidth", f"must be None for the {name!r} kernel, which has no bandwidth; got {bandwidth!r}")
        return cls()
    if bandwidth is None:
        return cls(median_bandwidth(x, y))
    return cls(check_bandwidth(bandwidth))


@functools.partial(jax.jit, static_argnames=("block_size", "exclude_diagonal"))
def _kernel_sum(
    gram: Kernel,
    a: jax.Array,
    b: jax.Array,
    block_size: int | None,
    exclude_diagonal: bool,
    wa: jax.Array | None = None,
    wb: jax.Array | None = None,
) -> jax.Array:
    """``sum_{i, j} wa_i k(a_i, b_j) wb_j`` (``i != j`` if ``exclude_diagonal``; no weights: 1), in row blocks."""
    if wa is not None:
        # One weighted sum: a column-weighted Gram matrix, rows weighted through `a`'s weights.
        return _weighted_kernel_sum(gram, a, b, block_size, exclude_diagonal, wa, wb)
    n = a.shape[0]
    if block_size is None or block_size >= n:
        k = gram(a, b)
        if exclude_diagonal:
            k = jnp.where(jnp.eye(n, b.shape[0], dtype=bool), 0, k)
        return matrix_sum(k)
    nb = -(-n // block_size)
    a_pad = jnp.pad(a, ((0, nb * block_size - n), (0, 0)))
    cols = jnp.arange(b.shape[0])

    def block(i):
        start = i * block_size
        rows = jax.lax.dynamic_slice_in_dim(a_pad, start, block_size)
        k = gram(rows, b)  # [block_size, m]: the only large intermediate
        r = start + jnp.arange(block_size)
        keep = (r < n)[:, None]
        if exclude_diagonal:
            keep = keep & (r[:, None] != cols[None, :])
        # Row sums first, then their total: shorter float32 accumulations.
        return matrix_sum(jnp.where(keep, k, 0))

    # checkpoint: the backward pass recomputes each block's Gram matrix
    # instead of storing all of them, keeping memory O(block_size * m).
    return jnp.sum(jax.lax.map(jax.checkpoint(block), jnp.arange(nb)))


def _weighted_kernel_sum(gram, a, b, block_size, exclude_diagonal, wa, wb):
    """``sum_{i, j} wa_i k(a_i, b_j) wb_j``, the row blocks of :func:`_kernel_sum` with weights."""
    n = a.shape[0]
    if block_size is None or block_size >= n:
        k = gram(a, b)
        if exclude_diagonal:
            k = jnp.where(jnp.eye(n, b.shape[0], dtype=bool), 0, k)
        return jnp.sum(wa * (k @ wb))
    nb = -(-n // block_size)
    a_pad = jnp.pad(a, ((0, nb * block_size - n), (0, 0)))
    wa_pad = jnp.pad(wa, (0, nb * block_size - n))
    cols = jnp.arange(b.shape[0])

    def block(i):
        start = i * block_size
        rows = jax.lax.dynamic_slice_in_dim(a_pad, start, block_size)
        w_rows = jax.lax.dynamic_slice_in_dim(wa_pad, start, block_size)
        k = gram(rows, b)
        if exclude_diagonal:
            r = start + jnp.arange(block_size)
            k = jnp.where(r[:, None] != cols[None, :], k, 0)
        return jnp.sum(w_rows * (k @ wb))  # padded rows have weight 0

    return jnp.sum(jax.lax.map(jax.checkpoint(block), jnp.arange(nb)))


@v.compiled_when_eager(traced=("bandwidth",))
def mmd(
    x: ArrayLike,
    y: ArrayLike,
    *,
    kernel: str | Kernel | Callable = "gaussian",
    bandwidth: ArrayLike | None = None,
    estimator: str = "unbiased",
    block_size: int | None = None,
    x_weights: ArrayLike | None = None,
    y_weights: ArrayLike | None = None,
) -> jax.Array:
    r"""Squared maximum mean discrepancy between two samples.

    .. math::
        \mathrm{MMD}^2(P, Q) = \mathbb{E}\,k(X, X') + \mathbb{E}\,k(Y, Y') - 2\,\mathbb{E}\,k(X, Y).

    Estimators, for :math:`x_1..x_n \sim P`, :math:`y_1..y_m \sim Q`:

    * ``"unbiased"`` (U-statistic): :math:`\frac{1}{n(n-1)}\sum_{i \ne j} k(x_i, x_j)
      + \frac{1}{m(m-1)}\sum_{i \ne j} k(y_i, y_j) - \frac{2}{nm}\sum_{i,j} k(x_i, y_j)`;
      it can be negative, and its mean is exactly :math:`\mathrm{MMD}^2`.
    * ``"biased"`` (V-statistic): the same with all pairs and :math:`1/n^2`,
      :math:`1/m^2`; it is non-negative.
    * ``"linear"`` (Gretton et al. 2012, Lemma 14): with :math:`N = \lfloor \min(n, m)/2 \rfloor`,
      :math:`\frac1N \sum_{i=1}^{N} k(x_{2i-1}, x_{2i}) + k(y_{2i-1}, y_{2i}) - k(x_{2i-1}, y_{2i}) - k(x_{2i}, y_{2i-1})`:
      unbiased, in linear time, with higher variance.

    **Weights.** With sample weights :math:`w` (normalised to sum to 1) the
    biased estimator is the MMD between the weighted empirical measures,
    :math:`\sum_{ij} w_i w_j k(x_i, x_j) + \ldots - 2 \sum_{ij} w_i v_j k(x_i, y_j)`,
    and the unbiased one divides the off-diagonal sums by
    :math:`1 - \sum_i w_i^2` instead of :math:`n(n-1)/n^2`, which reduces to
    the U-statistic for equal weights (and is unbiased for weights fixed
    independently of the samples). The linear estimator takes no weights.

    With ``kernel="energy"`` (:math:`k = -\|a - b\|`) the biased estimator
    is the energy distance :math:`2\mathbb{E}\|X - Y\| - \mathbb{E}\|X - X'\| - \mathbb{E}\|Y - Y'\|`
    of the two empirical measures.

    Args:
      x: samples along axis 0, shape ``[n, d]``; ``[n]`` is read as
        ``n`` one-dimensional samples (the same as ``[n, 1]``).
      y: samples, shape ``[m, d]`` (or ``[m]``).
      kernel: ``"gaussian"`` (alias ``"rbf"``), ``"laplace"`` (alias
        ``"laplacian"``), ``"inverse_multiquadric"`` (alias ``"imq"``),
        ``"energy"``, ``"polynomial"``, a :class:`Kernel` (:class:`GaussianKernel`,
        :class:`LaplaceKernel`, :class:`InverseMultiquadricKernel`,
        :class:`EnergyKernel`, :class:`PolynomialKernel`, :class:`CallableKernel`, all exported by
        :mod:`divergences`), or a callable ``fn(a, b) -> scalar``
        on two points of shape ``[d]``. Conventions in the module docstring;
        the Gaussian kernel is :math:`\exp(-\|a - b\|^2 / (2h^2))`.
      bandwidth: a positive float, an array of bandwidths (the kernel is the
        sum over them), or ``None`` for the median heuristic
        (:func:`median_bandwidth`; at most 1,000 points, no gradient).
      estimator: ``"unbiased"``, ``"biased"`` or ``"linear"``.
      block_size: compute the kernel sums ``block_size`` rows at a time, so
        memory is ``O(block_size * (n + m))`` rather than ``O((n + m)^2)``,
        in the forward and the backward pass; ``None``: whole Gram matrices.
      x_weights: optional weights of the ``x`` samples, ``[n]``, ``>= 0``
        with a positive total (normalised internally); ``None``: equal.
      y_weights: optional weights of the ``y`` samples, ``[m]``.

    Returns:
      :math:`\widehat{\mathrm{MMD}^2}`, a scalar, float32 at least (the square,
      not the root). Under ``jit``, NaN when a sample is not finite.

    Example:
      >>> import jax
      >>> import divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (200, 2))
      >>> y = jax.random.normal(jax.random.key(1), (200, 2)) + 1.0
      >>> bool(dv.mmd(x, y, bandwidth=1.0) > 0.1)
      True

    References:
      Gretton, Borgwardt, Rasch, Scholkopf and Smola, "A Kernel Two-Sample
      Test", JMLR 13 (2012). Szekely and Rizzo, "Energy statistics", J.
      Stat. Plan. Inference 143 (2013). Li et al., "MMD GAN", NeurIPS 2017
      (multi-scale kernels).
    """
    estimator = v.check_choice("estimator", estimator, ESTIMATORS)
    if block_size is not None:
        block_size = v.check_int("block_size", block_size, minimum=1)
    min_samples = {"unbiased": 2, "biased": 1, "linear": 2}[estimator]
    x = v.as_samples("x", x, min_samples=min_samples)
    y = v.as_samples("y", y, min_samples=min_samples)
    v.check_same_dim("x", x, "y", y)
    dtype = v.float_dtype(x, y)
    x, y = x.astype(dtype), y.astype(dtype)
    gram = resolve_kernel(kernel, bandwidth, x, y)
    if x_weights is not None or y_weights is not None:
        return _weighted_mmd(gram, x, y, estimator, block_size, x_weights, y_weights)
    # Distances are translation invariant; centring limits the cancellation
    # in ||a||^2 + ||b||^2 - 2 a.b (a callable kernel sees the raw points).
    if gram.translation_invariant:
        center = jax.lax.stop_gradient(0.5 * (jnp.mean(x, 0) + jnp.mean(y, 0)))
        x, y = x - center, y - center
    # Squares of data of scale 1e30 (or 1e-30) overflow (underflow) in float32: rescale.
    gram, x, y, factor = _scale_free(gram, x, y)
    n, m = x.shape[0], y.shape[0]
    if estimator == "linear":
        half = min(n, m) // 2
        x1, x2 = x[0 : 2 * half : 2], x[1 : 2 * half : 2]
        y1, y2 = y[0 : 2 * half : 2], y[1 : 2 * half : 2]
        pair = jax.vmap(lambda a, b: gram(a[None], b[None])[0, 0])
        value = jnp.mean(pair(x1, x2) + pair(y1, y2) - pair(x1, y2) - pair(x2, y1))
    else:
        unbiased = estimator == "unbiased"
        # The diagonal k(x_i, x_i) is left out of the sums (the U-statistic
        # has no such terms) and, for the V-statistic, added back exactly:
        # the matrix-product distances are not exactly 0 there.
        kxx = _kernel_sum(gram, x, x, block_size, True)
        kyy = _kernel_sum(gram, y, y, block_size, True)
        if not unbiased:
            kxx = kxx + jnp.sum(gram.diagonal(x))
            kyy = kyy + jnp.sum(gram.diagonal(y))
        kxy = _kernel_sum(gram, x, y, block_size, False)
        # Python floats: n * (n - 1) overflows int32 from n = 46,341 on.
        if unbiased:
            value = kxx / float(n * (n - 1)) + kyy / float(m * (m - 1)) - 2 * kxy / float(n * m)
        else:
            value = kxx / float(n * n) + kyy / float(m * m) - 2 * kxy / float(n * m)
    value = value * factor
    if v.is_concrete(value):
        return value
    ok = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(y))
    return jnp.where(ok, value, jnp.nan)


def _weighted_mmd(gram, x, y, estimator, block_size, x_weights, y_weights):
    """The weighted biased/unbiased estimators of :func:`mmd` (see its docstring)."""
    if estimator == "linear":
        raise v.fail("x_weights" if x_weights is not None else "y_weights", "is not supported with estimator='linear'; use 'unbiased' or 'biased'")
    n, m = x.shape[0], y.shape[0]
    wx = jnp.full((n,), 1.0 / n, x.dtype) if x_weights is None else v.check_weights("x_weights", x_weights, shape=(n,), samples_name="x").astype(x.dtype)
    wy = jnp.full((m,), 1.0 / m, y.dtype) if y_weights is None else v.check_weights("y_weights", y_weights, shape=(m,), samples_name="y").astype(y.dtype)
    if gram.translation_invariant:
        center = jax.lax.stop_gradient(0.5 * (jnp.mean(x, 0) + jnp.mean(y, 0)))
        x, y = x - center, y - center
    gram, x, y, factor = _scale_free(gram, x, y)
    kxx = _kernel_sum(gram, x, x, block_size, True, wx, wx)
    kyy = _kernel_sum(gram, y, y, block_size, True, wy, wy)
    kxy = _kernel_sum(gram, x, y, block_size, False, wx, wy)
    if estimator == "unbiased":
        # 1 - sum w^2 is 0 when one sample carries all the weight: NaN then (no pairs).
        value = kxx / (1 - jnp.sum(wx * wx)) + kyy / (1 - jnp.sum(wy * wy)) - 2 * kxy
    else:
        value = kxx + jnp.sum(wx * wx * gram.diagonal(x)) + kyy + jnp.sum(wy * wy * gram.diagonal(y)) - 2 * kxy
    value = value * factor
    if v.is_concrete(value):
        return value
    ok = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(y))
    return jnp.where(ok, value, jnp.nan)
