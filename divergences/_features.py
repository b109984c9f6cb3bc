r"""Sample-quality metrics in a feature space: Fréchet distance, KID, precision/recall, density/coverage.

The user brings the feature extractor (Inception-v3 pool features for FID and
KID, a classifier's embedding, or the raw data for low-dimensional toys):
every function here takes feature arrays ``[n, d]``, samples along axis 0.

Conventions, where the usual implementations differ:

* **Fréchet distance** is the *squared* Fréchet (2-Wasserstein) distance
  between the two fitted Gaussians, as FID reports it (no root), with the
  unbiased covariance (divisor ``n - 1``, like ``numpy.cov``). The trace of
  the matrix square root is computed from symmetric eigen-decompositions,
  :math:`\operatorname{tr}(\Sigma_x\Sigma_y)^{1/2} = \sum_i \sqrt{\lambda_i(\Sigma_x^{1/2}\Sigma_y\Sigma_x^{1/2})}`,
  with eigenvalues below the round-off of ``eigh`` set to 0, so it is exact for singular
  (positive semi-definite) covariances, such as those of fewer samples than
  dimensions, where a general ``sqrtm`` returns complex noise.
* **Statistics are accumulated in float64 when JAX has it**
  (``jax.config.update("jax_enable_x64", True)``), otherwise in float32 with
  compensated (Kahan) sums of the batch updates and the pairwise-stable
  merge of Chan, Golub and LeVeque, so the streaming form loses no
  accuracy to the number of batches. The eigen-decompositions run in the
  same dtype: float64 is recommended for a reported FID (in float32 the
  round-off of the :math:`d` small eigenvalues enters through their square
  roots; see the README for measured differences).
* **KID** is the mean and the population standard deviation (``ddof=0``, as
  torchmetrics reports it) of the unbiased MMD² with the cubic polynomial
  kernel :math:`(a \cdot b / d + 1)^3` over random subsets drawn without
  replacement; clean-fid reports the mean only.
* **Precision, recall, density and coverage** follow the ``prdc`` package:
  the radius of a point is the distance to its k-th nearest neighbour in
  its own set (itself excluded), and "within" is strict (``<``). Distances
  are computed in row blocks, ``block_size`` query rows against the whole
  other set at a time, so memory is one centred copy of each set plus
  ``O(block_size * (n + m))``, never ``O(n * m)``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences._mmd import PolynomialKernel, _kernel_sum

__all__ = [
    "FrechetState",
    "frechet_init",
    "frechet_update",
    "frechet_compute",
    "frechet_distance",
    "KIDResult",
    "kernel_inception_distance",
    "PrecisionRecall",
    "precision_recall",
    "DensityCoverage",
    "density_coverage",
]


def _accumulation_dtype() -> jnp.dtype:
    """float64 when JAX has it enabled, float32 otherwise."""
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def _features(name: str, x: ArrayLike, *, min_samples: int) -> jax.Array:
    x = v.as_float_array(name, x, ndim=2)
    if x.shape[0] < min_samples:
        raise v.fail(name, f"must hold at least {min_samples} samples (rows); got shape {x.shape}")
    if x.shape[1] < 1:
        raise v.fail(name, f"must have at least one feature (column); got shape {x.shape}")
    v.check_finite(name, x)
    return x


def _poison(value, *arrays):
    """NaN where an input is not finite, under a transformation (eager calls have raised)."""
    if v.is_concrete(value):
        return value
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in arrays]))
    return jax.tree.map(lambda t: jnp.where(ok, t, jnp.nan), value)


# --- Fréchet distance -------------------------------------------------------------------------


class FrechetState(NamedTuple):
    """Running statistics of one feature set, for the streaming Fréchet distance.

    Attributes:
      count: number of samples seen, a scalar (float, exact up to 2^53 in
        float64 and 2^24 in float32).
      mean: the running mean ``[d]``.
      scatter: the running scatter matrix ``sum_i (x_i - mean)(x_i - mean)^T``, ``[d, d]``.
      mean_comp, scatter_comp: the Kahan compensation terms of ``mean`` and
        ``scatter`` (the low-order bits their sums lost).
    """

    count: jax.Array
    mean: jax.Array
    scatter: jax.Array
    mean_comp: jax.Array
    scatter_comp: jax.Array


def frechet_init(dim: int, *, dtype=None) -> FrechetState:
    """The empty statistics of ``dim``-dimensional features.

    Args:
      dim: the feature dimension ``d``.
      dtype: the accumulation dtype; ``None``: float64 when JAX has x64
        enabled, float32 otherwise.

    Returns:
      A :class:`FrechetState` with count 0.

    Example:
      >>> import divergences as dv
      >>> dv.frechet_init(3).scatter.shape
      (3, 3)
    """
    dim = v.check_int("dim", dim, minimum=1)
    dtype = _accumulation_dtype() if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise v.fail("dtype", f"must be a floating dtype; got {dtype}")
    zero_v, zero_m = jnp.zeros((dim,), dtype), jnp.zeros((dim, dim), dtype)
    return FrechetState(jnp.zeros((), dtype), zero_v, zero_m, zero_v, zero_m)


def _kahan_add(total, comp, increment):
    """``total + increment`` with the running compensation ``comp`` (Kahan 1965)."""
    y = increment - comp
    t = total + y
    return t, (t - total) - y


# Column blocks of a scatter matrix ``dev.T @ dev``: at least this many
# columns a block, and at most this many blocks (see ``_scatter``).
_SCATTER_MIN_BLOCK = 256
_SCATTER_MAX_BLOCKS = 8


def _scatter(dev: jax.Array) -> jax.Array:
    """``dev.T @ dev`` (``[d, d]``) from the column blocks on and above the diagonal.

    XLA has no symmetric rank-k update (BLAS ``syrk``): with ``B`` column
    blocks only the ``B (B + 1) / 2`` products on and above the diagonal are
    computed, ``(B + 1) / (2B)`` of the work, and each lower block is the
    transpose of its mirror. XLA's CPU dot also runs the narrower products
    at a higher rate than one ``[d, n] @ [n, d]`` product (the
    ``frechet_distance`` case of ``benchmarks/`` times it). Fewer than
    ``2 * _SCATTER_MIN_BLOCK`` columns: one product.
    """
    d = dev.shape[1]
    nb = min(_SCATTER_MAX_BLOCKS, d // _SCATTER_MIN_BLOCK)
    if nb < 2:
        return dev.T @ dev
    edges = [d * i // nb for i in range(nb + 1)]
    cols = [dev[:, edges[i] : edges[i + 1]] for i in range(nb)]
    upper = {(i, j): cols[i].T @ cols[j] for i in range(nb) for j in range(i, nb)}
    return jnp.block([[upper[i, j] if i <= j else upper[j, i].T for j in range(nb)] for i in range(nb)])


@jax.jit
def _update_core(state: FrechetState, x: jax.Array) -> FrechetState:
    x = x.astype(state.mean.dtype)
    nb = jnp.asarray(x.shape[0], x.dtype)
    mean_b = jnp.mean(x, axis=0)
    dev = x - mean_b
    scatter_b = _scatter(dev)
    na = state.count
    n = na + nb
    delta = mean_b - state.mean
    # Chan, Golub and LeVeque's merge of two (count, mean, scatter) triples.
    mean, mean_comp = _kahan_add(state.mean, state.mean_comp, delta * (nb / n))
    scatter_inc = scatter_b + jnp.outer(delta, delta) * (na * nb / n)
    scatter, scatter_comp = _kahan_add(state.scatter, state.scatter_comp, scatter_inc)
    return FrechetState(n, mean, scatter, mean_comp, scatter_comp)


def frechet_update(state: FrechetState, features: ArrayLike) -> FrechetState:
    r"""Add a batch of features ``[b, d]`` to the running statistics.

    The batch's own mean and scatter are computed after centring on the batch
    mean, then merged with the running ones by

    .. math::
        \delta = \bar x_b - \bar x_a,\quad
        \bar x = \bar x_a + \delta\,\frac{n_b}{n},\quad
        S = S_a + S_b + \delta\delta^\top \frac{n_a n_b}{n},

    with compensated sums. The result does not depend on how the data are cut
    into batches, up to rounding.

    Args:
      state: the statistics so far (:func:`frechet_init`).
      features: a batch ``[b, d]``, ``b >= 1``, finite.

    Returns:
      The updated :class:`FrechetState`. Under ``jit``, non-finite features
      make it NaN.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> s = dv.frechet_update(dv.frechet_init(1), jnp.array([[1.0], [3.0]]))
      >>> float(s.count), float(s.mean[0]), float(s.scatter[0, 0])
      (2.0, 2.0, 2.0)
    """
    if not isinstance(state, FrechetState):
        raise v.fail("state", f"must be a FrechetState (from `frechet_init`); got {type(state).__name__}")
    x = _features("features", features, min_samples=1)
    d = state.mean.shape[0]
    if x.shape[1] != d:
        raise v.fail("features", f"has feature dimension {x.shape[1]} (shape {x.shape}) but `state` holds {d}-dimensional statistics")
    return _poison(_update_core(state, x), x)


def _psd_eigh(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eigen-decomposition of a symmetric PSD matrix, with round-off eigenvalues set to 0.

    Eigenvalues below ``d * eps * max|w|`` (the backward error of ``eigh``)
    are indistinguishable from 0; they are set to 0, so that the null space
    of a singular matrix adds no ``sqrt(round-off)`` terms to a trace of
    square roots.
    """
    w, q = jnp.linalg.eigh(0.5 * (a + a.T))
    tol = a.shape[0] * jnp.finfo(a.dtype).eps * jnp.max(jnp.abs(w))
    return jnp.where(w > tol, w, 0), q


def _psd_sqrt(a: jax.Array) -> jax.Array:
    w, q = _psd_eigh(a)
    return (q * jnp.sqrt(w)) @ q.T


def _psd_pinv_sqrt(a: jax.Array) -> jax.Array:
    """The pseudo-inverse square root: ``1/sqrt(w)`` on the numerical range, 0 on the null space."""
    w, q = _psd_eigh(a)
    pos = w > 0
    return (q * jnp.where(pos, jax.lax.rsqrt(jnp.where(pos, w, 1)), 0)) @ q.T


@jax.custom_jvp
def _trace_sqrt_product(cov_x: jax.Array, cov_y: jax.Array) -> jax.Array:
    r""":math:`\operatorname{tr}(\Sigma_x\Sigma_y)^{1/2} = \sum_i \sqrt{\lambda_i(\Sigma_x^{1/2}\Sigma_y\Sigma_x^{1/2})}`."""
    s = _psd_sqrt(cov_x)
    w, _ = _psd_eigh(s @ cov_y @ s)
    return jnp.sum(jnp.sqrt(w))


@_trace_sqrt_product.defjvp
def _trace_sqrt_product_jvp(primals, tangents):
    # d tr(Sx Sy)^{1/2} = tr(Gx dSx) + tr(Gy dSy), Gy = 1/2 Sx^{1/2} M^{-1/2} Sx^{1/2},
    # M = Sx^{1/2} Sy Sx^{1/2}, and Gx likewise with the roles swapped. The
    # pseudo-inverse keeps the gradient finite where M is singular (its
    # one-sided derivative along the null space is infinite; this is the
    # derivative of the function restricted to the range). Derived through
    # eigh, the gradient would be NaN at repeated eigenvalues (equal or
    # isotropic covariances).
    cov_x, cov_y = primals
    dx, dy = tangents
    sx, sy = _psd_sqrt(cov_x), _psd_sqrt(cov_y)
    gy = 0.5 * sx @ _psd_pinv_sqrt(sx @ cov_y @ sx) @ sx
    gx = 0.5 * sy @ _psd_pinv_sqrt(sy @ cov_x @ sy) @ sy
    return _trace_sqrt_product(cov_x, cov_y), jnp.sum(gx * dx) + jnp.sum(gy * dy)


@jax.jit
def _compute_core(sx: FrechetState, sy: FrechetState) -> jax.Array:
    cov_x = sx.scatter / (sx.count - 1)
    cov_y = sy.scatter / (sy.count - 1)
    diff = sx.mean - sy.mean
    value = jnp.sum(diff * diff) + jnp.trace(cov_x) + jnp.trace(cov_y) - 2 * _trace_sqrt_product(cov_x, cov_y)
    return jnp.maximum(value, 0)


def frechet_compute(state_x: FrechetState, state_y: FrechetState) -> jax.Array:
    r"""The Fréchet distance between the Gaussians fitted to two accumulated feature sets.

    .. math::
        \mathrm{FD} = \|\mu_x - \mu_y\|^2 + \operatorname{tr}\Sigma_x + \operatorname{tr}\Sigma_y
          - 2\operatorname{tr}\big(\Sigma_x^{1/2}\Sigma_y\Sigma_x^{1/2}\big)^{1/2},

    with :math:`\Sigma = S / (n - 1)`. See :func:`frechet_distance`.

    Args:
      state_x, state_y: :class:`FrechetState` of the two sets, each with at
        least 2 samples, of the same dimension.

    Returns:
      A scalar ``>= 0`` in the accumulation dtype. Under ``jit``, NaN when a
      state has fewer than 2 samples.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> sx = dv.frechet_update(dv.frechet_init(1), jnp.array([[0.0], [2.0]]))
      >>> sy = dv.frechet_update(dv.frechet_init(1), jnp.array([[3.0], [5.0]]))
      >>> round(float(dv.frechet_compute(sx, sy)), 4)   # mean shift 3, equal variances
      9.0
    """
    for name, s in (("state_x", state_x), ("state_y", state_y)):
        if not isinstance(s, FrechetState):
            raise v.fail(name, f"must be a FrechetState (from `frechet_init`); got {type(s).__name__}")
    if state_x.mean.shape != state_y.mean.shape:
        raise v.fail("state_y", f"holds {state_y.mean.shape[0]}-dimensional statistics but `state_x` holds {state_x.mean.shape[0]}")
    dtype = jnp.promote_types(state_x.mean.dtype, state_y.mean.dtype)
    sx = jax.tree.map(lambda a: a.astype(dtype), state_x)
    sy = jax.tree.map(lambda a: a.astype(dtype), state_y)
    ok = v.require("state_x", sx.count >= 2, "holds fewer than 2 samples; a covariance needs at least 2")
    ok &= v.require("state_y", sy.count >= 2, "holds fewer than 2 samples; a covariance needs at least 2")
    value = _compute_core(sx, sy)
    return value if v.is_concrete(value) else jnp.where(ok, value, jnp.nan)


@v.compiled_when_eager
def frechet_distance(x_features: ArrayLike, y_features: ArrayLike) -> jax.Array:
    r"""The Fréchet distance (FID formula) between Gaussians fitted to two feature sets.

    .. math::
        \mathrm{FD} = \|\mu_x - \mu_y\|^2 + \operatorname{tr}\Big(\Sigma_x + \Sigma_y
          - 2\big(\Sigma_x^{1/2}\Sigma_y\Sigma_x^{1/2}\big)^{1/2}\Big),

    the squared 2-Wasserstein distance between :math:`N(\mu_x, \Sigma_x)` and
    :math:`N(\mu_y, \Sigma_y)`, with the sample means and unbiased sample
    covariances. With Inception-v3 pool features it is the FID of Heusel et
    al. The trace of the square root comes from two symmetric
    eigen-decompositions, exact for singular covariances (``n <= d``); the
    statistics accumulate in float64 when JAX has x64 enabled (module
    docstring). It equals
    ``frechet_compute(frechet_update(frechet_init(d), x), frechet_update(frechet_init(d), y))``;
    use those three for sets that do not fit in memory.

    Differentiable (for feature-matching losses): the gradient of the
    trace term has a closed form (a custom JVP), finite at equal and at
    isotropic covariances, where a gradient through ``eigh`` is NaN.

    Args:
      x_features: features of the first set, ``[n, d]``, ``n >= 2``.
      y_features: features of the second set, ``[m, d]``, ``m >= 2``.

    Returns:
      A scalar ``>= 0`` (float64 under x64, else float32). Under ``jit``,
      NaN for non-finite features.

    Example:
      >>> import jax, divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (2000, 4))
      >>> y = 2.0 + jax.random.normal(jax.random.key(1), (2000, 4))
      >>> round(float(dv.frechet_distance(x, y)))   # ||mu_x - mu_y||^2 = 16, equal covariances
      16

    References:
      Heusel, Ramsauer, Unterthiner, Nessler and Hochreiter, "GANs Trained by
      a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
      NeurIPS 2017. Dowson and Landau, J. Multivariate Anal. 12 (1982). Chan,
      Golub and LeVeque, "Algorithms for computing the sample variance",
      Am. Stat. 37 (1983).
    """
    x = _features("x_features", x_features, min_samples=2)
    y = _features("y_features", y_features, min_samples=2)
    v.check_same_dim("x_features", x, "y_features", y)
    d = x.shape[1]
    sx = frechet_update(frechet_init(d), x)
    sy = frechet_update(frechet_init(d), y)
    return _poison(frechet_compute(sx, sy), x, y)


# --- KID --------------------------------------------------------------------------------------


class KIDResult(NamedTuple):
    """Mean and standard deviation (``ddof=0``) of the subset KID estimates."""

    mean: jax.Array
    std: jax.Array


def _random_subset(key: jax.Array, n: int, size: int) -> jax.Array:
    """``size`` distinct indices of ``range(n)``, a uniformly random subset (int32 ``[size]``).

    The indices of the ``size`` largest of ``n`` i.i.d. uniform keys: every
    subset is equally likely (exchangeability), and ``lax.top_k`` finds them
    in O(n log size), where ``jax.random.choice(..., replace=False)`` sorts
    a whole permutation of ``n``. The keys are float32 with or without x64,
    so the subsets do not depend on it.
    """
    return jax.lax.top_k(jax.random.uniform(key, (n,), jnp.float32), size)[1]


def _within_sum(kernel: PolynomialKernel, a: jax.Array) -> jax.Array:
    """``sum_{i != j} k(a_i, a_j)`` for ``a [q, d]``: :func:`mmd`'s kernel sum with the diagonal left out."""
    return _kernel_sum(kernel, a, a, None, True)


@functools.partial(jax.jit, static_argnames=("n_subsets", "subset_size"))
def _kid_core(x, y, key, n_subsets, subset_size):
    kernel = PolynomialKernel(degree=3)

    def one(k):
        kx, ky = jax.random.split(k)
        xs = x[_random_subset(kx, x.shape[0], subset_size)]
        ys = y[_random_subset(ky, y.shape[0], subset_size)]
        # The unbiased MMD^2 of the subsets from mmd's own kernel sums
        # (as ``mmd(..., estimator="unbiased")``): one q x q product across,
        # two within.
        q = subset_size
        return (_within_sum(kernel, xs) + _within_sum(kernel, ys)) / (q * (q - 1)) \
            - 2 * _kernel_sum(kernel, xs, ys, None, False) / (q * q)

    values = jax.lax.map(one, jax.random.split(key, n_subsets))
    return KIDResult(jnp.mean(values), jnp.std(values))


def kernel_inception_distance(
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array,
    *,
    n_subsets: int = 100,
    subset_size: int = 1000,
) -> KIDResult:
    r"""Kernel Inception Distance: the unbiased MMD² with a cubic kernel, over random subsets.

    .. math::
        k(a, b) = \Big(\frac{a \cdot b}{d} + 1\Big)^3,
        \qquad
        \widehat{\mathrm{KID}}_s = \frac{1}{q(q-1)}\sum_{i \ne j} k(x_i, x_j)
          + \frac{1}{q(q-1)}\sum_{i \ne j} k(y_i, y_j) - \frac{2}{q^2}\sum_{i,j} k(x_i, y_j),

    for ``n_subsets`` subsets of ``q = subset_size`` rows drawn without
    replacement from each set, independently per subset (torchmetrics'
    scheme; the defaults are its defaults): the value of
    :func:`divergences.mmd` with ``kernel="polynomial"`` and
    ``estimator="unbiased"`` on each pair of subsets, computed as three
    ``q x q`` kernel matrices, in float64 when JAX has x64 enabled.
    Unlike FID it is unbiased, so it is comparable across sample sizes, and
    can be slightly negative when the sets match.

    Args:
      x: features of the first (real) set, ``[n, d]``.
      y: features of the second (generated) set, ``[m, d]``.
      key: PRNG key for the subsets (by position or keyword).
      n_subsets: number of subsets, ``>= 1``.
      subset_size: rows per subset, ``2 <= subset_size <= min(n, m)``.

    Returns:
      ``KIDResult(mean, std)``: the mean over subsets and their standard
      deviation (``ddof=0``). Under ``jit``, NaN for non-finite features.

    Example:
      >>> import jax, divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (200, 8))
      >>> y = 1.0 + jax.random.normal(jax.random.key(1), (200, 8))
      >>> kid = dv.kernel_inception_distance(x, y, key=jax.random.key(2), n_subsets=10, subset_size=100)
      >>> bool(kid.mean > 5 * kid.std > 0)
      True

    References:
      Binkowski, Sutherland, Arbel and Gretton, "Demystifying MMD GANs",
      ICLR 2018, sec. 4 and Appendix D.
    """
    xa = _features("x", x, min_samples=2)
    ya = _features("y", y, min_samples=2)
    v.check_same_dim("x", xa, "y", ya)
    key = v.check_key("key", key)
    n_subsets = v.check_int("n_subsets", n_subsets, minimum=1)
    subset_size = v.check_int("subset_size", subset_size, minimum=2)
    n, m = xa.shape[0], ya.shape[0]
    if subset_size > min(n, m):
        raise v.fail("subset_size", f"is {subset_size}, more than the samples of `x` ({n}) or `y` ({m}); lower it")
    dtype = jnp.promote_types(v.float_dtype(xa, ya), _accumulation_dtype())
    return _poison(_kid_core(xa.astype(dtype), ya.astype(dtype), key, n_subsets, subset_size), xa, ya)


# --- precision / recall, density / coverage ---------------------------------------------------


class PrecisionRecall(NamedTuple):
    """Improved precision and recall (Kynkäänniemi et al. 2019), each in ``[0, 1]``."""

    precision: jax.Array
    recall: jax.Array


class DensityCoverage(NamedTuple):
    """Density (``>= 0``, about 1 when the sets match) and coverage (``[0, 1]``) of Naeem et al. 2020."""

    density: jax.Array
    coverage: jax.Array


def _blocks(q: jax.Array, block_size: int, fn):
    """Apply ``fn(rows [B, d], start) -> [B, ...]`` to row blocks of ``q``; the rows' results ``[n, ...]``.

    ``block_size <= n``. The last block starts at ``n - B`` (it overlaps the
    one before and rewrites the same values), so ``q`` is never padded or
    copied; the results are written in place into one ``[n, ...]`` buffer.
    """
    n = q.shape[0]
    nb = -(-n // block_size)
    shape = jax.eval_shape(fn, q[:block_size], 0)
    out = jnp.zeros((n,) + shape.shape[1:], shape.dtype)

    def body(i, out):
        start = jnp.minimum(i * block_size, n - block_size)
        rows = jax.lax.dynamic_slice_in_dim(q, start, block_size)
        return jax.lax.dynamic_update_slice_in_dim(out, fn(rows, start), start, axis=0)

    return jax.lax.fori_loop(0, nb, body, out)


def _sq_dists(a: jax.Array, b: jax.Array, bb: jax.Array) -> jax.Array:
    """``||a_i - b_j||^2`` through one matrix product, clamped at 0; ``bb = ||b_j||^2``."""
    d2 = jnp.sum(a * a, axis=-1)[:, None] + bb[None, :] - 2 * (a @ b.T)
    return jnp.maximum(d2, 0)


# Up to this k the k-th smallest distance of a row is found by k rounds of
# row minima (a few elementwise passes each); above it by ``lax.top_k``, whose
# CPU implementation costs several matrix products' time for one block
# (``python -m benchmarks --only precision_recall``).
ITERATIVE_MAX_K = 16


def _kth_smallest(d2: jax.Array, k: int) -> jax.Array:
    """The k-th smallest entry of each row of ``d2 [B, n]``, counted with multiplicity (as ``lax.top_k``)."""
    if k > ITERATIVE_MAX_K:
        return -jax.lax.top_k(-d2, k)[0][:, k - 1]
    taken = jnp.zeros(d2.shape[:1], jnp.int32)
    out = jnp.full(d2.shape[:1], jnp.inf, d2.dtype)
    for _ in range(k):
        m = jnp.min(d2, axis=1)
        eq = d2 == m[:, None]
        count = jnp.sum(eq, axis=1, dtype=jnp.int32)
        # The entries equal to this minimum hold the ranks taken + 1 .. taken + count.
        out = jnp.where((taken < k) & (taken + count >= k), m, out)
        taken = taken + count
        d2 = jnp.where(eq, jnp.inf, d2)
    return out


def _kth_radius_sq(a: jax.Array, k: int, block_size: int) -> jax.Array:
    """Squared distance from each row of ``a`` to its k-th nearest other row: ``[n]``."""
    aa = jnp.sum(a * a, axis=-1)
    cols = jnp.arange(a.shape[0])

    def fn(rows, start):
        d2 = _sq_dists(rows, a, aa)
        d2 = jnp.where((start + jnp.arange(rows.shape[0]))[:, None] == cols[None, :], jnp.inf, d2)
        return _kth_smallest(d2, k)

    return _blocks(a, block_size, fn)


def _cross_pass(f: jax.Array, r: jax.Array, block_size: int, row_fn, col_fn, col_init):
    """One pass over the squared distances ``D [m, n]`` from the rows of ``f`` to those of ``r``.

    In row blocks of ``f`` (memory ``O(block_size * n)``): ``row_fn(d2 [B, n],
    start) -> [B]`` gives one value per row of ``f``, and ``col_fn(d2, start,
    acc [n]) -> acc`` folds each block into one value per row of ``r``. The
    last block overlaps the one before (as in :func:`_blocks`), so ``col_fn``
    must be idempotent over repeated rows (a logical or, a minimum).
    """
    m = f.shape[0]
    rr = jnp.sum(r * r, axis=-1)
    rows_out = jnp.zeros((m,), jax.eval_shape(row_fn, jnp.zeros((block_size, r.shape[0]), r.dtype), 0).dtype)

    def body(i, carry):
        rows_out, acc = carry
        start = jnp.minimum(i * block_size, m - block_size)
        d2 = _sq_dists(jax.lax.dynamic_slice_in_dim(f, start, block_size), r, rr)
        rows_out = jax.lax.dynamic_update_slice_in_dim(rows_out, row_fn(d2, start), start, axis=0)
        return rows_out, col_fn(d2, start, acc)

    return jax.lax.fori_loop(0, -(-m // block_size), body, (rows_out, col_init))


def _pair(real, fake, k, block_size, need_fake_radius):
    """Validate, cast and centre the two sets (distances are translation invariant)."""
    r = _features("real", real, min_samples=2)
    f = _features("fake", fake, min_samples=2 if need_fake_radius else 1)
    v.check_same_dim("real", r, "fake", f)
    k = v.check_int("k", k, minimum=1)
    n, m = r.shape[0], f.shape[0]
    if k >= n or (need_fake_radius and k >= m):
        limit = f"min(n, m) = {min(n, m)}" if need_fake_radius else f"n = {n} (the samples of `real`)"
        raise v.fail("k", f"must be smaller than {limit}; got {k}")
    block_size = v.check_int("block_size", block_size, minimum=1)
    dtype = v.float_dtype(r, f)
    r, f = r.astype(dtype), f.astype(dtype)
    return r, f, k, block_size


def _centre(r, f):
    c = 0.5 * (jnp.mean(r, axis=0) + jnp.mean(f, axis=0))
    return r - c, f - c


def _share(mask: jax.Array, dtype) -> jax.Array:
    """The fraction of True entries, an exact count divided in ``dtype``."""
    return jnp.sum(mask).astype(dtype) / mask.shape[0]


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _pr_core(r, f, k, block_size):
    r, f = _centre(r, f)
    r2_real = _kth_radius_sq(r, k, min(block_size, r.shape[0]))
    r2_fake = _kth_radius_sq(f, k, min(block_size, f.shape[0]))
    bs = min(block_size, f.shape[0])

    # One pass over the fake-to-real distances gives both: a fake sample is
    # precise when it lies in some real ball, a real sample recalled when it
    # lies in some fake ball.
    def in_real_ball(d2, start):
        return jnp.any(d2 < r2_real[None, :], axis=1)

    def in_fake_ball(d2, start, acc):
        return acc | jnp.any(d2 < jax.lax.dynamic_slice_in_dim(r2_fake, start, bs)[:, None], axis=0)

    precise, recalled = _cross_pass(f, r, bs, in_real_ball, in_fake_ball, jnp.zeros(r.shape[:1], bool))
    return PrecisionRecall(_share(precise, r.dtype), _share(recalled, r.dtype))


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _dc_core(r, f, k, block_size):
    r, f = _centre(r, f)
    r2_real = _kth_radius_sq(r, k, min(block_size, r.shape[0]))

    # One pass: how many real balls hold each fake sample (density), and
    # whether each real ball holds some fake sample (coverage).
    def balls_holding(d2, start):
        return jnp.sum(d2 < r2_real[None, :], axis=1, dtype=jnp.int32)

    def ball_covered(d2, start, acc):
        return acc | jnp.any(d2 < r2_real[None, :], axis=0)

    counts, covered = _cross_pass(f, r, min(block_size, f.shape[0]), balls_holding, ball_covered,
                                  jnp.zeros(r.shape[:1], bool))
    density = jnp.sum(counts).astype(r.dtype) / (k * f.shape[0])
    return DensityCoverage(density, _share(covered, r.dtype))


def precision_recall(real: ArrayLike, fake: ArrayLike, *, k: int = 3, block_size: int = 512) -> PrecisionRecall:
    r"""Improved precision and recall of a generated set against a real one (k-NN manifolds).

    With :math:`r_k(a)` the distance from :math:`a` to its k-th nearest
    neighbour within its own set (itself excluded),

    .. math::
        \text{precision} = \frac1m \sum_{j=1}^m \mathbb{1}\big[\exists i: \|y_j - x_i\| < r_k(x_i)\big],
        \qquad
        \text{recall} = \frac1n \sum_{i=1}^n \mathbb{1}\big[\exists j: \|x_i - y_j\| < r_k(y_j)\big]:

    the share of fakes inside the union of the real points' k-NN balls
    (quality), and of real points inside the fakes' balls (diversity).
    Identical sets give 1 and 1. Distances come from ``||a||^2 + ||b||^2 - 2 a.b``
    after centring both sets on their pooled mean; three blocked passes of
    ``[block_size, n or m]`` distance matrices (the two sets' k-NN radii, then
    one pass over the fake-to-real distances for both metrics), memory
    ``O(block_size * (n + m))``.

    Args:
      real: real features ``[n, d]``.
      fake: generated features ``[m, d]``.
      k: the neighbour order, ``1 <= k < min(n, m)`` (3 in the paper).
      block_size: query rows per distance block.

    Returns:
      ``PrecisionRecall(precision, recall)``, scalars in ``[0, 1]``. Under
      ``jit``, NaN for non-finite features.

    Example:
      >>> import jax, divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (500, 2))
      >>> pr = dv.precision_recall(x, 0.5 * x)         # fakes collapsed towards the centre
      >>> round(float(pr.precision), 2), bool(pr.recall < 0.9)
      (1.0, True)

    References:
      Kynkäänniemi, Karras, Laine, Lehtinen and Aila, "Improved Precision
      and Recall Metric for Assessing Generative Models", NeurIPS 2019.
    """
    r, f, k, block_size = _pair(real, fake, k, block_size, need_fake_radius=True)
    return _poison(_pr_core(r, f, k, block_size), r, f)


def density_coverage(real: ArrayLike, fake: ArrayLike, *, k: int = 5, block_size: int = 512) -> DensityCoverage:
    r"""Density and coverage of a generated set against a real one (real k-NN balls only).

    With :math:`r_k(x_i)` the distance from a real point to its k-th nearest
    real neighbour (itself excluded),

    .. math::
        \text{density} = \frac{1}{k m} \sum_{j=1}^m \sum_{i=1}^n \mathbb{1}\big[\|y_j - x_i\| < r_k(x_i)\big],
        \qquad
        \text{coverage} = \frac1n \sum_{i=1}^n \mathbb{1}\big[\min_j \|x_i - y_j\| < r_k(x_i)\big].

    Density counts how many real balls hold each fake (about 1 when the sets
    come from one distribution, above 1 for fakes bunched where the data are
    dense; it is not bounded by 1); coverage is the share of real balls
    holding at least one fake. Unlike precision/recall, neither uses balls
    around the fakes, so outlying fakes do not inflate them. Blocked like
    :func:`precision_recall` (two passes: the real radii, then the
    fake-to-real distances for both metrics).

    Args:
      real: real features ``[n, d]``.
      fake: generated features ``[m, d]``.
      k: the neighbour order, ``1 <= k < n`` (5 in the paper).
      block_size: query rows per distance block.

    Returns:
      ``DensityCoverage(density, coverage)``. Under ``jit``, NaN for
      non-finite features.

    Example:
      >>> import jax, divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (500, 2))
      >>> dc = dv.density_coverage(x, x + 10.0)         # disjoint sets
      >>> float(dc.density), float(dc.coverage)
      (0.0, 0.0)

    References:
      Naeem, Oh, Uh, Choi and Yoo, "Reliable Fidelity and Diversity Metrics
      for Generative Models", ICML 2020.
    """
    r, f, k, block_size = _pair(real, fake, k, block_size, need_fake_radius=False)
    return _poison(_dc_core(r, f, k, block_size), r, f)
