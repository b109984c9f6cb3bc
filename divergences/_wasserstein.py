r"""Wasserstein distances between empirical measures: exact 1-D, sliced, max-sliced.

Conventions shared by every function here:

* the cost is :math:`|s - t|^p` on the line (Euclidean after projection), and
  the functions return the distance :math:`W_p`, **not** its p-th power
  :math:`W_p^p` (POT's ``wasserstein_1d`` returns :math:`W_p^p`; its
  ``sliced_wasserstein_distance`` returns the root, as here; ott-jax's
  ``sliced_wasserstein`` returns the mean of :math:`W_p^p`, without root);
* weights are optional (uniform when ``None``), need not be normalised (they
  are divided by their sum), and receive gradients like the samples;
* inputs are promoted to at least float32 (bfloat16 and float16 accumulate in
  float32); float64 is kept when x64 is enabled;
* the sort is the platform's fastest (:mod:`divergences._sort`: NumPy through
  a host call on CPU, XLA's sort on GPU/TPU); gradients flow through gathers,
  so everything works under ``jit``, ``vmap`` and ``grad``, and gradients are
  finite at ``x == y`` (the root has a custom derivative that is 0 there).

Bad input follows the library's contract (:mod:`divergences._validation`):
eager calls raise ``ValueError`` naming the argument; under ``jit`` shape and
option errors still raise at trace time, and a call with NaN or infinite
samples, or invalid weights, returns NaN.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from divergences import _sort
from divergences import _validation as v

__all__ = ["wasserstein_1d", "sliced_wasserstein", "max_sliced_wasserstein"]


# --------------------------------------------------------------------------
# Helpers.


def _root(s: jax.Array, p: float) -> jax.Array:
    """``s ** (1/p)`` for ``s >= 0`` with a finite derivative at ``s = 0``."""
    if p == 1:
        return s
    return _root_jvp(s, p)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _root_jvp(s, p):
    return jnp.where(s > 0, s, 0) ** (1.0 / p)


@_root_jvp.defjvp
def _root_jvp_rule(p, primals, tangents):
    (s,), (ds,) = primals, tangents
    out = _root_jvp(s, p)
    # d s^(1/p) = s^(1/p - 1) ds / p, evaluated where s > 0; at s = 0 (x == y,
    # a minimum of W_p^p, where ds = 0) the derivative is taken as 0.
    safe = jnp.where(s > 0, s, 1)
    scale = jnp.where(s > 0, safe ** (1.0 / p - 1.0) / p, 0)
    return out, scale * ds


def _abs_pow(d: jax.Array, p: float) -> jax.Array:
    if p == 1:
        return jnp.abs(d)
    if p == 2:
        return d * d
    if isinstance(p, int) or float(p).is_integer():
        return jnp.abs(d) ** int(p)
    return jnp.abs(d) ** p


def _check_p(p) -> float:
    """``p`` selects the algorithm, so it must be a concrete number >= 1."""
    v.check_static("p", p)
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise v.fail("p", f"must be a Python number >= 1 (it selects the algorithm); got {p!r}")
    p = float(p)
    if not math.isfinite(p) or p < 1:
        raise v.fail("p", f"must be >= 1 (W_p is a distance only for p >= 1); got {p!r}")
    return int(p) if p.is_integer() else p


def _sorted_pair(x: jax.Array, y: jax.Array, wx: jax.Array | None, wy: jax.Array | None, axis: int):
    """Sort both samples along ``axis`` (moved last) in one call, and their weights with them."""
    if wx is None and wy is None:
        xs, ys = _sort.sort_many((x, y), axis)
        return xs, ys, None, None
    px, py = _sort.argsort_many((x, y), axis)

    def take(a, perm):
        return jnp.take_along_axis(jnp.moveaxis(a, axis, -1), perm, axis=-1)

    xs, ys = take(x, px), take(y, py)
    wxs = None if wx is None else jnp.take_along_axis(jnp.broadcast_to(wx, px.shape), px, axis=-1)
    wys = None if wy is None else jnp.take_along_axis(jnp.broadcast_to(wy, py.shape), py, axis=-1)
    return xs, ys, wxs, wys


def _cdf_levels(ws: jax.Array | None, n: int, dtype) -> jax.Array:
    """Cumulative weights of sorted samples: F at each sample (the last is 1 exactly)."""
    if ws is None:
        return jnp.arange(1, n + 1, dtype=dtype) / n
    levels = jnp.cumsum(ws, axis=-1)
    # The weights are normalised, so the last level is 1; fixing it keeps
    # rounding from leaving a sliver of mass unmatched.
    return jnp.concatenate([jnp.minimum(levels[..., :-1], 1), jnp.ones_like(levels[..., -1:])], axis=-1)


@functools.lru_cache(maxsize=64)
def _uniform_merge_np(n: int, m: int):
    """Merge of the CDF levels i/n and j/m, exactly, in int64 (n and m are static).

    Returns, for each x level a = i + 1: the number of y levels strictly
    below it and the length of the quantile interval ending at it, and for
    each y level b = j + 1: the index of the x quantile on its interval and
    that interval's length; lengths in units of 1 / (n m).
    """
    a = np.arange(1, n + 1, dtype=np.int64)
    b = np.arange(1, m + 1, dtype=np.int64)
    below_x = (a * m - 1) // n  # #{j : j/m < a/n}
    len_x = a * m - np.maximum((a - 1) * m, below_x * n)
    upto_y = (b * n) // m  # #{i : i/n <= b/m}
    len_y = b * n - np.maximum((b - 1) * n, upto_y * m)
    scale = float(n) * float(m)
    return below_x.astype(np.int32), len_x / scale, np.minimum(upto_y, n - 1).astype(np.int32), len_y / scale


def _take(a: jax.Array, idx: jax.Array) -> jax.Array:
    return jnp.take(a, idx, axis=-1, mode="clip")


def _scale_of(*diffs: jax.Array) -> jax.Array:
    r"""The largest ``|difference|`` along the last axis: the scale factored out of ``|d|^p``.

    Held fixed for differentiation: ``s (\sum w |d/s|^p)^{1/p}`` equals
    ``W_p`` for every constant ``s > 0``, so its derivative is ``W_p``'s.
    """
    s = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(d), axis=-1) for d in diffs])
    s = jax.lax.stop_gradient(s)
    return jnp.where(jnp.isfinite(s) & (s > 0), s, 1)


def _scaled_quantile_sum(pairs, p):
    """``(s, u)`` with ``sum_k w_k |d_k|^p = s^p u``, for ``pairs`` of (weights, differences)."""
    if p == 1:
        return jnp.ones(pairs[0][1].shape[:-1], pairs[0][1].dtype), sum(jnp.sum(w * jnp.abs(d), axis=-1) for w, d in pairs)
    s = _scale_of(*(d for _, d in pairs))
    u = sum(jnp.sum(w * _abs_pow(d / s[..., None], p), axis=-1) for w, d in pairs)
    return s, u


def _wpp_uniform_equal(xs, ys, p):
    """Uniform weights, n = m: the i-th smallest x is matched with the i-th smallest y."""
    n = xs.shape[-1]
    return _scaled_quantile_sum([(jnp.asarray(1.0 / n, xs.dtype), xs - ys)], p)


def _wpp_uniform(xs, ys, p):
    """Uniform weights, n != m: the merge of the levels i/n and j/m is integer arithmetic at trace time."""
    n, m = xs.shape[-1], ys.shape[-1]
    below_x, len_x, upto_y, len_y = _uniform_merge_np(n, m)
    dtype = xs.dtype
    return _scaled_quantile_sum(
        [
            (jnp.asarray(len_x, dtype), xs - _take(ys, jnp.asarray(below_x))),
            (jnp.asarray(len_y, dtype), _take(xs, jnp.asarray(upto_y)) - ys),
        ],
        p,
    )


def _w1_weighted(xs, ys, cx, cy):
    r"""W_1 = \int |F(t) - G(t)| dt by a walk over the merged sorted samples (one problem)."""
    n, m = xs.shape[-1], ys.shape[-1]
    dtype = xs.dtype
    # After each sample t the CDF difference is constant up to the next
    # sample of either measure.
    below = _sort.searchsorted(ys, xs, side="left")  # #{j : y_j < x_i}
    upto = _sort.searchsorted(xs, ys, side="right")  # #{i : x_i <= y_j}
    inf = jnp.full((1,), jnp.inf, dtype)
    x_next = jnp.minimum(jnp.concatenate([xs[1:], inf]), jnp.where(below < m, _take(ys, below), jnp.inf))
    y_next = jnp.minimum(jnp.concatenate([ys[1:], inf]), jnp.where(upto < n, _take(xs, upto), jnp.inf))
    x_gap = jnp.where(jnp.isfinite(x_next), x_next - xs, 0)
    y_gap = jnp.where(jnp.isfinite(y_next), y_next - ys, 0)
    g_at_x = jnp.where(below > 0, _take(cy, below - 1), 0)
    f_at_y = jnp.where(upto > 0, _take(cx, upto - 1), 0)
    value = jnp.sum(jnp.abs(cx - g_at_x) * x_gap) + jnp.sum(jnp.abs(f_at_y - cy) * y_gap)
    return jnp.ones((), dtype), value


def _wpp_quantile(xs, ys, cx, cy, p):
    r"""W_p^p = \int_0^1 |F^{-1}(u) - G^{-1}(u)|^p du over the merged CDF levels (one problem)."""
    zero = jnp.zeros((1,), xs.dtype)
    # The interval ending at an x level cx_i starts at the previous level of
    # either measure, and carries x_i and the first y whose level reaches cx_i.
    below = _sort.searchsorted(cy, cx, side="left")  # #{j : cy_j < cx_i}
    upto = _sort.searchsorted(cx, cy, side="right")  # #{i : cx_i <= cy_j}
    prev_x = jnp.maximum(jnp.concatenate([zero, cx[:-1]]), jnp.where(below > 0, _take(cy, below - 1), 0))
    prev_y = jnp.maximum(jnp.concatenate([zero, cy[:-1]]), jnp.where(upto > 0, _take(cx, upto - 1), 0))
    return _scaled_quantile_sum([(cx - prev_x, xs - _take(ys, below)), (cy - prev_y, _take(xs, upto) - ys)], p)


def _wpp_sorted(xs, ys, wxs, wys, p):
    """``(s, u)`` with W_p^p = s^p u between sorted samples (last axis) with sorted weights (None: uniform).

    The scale ``s`` (the largest matched difference) is factored out so that
    ``|d|^p`` neither overflows nor underflows. Every merge is expressed by
    counts (how many levels or samples of the other measure lie below each
    one) and gathers, not by a merged sort, a scatter or a cumulative sum
    over the merged sequence.
    """
    if wxs is None and wys is None:
        if xs.shape[-1] == ys.shape[-1]:
            return _wpp_uniform_equal(xs, ys, p)
        return _wpp_uniform(xs, ys, p)

    def one(a, b, wa, wb):
        ca = _cdf_levels(wa, a.shape[-1], a.dtype)
        cb = _cdf_levels(wb, b.shape[-1], b.dtype)
        return _w1_weighted(a, b, ca, cb) if p == 1 else _wpp_quantile(a, b, ca, cb, p)

    return _batched(one, xs.ndim - 1)(xs, ys, wxs, wys)


def _batched(fn, nbatch: int):
    for _ in range(nbatch):
        fn = jax.vmap(fn)
    return fn


def _wpp(x, y, wx, wy, p, axis=-1):
    """``(s, u)`` with W_p^p = s^p u along ``axis`` of ``x`` and ``y`` (other axes: batch, equal shapes)."""
    xs, ys, wxs, wys = _sorted_pair(x, y, wx, wy, axis)
    return _wpp_sorted(xs, ys, wxs, wys, p)


def _w(x, y, wx, wy, p, axis=-1):
    """W_p along ``axis`` (the root), computed scale-free."""
    s, u = _wpp(x, y, wx, wy, p, axis)
    return s * _root(u, p)


def _sorted_finite(*sorted_arrays: jax.Array) -> jax.Array:
    """Whether every value of each array is finite, read off the ends of the sorted last axis.

    Every sort of :mod:`divergences._sort` puts infinities and NaN (of either
    sign) at the ends, so two values a row decide what a scan of all of them
    would, without reading the samples again.
    """
    ok = jnp.asarray(True)
    for a in sorted_arrays:
        ok = ok & jnp.isfinite(a[..., 0]) & jnp.isfinite(a[..., -1])
    return ok


def _w_checked(x, y, wx, wy, p):
    """W_p along the last axis (the root, scale-free), NaN where a sample is not finite."""
    xs, ys, wxs, wys = _sorted_pair(x, y, wx, wy, -1)
    s, u = _wpp_sorted(xs, ys, wxs, wys, p)
    return jnp.where(_sorted_finite(xs, ys), s * _root(u, p), jnp.nan)


# The numerical cores are jitted (an eager call compiles once per shape rather
# than dispatching op by op); validation stays outside, so it runs eagerly.
_w1d_core = jax.jit(_w_checked, static_argnames=("p",))


# --------------------------------------------------------------------------
# Small single problems on CPU: a program that runs on the calling thread.
#
# XLA's CPU client runs a compiled program on the calling thread only when its
# HloCostAnalysis estimate is under 1,000 flops (``cheap_computation_`` in
# XLA's PjRt CPU client); any other program is handed to a worker thread, a
# fixed cost of tens of microseconds that is most of the time of a small 1-D
# distance (a sort of n values is estimated at n * ceil(log2 n) flops, so two
# sorts of 128 are already over). The estimate counts one iteration of a while
# loop and the largest branch of a conditional. Written as a loop over a
# switch whose steps are the finiteness check, the two sorts and the sum, the
# program is estimated at its largest step and runs inline. The steps are the
# same operations as the general path; only the program's shape differs.

#: Largest ``n`` and ``m`` (uniform weights, one problem) that take the inline
#: path on CPU: one sort of n values is estimated at n * ceil(log2 n) flops,
#: 896 at n = 128 and 1,032 at n = 129.
INLINE_MAX_SIZE = 128


def _inline_fits(n: int, m: int, p: float) -> bool:
    """Whether every step of :func:`_w1d_steps` stays under the estimate's threshold.

    The last step (the matched differences, their powers and sum) is a few
    flops per value: within the threshold for equal sizes (one difference
    per pair) and for p = 1; unequal sizes with p > 1 match n + m intervals
    through more operations and take the general path.
    """
    return max(n, m) <= INLINE_MAX_SIZE and (n == m or p == 1)


def _all_finite(x, y, axis=-1):
    """Whether every sample of both ``x`` and ``y`` is finite, reduced over ``axis`` (None: all)."""
    return jnp.all(jnp.isfinite(x), axis) & jnp.all(jnp.isfinite(y), axis)


def _w1d_checked(x, y, p):
    """Uniform-weight W_p along the last axis (any batch), NaN where a sample is not finite."""
    return _w_checked(x, y, None, None, p)


def _w1d_steps(x, y, p):
    """:func:`_w1d_checked` for one problem, as a loop over a switch of its steps (see above)."""

    def check(c):
        return {**c, "ok": _all_finite(c["x"], c["y"])}

    def sort_x(c):
        return {**c, "x": jnp.sort(c["x"])}

    def sort_y(c):
        return {**c, "y": jnp.sort(c["y"])}

    def value(c):
        s, u = _wpp_sorted(c["x"], c["y"], None, None, p)
        return {**c, "w": s * _root(u, p)}

    steps = [check, sort_x, sort_y, value]
    carry = {"x": x, "y": y, "ok": jnp.asarray(True), "w": jnp.zeros((), x.dtype)}
    out = jax.lax.fori_loop(0, len(steps), lambda i, c: jax.lax.switch(i, steps, c), carry)
    return jnp.where(out["ok"], out["w"], jnp.nan)


@functools.lru_cache(maxsize=None)
def _w1d_small_batchable(p):
    """The inline program on CPU (the general path elsewhere); under ``vmap``, the general path."""

    @jax.custom_batching.custom_vmap
    def fn(x, y):
        return jax.lax.platform_dependent(
            x, y, cpu=lambda x, y: _w1d_steps(x, y, p), default=lambda x, y: _w1d_checked(x, y, p))

    @fn.def_vmap
    def rule(axis_size, in_batched, x, y):
        # A batch of problems: one sort call for all of them (a host sort when large).
        x, y = (a if b else jnp.broadcast_to(a, (axis_size, *a.shape)) for a, b in zip((x, y), in_batched))
        return _w1d_checked(x, y, p), True

    return fn


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _w1d_small_diff(x, y, p):
    return _w1d_small_batchable(p)(x, y)


@_w1d_small_diff.defjvp
def _w1d_small_jvp(p, primals, tangents):
    # Derivatives by the general path (its sorts carry the permutation).
    return jax.jvp(lambda x, y: _w1d_checked(x, y, p), primals, tangents)


@functools.partial(jax.jit, static_argnames=("p",))
def _w1d_small(x, y, p):
    """W_p of one small uniform-weight problem (``[n]``, ``[m]``), NaN for non-finite samples."""
    return _w1d_small_diff(x, y, p)


def _prepare_weights(name, w, shape, samples_name):
    """Weights normalised along the last axis (or ``None``), and which vectors are valid.

    Under a transformation ``check_weights`` turns an invalid vector into NaN,
    which the quantile merge of ``p > 1`` would not carry to the distance:
    the flag poisons it explicitly.
    """
    if w is None:
        return None, jnp.asarray(True)
    w = v.check_weights(name, w, shape=shape, samples_name=samples_name)
    return w, ~jnp.isnan(w[..., 0])


# --------------------------------------------------------------------------
# Exact 1-D.


@v.compiled_when_eager
def wasserstein_1d(
    x: ArrayLike,
    y: ArrayLike,
    *,
    x_weights: ArrayLike | None = None,
    y_weights: ArrayLike | None = None,
    p: float = 1,
    axis: int = 0,
) -> jax.Array:
    r"""Exact p-Wasserstein distance between two empirical measures on the line.

    For :math:`\mu = \sum_i a_i \delta_{x_i}` and :math:`\nu = \sum_j b_j \delta_{y_j}`
    with CDFs :math:`F, G` and quantile functions :math:`F^{-1}, G^{-1}`,

    .. math::
        W_1(\mu, \nu) = \int_{\mathbb{R}} |F(t) - G(t)|\,dt, \qquad
        W_p(\mu, \nu) = \Big(\int_0^1 |F^{-1}(u) - G^{-1}(u)|^p\,du\Big)^{1/p}.

    ``p = 1`` uses the CDF difference over the merged sorted samples, ``p > 1``
    the quantile functions over the merged CDF levels; both sort the two
    samples once (:mod:`divergences._sort`, in one call) and merge the two
    sorted lists in linear time, without a second sort. With uniform weights
    and equal sizes both reduce to :math:`\frac1n \sum_i |x_{(i)} - y_{(i)}|^p`.
    The largest matched difference :math:`s` is factored out,
    :math:`W_p = s\,(\int |(F^{-1} - G^{-1})/s|^p)^{1/p}`, so the powers
    neither overflow nor underflow (data of scale 1e-30 or 1e30, large ``p``).
    On CPU, one problem of at most :data:`INLINE_MAX_SIZE` values a side with
    uniform weights (equal sizes, or ``p = 1``) is compiled as a loop over
    its steps, which XLA runs on the calling thread: the same values, without
    the hand-off to a worker thread that would dominate its time.

    Samples lie along ``axis`` (axis 0 by default, as in POT's
    ``wasserstein_1d`` and every other estimator of the library); the other
    axes are batch axes, one problem per index, and broadcast between ``x``
    and ``y``. A two-dimensional input with one column, ``[n, 1]``, is one
    problem like ``[n]`` (so ``x[:, :1]`` gives a scalar).

    Args:
      x: samples, shape ``[n]``, ``[n, 1]`` or ``[n, *batch]`` (samples along
        ``axis``).
      y: samples, shape ``[m]``, ``[m, 1]`` or ``[m, *batch]`` (``m`` may
        differ from ``n``).
      x_weights: optional non-negative weights of ``x``'s shape (normalised
        to sum to 1 along ``axis``); uniform when ``None``.
      y_weights: the same for ``y``.
      p: the order, a Python number ``>= 1``.
      axis: the sample axis of ``x``, ``y`` and the weights.

    Returns:
      :math:`W_p` (the root, not :math:`W_p^p`), of the broadcast batch shape
      (a scalar for ``[n]`` and ``[n, 1]`` inputs), float32 at least. Under
      ``jit``, NaN when a sample is not finite or a weight vector is invalid.

    Example:
      >>> import divergences as dv
      >>> float(dv.wasserstein_1d([0.0, 1.0, 3.0], [5.0, 6.0, 8.0]))
      5.0
      >>> round(float(dv.wasserstein_1d([0.0, 1.0], [0.0, 1.0, 2.0], p=2)), 4)
      0.7071
      >>> dv.wasserstein_1d([[0.0, 1.0], [2.0, 1.0]], [[1.0, 1.0], [3.0, 1.0]]).tolist()  # [n, batch]
      [1.0, 0.0]

    References:
      Villani, *Optimal Transport, Old and New* (2009), Remark 2.19.
      Peyre and Cuturi, "Computational Optimal Transport", Found. Trends
      Mach. Learn. 11 (2019), Remark 2.30.
    """
    p = _check_p(p)
    x = v.as_float_array("x", x, min_ndim=1)
    y = v.as_float_array("y", y, min_ndim=1)
    v.check_axis("axis", axis, x.ndim)
    v.check_axis("axis", axis, y.ndim)

    def one_column(a):  # [n, 1] (or [1, n] with axis=1): one problem, like [n]
        return a.ndim == 2 and a.shape[1 - v.check_axis("axis", axis, 2)] == 1

    def samples_last(name, a, squeeze):
        if a is None:
            return None
        a = v.as_float_array(name, a)
        if a.ndim == 1 or (squeeze and a.ndim == 2):
            return a.reshape(-1) if a.size == max(a.shape, default=0) else a
        if -a.ndim <= axis < a.ndim:
            return jnp.moveaxis(a, axis, -1)
        return a  # the shape check below names it

    squeeze_x, squeeze_y = one_column(x), one_column(y)
    wx_raw = samples_last("x_weights", x_weights, squeeze_x)
    wy_raw = samples_last("y_weights", y_weights, squeeze_y)
    x, y = samples_last("x", x, squeeze_x), samples_last("y", y, squeeze_y)
    x = v.check_samples("x", x, min_ndim=1, sample_axis=-1)
    y = v.check_samples("y", y, min_ndim=1, sample_axis=-1)
    dtype = v.float_dtype(x, y)
    x, y = x.astype(dtype), y.astype(dtype)
    wx, okx = _prepare_weights("x_weights", wx_raw, x.shape, "x")
    wy, oky = _prepare_weights("y_weights", wy_raw, y.shape, "y")
    batch = v.broadcast_shapes({"x": x.shape[:-1], "y": y.shape[:-1]})

    def bcast(a):
        return None if a is None else jnp.broadcast_to(a.astype(dtype), batch + a.shape[-1:])

    x, y, wx, wy = bcast(x), bcast(y), bcast(wx), bcast(wy)
    if wx is None and wy is None and batch == () and _inline_fits(x.shape[-1], y.shape[-1], p):
        return _w1d_small(x, y, p)  # checks finiteness itself (NaN under jit; eager input is checked above)
    value = _w1d_core(x, y, wx, wy, p)  # NaN for non-finite samples
    if v.is_concrete(value) or (wx is None and wy is None):
        return value
    return jnp.where(okx & oky, value, jnp.nan)


# --------------------------------------------------------------------------
# Sliced and max-sliced.


def _prepare_clouds(x, y, x_weights, y_weights):
    x = v.check_samples("x", x, ndim=2)
    y = v.check_samples("y", y, ndim=2)
    v.check_same_dim("x", x, "y", y)
    dtype = v.float_dtype(x, y)
    x, y = x.astype(dtype), y.astype(dtype)
    wx, okx = _prepare_weights("x_weights", x_weights, x.shape[:1], "x")
    wy, oky = _prepare_weights("y_weights", y_weights, y.shape[:1], "y")
    ok = _all_finite(x, y, None) & okx & oky
    return x, y, wx, wy, ok


def _directions(key, d: int, n_projections: int, dtype, orthogonal: bool) -> jax.Array:
    """``[d, L]`` unit directions: i.i.d. uniform, or stacked random orthonormal frames."""
    if not orthogonal:
        g = jax.random.normal(key, (d, n_projections), dtype)
        return g / jnp.linalg.norm(g, axis=0, keepdims=True)
    k = -(-n_projections // d)
    g = jax.random.normal(key, (k, d, d), dtype)
    q, r = jnp.linalg.qr(g)
    # Sign fix: Haar-distributed frames (Mezzadri 2007).
    q = q * jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    return jnp.transpose(q, (1, 0, 2)).reshape(d, k * d)[:, :n_projections]


def _get_projections(key, projections, d, n_projections, dtype, orthogonal):
    """``[d, L]`` directions, and whether they are all finite (for NaN-poisoning under ``jit``)."""
    if projections is None:
        if key is None:
            raise v.fail("key", "is None; pass a PRNG key or `projections`")
        key = v.check_key("key", key)
        n_projections = v.check_int("n_projections", n_projections, minimum=1)
        return _directions(key, d, n_projections, dtype, orthogonal), True
    theta = v.as_float_array("projections", projections, ndim=2)
    if theta.shape[0] != d:
        raise v.fail("projections", f"has shape {theta.shape}; it needs {d} rows (the samples' dimension) and one column per direction")
    if theta.shape[1] < 1:
        raise v.fail("projections", "has no columns (directions)")
    return theta.astype(dtype), v.check_finite("projections", theta)


@functools.partial(jax.jit, static_argnames=("p", "chunk_size"))
def _per_direction(x, y, wx, wy, theta, p, chunk_size):
    """``(s, u)``, shapes ``[L]``: W_p^p of the projections on column l of ``theta`` is ``s_l^p u_l``."""
    d, L = theta.shape

    def one_chunk(th):  # th: [d, c]
        # Projections [n, c], sorted along the samples (axis 0); the sort
        # returns them as [c, n], and sorts both samples in one call.
        return _wpp(x @ th, y @ th, wx, wy, p, axis=0)

    if chunk_size is None or chunk_size >= L:
        return one_chunk(theta)
    k = -(-L // chunk_size)
    pad = k * chunk_size - L
    # Zero directions project everything onto 0: W_p = 0, and they are cut off below.
    th = jnp.pad(theta, ((0, 0), (0, pad))).reshape(d, k, chunk_size).transpose(1, 0, 2)
    # checkpoint: the backward pass recomputes a chunk's projections instead of
    # storing all of them, so memory stays O(chunk_size * (n + m)).
    s, u = jax.lax.map(jax.checkpoint(one_chunk), th)
    return s.reshape(-1)[:L], u.reshape(-1)[:L]


def _root_mean(s: jax.Array, u: jax.Array, p: float) -> jax.Array:
    """``(mean_l s_l^p u_l)^{1/p}`` with the largest scale factored out (no overflow in ``s^p``)."""
    big = jax.lax.stop_gradient(jnp.max(s))
    big = jnp.where(jnp.isfinite(big) & (big > 0), big, 1)
    return big * _root(jnp.mean(_abs_pow(s / big, p) * u), p)


def _poison(ok, value):
    if v.is_concrete(ok):
        return value
    return jnp.where(ok, value, jnp.nan)


@v.compiled_when_eager
def sliced_wasserstein(
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array | None,
    *,
    n_projections: int = 128,
    p: float = 2,
    x_weights: ArrayLike | None = None,
    y_weights: ArrayLike | None = None,
    projections: ArrayLike | None = None,
    chunk_size: int | None = None,
    orthogonal: bool = False,
) -> jax.Array:
    r"""Monte-Carlo sliced p-Wasserstein distance between two point clouds.

    .. math::
        \mathrm{SW}_p(\mu, \nu) = \Big(\int_{S^{d-1}} W_p^p(\theta_\# \mu, \theta_\# \nu)\,d\sigma(\theta)\Big)^{1/p}
        \approx \Big(\frac1L \sum_{l=1}^{L} W_p^p(\theta_{l\#} \mu, \theta_{l\#} \nu)\Big)^{1/p},

    with :math:`\theta_\# \mu` the law of :math:`\langle \theta, X \rangle`,
    each term the exact :func:`wasserstein_1d`. The mean is taken over the
    **p-th powers**, and the root of the mean is returned: with fixed
    ``projections``, ``sliced_wasserstein(...) ** p`` equals the mean of
    ``wasserstein_1d(x @ theta_l, y @ theta_l, p=p) ** p``. POT's
    ``sliced_wasserstein_distance`` returns the same root; ott-jax's
    ``sliced_wasserstein`` returns the mean of :math:`W_p^p` (no root).

    Args:
      x: samples, shape ``[n, d]``.
      y: samples, shape ``[m, d]``.
      key: PRNG key for the directions; may be ``None`` when ``projections``
        is given.
      n_projections: number ``L`` of random directions (``>= 1``).
      p: order ``>= 1`` (a Python number).
      x_weights: optional non-negative weights, shape ``[n]`` (normalised).
      y_weights: optional non-negative weights, shape ``[m]``.
      projections: optional fixed directions, shape ``[d, L]``, used as given
        (columns are not normalised); overrides ``key`` and ``n_projections``.
      chunk_size: process the directions ``chunk_size`` at a time
        (:func:`jax.lax.map`), so memory is ``O(chunk_size * (n + m))`` in
        the forward and the backward pass; ``None``: all at once.
      orthogonal: draw the directions as stacked random orthonormal frames
        (blocks of ``d`` mutually orthogonal directions, each frame Haar
        distributed) instead of independent uniform directions: an unbiased
        estimate with lower variance in high dimension.

    Returns:
      :math:`\mathrm{SW}_p`, a scalar, float32 at least. Under ``jit``, NaN
      for non-finite samples or invalid weights.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (500, 3))
      >>> sw = dv.sliced_wasserstein(x, x + 1.0, jax.random.key(1), n_projections=64)
      >>> bool(0.5 < float(sw) < 1.5)  # E <theta, 1>^2 = 1 for d = 3
      True

    References:
      Rabin, Peyre, Delon and Bernot, "Wasserstein Barycenter and its
      Application to Texture Mixing", SSVM 2011. Bonneel, Rabin, Peyre and
      Pfister, "Sliced and Radon Wasserstein Barycenters of Measures",
      J. Math. Imaging Vis. 51 (2015). Rowland et al., "Orthogonal
      Estimation of Wasserstein Distances", AISTATS 2019 (orthogonal frames).
    """
    p = _check_p(p)
    if chunk_size is not None:
        chunk_size = v.check_int("chunk_size", chunk_size, minimum=1)
    if not isinstance(orthogonal, (bool, np.bool_)):
        raise v.fail("orthogonal", f"must be True or False; got {orthogonal!r}")
    x, y, wx, wy, ok = _prepare_clouds(x, y, x_weights, y_weights)
    theta, finite_theta = _get_projections(key, projections, x.shape[1], n_projections, x.dtype, bool(orthogonal))
    ok = ok & finite_theta
    s, u = _per_direction(x, y, wx, wy, theta, p, chunk_size)
    return _poison(ok, _root_mean(s, u, p))


@v.compiled_when_eager
def max_sliced_wasserstein(
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array | None,
    *,
    n_projections: int = 128,
    p: float = 2,
    x_weights: ArrayLike | None = None,
    y_weights: ArrayLike | None = None,
    projections: ArrayLike | None = None,
    chunk_size: int | None = None,
    refine_steps: int = 0,
    step_size: float = 0.1,
) -> jax.Array:
    r"""Max-sliced p-Wasserstein distance: the largest 1-D distance over directions.

    .. math::
        \max\text{-}\mathrm{SW}_p(\mu, \nu) = \max_{\theta \in S^{d-1}} W_p(\theta_\# \mu, \theta_\# \nu)
        \approx \max_{l \le L} W_p(\theta_{l\#} \mu, \theta_{l\#} \nu).

    The maximum over ``L`` sampled directions is a lower bound of the true
    value; ``refine_steps > 0`` improves the best sampled direction by that
    many steps of projected gradient ascent on :math:`W_p^p(\theta)` (a step
    along the gradient, then back onto the sphere). The returned value is
    :math:`W_p` along the final direction, which is held fixed for
    differentiation (by the envelope theorem the derivative of a maximum is
    the derivative at the maximiser).

    Args:
      x: samples, shape ``[n, d]``.
      y: samples, shape ``[m, d]``.
      key: PRNG key for the directions (``None`` when ``projections`` is given).
      n_projections: number of random directions (``>= 1``).
      p: order ``>= 1``.
      x_weights, y_weights: optional weights, shapes ``[n]`` and ``[m]``.
      projections: optional fixed directions ``[d, L]`` (used as given).
      chunk_size: directions per chunk, as in :func:`sliced_wasserstein`.
      refine_steps: number of projected gradient-ascent steps (``>= 0``).
      step_size: ascent step length, relative to the gradient norm (each step
        moves the unit direction by ``step_size`` before renormalising).

    Returns:
      A scalar :math:`W_p` (root), float32 at least.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (500, 2))
      >>> y = x.at[:, 0].add(3.0)
      >>> msw = dv.max_sliced_wasserstein(x, y, jax.random.key(1), refine_steps=20)
      >>> round(float(msw), 2)  # the shift along the first axis
      3.0

    References:
      Deshpande et al., "Max-Sliced Wasserstein Distance and its Use for
      GANs", CVPR 2019.
    """
    p = _check_p(p)
    if chunk_size is not None:
        chunk_size = v.check_int("chunk_size", chunk_size, minimum=1)
    refine_steps = v.check_int("refine_steps", refine_steps, minimum=0)
    v.check_scalar("step_size", step_size, low=0, low_inclusive=False)
    x, y, wx, wy, ok = _prepare_clouds(x, y, x_weights, y_weights)
    theta, finite_theta = _get_projections(key, projections, x.shape[1], n_projections, x.dtype, False)
    ok = ok & finite_theta
    theta = jax.lax.stop_gradient(theta)
    if not refine_steps:
        # The sampled maximum; its gradient is that of the maximising direction.
        s, u = _per_direction(x, y, wx, wy, theta, p, chunk_size)
        return _poison(ok, jnp.max(s * _root(u, p)))
    xs, ys = jax.lax.stop_gradient(x), jax.lax.stop_gradient(y)
    wxs = None if wx is None else jax.lax.stop_gradient(wx)
    wys = None if wy is None else jax.lax.stop_gradient(wy)
    s, u = _per_direction(xs, ys, wxs, wys, theta, p, chunk_size)
    best = theta[:, jnp.argmax(s * _root(u, p))]
    best = best / jnp.linalg.norm(best)

    def objective(th):  # W_p, increasing in W_p^p: the same maximiser, no overflow
        return _w(xs @ th, ys @ th, wxs, wys, p)

    def step(th, _):
        g = jax.grad(objective)(th)
        g = g - jnp.dot(g, th) * th  # tangent to the sphere
        gn = jnp.linalg.norm(g)
        th_new = th + step_size * g / jnp.where(gn > 0, gn, 1)
        th_new = th_new / jnp.linalg.norm(th_new)
        # Accept only ascent steps, so refinement never lowers the estimate.
        return jnp.where(objective(th_new) >= objective(th), th_new, th), None

    best, _ = jax.lax.scan(step, best, None, length=refine_steps)
    best = jax.lax.stop_gradient(best)
    return _poison(ok, _w(x @ best, y @ best, wx, wy, p))
