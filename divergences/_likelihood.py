r"""Likelihood-based objectives: the VAE's ELBO, the IWAE bound, a flow's log-density.

Pure functions of the parts a model computes (means, scales, log-densities,
log-determinants); the networks live in :mod:`divergences.models` and the
training code composes the two.

Conventions shared by every function here:

* natural logarithms (nats); log-densities are **summed over the last
  (feature) axis** and returned per sample, so ``[n, d]`` inputs give ``[n]``
  outputs. Divide by ``d`` for nats per dimension;
* all arguments broadcast against each other (NumPy rules) before the last
  axis is reduced, "batchwise" like distrax's ``kl_divergence``;
* a Gaussian is parameterised by its **standard deviation** ``scale`` (not the
  variance, not a log-variance); networks should produce it through
  :func:`softplus_scale`, which is positive, smooth and does not overflow;
* every estimate is a quantity to **maximise** (a lower bound of
  ``log p(x)``); a training loss is its negative mean.

Bad input follows the library's contract (:mod:`divergences._validation`):
shape errors raise ``ValueError`` naming the argument, eagerly and at trace
time under ``jit``; a scale that is not positive raises eagerly, and under
``jit`` gives NaN for the affected samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from divergences import _validation as v

__all__ = [
    "softplus_scale",
    "diag_gaussian_log_prob",
    "diag_gaussian_kl_standard",
    "gaussian_elbo",
    "iwae_bound",
    "flow_log_prob",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _arrays(**named: ArrayLike) -> list[jax.Array]:
    """Convert named arrays (at least 1-D: the feature axis), broadcast them, one float dtype."""
    arrays = {k: v.as_float_array(k, x) for k, x in named.items()}
    dtype = v.float_dtype(*arrays.values())
    shape = v.broadcast_shapes({k: a.shape for k, a in arrays.items()})
    if len(shape) == 0:
        raise v.fail(next(iter(named)), "must have a feature axis (shape [..., d]); got a scalar")
    return [jnp.broadcast_to(a.astype(dtype), shape) for a in arrays.values()]


def _positive(name: str, scale: jax.Array) -> jax.Array:
    """Value check ``scale > 0``; returns the per-sample flag (over the last axis) for NaN-poisoning."""
    v.require(name, scale > 0, "must be > 0 (a standard deviation); produce it with `softplus_scale`")
    return jnp.all(scale > 0, axis=-1)


def softplus_scale(raw: ArrayLike, *, min_scale: float = 1e-4) -> jax.Array:
    r"""A positive scale from an unconstrained network output.

    .. math::
        \sigma = \operatorname{softplus}(r) + \sigma_\min = \log(1 + e^{r}) + \sigma_\min.

    Unlike :math:`e^{r}` it grows linearly, so a large raw output cannot
    overflow the scale or its gradient; ``min_scale`` keeps the density
    bounded (a Gaussian likelihood on data that lies on a lower-dimensional
    set would otherwise drive the scale to 0 and the log-density to
    :math:`+\infty`). ``softplus(0) + min_scale`` is about 0.693.

    Args:
      raw: any shape.
      min_scale: the floor, a Python float >= 0.

    Returns:
      Array of the shape of ``raw``, every entry ``>= min_scale`` (``> 0``
      for ``min_scale = 0`` and finite ``raw`` above about -87 in float32).

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> [round(float(s), 4) for s in dv.softplus_scale(jnp.array([-50.0, 0.0, 50.0]), min_scale=1e-3)]
      [0.001, 0.6941, 50.001]

    References:
      Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014
      (Gaussian encoder and decoder); Dugas et al., "Incorporating
      second-order functional knowledge for better option pricing", NeurIPS
      2001 (softplus).
    """
    v.check_scalar("min_scale", min_scale, low=0.0)
    r = v.as_float_array("raw", raw)
    return jax.nn.softplus(r) + min_scale


def diag_gaussian_log_prob(x: ArrayLike, mean: ArrayLike = 0.0, scale: ArrayLike = 1.0) -> jax.Array:
    r"""Log-density of a Gaussian with diagonal covariance, summed over the last axis.

    .. math::
        \log \mathcal N(x; \mu, \operatorname{diag}\sigma^2)
        = -\sum_{j=1}^{d}\Big[\tfrac12\Big(\frac{x_j - \mu_j}{\sigma_j}\Big)^2 + \log\sigma_j
          + \tfrac12\log 2\pi\Big].

    With the defaults it is the standard normal :math:`\mathcal N(0, I)`, the
    base density of a flow and the prior of a VAE.

    Args:
      x: ``[..., d]`` points.
      mean: broadcastable to ``x`` (default 0).
      scale: standard deviations ``> 0``, broadcastable to ``x`` (default 1).

    Returns:
      ``[...]``: the broadcast shape without its last axis, in nats. Under
      ``jit``, NaN where some ``scale`` along the last axis is not positive.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> round(float(dv.diag_gaussian_log_prob(jnp.zeros(2))), 4)  # -log(2 pi)
      -1.8379

    References:
      Bishop, *Pattern Recognition and Machine Learning* (2006), eq. 2.43.
    """
    x, mean, scale = _arrays(x=x, mean=mean, scale=scale)
    ok = _positive("scale", scale)
    safe = jnp.where(scale > 0, scale, 1.0)
    u = (x - mean) / safe
    out = -jnp.sum(0.5 * u * u + jnp.log(safe) + _HALF_LOG_2PI, axis=-1)
    return jnp.where(ok, out, jnp.nan)


def diag_gaussian_kl_standard(mean: ArrayLike, scale: ArrayLike) -> jax.Array:
    r"""KL of a diagonal Gaussian to the standard normal, summed over the last axis.

    .. math::
        \mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag}\sigma^2) \,\|\, \mathcal N(0, I)\big)
        = \tfrac12\sum_{j=1}^{k}\big[\mu_j^2 + \operatorname{expm1}(2\log\sigma_j) - 2\log\sigma_j\big],

    the usual :math:`\tfrac12\sum(\mu^2 + \sigma^2 - 1 - \log\sigma^2)` written
    with ``expm1`` so that the term for :math:`\sigma` near 1 (where
    :math:`\sigma^2 - 1` and :math:`\log\sigma^2` nearly cancel) keeps its
    relative precision. Exactly 0 at :math:`\mu = 0, \sigma = 1`, and
    non-negative.

    Args:
      mean: ``[..., k]`` the encoder's means.
      scale: ``[..., k]`` its standard deviations ``> 0`` (broadcast with ``mean``).

    Returns:
      ``[...]`` in nats. Under ``jit``, NaN where some ``scale`` is not positive.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> round(float(dv.diag_gaussian_kl_standard(jnp.array([1.0, 0.0]), jnp.array([1.0, 2.0]))), 4)
      1.3069

    References:
      Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014,
      Appendix B; distrax ``_kl_divergence_normal_normal``.
    """
    mean, scale = _arrays(mean=mean, scale=scale)
    ok = _positive("scale", scale)
    t = 2.0 * jnp.log(jnp.where(scale > 0, scale, 1.0))
    kl = 0.5 * jnp.sum(mean * mean + (jnp.expm1(t) - t), axis=-1)
    return jnp.where(ok, kl, jnp.nan)


def gaussian_elbo(reconstruction_log_prob: ArrayLike, mean: ArrayLike, scale: ArrayLike) -> jax.Array:
    r"""The evidence lower bound of a VAE with a Gaussian encoder and a standard-normal prior.

    .. math::
        \mathrm{ELBO}(x) = \mathbb E_{q(z|x)}[\log p(x|z)]
          - \mathrm{KL}\big(q(z|x) \,\|\, \mathcal N(0, I)\big) \le \log p(x),

    with :math:`q(z|x) = \mathcal N(\mu(x), \operatorname{diag}\sigma(x)^2)`.
    The expectation is the caller's Monte-Carlo estimate
    ``reconstruction_log_prob``: :math:`\log p(x|z)` at reparameterised
    samples :math:`z = \mu + \sigma \odot \epsilon`,
    :math:`\epsilon \sim \mathcal N(0, I)` (for a Gaussian decoder,
    :func:`diag_gaussian_log_prob` of ``x`` under the decoder's mean and
    scale), averaged over any leading sample axes by the caller; the KL term
    is the closed form :func:`diag_gaussian_kl_standard`, which has a lower
    variance than its Monte-Carlo estimate :math:`\log q(z|x) - \log p(z)`.

    Args:
      reconstruction_log_prob: ``[n]`` (or any batch shape ``[...]``),
        :math:`\log p(x|z)` per sample, in nats.
      mean: ``[..., k]`` the encoder's means for the same samples.
      scale: ``[..., k]`` the encoder's standard deviations ``> 0``.

    Returns:
      ``[...]``: the ELBO per sample, in nats (maximise it; the VAE loss is
      ``-mean(elbo)``).

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> x = jnp.array([[0.5, -1.0]])
      >>> mu, sigma = jnp.array([[0.1]]), jnp.array([[0.8]])
      >>> recon = dv.diag_gaussian_log_prob(x, jnp.array([[0.4, -0.9]]), 0.5)
      >>> [round(float(e), 4) for e in dv.gaussian_elbo(recon, mu, sigma)]
      [-0.5397]

    References:
      Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014,
      eq. 10; Rezende, Mohamed and Wierstra, "Stochastic Backpropagation and
      Approximate Inference in Deep Generative Models", ICML 2014.
    """
    recon = v.as_float_array("reconstruction_log_prob", reconstruction_log_prob)
    kl = diag_gaussian_kl_standard(mean, scale)
    v.broadcast_shapes({"reconstruction_log_prob": recon.shape, "mean": kl.shape})
    return recon - kl


def iwae_bound(log_weights: ArrayLike, *, axis: int = 0) -> jax.Array:
    r"""The importance-weighted bound on :math:`\log p(x)` from K log-weights per sample.

    .. math::
        \mathcal L_K(x) = \log \frac1K \sum_{k=1}^{K} w_k,\qquad
        \log w_k = \log p(x, z_k) - \log q(z_k|x),\quad z_k \sim q(z|x),

    computed as ``logsumexp(log_w) - log K`` (no overflow or underflow of
    the weights). :math:`\mathbb E[\mathcal L_K]` increases with K, equals the
    ELBO for K = 1 and tends to :math:`\log p(x)` as :math:`K \to \infty`; with
    K = 100 it is the usual held-out log-likelihood estimate of a VAE.
    The log-weights are the caller's, with the *Monte-Carlo* :math:`\log q`
    and :math:`\log p(z)` (not the closed-form KL).

    Args:
      log_weights: ``[K, ...]`` log importance weights (``K`` along ``axis``).
      axis: the importance-sample axis (default 0).

    Returns:
      The bound per sample: ``log_weights``' shape without ``axis``, in nats.
      ``-inf`` where every weight is 0; NaN where a log-weight is NaN.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> round(float(dv.iwae_bound(jnp.log(jnp.array([1.0, 3.0])))), 4)  # log mean = log 2
      0.6931

    References:
      Burda, Grosse and Salakhutdinov, "Importance Weighted Autoencoders",
      ICLR 2016, eq. 8 and Theorem 1.
    """
    w = v.as_float_array("log_weights", log_weights, min_ndim=1)
    ax = v.check_axis("axis", axis, w.ndim)
    v.check_nonempty("log_weights", w, ax)
    v.require("log_weights", ~jnp.isnan(w), "contains NaN")
    return jax.nn.logsumexp(w, axis=ax) - jnp.log(jnp.asarray(w.shape[ax], w.dtype))


def flow_log_prob(base_log_prob: ArrayLike, log_det_jacobian: ArrayLike | Sequence[ArrayLike]) -> jax.Array:
    r"""Change of variables: the log-density of a normalizing flow.

    For an invertible map :math:`f` from data to latent,
    :math:`f = f_L \circ \dots \circ f_1`, and base density :math:`p_Z`:

    .. math::
        \log p_X(x) = \log p_Z(f(x)) + \log\bigl|\det J_f(x)\bigr|
          = \log p_Z(z_L) + \sum_{l=1}^{L} \log\bigl|\det J_{f_l}(z_{l-1})\bigr|,

    with :math:`z_0 = x`, :math:`z_l = f_l(z_{l-1})`. The log-determinants
    are those of the **normalizing direction** (data to latent); a layer
    written in the generative direction contributes minus its own.

    Args:
      base_log_prob: ``[n]`` (any batch shape), :math:`\log p_Z(f(x))` in
        nats (e.g. :func:`diag_gaussian_log_prob` of the latent).
      log_det_jacobian: ``[n]``, or a list/tuple of per-layer ``[n]``
        arrays, which are summed.

    Returns:
      ``[n]`` (the broadcast shape), :math:`\log p_X(x)` in nats.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> x = jnp.array([[1.0, 2.0]])
      >>> z = 2.0 * x  # f(x) = 2x: log|det J| = 2 log 2; p_X = N(0, I / 4)
      >>> round(float(dv.flow_log_prob(dv.diag_gaussian_log_prob(z), jnp.full(1, 2 * jnp.log(2.0)))[0]), 4)
      -10.4516

    References:
      Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
      ICLR 2017, eq. 3; Papamakarios et al., "Normalizing Flows for
      Probabilistic Modeling and Inference", JMLR 2021, eq. 2-3.
    """
    base = v.as_float_array("base_log_prob", base_log_prob)
    if isinstance(log_det_jacobian, (list, tuple)):
        if not log_det_jacobian:
            raise v.fail("log_det_jacobian", "is an empty sequence; pass at least one per-layer array (or 0.0)")
        dets = [v.as_float_array(f"log_det_jacobian[{i}]", d) for i, d in enumerate(log_det_jacobian)]
        v.broadcast_shapes({"base_log_prob": base.shape, **{f"log_det_jacobian[{i}]": d.shape for i, d in enumerate(dets)}})
        total = sum(dets[1:], dets[0])
    else:
        total = v.as_float_array("log_det_jacobian", log_det_jacobian)
        v.broadcast_shapes({"base_log_prob": base.shape, "log_det_jacobian": total.shape})
    return base + total
