r"""Permutation two-sample tests and bootstrap standard errors.

Two questions come with every sample divergence: is the value large enough
to say that P and Q differ (:func:`two_sample_test`), and how much would it
move with another sample (:func:`bootstrap`)? Both functions here answer them
for the estimators of this library, compiled and batched: the permutations
and the resamples run as chunks of a :func:`jax.lax.map`, each chunk
vectorised with :func:`jax.vmap`, so the memory they hold at once is bounded
by ``chunk_size`` times the memory of one permutation or resample.

How the permutations are evaluated, per statistic:

* ``"mmd"`` and ``"energy"`` in more than one dimension: the pooled kernel
  matrix :math:`K` (or distance matrix :math:`D`) of the :math:`N = n + m`
  points is computed once. A permutation only relabels the points, and both
  statistics are quadratic forms in the label vector: with
  :math:`u_i = 1/n` for the points labelled X and :math:`-1/m` for the others,
  the biased MMD is :math:`u^\top K u` and the energy distance is
  :math:`-u^\top D u`. A chunk of ``C`` permutations costs one
  ``[C, N] x [N, N]`` matrix product, :math:`O(N^2)` per permutation, where
  recomputing the kernel would cost :math:`O(N^2 d)` plus the kernel's
  exponentials. The unbiased forms add two terms of the same products.
* ``"energy"`` in one dimension: the pooled sample is sorted once and the
  statistic is read from the empirical CDFs,
  :math:`\mathcal{E} = 2\int (F_n - G_m)^2`, in :math:`O(N)` per permutation
  (no sort, no matrix).
* ``"sliced_wasserstein"``, ``"wasserstein_1d"`` and a callable: the
  estimator is vmapped over permuted index sets of the pooled sample. The
  sliced distance uses the same projections for every permutation (they
  are drawn from a key fixed for the whole test), so that the null
  distribution is that of one statistic.

The random relabellings of the first two routes are drawn by selection
sampling (Knuth's Algorithm S: point ``k`` joins X with probability
(X slots left) / (points left)), which gives a uniformly random n-subset
with one uniform number per point and no sort.

References:
  Gretton, Borgwardt, Rasch, Schoelkopf and Smola, "A Kernel Two-Sample
  Test", JMLR 13 (2012). Szekely and Rizzo, "Testing for equal
  distributions in high dimension", InterStat (2004). Phipson and Smyth,
  "Permutation P-values Should Never Be Zero", Stat. Appl. Genet. Mol. Biol.
  9 (2010). Efron and Tibshirani, *An Introduction to the Bootstrap* (1993),
  ch. 6 and 13. Knuth, *The Art of Computer Programming* vol. 2 (1997),
  sec. 3.4.2, Algorithm S.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences._numerics import safe_norm

__all__ = [
    "TwoSampleResult",
    "BootstrapResult",
    "two_sample_test",
    "bootstrap",
    "STATISTICS",
]

STATISTICS = ("mmd", "energy", "sliced_wasserstein", "wasserstein_1d")

# Numbers (float32: 4 bytes each) that one chunk may hold, for the automatic
# chunk size: the quadratic-form route holds a few [C, N] arrays; the
# estimator route holds C estimator calls, each of the size given by
# `_call_size`.
_LABEL_BUDGET = 2**22
_ESTIMATOR_BUDGET = 2**24

_HIGHEST = lax.Precision.HIGHEST


class TwoSampleResult(NamedTuple):
    """The outcome of :func:`two_sample_test`.

    Attributes:
      statistic: the statistic on the observed samples, a scalar.
      p_value: the permutation p-value
        :math:`(1 + \\#\\{b : T_b \\ge T\\}) / (1 + B)`, in ``(0, 1]``.
      null_statistics: the ``B = n_permutations`` statistics of the
        relabelled samples, shape ``[B]``.
    """

    statistic: jax.Array
    p_value: jax.Array
    null_statistics: jax.Array


class BootstrapResult(NamedTuple):
    """The outcome of :func:`bootstrap` (each field has the estimator's output structure).

    Attributes:
      estimate: the estimator on the observed samples.
      standard_error: the standard deviation of the bootstrap replicates
        (``ddof=1``).
      low: the ``(1 - confidence) / 2`` quantile of the replicates.
      high: the ``(1 + confidence) / 2`` quantile of the replicates.
      resamples: the replicates, with a leading axis of size ``n_resamples``.
    """

    estimate: Any
    standard_error: Any
    low: Any
    high: Any
    resamples: Any


# ---------------------------------------------------------------------------
# Options: arrays travel through jit as arguments, everything else as static.


def _split_options(options: dict[str, Any]) -> tuple[tuple[tuple[str, Any], ...], dict[str, Any]]:
    static, dynamic = [], {}
    for name, value in sorted(options.items()):
        if isinstance(value, (jax.Array, np.ndarray)) or any(
            isinstance(leaf, (jax.Array, np.ndarray)) for leaf in jax.tree_util.tree_leaves(value)
        ):
            dynamic[name] = value
            continue
        if isinstance(value, list):
            value = tuple(value)
        try:
            hash(value)
        except TypeError:
            raise v.fail(name, f"must be hashable or an array to pass through jit; got {type(value).__name__}") from None
        static.append((name, value))
    return tuple(static), dynamic


def _call_size(estimator: Any, n_total: int, options: dict[str, Any]) -> int:
    """The working memory of one estimator call, in numbers, for the automatic chunk size.

    The sort-based estimators of the library need O(N) per direction; any
    other estimator is assumed to build an [N, N] matrix (MMD, energy, kNN).
    """
    name = (getattr(estimator, "__module__", None), getattr(estimator, "__name__", None))
    if name == ("divergences._wasserstein", "wasserstein_1d"):
        return 4 * n_total
    if name in (("divergences._wasserstein", "sliced_wasserstein"), ("divergences._wasserstein", "max_sliced_wasserstein")):
        return 4 * n_total * int(options.get("n_projections", 128))
    return n_total * n_total


def _auto_chunk(chunk_size: int | None, total: int, budget: int, per_item: int) -> int:
    if chunk_size is not None:
        return min(chunk_size, total)
    return int(max(1, min(total, budget // max(per_item, 1))))


def _chunked_map(fn: Callable, keys: jax.Array, chunk: int) -> Any:
    """``vmap(fn)(keys)`` computed ``chunk`` keys at a time, in a :func:`jax.lax.map`.

    The chunk is evened out (``ceil(B / n_chunks)`` keys each) and the last
    chunk padded with repeated keys whose results are dropped, so that one
    vmapped body is traced and compiled, not a second one for a remainder.
    """
    total = keys.shape[0]
    n_chunks = -(-total // chunk)
    chunk = -(-total // n_chunks)
    if n_chunks == 1:
        return jax.vmap(fn)(keys)
    pad = n_chunks * chunk - total
    padded = jnp.concatenate([keys, keys[:pad]]) if pad else keys
    out = lax.map(jax.vmap(fn), padded.reshape(n_chunks, chunk, *keys.shape[1:]))
    return jax.tree_util.tree_map(lambda a: a.reshape(n_chunks * chunk, *a.shape[2:])[:total], out)


# ---------------------------------------------------------------------------
# Random relabellings.


def _selection_labels(key: jax.Array, n_total: int, n_x: int) -> jax.Array:
    """0/1 labels of a uniformly random ``n_x``-subset of ``n_total`` positions, float32 ``[n_total]``.

    Selection sampling: position ``k`` is taken with probability
    ``(n_x - taken so far) / (n_total - k)``, so exactly ``n_x`` positions are
    taken and every subset is equally likely (up to the 2^-24 resolution of
    a float32 uniform). One uniform number per position, no sort.
    """
    u = jax.random.uniform(key, (n_total,), jnp.float32)
    left = jnp.arange(n_total, 0, -1, dtype=jnp.float32)  # positions left, this one included

    def step(taken, inputs):
        uk, lk = inputs
        take = (uk * lk < n_x - taken).astype(jnp.float32)
        return taken + take, take

    _, labels = lax.scan(step, jnp.zeros((), jnp.float32), (u, left), unroll=1)
    return labels


# ---------------------------------------------------------------------------
# Route 1: quadratic forms in a pooled matrix (MMD, energy in d > 1).


def _quadratic_statistic(
    s: jax.Array, k_off: jax.Array, diag: jax.Array, row_sums: jax.Array, total: jax.Array, n: int, m: int, unbiased: bool
) -> jax.Array:
    r"""The MMD-type statistic of the 0/1 label vector ``s`` (1 = X) for the pooled matrix.

    With :math:`u = s/n - (1 - s)/m` and :math:`K_o` the matrix without its
    diagonal, :math:`u^\top K_o u` carries the cross terms with centred
    weights (the well-conditioned part). The biased (V) statistic adds the
    diagonal, :math:`\sum_i u_i^2 K_{ii}`. The unbiased (U) statistic adds
    :math:`S_{xx} / (n^2 (n-1)) + S_{yy} / (m^2 (m-1))`, where the
    within-sample sums :math:`S_{xx} = s^\top K_o s` and :math:`S_{yy}`
    follow from the same product through :math:`s = c (u + 1/m)`,
    :math:`1 - s = c (1/n - u)`, :math:`c = nm / (n + m)`; their rounding is
    damped by the :math:`1/n^3` weights.
    """
    dtype = k_off.dtype
    s = s.astype(dtype)
    u = s / n - (1 - s) / m
    ku = jnp.matmul(k_off, u, precision=_HIGHEST)
    q = jnp.dot(u, ku, precision=_HIGHEST)
    if not unbiased:
        return q + jnp.dot(u * u, diag, precision=_HIGHEST)
    c = n * m / (n + m)
    ur = jnp.dot(u, row_sums, precision=_HIGHEST)
    s_xx = c * c * (q + 2 * ur / m + total / (m * m))
    s_yy = c * c * (q - 2 * ur / n + total / (n * n))
    return q + s_xx / (n * n * (n - 1)) + s_yy / (m * m * (m - 1))


def _quadratic_test(kmat: jax.Array, n: int, keys: jax.Array, chunk: int, unbiased: bool):
    n_total = kmat.shape[0]
    m = n_total - n
    diag = jnp.diagonal(kmat)
    k_off = kmat - jnp.diag(diag)
    row_sums = jnp.sum(k_off, axis=1)
    total = jnp.sum(row_sums)
    stat = functools.partial(
        _quadratic_statistic, k_off=k_off, diag=diag, row_sums=row_sums, total=total, n=n, m=m, unbiased=unbiased
    )
    observed = stat(jnp.concatenate([jnp.ones(n, kmat.dtype), jnp.zeros(m, kmat.dtype)]))
    # The relabelled statistics carry no gradient (the p-value is piecewise constant).
    k_null = lax.stop_gradient(k_off)

    def null_one(key):
        s = _selection_labels(key, n_total, n)
        return _quadratic_statistic(
            s, k_null, lax.stop_gradient(diag), lax.stop_gradient(row_sums), lax.stop_gradient(total), n, m, unbiased
        )

    null = _chunked_map(null_one, keys, chunk)
    return observed, null


def _distance_matrix(z: jax.Array, chunk: int) -> jax.Array:
    """Pairwise Euclidean distances of the rows of ``z`` by direct differences, rows in chunks."""
    return _chunked_map(lambda zi: _safe_norm(z - zi), z, chunk)


# ---------------------------------------------------------------------------
# Route 2: energy distance in one dimension from the pooled sorted sample.


def _energy_1d_from_labels(s_sorted: jax.Array, gaps: jax.Array, n: int, m: int, unbiased: bool) -> jax.Array:
    r"""Energy distance of the labels ``s_sorted`` (1 = X) of the pooled sorted sample.

    :math:`\mathcal{E}_V = 2 \sum_k (F_k - G_k)^2 \Delta_k`, with
    :math:`F_k, G_k` the two empirical CDFs right of sorted point ``k`` and
    :math:`\Delta_k` the gap to the next point. The unbiased form subtracts
    :math:`2 \sum_k \Delta_k [c^x_k (n - c^x_k) / (n^2 (n-1)) + c^y_k (m - c^y_k) / (m^2 (m-1))]`,
    with :math:`c^x_k, c^y_k` the counts left of the gap (each within-sample
    pair straddles the gaps between its points).
    """
    dtype = gaps.dtype
    cx = jnp.cumsum(s_sorted.astype(dtype))[:-1]
    cy = jnp.arange(1, n + m, dtype=dtype) - cx
    value = 2 * jnp.sum((cx / n - cy / m) ** 2 * gaps)
    if unbiased:
        value -= 2 * jnp.sum(gaps * (cx * (n - cx) / (n * n * (n - 1)) + cy * (m - cy) / (m * m * (m - 1))))
    return value


def _energy_1d_null_one(key: jax.Array, gaps: jax.Array, n: int, m: int, unbiased: bool) -> jax.Array:
    """One relabelled energy statistic: selection sampling fused with the CDF sums (no [N] labels kept)."""
    dtype = gaps.dtype
    n_total = n + m
    # The same draws as `_selection_labels(key, n_total, n)`; the last label is forced.
    u = jax.random.uniform(key, (n_total,), jnp.float32)[:-1]
    left = jnp.arange(n_total, 1, -1, dtype=jnp.float32)
    seen = jnp.arange(1, n_total, dtype=dtype)

    def step(carry, inputs):
        cx, acc_v, acc_u = carry
        uk, lk, k1, gap = inputs
        take = uk * lk < n - cx
        cx = cx + take.astype(dtype)
        cy = k1 - cx
        acc_v = acc_v + (cx / n - cy / m) ** 2 * gap
        if unbiased:
            acc_u = acc_u + gap * (cx * (n - cx) / (n * n * (n - 1)) + cy * (m - cy) / (m * m * (m - 1)))
        return (cx, acc_v, acc_u), None

    zero = jnp.zeros((), dtype)
    (_, acc_v, acc_u), _ = lax.scan(step, (zero, zero, zero), (u, left, seen, gaps), unroll=1)
    return 2 * acc_v - 2 * acc_u


def _energy_1d_test(z: jax.Array, n: int, keys: jax.Array, chunk: int, unbiased: bool):
    m = z.shape[0] - n
    order = jnp.argsort(z)
    z_sorted = z[order]
    gaps = jnp.diff(z_sorted)
    observed = _energy_1d_from_labels((order < n), gaps, n, m, unbiased)
    gaps_null = lax.stop_gradient(gaps)
    null = _chunked_map(lambda k: _energy_1d_null_one(k, gaps_null, n, m, unbiased), keys, chunk)
    return observed, null


# ---------------------------------------------------------------------------
# Route 3: any estimator, vmapped over permuted index sets.


def _estimator_test(fn: Callable, x: jax.Array, y: jax.Array, keys: jax.Array, chunk: int):
    n = x.shape[0]
    z = jnp.concatenate([x, y], axis=0)
    observed = fn(x, y)
    if jnp.ndim(observed) != 0:
        raise v.fail("statistic", f"must return a scalar; it returned shape {jnp.shape(observed)}")
    z_null = lax.stop_gradient(z)

    def null_one(key):
        perm = jax.random.permutation(key, z.shape[0])
        return fn(z_null[perm[:n]], z_null[perm[n:]])

    null = _chunked_map(null_one, keys, chunk)
    return observed, null


# ---------------------------------------------------------------------------
# Statistic builders.


# The options of the statistics that this module evaluates itself, with
# their defaults (filled in before compiling, so that an explicit default
# and an omitted option share one compiled function).
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "mmd": {"kernel": "gaussian", "bandwidth": None, "estimator": "unbiased"},
    "energy": {"estimator": "biased"},
}


def _take_options(statistic: str, options: dict[str, Any], allowed: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listed = ", ".join(repr(k) for k in sorted(allowed)) or "none"
        raise v.fail(unknown[0], f"is not an option of statistic {statistic!r} (its options: {listed})")
    return {**allowed, **options}


def _p_value(observed: jax.Array, null: jax.Array) -> jax.Array:
    """``(1 + #{null >= observed}) / (1 + B)``, ties counted within 100 eps of the largest magnitude.

    The tolerance absorbs the rounding that makes equal statistics (the
    observed labelling and one equivalent to it) differ in the last bits, as
    :func:`scipy.stats.permutation_test` does. NaN when the observed
    statistic is NaN (invalid input under ``jit``).
    """
    eps = jnp.finfo(null.dtype).eps
    scale = jnp.maximum(jnp.abs(observed), jnp.max(jnp.abs(null)))
    count = jnp.sum(null >= observed - 100 * eps * scale)
    p = (1 + count).astype(null.dtype) / (1 + null.shape[0])
    return jnp.where(jnp.isnan(observed), jnp.nan, p)


@functools.partial(jax.jit, static_argnames=("statistic", "n_permutations", "chunk_size", "static_options"))
def _two_sample_core(x, y, key, dynamic_options, *, statistic, n_permutations, chunk_size, static_options):
    options = {**dict(static_options), **dynamic_options}
    # One split serves the relabellings and the projections of the sliced
    # statistic (each threefry call site costs compile time).
    keys = jax.random.split(key, n_permutations + 1)
    key_stat, keys = keys[0], keys[1:]
    n, m = x.shape[0], y.shape[0]
    n_total = n + m

    if callable(statistic):
        fn = functools.partial(statistic, **options)
        chunk = _auto_chunk(chunk_size, n_permutations, _ESTIMATOR_BUDGET, _call_size(statistic, n_total, options))
        observed, null = _estimator_test(fn, x, y, keys, chunk)
    elif statistic == "mmd":
        from divergences._mmd import CallableKernel, _scale_free, mmd, resolve_kernel

        options = _take_options("mmd", options, _DEFAULT_OPTIONS["mmd"])
        x2, y2 = _as_2d(x), _as_2d(y)
        if options["estimator"] == "linear":
            # Linear-time MMD: no pooled matrix to reuse, relabel and re-estimate.
            fn = functools.partial(mmd, **options)
            chunk = _auto_chunk(chunk_size, n_permutations, _ESTIMATOR_BUDGET, n_total)
            observed, null = _estimator_test(fn, x2, y2, keys, chunk)
        else:
            gram = resolve_kernel(options["kernel"], options["bandwidth"], x2, y2)
            z = jnp.concatenate([x2, y2], axis=0)
            if not isinstance(gram, CallableKernel):
                # As `mmd` does: distances are translation invariant, and
                # centring limits the cancellation in |a|^2 + |b|^2 - 2 a.b.
                z = z - lax.stop_gradient(0.5 * (jnp.mean(x2, 0) + jnp.mean(y2, 0)))
            # And as `mmd` does: points (and bandwidth) divided by a power of 2 near their scale,
            # so that squares cannot overflow or underflow (the p-value is scale invariant).
            gram, z, _, factor = _scale_free(gram, z, z)
            kmat = gram(z, z)
            kmat = kmat - jnp.diag(jnp.diagonal(kmat)) + jnp.diag(gram.diagonal(z))
            chunk = _auto_chunk(chunk_size, n_permutations, _LABEL_BUDGET, 4 * n_total)
            observed, null = _quadratic_test(kmat, n, keys, chunk, options["estimator"] == "unbiased")
            observed, null = observed * factor, null * factor
    elif statistic == "energy":
        options = _take_options("energy", options, _DEFAULT_OPTIONS["energy"])
        unbiased = options["estimator"] == "unbiased"
        x2, y2 = _as_2d(x), _as_2d(y)
        chunk = _auto_chunk(chunk_size, n_permutations, _LABEL_BUDGET, 4 * n_total)
        if x2.shape[1] == 1:
            z = jnp.concatenate([x2[:, 0], y2[:, 0]])
            observed, null = _energy_1d_test(z, n, keys, chunk, unbiased)
        else:
            z = jnp.concatenate([x2, y2], axis=0)
            z = z - lax.stop_gradient(jnp.mean(z, 0))
            factor = lax.stop_gradient(_scale_of(z))  # squares of 1e20-scale data overflow in float32
            rows = _auto_chunk(None, n_total, _LABEL_BUDGET, n_total * z.shape[1])
            observed, null = _quadratic_test(-_distance_matrix(z / factor, rows), n, keys, chunk, unbiased)
            observed, null = observed * factor, null * factor
    elif statistic == "sliced_wasserstein":
        from divergences._wasserstein import sliced_wasserstein

        proj_key = options.pop("key", key_stat)
        fn = lambda a, b: sliced_wasserstein(a, b, proj_key, **options)  # noqa: E731
        size = _call_size(sliced_wasserstein, n_total, options)
        chunk = _auto_chunk(chunk_size, n_permutations, _ESTIMATOR_BUDGET, size)
        observed, null = _estimator_test(fn, _as_2d(x), _as_2d(y), keys, chunk)
    else:  # "wasserstein_1d"
        from divergences._wasserstein import wasserstein_1d

        fn = functools.partial(wasserstein_1d, **options)
        chunk = _auto_chunk(chunk_size, n_permutations, _ESTIMATOR_BUDGET, _call_size(wasserstein_1d, n_total, options))
        observed, null = _estimator_test(fn, x.reshape(n), y.reshape(m), keys, chunk)

    observed = jnp.asarray(observed)
    null = jnp.asarray(null).astype(observed.dtype)
    # Under jit the samples' values are unchecked: non-finite samples give NaN (an eager call raised).
    finite = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(y))
    observed = jnp.where(finite, observed, jnp.nan)
    return TwoSampleResult(observed, _p_value(observed, null), jnp.where(finite, null, jnp.nan))


def _scale_of(z: jax.Array) -> jax.Array:
    from divergences._mmd import _power_of_two_scale

    return _power_of_two_scale(z)


_safe_norm = safe_norm  # Euclidean norm along the last axis with a zero (not NaN) gradient at 0


def _as_2d(a: jax.Array) -> jax.Array:
    return a[:, None] if a.ndim == 1 else a


def two_sample_test(
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array,
    *,
    statistic: str | Callable[..., jax.Array] = "mmd",
    n_permutations: int = 1000,
    chunk_size: int | None = None,
    statistic_key: jax.Array | None = None,
    **statistic_options: Any,
) -> TwoSampleResult:
    r"""Permutation test of P = Q from samples ``x ~ P`` and ``y ~ Q``.

    The statistic :math:`T` is computed on the observed samples and on
    ``B = n_permutations`` random relabellings of the pooled sample (the
    first ``n`` points of a relabelling play X, the other ``m`` play Y).
    Large values speak against P = Q, and the p-value counts the relabelled
    statistics at least as large as the observed one, the observed labelling
    included so that the p-value is never 0:

    .. math::
        p = \frac{1 + \#\{b \le B : T_b \ge T\}}{1 + B}.

    Under P = Q the relabellings are exchangeable with the observed
    labelling, so :math:`\Pr(p \le \alpha) \le \alpha` exactly, for any
    ``B`` (and :math:`= \alpha` when :math:`\alpha (1 + B)` is an integer).

    Statistics (``statistic_options`` in parentheses):

    * ``"mmd"`` (``kernel="gaussian"``, ``bandwidth=None``,
      ``estimator="unbiased"``): the squared MMD of :func:`divergences.mmd`,
      with any of its kernels; ``bandwidth=None`` takes the median heuristic
      over the pooled sample, which every relabelling shares. The
      ``"unbiased"`` (U) and ``"biased"`` (V) estimators reuse the pooled
      Gram matrix; ``"linear"`` re-estimates on each relabelling.
    * ``"energy"`` (``estimator="biased"``): the energy distance
      :math:`\mathcal{E} = 2\,\mathbb{E}\|X - Y\| - \mathbb{E}\|X - X'\| - \mathbb{E}\|Y - Y'\|`
      of the two empirical measures (V-statistic; ``"unbiased"`` for the
      U-statistic), which is ``mmd(x, y, kernel="energy", estimator="biased")``.
      :func:`scipy.stats.energy_distance` returns its square root in 1-D
      (the p-values agree, the root being increasing). Distances are
      computed by direct differences, not through ``|a|^2 + |b|^2 - 2 a.b``.
    * ``"sliced_wasserstein"`` (the options of
      :func:`divergences.sliced_wasserstein`; its projection key is
      ``statistic_key``, by default one drawn from ``key``, shared by every
      relabelling).
    * ``"wasserstein_1d"`` (the options of :func:`divergences.wasserstein_1d`),
      for 1-D samples, shape ``[n]`` or ``[n, 1]``.
    * a callable ``statistic(x, y, **statistic_options) -> scalar``, traced
      once and vmapped over the relabellings; it must be jit- and
      vmap-compatible.

    Cost, with :math:`N = n + m`: ``"mmd"`` and ``"energy"`` in ``d > 1``
    build the pooled ``[N, N]`` matrix once and then pay one
    :math:`O(N^2)` matrix-vector product per relabelling (chunks of them
    run as one matrix product); 1-D ``"energy"`` sorts once and pays
    :math:`O(N)` per relabelling; the other statistics pay one estimator
    call per relabelling.

    Args:
      x: samples of P, shape ``[n, d]`` (or ``[n]`` for 1-D data; a callable
        statistic may take any trailing shape).
      y: samples of Q, shape ``[m, d]``, same trailing shape as ``x``.
      key: a PRNG key; the relabellings (and the sliced projections) derive
        from it.
      statistic: one of ``"mmd"``, ``"energy"``, ``"sliced_wasserstein"``,
        ``"wasserstein_1d"``, or a callable.
      statistic_key: a PRNG key for the statistic itself, the same for
        every relabelling: the projections of ``"sliced_wasserstein"``
        (default: drawn from ``key``), or passed as ``key=`` to a callable
        statistic. Other statistics take no key.
      n_permutations: the number ``B`` of relabellings, at least 1. With
        ``B = 999`` the p-value resolves levels down to 0.001.
      chunk_size: how many relabellings run at once (one ``vmap``); memory
        grows linearly with it. ``None`` picks one from the sample size:
        about 16 MB of label vectors for ``"mmd"`` and ``"energy"``, and
        64 MB of estimator working memory for the others (counted as
        ``4 N`` numbers per projection for the sort-based Wasserstein
        estimators, and ``N^2`` for a callable).
      **statistic_options: options of the statistic, listed above. An
        option the statistic does not know raises ``ValueError`` naming it.

    Returns:
      A :class:`TwoSampleResult` ``(statistic, p_value, null_statistics)``:
      two scalars and an array ``[n_permutations]``, float32 at least.
      The statistic is differentiable in ``x`` and ``y``; the relabelled
      statistics carry no gradient. Under ``jit`` with non-finite samples,
      the statistic and the p-value are NaN.

    Raises:
      ValueError: naming the argument, for ``n_permutations < 1``, an
        unknown statistic name or option, samples of different feature
        dimensions, too few samples (2 per side for the unbiased forms),
        non-1-D samples with ``"wasserstein_1d"``, or (eagerly) non-finite
        samples.

    Example:
      >>> import jax, divergences as dv
      >>> kx, ky, kt = jax.random.split(jax.random.key(0), 3)
      >>> x = jax.random.normal(kx, (200, 5))
      >>> y = jax.random.normal(ky, (200, 5)) + 0.5
      >>> res = dv.two_sample_test(x, y, kt, statistic="mmd", n_permutations=199)
      >>> round(float(res.p_value), 4)  # the smallest p-value 199 relabellings can give
      0.005

    References:
      Gretton et al., "A Kernel Two-Sample Test", JMLR 13 (2012), sec. 6.
      Szekely and Rizzo, "Testing for equal distributions in high
      dimension", InterStat (2004). Phipson and Smyth, "Permutation
      P-values Should Never Be Zero", Stat. Appl. Genet. Mol. Biol. 9 (2010).
    """
    key = v.check_key("key", key)
    n_permutations = v.check_int("n_permutations", n_permutations, minimum=1)
    if chunk_size is not None:
        chunk_size = v.check_int("chunk_size", chunk_size, minimum=1)
    if not callable(statistic):
        v.check_choice("statistic", statistic, STATISTICS)
    if statistic_key is not None:
        if not (callable(statistic) or statistic == "sliced_wasserstein"):
            raise v.fail("statistic_key", f"is only used by 'sliced_wasserstein' and callable statistics, not {statistic!r}; drop it")
        statistic_options = {**statistic_options, "key": v.check_key("statistic_key", statistic_key)}
    min_samples = 1
    if statistic in _DEFAULT_OPTIONS:
        estimator = statistic_options.get("estimator", _DEFAULT_OPTIONS[statistic]["estimator"])
        choices = ("unbiased", "biased", "linear") if statistic == "mmd" else ("unbiased", "biased")
        v.check_choice("estimator", estimator, choices)
        min_samples = 1 if estimator == "biased" else 2
    x = v.check_samples("x", x, min_samples=min_samples)
    y = v.check_samples("y", y, min_samples=min_samples)
    if x.shape[1:] != y.shape[1:]:
        if x.ndim == y.ndim:
            v.check_same_dim("x", x, "y", y)
        raise v.fail("y", f"has shape {y.shape}, whose trailing shape does not match `x` of shape {x.shape}")
    if not callable(statistic):
        if x.ndim > 2:
            raise v.fail("x", f"must have shape [n] or [n, d] for statistic {statistic!r}; got {x.shape}")
        if statistic == "wasserstein_1d" and x.ndim == 2 and x.shape[1] != 1:
            raise v.fail("x", f"must be 1-D data (shape [n] or [n, 1]) for 'wasserstein_1d'; got {x.shape}")
    dtype = v.float_dtype(x, y)
    if statistic in _DEFAULT_OPTIONS:
        statistic_options = _take_options(statistic, statistic_options, _DEFAULT_OPTIONS[statistic])
    if statistic == "mmd" and statistic_options.get("bandwidth") is not None:
        from divergences._mmd import check_bandwidth

        check_bandwidth(statistic_options["bandwidth"])  # eagerly: the compiled test only gives NaN
    static_options, dynamic_options = _split_options(statistic_options)
    return _two_sample_core(
        x.astype(dtype),
        y.astype(dtype),
        key,
        dynamic_options,
        statistic=statistic,
        n_permutations=n_permutations,
        chunk_size=chunk_size,
        static_options=static_options,
    )


# ---------------------------------------------------------------------------
# Bootstrap.


@functools.partial(jax.jit, static_argnames=("estimator", "n_resamples", "chunk_size", "static_options"))
def _bootstrap_core(x, y, key, confidence, dynamic_options, *, estimator, n_resamples, chunk_size, static_options):
    options = {**dict(static_options), **dynamic_options}
    fn = functools.partial(estimator, **options)
    n, m = x.shape[0], y.shape[0]
    estimate = fn(x, y)
    x_null, y_null = x, y

    sizes = jnp.concatenate([jnp.full(n, n, jnp.int32), jnp.full(m, m, jnp.int32)])

    def one(k):
        idx = jax.random.randint(k, (n + m,), 0, sizes)
        return fn(x_null[idx[:n]], y_null[idx[n:]])

    chunk = _auto_chunk(chunk_size, n_resamples, _ESTIMATOR_BUDGET, _call_size(estimator, n + m, options))
    resamples = _chunked_map(one, jax.random.split(key, n_resamples), chunk)
    alpha = (1 - confidence) / 2

    def summary(r):
        r = jnp.asarray(r)
        fdtype = v.float_dtype(r)
        r = r.astype(fdtype)
        se = jnp.std(r, axis=0, ddof=1)
        low = jnp.quantile(r, alpha, axis=0)
        high = jnp.quantile(r, 1 - alpha, axis=0)
        return se, low, high

    stats = jax.tree_util.tree_map(summary, resamples)
    pick = lambda i: jax.tree_util.tree_map(lambda _, s: s[i], resamples, stats)  # noqa: E731
    return BootstrapResult(estimate, pick(0), pick(1), pick(2), resamples)


def bootstrap(
    estimator: Callable[..., Any],
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array,
    *,
    n_resamples: int = 200,
    confidence: float = 0.95,
    chunk_size: int | None = None,
    estimator_key: jax.Array | None = None,
    **estimator_options: Any,
) -> BootstrapResult:
    r"""Bootstrap standard error and percentile interval of a two-sample estimator.

    Each replicate resamples ``x`` and ``y`` independently, with replacement,
    at their own sizes, and evaluates ``estimator(x*, y*, **estimator_options)``.
    With replicates :math:`\hat\theta^*_1, \dots, \hat\theta^*_B`:

    .. math::
        \widehat{\mathrm{se}} = \sqrt{\tfrac{1}{B-1} \textstyle\sum_b (\hat\theta^*_b - \bar\theta^*)^2},
        \qquad
        [\mathrm{low}, \mathrm{high}] = [\hat q_{(1-c)/2}, \hat q_{(1+c)/2}],

    :math:`\hat q` the empirical quantiles of the replicates (linear
    interpolation, as :func:`numpy.quantile`) and :math:`c` the confidence.
    The percentile interval is right when the estimator is roughly unbiased
    and its distribution roughly symmetric; an estimator with a bias of the
    order of its standard error (a Wasserstein distance between two equal
    or nearly equal distributions, whose estimate is always positive)
    covers less than ``confidence``.

    The replicates run compiled, in chunks of ``chunk_size`` vmapped calls
    of the estimator.

    Args:
      estimator: any two-sample estimator ``estimator(x, y, **options)``
        returning an array or a pytree of arrays, jit- and vmap-compatible:
        every sample estimator of this library (``divergences.mmd``,
        ``divergences.wasserstein_1d``, ...), or your own. An estimator that
        needs a PRNG key gets it through ``estimator_key`` (passed as
        ``key=``); it is then the same for every replicate. Nearest-neighbour estimators see repeated
        points in a resample (distance 0 to a copy), which biases them;
        prefer subsampling for those.
      x: samples of P, shape ``[n, ...]``; resampled along axis 0.
      y: samples of Q, shape ``[m, ...]``.
      key: a PRNG key for the resampling.
      estimator_key: optional PRNG key passed to the estimator as ``key=``
        (the projections of ``divergences.sliced_wasserstein``), the same
        for every replicate.
      n_resamples: the number ``B`` of replicates, at least 2.
      confidence: the level of the percentile interval, in ``(0, 1)``.
      chunk_size: how many replicates run at once; memory grows linearly
        with it. ``None`` aims at 64 MB of estimator working memory, counted
        as ``4 N`` numbers (``N = n + m``) per projection for the sort-based
        Wasserstein estimators of the library and ``N^2`` for any other
        estimator.
      **estimator_options: passed to the estimator (arrays travel through
        ``jit`` as arguments, other values as static arguments).

    Returns:
      A :class:`BootstrapResult` ``(estimate, standard_error, low, high,
      resamples)``, each with the estimator's output structure (floating,
      float32 at least), ``resamples`` with a leading axis ``[n_resamples]``.
      All are differentiable in ``x`` and ``y`` where the estimator is.

    Raises:
      ValueError: naming the argument, for a non-callable ``estimator``,
        ``n_resamples < 2``, ``confidence`` outside ``(0, 1)``, or empty or
        (eagerly) non-finite samples.

    Example:
      >>> import jax, jax.numpy as jnp, divergences as dv
      >>> kx, ky, kb = jax.random.split(jax.random.key(0), 3)
      >>> x = jax.random.normal(kx, (500,))
      >>> y = 1.0 + jax.random.normal(ky, (500,))
      >>> mean_gap = lambda a, b: jnp.mean(b) - jnp.mean(a)
      >>> res = dv.bootstrap(mean_gap, x, y, kb, n_resamples=400)
      >>> bool(abs(res.standard_error - (2 / 500) ** 0.5) < 0.01)  # sqrt(1/n + 1/m)
      True

    References:
      Efron and Tibshirani, *An Introduction to the Bootstrap* (1993),
      ch. 6 (standard errors) and 13 (percentile intervals).
    """
    if not callable(estimator):
        raise v.fail("estimator", f"must be a callable estimator(x, y, **options); got {type(estimator).__name__}")
    key = v.check_key("key", key)
    if estimator_key is not None:
        estimator_options = {**estimator_options, "key": v.check_key("estimator_key", estimator_key)}
    n_resamples = v.check_int("n_resamples", n_resamples, minimum=2)
    if chunk_size is not None:
        chunk_size = v.check_int("chunk_size", chunk_size, minimum=1)
    v.check_scalar("confidence", confidence, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    x = v.check_samples("x", x)
    y = v.check_samples("y", y)
    static_options, dynamic_options = _split_options(estimator_options)
    return _bootstrap_core(
        x,
        y,
        key,
        jnp.asarray(confidence, v.float_dtype(x, y)),
        dynamic_options,
        estimator=estimator,
        n_resamples=n_resamples,
        chunk_size=chunk_size,
        static_options=static_options,
    )
