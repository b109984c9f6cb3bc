r"""k-nearest-neighbour estimator of the KL divergence between two samples.

Wang, Kulkarni and Verdu (2009): for :math:`x_1..x_n \sim P` and
:math:`y_1..y_m \sim Q` in :math:`\mathbb{R}^d`, with :math:`\rho_k(i)` the
distance from :math:`x_i` to its k-th nearest neighbour among the other
:math:`x_j` and :math:`\nu_k(i)` the distance from :math:`x_i` to its k-th
nearest neighbour among the :math:`y_j`,

.. math::
    \widehat{\mathrm{KL}}(P \,\|\, Q) = \frac{d}{n} \sum_{i=1}^{n} \log \frac{\nu_k(i)}{\rho_k(i)} + \log \frac{m}{n - 1},

consistent (it converges to KL(P || Q) as n, m grow) for densities, with
no bandwidth to choose.

The neighbours are *found* without gradients and their distances then
*recomputed* in JAX from coordinate differences, so gradients flow to the
samples and small distances (the ones that matter here) are exact:

* **CPU, d <=** :data:`TREE_MAX_DIM`: scipy's k-d tree (``cKDTree``) on the
  host, through a host call (:func:`divergences._sort.host_call`): O(n log n)
  in low dimension. The two trees (of ``x`` and of ``y``) are built at once,
  and the two searches (``x`` among ``x``, ``x`` among ``y``) run as blocks
  of rows shared out among one thread per core the process may use. Not
  where host calls are unusable (one usable core on a JAX without buffer
  callbacks, see :func:`divergences._sort.host_callbacks_usable`).
* **GPU, TPU, and CPU at higher d** (and where host calls are unusable): blocked
  brute force (``lax.map`` over blocks of ``x``, one ``[block_size, n + m]``
  matrix of squared distances at a time, then ``lax.top_k``), memory
  ``O(block_size * (n + m))``. The squared distances come from coordinate
  differences up to :data:`DIRECT_MAX_DIM` dimensions, from a matrix product
  above (see there).

Both give the same candidates, hence the same values and gradients. The
samples are centred on the mean of ``x`` before anything is squared (in the
input's own precision when it is a concrete array), so a translation of both
samples does not change the answer.
"""

from __future__ import annotations

import concurrent.futures
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from divergences import _sort
from divergences import _validation as v

__all__ = ["knn_kl_divergence"]

# Up to this dimension the k-d tree beats brute force on CPU; above it the
# tree visits most leaves (measured by ``python -m benchmarks --only knn*``).
TREE_MAX_DIM = 10

# Points per leaf of the host k-d trees (scipy's default is 16); larger
# leaves make the brute-force work inside a leaf cheaper than deeper descent
# for these query sizes (same benchmark).
TREE_LEAF_SIZE = 32

# Fewest query rows per block of the host tree search (blocks share out the
# two searches between the cores; smaller ones only add calls).
TREE_QUERY_ROWS = 1024

# Candidates beyond the k-th neighbour, so that zero distances (points that
# coincide at the working precision) can be skipped.
EXTRA_CANDIDATES = 2

# Up to this dimension the brute-force search ranks by squared coordinate
# differences; above it by the expansion |a|^2 + |b|^2 - 2 a.b (a matrix
# product). The expansion's rounding is about eps * |a|^2, which in low
# dimension is as large as the k-th neighbour's squared distance itself (in
# 1-D, n = 20,000 points of N(0, 1) have neighbours ~1e-4 apart: a squared
# distance ~1e-8 against float32 rounding of ~1e-7), so it would pick the
# wrong neighbours; in high dimension neighbours are far apart relative to
# the data's scale and the product is the faster form.
DIRECT_MAX_DIM = 8


def _brute_candidates(a: jax.Array, b: jax.Array, c: int, block_size: int, exclude_self: bool) -> jax.Array:
    """Indices ``[n, c]`` of the ``c`` nearest rows of ``b`` to each row of ``a`` (self excluded)."""
    n = a.shape[0]
    nb = -(-n // block_size)
    a_pad = jnp.pad(a, ((0, nb * block_size - n), (0, 0)))
    direct = a.shape[1] <= DIRECT_MAX_DIM
    bb = None if direct else jnp.sum(b * b, axis=-1)
    cols = jnp.arange(b.shape[0])

    def block(i):
        start = i * block_size
        rows = jax.lax.dynamic_slice_in_dim(a_pad, start, block_size)
        if direct:
            diff = rows[:, None, :] - b[None, :, :]
            d2 = jnp.sum(diff * diff, -1)
        else:
            # Only a selection: the data are centred, so the expansion does not
            # cancel at large offsets, and the distances are recomputed exactly.
            d2 = jnp.sum(rows * rows, -1)[:, None] + bb[None, :] - 2 * (rows @ b.T)
        if exclude_self:
            r = start + jnp.arange(block_size)
            d2 = jnp.where(r[:, None] == cols[None, :], jnp.inf, d2)
        return jax.lax.top_k(-d2, c)[1].astype(jnp.int32)

    return jax.lax.map(block, jnp.arange(nb)).reshape(nb * block_size, c)[:n]


def _tree_rows(n: int, threads: int) -> list[slice]:
    """Blocks of the positions ``0 .. n - 1``: about four per thread, none under :data:`TREE_QUERY_ROWS` rows."""
    pieces = max(1, min(4 * threads, n // TREE_QUERY_ROWS))
    bounds = np.linspace(0, n, pieces + 1).astype(int)
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _without_self(dist: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop each row's own index from its candidates (found among ``kk + 1``, so ``kk`` remain)."""
    if np.all(idx[:, 0] == rows):
        return dist[:, 1:], idx[:, 1:]  # each point its own nearest neighbour
    # Self is at distance 0, among any exact duplicates: move it last, drop it.
    order = np.argsort(idx == rows[:, None], axis=1, kind="stable")
    return np.take_along_axis(dist, order, 1)[:, :-1], np.take_along_axis(idx, order, 1)[:, :-1]


def _kth_positive_rows(tree, a64: np.ndarray, rows: np.ndarray, k: int, c: int, exclude_self: bool) -> np.ndarray:
    """For the rows ``a64[rows]``, the index ``[len(rows)]`` of each one's k-th nearest point of ``tree`` at a positive distance.

    Rows whose ``k`` nearest include a zero distance (exact duplicates at the
    working precision) are asked again for ``c`` candidates; ``-1`` where
    fewer than ``k`` of those are at a positive distance. With
    ``exclude_self`` the tree holds ``a64`` itself, and each row's own index
    is not a candidate.
    """
    s = int(exclude_self)

    def query(which, kk):
        dist, idx = tree.query(a64[which], k=kk + s, workers=1)
        dist, idx = dist.reshape(len(which), -1), idx.reshape(len(which), -1)
        return _without_self(dist, idx, which) if exclude_self else (dist, idx)

    dist, idx = query(rows, k)
    out = idx[:, k - 1].astype(np.int32)
    zero = np.flatnonzero(dist[:, 0] <= 0)  # nearest first: a zero distance comes first
    if zero.size:
        dist, idx = query(rows[zero], c) if c > k else (dist[zero], idx[zero])
        pos = k - 1 + np.sum(dist <= 0, axis=1)
        kth = np.take_along_axis(idx, np.minimum(pos, c - 1)[:, None], axis=1)[:, 0]
        out[zero] = np.where(pos < c, kth, -1)
    return out


def _tree_search(x: np.ndarray, y: np.ndarray, k: int, cx: int, cy: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Host k-d trees: the indices ``[n]`` of each row's k-th nearest row of ``x`` (itself excluded) and of ``y``.

    The two trees are built at once; then both searches run as blocks of
    query rows on one queue of ``threads`` threads (cKDTree releases the GIL
    while it builds and queries), so that no core waits while the other
    search has rows left. The rows are taken in the order of the tree of
    ``x``, so that consecutive queries visit neighbouring leaves. A pool per
    call keeps the module free of state.
    """
    from scipy.spatial import cKDTree

    # The trees work in float64: convert once.
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        trees = [f.result() for f in [pool.submit(cKDTree, data, leafsize=TREE_LEAF_SIZE) for data in (x64, y64)]]
        order = trees[0].indices
        # Queued block by block, alternating between the two searches.
        futures = [
            [pool.submit(_kth_positive_rows, tree, x64, order[rows], k, c, own) for tree, c, own in zip(trees, (cx, cy), (True, False))]
            for rows in _tree_rows(x64.shape[0], threads)
        ]
        found = [np.concatenate([f[i].result() for f in futures]) for i in range(2)]
    out = np.empty((2, x64.shape[0]), np.int32)
    out[:, order] = found
    return out[0], out[1]


def _tree_candidates(x: jax.Array, y: jax.Array, k: int, cx: int, cy: int):
    def host(outs, x, y):
        outs[0][...], outs[1][...] = _tree_search(x, y, k, cx, cy, _sort.usable_cores())

    n = x.shape[0]
    out = (jax.ShapeDtypeStruct((n,), jnp.int32), jax.ShapeDtypeStruct((n,), jnp.int32))
    return _sort.host_call(host, out, x, y, vmap_method="sequential")


def _kth_positive_index(a: jax.Array, b: jax.Array, idx: jax.Array, k: int) -> jax.Array:
    """Of the candidates ``b[idx]`` (``[n, c]``) of each row of ``a``, the one ``[n]`` at the k-th smallest positive distance.

    ``-1`` for a row with fewer than ``k`` candidates at a positive distance.
    A selection only (no gradient): the distances are recomputed after it.
    """
    diff = a[:, None, :] - b[idx]  # [n, c, d]
    d2 = jnp.sum(diff * diff, axis=-1)
    c = d2.shape[1]
    order = jnp.argsort(d2, axis=1)  # zero distances (exact duplicates) first
    pos = k - 1 + jnp.sum(d2 == 0, axis=1)
    kth = jnp.take_along_axis(idx, jnp.take_along_axis(order, jnp.minimum(pos, c - 1)[:, None], axis=1), axis=1)[:, 0]
    return jnp.where(pos < c, kth, -1)


def _sq_dist_to(a: jax.Array, b: jax.Array, j: jax.Array) -> jax.Array:
    """Squared distance ``[n]`` from each row of ``a`` to ``b[j]``, 0 where ``j`` is -1.

    Recomputed from coordinate differences, so differentiable in ``a`` and
    ``b`` and exact for the small distances that matter here.
    """
    diff = a - b[jnp.maximum(j, 0)]
    return jnp.where(j >= 0, jnp.sum(diff * diff, axis=-1), 0)


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _knn_core(x, y, k, block_size):
    n, d = x.shape
    m = y.shape[0]
    centre = jax.lax.stop_gradient(jnp.mean(x, axis=0))
    x, y = x - centre, y - centre  # differences, hence the result, unchanged
    cx, cy = min(k + EXTRA_CANDIDATES, n - 1), min(k + EXTRA_CANDIDATES, m)
    xs, ys = jax.lax.stop_gradient(x), jax.lax.stop_gradient(y)

    def brute(xs, ys):
        ix = _brute_candidates(xs, xs, cx, block_size, True)
        iy = _brute_candidates(xs, ys, cy, block_size, False)
        return _kth_positive_index(xs, xs, ix, k), _kth_positive_index(xs, ys, iy, k)

    if d <= TREE_MAX_DIM and _sort.host_callbacks_usable():
        jx, jy = jax.lax.platform_dependent(xs, ys, cpu=lambda a, b: _tree_candidates(a, b, k, cx, cy), default=brute)
    else:
        jx, jy = brute(xs, ys)
    rho2 = _sq_dist_to(x, x, jx)
    nu2 = _sq_dist_to(x, y, jy)
    tiny = jnp.finfo(x.dtype).tiny
    # log(nu / rho) = (log nu^2 - log rho^2) / 2; a point with fewer than k
    # positive candidate distances is clamped to the smallest normal number.
    log_ratio = 0.5 * (jnp.log(jnp.maximum(nu2, tiny)) - jnp.log(jnp.maximum(rho2, tiny)))
    return d * jnp.mean(log_ratio) + jnp.log(m / (n - 1.0))


def _duplicates(x: np.ndarray, y: np.ndarray, k: int) -> tuple[bool, bool]:
    """Genuine repeats in the input's own precision: (a point of ``x`` has >= k copies in ``x``, >= k in ``y``)."""
    n = x.shape[0]
    _, inv, counts = np.unique(x, axis=0, return_inverse=True, return_counts=True)
    repeated = counts.max() - 1 >= k
    _, inv, _ = np.unique(np.concatenate([x, y]), axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    in_y = np.bincount(inv[n:], minlength=inv.max() + 1)
    return bool(repeated), bool(in_y[inv[:n]].max() >= k)


def knn_kl_divergence(
    x: ArrayLike,
    y: ArrayLike,
    *,
    k: int = 1,
    block_size: int = 1024,
) -> jax.Array:
    r"""k-nearest-neighbour estimate of KL(P || Q) from x ~ P and y ~ Q.

    .. math::
        \widehat{\mathrm{KL}}(P \,\|\, Q) = \frac{d}{n} \sum_{i=1}^{n} \log \frac{\nu_k(i)}{\rho_k(i)} + \log \frac{m}{n - 1},

    where :math:`\rho_k(i)` is the Euclidean distance from :math:`x_i` to
    its k-th nearest neighbour in ``x`` (itself excluded) and
    :math:`\nu_k(i)` that to its k-th nearest neighbour in ``y``. The
    estimate can be negative for finite samples; it is in nats.

    Zero distances make the formula infinite. Points that coincide only
    at the working precision (float64 data cast to float32 when x64 is off,
    or large offsets) are skipped: :math:`\rho_k(i)` and :math:`\nu_k(i)`
    are the k-th smallest *positive* distances among the ``k + 2`` nearest
    candidates (a point with fewer positive ones is clamped to the smallest
    normal float, finite). Genuinely repeated data, judged in the input's own
    precision (a point of ``x`` with ``k`` copies in ``x``, or ``k`` copies in
    ``y``), raise ``ValueError`` in an eager call (naming ``x`` for repeated
    points, ``y`` for shared ones; jitter the samples or raise ``k``); under
    ``jit`` they are skipped as above. The samples are centred on the mean
    of ``x`` first, in the input's precision for concrete arrays, so a
    common translation does not change the estimate.

    On CPU the neighbours come from scipy's ``cKDTree`` (up to
    ``d = TREE_MAX_DIM``), elsewhere and above from blocked brute force; both
    give the same values and gradients (module docstring).

    Args:
      x: samples of P, shape ``[n, d]`` (or ``[n]`` for d = 1).
      y: samples of Q, shape ``[m, d]`` (or ``[m]``).
      k: the neighbour order, ``1 <= k < n`` and ``k <= m``. Larger k lowers
        the variance and raises the bias.
      block_size: rows of ``x`` per block of the distance computation
        (memory ``O(block_size * (n + m))``).

    Returns:
      A scalar, float32 at least. Under ``jit``, NaN for non-finite samples.

    Example:
      >>> import jax
      >>> import divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (2000, 1))
      >>> y = 1.0 + jax.random.normal(jax.random.key(1), (2000, 1))
      >>> bool(abs(float(dv.knn_kl_divergence(x, y, k=5)) - 0.5) < 0.1)  # KL = 1/2
      True

    References:
      Wang, Kulkarni and Verdu, "Divergence Estimation for Multidimensional
      Densities Via k-Nearest-Neighbor Distances", IEEE Trans. Inf. Theory
      55 (2009), eq. (17). Perez-Cruz, "Kullback-Leibler divergence
      estimation of continuous distributions", ISIT 2008.
    """
    x_in, y_in = x, y
    x = v.as_float_array("x", x, min_ndim=1)
    y = v.as_float_array("y", y, min_ndim=1)
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    x = v.check_samples("x", x, ndim=2, min_samples=2)
    y = v.check_samples("y", y, ndim=2)
    v.check_same_dim("x", x, "y", y)
    n, m = x.shape[0], y.shape[0]
    k = v.check_int("k", k)
    if k < 1 or k >= n or k > m:
        raise v.fail("k", f"must satisfy 1 <= k < n = {n} (samples of `x`) and k <= m = {m} (samples of `y`); got {k}")
    block_size = v.check_int("block_size", block_size, minimum=1)
    dtype = v.float_dtype(x, y)
    if v.is_concrete(x, y) and not isinstance(x_in, jax.core.Tracer) and not isinstance(y_in, jax.core.Tracer):
        # In the input's own precision (float64 NumPy data stay float64 here
        # even when x64 is off): centre before the cast, and tell genuine
        # repeats from coincidences made by the cast.
        xa = np.asarray(x_in).reshape(n, -1)
        ya = np.asarray(y_in).reshape(m, -1)
        if np.issubdtype(xa.dtype, np.floating) and np.issubdtype(ya.dtype, np.floating) and np.all(np.isfinite(xa)) and np.all(np.isfinite(ya)):
            repeated, shared = _duplicates(xa, ya, k)
            if repeated:
                raise v.fail("x", f"has repeated points: some point appears more than {k} time(s), so its {k}-th nearest neighbour in `x` is at distance 0; jitter the samples or raise `k`")
            if shared:
                raise v.fail("y", f"shares points with `x`: some point of `x` appears {k} time(s) or more in `y`, so its {k}-th nearest neighbour in `y` is at distance 0; jitter the samples or raise `k`")
            centre = np.mean(xa, axis=0, dtype=np.result_type(xa.dtype, ya.dtype))
            x, y = jnp.asarray(xa - centre, dtype), jnp.asarray(ya - centre, dtype)
    x, y = x.astype(dtype), y.astype(dtype)
    value = _knn_core(x, y, k, min(block_size, n))
    if v.is_concrete(value):
        return value
    ok = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(y))
    return jnp.where(ok, value, jnp.nan)
