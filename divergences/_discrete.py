"""Exact divergences between discrete distributions (probability vectors).

Conventions shared by every function here:

* natural logarithm (results in nats);
* probabilities lie along ``axis``; any other axes are batch axes, and ``p``
  and ``q`` broadcast against each other (NumPy rules);
* inputs are promoted to at least float32 (bfloat16 and float16 accumulate in
  float32); float64 is kept when x64 is enabled;
* ``0 * log(0 / q) = 0`` and ``p * log(p / 0) = +inf`` for ``p > 0``;
* gradients with respect to ``p`` and ``q`` are finite wherever the value is
  finite, zero entries and ``p == q`` included (see :func:`_plogpq`).

Bad input follows the library's contract (:mod:`divergences._validation`):
eager calls raise ``ValueError`` naming the argument for negative entries,
NaN, vectors that do not sum to 1, empty vectors and shapes that do not
broadcast; under ``jit`` the shape checks still raise at trace time, and a
batch element whose ``p`` or ``q`` fails a value check comes out as NaN (wrap
the call in :func:`divergences.checked` to get the error instead).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences._numerics import LOG2

__all__ = ["kl_divergence", "total_variation", "js_divergence", "f_divergence", "F_DIVERGENCES"]

F_DIVERGENCES = ("kl", "reverse_kl", "pearson_chi2", "squared_hellinger", "total_variation", "js")

# Other spellings accepted wherever a divergence is named; "total_variation"
# is the library's one name for the total variation distance.
DIVERGENCE_ALIASES = {"tv": "total_variation"}


@jax.custom_jvp
def _plogpq(p: jax.Array, q: jax.Array) -> jax.Array:
    """Elementwise ``p log(p / q)`` with ``0 log(0/q) = 0`` and ``p log(p/0) = inf``.

    Its derivative ``(log(p/q) + 1, -p/q)`` is infinite at ``p = 0`` or
    ``q = 0``; the JVP below evaluates it with ``p`` and ``q`` clamped to the
    smallest normal number of the dtype, so gradients stay finite (large, with
    the right sign) on the boundary of the simplex, and are exact inside it.
    """
    safe_p = jnp.where(p > 0, p, 1)
    return jnp.where(p > 0, p * (jnp.log(safe_p) - jnp.log(q)), 0)


@_plogpq.defjvp
def _plogpq_jvp(primals, tangents):
    p, q = primals
    dp, dq = tangents
    tiny = jnp.finfo(jnp.result_type(p, q)).tiny
    pc = jnp.maximum(p, tiny)
    qc = jnp.maximum(q, tiny)
    out = _plogpq(p, q)
    return out, dp * (jnp.log(pc) - jnp.log(qc) + 1) - dq * (p / qc)


# Below this |d| the series of h(d) = (1 + d) log1p(d) - d is used: 8 terms leave a relative
# truncation error under 0.1^8 / 4 (float64 would need more terms than float32; both are met).
_SERIES_D = 0.1
_SERIES_TERMS = 12


def _h(d: jax.Array) -> jax.Array:
    r""":math:`h(d) = (1 + d)\log(1 + d) - d \ge 0` for :math:`d > -1`, without cancellation.

    For :math:`|d| < 0.1` the alternating series :math:`\sum_{k \ge 2} (-1)^k d^k / (k(k-1))`
    (the direct form loses :math:`\log_{10}(2/|d|)` digits there); beyond it the ``log1p``
    form, whose two terms no longer cancel.
    """
    small = jnp.abs(d) < _SERIES_D
    ds = jnp.where(small, d, 0)
    series = jnp.zeros_like(d)
    for k in range(_SERIES_TERMS + 1, 1, -1):  # Horner from the highest power
        series = (series + (-1) ** k / (k * (k - 1))) * ds
    series = series * ds
    dl = jnp.where(small, 1, d)
    direct = (1 + dl) * jnp.log1p(dl) - dl
    return jnp.where(small, series, direct)


def _kl_value(p: jax.Array, q: jax.Array) -> jax.Array:
    """Elementwise ``p log(p/q) - p + q`` (>= 0; it sums to KL on the simplex), stably."""
    pos = (p > 0) & (q > 0)
    safe_q = jnp.where(pos, q, 1)
    safe_p = jnp.where(pos, p, 1)
    d = (safe_p - safe_q) / safe_q
    # Far from d = 0 the log form has no harmful cancellation; it avoids d overflowing (subnormal
    # q) and 1 + d rounding to 0 (p << q).
    huge = (d > 1e30) | (d < -0.5)
    inner = jnp.where(huge, safe_p * (jnp.log(safe_p) - jnp.log(safe_q)) - safe_p + safe_q, safe_q * _h(jnp.where(huge, 0, d)))
    at_zero = jnp.where(p > 0, jnp.inf, q).astype(p.dtype)  # q = 0 < p: inf; p = 0: the "+ q"
    return jnp.where(pos, inner, at_zero)


@jax.custom_jvp
def _kl_terms(p: jax.Array, q: jax.Array) -> jax.Array:
    """KL terms ``p log(p/q) - p + q`` (the ``- p + q`` sum to 0 on the simplex) with the derivative of ``p log(p/q)``.

    The value: each term is >= 0 and computed without cancellation (:func:`_h`), so sums of
    nearly equal vectors are accurate to a few ulps in float32, where the naive
    ``sum p log(p/q)`` cancels across terms. The JVP is that of :func:`_plogpq` (the gradients
    of the plain sum, finite on the boundary), so gradients are unchanged by the rewrite.
    """
    return _kl_value(p, q)


@_kl_terms.defjvp
def _kl_terms_jvp(primals, tangents):
    p, q = primals
    _, tangent = jax.jvp(_plogpq, primals, tangents)
    return _kl_value(p, q), tangent


def _js_value(p: jax.Array, q: jax.Array) -> jax.Array:
    """Elementwise JS terms ``(s / 4) (h(d) + h(-d))``, ``s = p + q``, ``d = (p - q) / s``.

    ``0.5 (p log(p/m) + q log(q/m))`` with ``m = s/2``, ``p = s(1 + d)/2``: no cancellation.
    """
    s = p + q
    pos = s > 0
    d = jnp.where(pos, (p - q) / jnp.where(pos, s, 1), 0)
    one = jnp.abs(d) >= 1  # p = 0 or q = 0: h(1) + h(-1) = 2 log 2
    g = jnp.where(one, 2 * LOG2, _h(jnp.where(one, 0, d)) + _h(jnp.where(one, 0, -d)))
    return jnp.where(pos, 0.25 * s * g, 0)


@jax.custom_jvp
def _js_terms(p: jax.Array, q: jax.Array) -> jax.Array:
    """JS terms, stable (:func:`_js_value`), with the gradient ``(log(p/m), log(q/m)) / 2``, clamped like ``_plogpq``."""
    return _js_value(p, q)


@_js_terms.defjvp
def _js_terms_jvp(primals, tangents):
    p, q = primals
    dp, dq = tangents
    tiny = jnp.finfo(jnp.result_type(p, q)).tiny
    m = jnp.maximum(0.5 * (p + q), tiny)
    lm = jnp.log(m)
    tangent = 0.5 * (dp * (jnp.log(jnp.maximum(p, tiny)) - lm) + dq * (jnp.log(jnp.maximum(q, tiny)) - lm))
    return _js_value(p, q), tangent


def _input_precision(p_in, q_in, default) -> jnp.dtype:
    """The least precise floating dtype among the raw inputs (``default`` if none is floating)."""
    eps, out = 0.0, default
    for a in (p_in, q_in):
        dt = getattr(a, "dtype", None)
        if dt is not None and jnp.issubdtype(dt, jnp.floating) and float(jnp.finfo(dt).eps) > eps:
            eps, out = float(jnp.finfo(dt).eps), jnp.dtype(dt)
    return out if eps > float(jnp.finfo(default).eps) else default


def _prepare(p_in: ArrayLike, q_in: ArrayLike, axis: int, name_p: str = "p", name_q: str = "q"):
    p, q = p_in, q_in
    """Validate and broadcast two probability arrays; returns (p, q, axis, tol).

    ``tol`` is the sum-to-one tolerance of the least precise input dtype (float16 and bfloat16
    histograms are computed in float32 but were rounded in their own precision).
    """
    p = v.as_float_array(name_p, p, min_ndim=1)
    q = v.as_float_array(name_q, q, min_ndim=1)
    tol_dtype = _input_precision(p_in, q_in, p.dtype)
    dtype = v.float_dtype(p, q)
    shape = v.broadcast_shapes({name_p: p.shape, name_q: q.shape})
    axis = v.check_axis("axis", axis, len(shape))
    p = jnp.broadcast_to(p.astype(dtype), shape)
    q = jnp.broadcast_to(q.astype(dtype), shape)
    v.check_nonempty(name_p, p, axis)
    v.check_probabilities(name_p, p, axis=axis, tol_dtype=tol_dtype)
    v.check_probabilities(name_q, q, axis=axis, tol_dtype=tol_dtype)
    return p, q, axis, v._sum_tolerance(tol_dtype, p.shape[axis])


def _clip_nonneg(x: jax.Array) -> jax.Array:
    # Rounding can leave -1e-9 where the exact value is 0; `where` (not
    # `maximum`) keeps the gradient of the exact-zero case intact.
    return jnp.where(x < 0, jnp.zeros_like(x), x)


def _clip_upper(x: jax.Array, upper: float) -> jax.Array:
    upper = jnp.asarray(upper, x.dtype)
    return jnp.where(x > upper, upper, x)


def _reduce(terms: jax.Array, p: jax.Array, q: jax.Array, axis: int, upper: float | None, tol: float) -> jax.Array:
    """Sum the terms, clip rounding to the range, and poison invalid batch elements with NaN.

    Eager calls have already raised on invalid input; under ``jit`` the values
    are unknown, so a batch element whose ``p`` or ``q`` is not a probability
    vector (negative or non-finite entries, sum off 1) comes out as NaN.
    """
    value = _clip_nonneg(jnp.sum(terms, axis=axis))
    if upper is not None:
        value = _clip_upper(value, upper)
    good = jnp.ones(value.shape, bool)
    for a in (p, q):
        good &= jnp.all((a >= 0) & jnp.isfinite(a), axis=axis) & (jnp.abs(jnp.sum(a, axis=axis) - 1) <= tol)
    return jnp.where(good, value, jnp.nan)


@functools.partial(jax.jit, static_argnames=("kind", "axis", "tol"))
def _named(p: jax.Array, q: jax.Array, *, kind: str, axis: int, tol: float) -> jax.Array:
    """The named divergences, compiled once per (kind, axis, tolerance, shape, dtype)."""
    return _reduce(_NAMED_TERMS[kind](p, q), p, q, axis, _UPPER.get(kind), tol)


@v.compiled_when_eager
def kl_divergence(p: ArrayLike, q: ArrayLike, *, axis: int = -1) -> jax.Array:
    r"""Kullback-Leibler divergence KL(p || q) between discrete distributions.

    .. math::
        \mathrm{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i},
        \qquad 0 \log \tfrac{0}{q} = 0, \quad p \log \tfrac{p}{0} = +\infty \ (p > 0).

    Args:
      p: probabilities, shape ``[..., n]`` (``n`` along ``axis``).
      q: probabilities, broadcastable with ``p``.
      axis: the axis holding the probabilities.

    Returns:
      Array of the broadcast batch shape (``axis`` removed), in nats, in
      ``[0, +inf]``; ``+inf`` where ``p`` puts mass where ``q`` has none.
      Float32 at least. Under ``jit``, NaN for a batch element whose ``p`` or
      ``q`` is not a probability vector.

    Example:
      >>> import divergences as dv
      >>> float(dv.kl_divergence([0.5, 0.5], [0.9, 0.1]))  # doctest: +ELLIPSIS
      0.5108...

    References:
      Kullback and Leibler, "On Information and Sufficiency", Ann. Math.
      Statist. 22 (1951). Cover and Thomas, *Elements of Information Theory*
      (2006), eq. 2.26.
    """
    p, q, axis, tol = _prepare(p, q, axis)
    return _named(p, q, kind="kl", axis=axis, tol=tol)


@v.compiled_when_eager
def total_variation(p: ArrayLike, q: ArrayLike, *, axis: int = -1) -> jax.Array:
    r"""Total variation distance between discrete distributions.

    .. math::
        \mathrm{TV}(p, q) = \tfrac12 \sum_i |p_i - q_i| = \sup_A |p(A) - q(A)|.

    Args:
      p: probabilities, shape ``[..., n]``.
      q: probabilities, broadcastable with ``p``.
      axis: the axis holding the probabilities.

    Returns:
      Array of the broadcast batch shape, in ``[0, 1]``. Under ``jit``, NaN
      for a batch element whose ``p`` or ``q`` is not a probability vector.

    Example:
      >>> import divergences as dv
      >>> float(dv.total_variation([1.0, 0.0], [0.25, 0.75]))
      0.75

    References:
      Tsybakov, *Introduction to Nonparametric Estimation* (2009), sec. 2.4.
    """
    p, q, axis, tol = _prepare(p, q, axis)
    return _named(p, q, kind="total_variation", axis=axis, tol=tol)


@v.compiled_when_eager
def js_divergence(p: ArrayLike, q: ArrayLike, *, axis: int = -1) -> jax.Array:
    r"""Jensen-Shannon divergence between discrete distributions (weights 1/2, nats).

    .. math::
        \mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p \,\|\, m) + \tfrac12 \mathrm{KL}(q \,\|\, m),
        \qquad m = \tfrac12 (p + q).

    This is the divergence itself, not its square root: ``scipy.spatial.distance.
    jensenshannon(p, q)`` returns ``sqrt(JS)`` (in nats with its default base).

    Args:
      p: probabilities, shape ``[..., n]``.
      q: probabilities, broadcastable with ``p``.
      axis: the axis holding the probabilities.

    Returns:
      Array of the broadcast batch shape, in ``[0, log 2]``. Under ``jit``,
      NaN for a batch element whose ``p`` or ``q`` is not a probability vector.

    Example:
      >>> import divergences as dv
      >>> float(dv.js_divergence([1.0, 0.0], [0.0, 1.0]))  # log 2  # doctest: +ELLIPSIS
      0.6931...

    References:
      Lin, "Divergence measures based on the Shannon entropy", IEEE Trans.
      Inf. Theory 37 (1991).
    """
    p, q, axis, tol = _prepare(p, q, axis)
    return _named(p, q, kind="js", axis=axis, tol=tol)


@jax.custom_jvp
def _sqrt_safe(x: jax.Array) -> jax.Array:
    """``sqrt`` whose derivative at 0 is that at the smallest normal (finite)."""
    return jnp.sqrt(x)


@_sqrt_safe.defjvp
def _sqrt_safe_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    tiny = jnp.finfo(x.dtype).tiny
    return jnp.sqrt(x), dx * 0.5 / jnp.sqrt(jnp.maximum(x, tiny))


def _sq_hellinger_terms(p: jax.Array, q: jax.Array) -> jax.Array:
    return (_sqrt_safe(p) - _sqrt_safe(q)) ** 2


def _pearson_terms(p: jax.Array, q: jax.Array) -> jax.Array:
    # (p - q)^2 / q, with +inf where q = 0 < p and 0 where p = q = 0.
    safe_q = jnp.where(q > 0, q, 1)
    at_zero_q = jnp.where(p > 0, jnp.inf, 0.0).astype(p.dtype)
    return jnp.where(q > 0, (p - q) ** 2 / safe_q, at_zero_q)


_NAMED_TERMS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "kl": _kl_terms,
    "reverse_kl": lambda p, q: _kl_terms(q, p),
    "pearson_chi2": _pearson_terms,
    "squared_hellinger": _sq_hellinger_terms,
    "total_variation": lambda p, q: 0.5 * jnp.abs(p - q),
    "js": _js_terms,
}

# Upper ends of the range of each named divergence (used to clip rounding).
_UPPER = {"total_variation": 1.0, "js": 0.6931471805599453, "squared_hellinger": 2.0}


def _callable_terms(f: Callable, p: jax.Array, q: jax.Array, slope_at_infinity, f_zero_nan) -> jax.Array:
    """``q f(p/q)`` with its limits: ``q f(0+)`` at ``p = 0`` and ``p f'(inf)`` at ``q = 0``.

    Every branch is evaluated at a safe point (no ``0 * inf`` in the value or its gradient):
    where ``f(0)`` itself is NaN (``t log t`` written naively), the limit ``f(0+)`` is taken as
    ``f`` at the smallest normal number.
    """
    pos_q = q > 0
    safe_q = jnp.where(pos_q, q, 1)
    ratio = jnp.where(pos_q, p / safe_q, 1)
    ratio = jnp.where((ratio > 0) | ~f_zero_nan, ratio, jnp.finfo(p.dtype).tiny)
    inner = jnp.where(pos_q, q * f(ratio), 0)
    slope = jnp.asarray(slope_at_infinity, p.dtype)
    finite_slope = jnp.isfinite(slope)
    linear = p * jnp.where(finite_slope, slope, 0)  # finite value and gradient
    at_zero_q = jnp.where(p > 0, jnp.where(finite_slope, linear, slope), 0)
    return jnp.where(pos_q, inner, at_zero_q)


@v.compiled_when_eager
def f_divergence(
    p: ArrayLike,
    q: ArrayLike,
    f: str | Callable[[jax.Array], jax.Array],
    *,
    axis: int = -1,
    slope_at_infinity: float = float("inf"),
) -> jax.Array:
    r"""The f-divergence D_f(p || q) between discrete distributions.

    .. math::
        D_f(p \,\|\, q) = \sum_i q_i\, f\!\left(\frac{p_i}{q_i}\right),

    with the perspective's limits ``0 f(p/0) = p f'(\infty)`` where
    ``f'(\infty) = \lim_{t\to\infty} f(t)/t``, and ``0 f(0/0) = 0``.

    Named generators (each agrees with its dedicated function where there is one):

    ======================= =================================== ===================================
    name                    f(t)                                value
    ======================= =================================== ===================================
    ``"kl"``                t log t                             :func:`kl_divergence` (p||q)
    ``"reverse_kl"``        -log t                              KL(q||p)
    ``"pearson_chi2"``      (t - 1)^2                           sum (p - q)^2 / q
    ``"squared_hellinger"`` (sqrt t - 1)^2                      sum (sqrt p - sqrt q)^2, in [0, 2]
    ``"total_variation"``   \|t - 1\| / 2                       :func:`total_variation`
    ``"js"``                (t log t - (1+t) log((1+t)/2)) / 2  :func:`js_divergence`
    ======================= =================================== ===================================

    The squared Hellinger distance follows Nowozin et al. (2016) and has no
    factor 1/2 (some texts define it as half of this).

    Args:
      p: probabilities, shape ``[..., n]``.
      q: probabilities, broadcastable with ``p``.
      f: a name from the table (``"tv"`` is accepted for
        ``"total_variation"``), or a callable convex generator ``f(t)`` with
        ``f(1) = 0``, applied elementwise to a float array of ratios. A
        callable is checked eagerly for ``f(1) = 0``; its convexity is the
        caller's promise. Where ``p = 0`` the limit ``f(0+)`` is used: if
        ``f(0)`` is NaN (``t * log(t)``), ``f`` at the smallest normal number.
        Gradients are finite wherever the value is finite, ``p == q``
        included.
      axis: the axis holding the probabilities.
      slope_at_infinity: for a callable ``f``, ``f'(\infty)``, the
        contribution per unit of mass where ``q = 0 < p``. Defaults to
        ``+inf`` (right for KL, chi-square and any superlinear f); set it
        for generators of linear growth (``0.5`` for ``|t - 1| / 2``).
        NaN is refused. Ignored for named generators, whose limits are built in.

    Returns:
      Array of the broadcast batch shape, in nats where logarithms appear.
      Under ``jit``, NaN for a batch element whose ``p`` or ``q`` is not a
      probability vector.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> p, q = jnp.array([0.2, 0.8]), jnp.array([0.5, 0.5])
      >>> bool(jnp.isclose(dv.f_divergence(p, q, "kl"), dv.kl_divergence(p, q)))
      True
      >>> float(dv.f_divergence(p, q, lambda t: (t - 1) ** 2))  # doctest: +ELLIPSIS
      0.36...

    References:
      Csiszar, "Information-type measures of difference of probability
      distributions", Studia Sci. Math. Hungar. 2 (1967). Ali and Silvey
      (1966). Nowozin, Cseke and Tomioka, "f-GAN", NeurIPS 2016, Table 1.
    """
    if isinstance(f, str):
        f = v.check_choice("f", f, F_DIVERGENCES, DIVERGENCE_ALIASES)
    elif not callable(f):
        raise v.fail("f", f"must be a name ({', '.join(F_DIVERGENCES)}) or a callable generator; got {f!r}")
    if not isinstance(f, str):
        v.check_scalar("slope_at_infinity", slope_at_infinity)
    p, q, axis, tol = _prepare(p, q, axis)
    if isinstance(f, str):
        return _named(p, q, kind=f, axis=axis, tol=tol)
    try:
        f_one = f(jnp.ones((), p.dtype))
    except Exception as e:  # noqa: BLE001 - report any failure of the user's f
        raise v.fail("f", f"could not be evaluated at t = 1: {e}") from e
    if jnp.ndim(f_one) != 0:
        raise v.fail("f", f"must map a scalar to a scalar; f(1) has shape {jnp.shape(f_one)}")
    if v.is_concrete(f_one) and not abs(float(f_one)) <= 1e-6:
        raise v.fail("f", f"must satisfy f(1) = 0; got f(1) = {float(f_one)}")
    f_zero_nan = jnp.isnan(f(jnp.zeros((), p.dtype)))
    return _reduce(_callable_terms(f, p, q, slope_at_infinity, f_zero_nan), p, q, axis, None, tol)
