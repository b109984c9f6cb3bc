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


def _prepare(p: ArrayLike, q: ArrayLike, axis: int, name_p: str = "p", name_q: str = "q"):
    """Validate and broadcast two probability arrays; returns (p, q, axis)."""
    p = v.as_float_array(name_p, p, min_ndim=1)
    q = v.as_float_array(name_q, q, min_ndim=1)
    dtype = v.float_dtype(p, q)
    shape = v.broadcast_shapes({name_p: p.shape, name_q: q.shape})
    axis = v.check_axis("axis", axis, len(shape))
    p = jnp.broadcast_to(p.astype(dtype), shape)
    q = jnp.broadcast_to(q.astype(dtype), shape)
    v.check_nonempty(name_p, p, axis)
    v.check_probabilities(name_p, p, axis=axis)
    v.check_probabilities(name_q, q, axis=axis)
    return p, q, axis


def _clip_nonneg(x: jax.Array) -> jax.Array:
    # Rounding can leave -1e-9 where the exact value is 0; `where` (not
    # `maximum`) keeps the gradient of the exact-zero case intact.
    return jnp.where(x < 0, jnp.zeros_like(x), x)


def _clip_upper(x: jax.Array, upper: float) -> jax.Array:
    upper = jnp.asarray(upper, x.dtype)
    return jnp.where(x > upper, upper, x)


def _reduce(terms: jax.Array, p: jax.Array, q: jax.Array, axis: int, upper: float | None) -> jax.Array:
    """Sum the terms, clip rounding to the range, and poison invalid batch elements with NaN.

    Eager calls have already raised on invalid input; under ``jit`` the values
    are unknown, so a batch element whose ``p`` or ``q`` is not a probability
    vector (negative or non-finite entries, sum off 1) comes out as NaN.
    """
    value = _clip_nonneg(jnp.sum(terms, axis=axis))
    if upper is not None:
        value = _clip_upper(value, upper)
    tol = v._sum_tolerance(p.dtype, p.shape[axis])
    good = jnp.ones(value.shape, bool)
    for a in (p, q):
        good &= jnp.all((a >= 0) & jnp.isfinite(a), axis=axis) & (jnp.abs(jnp.sum(a, axis=axis) - 1) <= tol)
    return jnp.where(good, value, jnp.nan)


@functools.partial(jax.jit, static_argnames=("kind", "axis"))
def _named(p: jax.Array, q: jax.Array, *, kind: str, axis: int) -> jax.Array:
    """The named divergences, compiled once per (kind, axis, shape, dtype)."""
    return _reduce(_NAMED_TERMS[kind](p, q), p, q, axis, _UPPER.get(kind))


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
    p, q, axis = _prepare(p, q, axis)
    return _named(p, q, kind="kl", axis=axis)


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
    p, q, axis = _prepare(p, q, axis)
    return _named(p, q, kind="total_variation", axis=axis)


def _js_terms(p: jax.Array, q: jax.Array) -> jax.Array:
    m = 0.5 * (p + q)
    return 0.5 * (_plogpq(p, m) + _plogpq(q, m))


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
    p, q, axis = _prepare(p, q, axis)
    return _named(p, q, kind="js", axis=axis)


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
    "kl": _plogpq,
    "reverse_kl": lambda p, q: _plogpq(q, p),
    "pearson_chi2": _pearson_terms,
    "squared_hellinger": _sq_hellinger_terms,
    "total_variation": lambda p, q: 0.5 * jnp.abs(p - q),
    "js": _js_terms,
}

# Upper ends of the range of each named divergence (used to clip rounding).
_UPPER = {"total_variation": 1.0, "js": 0.6931471805599453, "squared_hellinger": 2.0}


def _callable_terms(f: Callable, p: jax.Array, q: jax.Array, slope_at_infinity) -> jax.Array:
    """``q f(p/q)`` with its limits: ``q f(0)`` at ``p = 0`` and ``p f'(inf)`` at ``q = 0``."""
    pos_q = q > 0
    safe_q = jnp.where(pos_q, q, 1)
    ratio = jnp.where(pos_q, p / safe_q, 1)
    inner = jnp.where(pos_q, q * f(ratio), 0)
    slope = jnp.asarray(slope_at_infinity, p.dtype)
    safe_slope = jnp.where(p > 0, slope, 0)  # avoids 0 * inf
    at_zero_q = jnp.where(p > 0, p * safe_slope, 0)
    return jnp.where(pos_q, inner, at_zero_q)


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
        caller's promise.
      axis: the axis holding the probabilities.
      slope_at_infinity: for a callable ``f``, ``f'(\infty)``, the
        contribution per unit of mass where ``q = 0 < p``. Defaults to
        ``+inf`` (right for KL, chi-square and any superlinear f); set it
        for generators of linear growth (``0.5`` for ``|t - 1| / 2``).
        Ignored for named generators, whose limits are built in.

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
    p, q, axis = _prepare(p, q, axis)
    if isinstance(f, str):
        return _named(p, q, kind=f, axis=axis)
    try:
        f_one = f(jnp.ones((), p.dtype))
    except Exception as e:  # noqa: BLE001 - report any failure of the user's f
        raise v.fail("f", f"could not be evaluated at t = 1: {e}") from e
    if jnp.ndim(f_one) != 0:
        raise v.fail("f", f"must map a scalar to a scalar; f(1) has shape {jnp.shape(f_one)}")
    if v.is_concrete(f_one) and not abs(float(f_one)) <= 1e-6:
        raise v.fail("f", f"must satisfy f(1) = 0; got f(1) = {float(f_one)}")
    return _reduce(_callable_terms(f, p, q, slope_at_infinity), p, q, axis, None)
