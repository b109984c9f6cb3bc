r"""Histogram plug-in estimates of KL, TV and JS between two 1-D samples.

Both samples are binned on the same edges, the bin frequencies are taken as
probability vectors, and the exact discrete divergence of
:mod:`divergences._discrete` is applied to them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from divergences import _discrete
from divergences import _sort
from divergences import _validation as v

__all__ = ["binned_divergence", "BINNED_DIVERGENCES"]

BINNED_DIVERGENCES = {
    "kl": _discrete.kl_divergence,
    "total_variation": _discrete.total_variation,
    "js": _discrete.js_divergence,
}


def _counts(x: jax.Array, edges: jax.Array | None, lo, hi, nbins: int) -> jax.Array:
    """Bin counts, numpy's convention: bins [e_i, e_{i+1}), the last one closed."""
    if edges is None:
        width = (hi - lo) / nbins
        idx = jnp.floor((x - lo) / width).astype(jnp.int32)
        inside = (x >= lo) & (x <= hi)
    else:
        idx = _sort.searchsorted(edges, x, side="right") - 1
        inside = (x >= edges[0]) & (x <= edges[-1])
    idx = jnp.clip(idx, 0, nbins - 1)  # x == the last edge goes to the last bin
    return jnp.zeros((nbins,), x.dtype).at[idx].add(inside.astype(x.dtype))


@functools.partial(jax.jit, static_argnames=("nbins",))
def _both_counts(x, y, edges, lo, hi, nbins):
    return _counts(x, edges, lo, hi, nbins), _counts(y, edges, lo, hi, nbins)


@v.compiled_when_eager
def binned_divergence(
    x: ArrayLike,
    y: ArrayLike,
    *,
    bins: int | ArrayLike,
    divergence: str = "kl",
    range: tuple[float, float] | None = None,  # noqa: A002 (numpy's name)
) -> jax.Array:
    r"""Histogram plug-in estimate of a divergence between two 1-D samples.

    .. math::
        \hat p_b = \frac{\#\{i : x_i \in B_b\}}{\#\{i : x_i \in \cup_b B_b\}}, \quad
        \hat q_b = \frac{\#\{j : y_j \in B_b\}}{\#\{j : y_j \in \cup_b B_b\}}, \qquad
        \widehat D = D(\hat p, \hat q)

    with :math:`D` one of :func:`divergences.kl_divergence`,
    :func:`divergences.total_variation`, :func:`divergences.js_divergence`.
    Bins follow numpy: ``[e_b, e_{b+1})``, the last one closed; samples
    outside the edges are ignored. The plug-in KL is ``+inf`` when some bin
    holds x-samples and no y-sample; TV and JS are always finite. All three
    are biased for finite samples and depend on the binning.

    The result is piecewise constant in the samples: its gradient with
    respect to them is 0 (it is defined, and ``grad`` returns zeros).

    Args:
      x: samples of P, shape ``[n]`` or ``[n, 1]``.
      y: samples of Q, shape ``[m]`` or ``[m, 1]``.
      bins: the number of equal-width bins (a Python int ``>= 1``), or the
        bin edges, a strictly increasing 1-D array of at least 2 values.
      divergence: ``"kl"`` (KL(P || Q)), ``"total_variation"`` (alias
        ``"tv"``) or ``"js"``.
      range: ``(low, high)`` of the equal-width bins; default: the minimum
        and maximum of the pooled samples (widened by 0.5 on each side when
        they are equal, as numpy does). Ignored when ``bins`` are edges.

    Returns:
      A scalar in nats (KL, JS) or in ``[0, 1]`` (TV), float32 at least.
      NaN when no sample of ``x`` or ``y`` falls in the bins.

    Example:
      >>> import jax.numpy as jnp
      >>> import divergences as dv
      >>> x = jnp.array([0.1, 0.2, 0.6, 0.7])
      >>> y = jnp.array([0.1, 0.6, 0.7, 0.8])
      >>> float(dv.binned_divergence(x, y, bins=2, range=(0.0, 1.0), divergence="total_variation"))
      0.25

    References:
      Wang, Kulkarni and Verdu, "Divergence estimation of continuous
      distributions based on data-dependent partitions", IEEE Trans. Inf.
      Theory 51 (2005).
    """
    fn = BINNED_DIVERGENCES[v.check_choice("divergence", divergence, tuple(BINNED_DIVERGENCES), _discrete.DIVERGENCE_ALIASES)]
    # Samples along axis 0: [n] or [n, 1] (one-dimensional samples).
    x = v.as_samples("x", x)
    y = v.as_samples("y", y)
    for name, a in (("x", x), ("y", y)):
        if a.shape[1] != 1:
            raise v.fail(name, f"must hold one-dimensional samples, shape [n] or [n, 1]; got shape {a.shape}")
    x, y = x[:, 0], y[:, 0]
    dtype = v.float_dtype(x, y)
    x, y = x.astype(dtype), y.astype(dtype)
    edges = None
    lo = hi = None
    edges_ok = True
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        nbins = v.check_int("bins", bins, minimum=1)
        if range is None:
            lo = jnp.minimum(jnp.min(x), jnp.min(y))
            hi = jnp.maximum(jnp.max(x), jnp.max(y))
            same = hi <= lo
            lo, hi = jnp.where(same, lo - 0.5, lo), jnp.where(same, hi + 0.5, hi)
        else:
            if not isinstance(range, (tuple, list)) or len(range) != 2:
                raise v.fail("range", f"must be a pair (low, high); got {range!r}")
            lo = v.check_scalar("range", range[0])
            hi = v.check_scalar("range", range[1])
            v.require("range", jnp.asarray(lo) < jnp.asarray(hi), f"must have low < high; got {range!r}")
            finite_range = v.require(
                "range", jnp.isfinite(jnp.asarray(lo)) & jnp.isfinite(jnp.asarray(hi)),
                f"must be finite (equal-width bins over an infinite range are empty); got {range!r}",
            )  # fmt: skip
            lo, hi = jnp.asarray(lo, dtype), jnp.asarray(hi, dtype)
            lo = jnp.where(finite_range, lo, jnp.nan)  # under jit: NaN out
    else:
        if isinstance(bins, jax.core.Tracer) and bins.ndim == 0:
            v.check_static("bins", bins)
        edges = v.as_float_array("bins", bins, ndim=1).astype(dtype)
        if edges.shape[0] < 2:
            raise v.fail("bins", f"as edges needs at least 2 values; got shape {edges.shape}")
        edges_ok = v.require("bins", jnp.all(jnp.diff(edges) > 0) & jnp.all(jnp.isfinite(edges)), "as edges must be finite and strictly increasing")
        nbins = edges.shape[0] - 1
    cx, cy = _both_counts(x, y, edges, lo, hi, nbins)
    v.require("x", jnp.sum(cx) > 0, "has no sample inside the bins")
    v.require("y", jnp.sum(cy) > 0, "has no sample inside the bins")
    p = cx / jnp.sum(cx)
    q = cy / jnp.sum(cy)
    value = fn(p, q)
    if v.is_concrete(value):
        return value
    ok = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(y)) & (jnp.sum(cx) > 0) & (jnp.sum(cy) > 0) & edges_ok
    return jnp.where(ok, value, jnp.nan)
