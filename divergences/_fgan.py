r"""The f-GAN variational lower bound on f-divergences (Nowozin et al. 2016).

For a convex generator :math:`f` with convex conjugate
:math:`f^*(t) = \sup_u \{ut - f(u)\}`, every function :math:`T` gives

.. math::
    D_f(P \,\|\, Q) \ \ge\ \mathbb{E}_P[T(x)] - \mathbb{E}_Q[f^*(T(x))],

with equality at :math:`T = f'(p/q)`. A critic outputs an unconstrained
value :math:`V(x)`, and an output activation :math:`g_f` maps it into the
domain of :math:`f^*`: :math:`T = g_f(V)`. The pairs (Nowozin et al.,
Table 2; "js" rescaled, see below):

* ``"kl"``: :math:`g_f(v) = v`, :math:`f^*(t) = e^{t-1}`, :math:`f^*(g_f(v)) = e^{v-1}`;
* ``"reverse_kl"``: :math:`g_f(v) = -e^{-v}`, :math:`f^*(t) = -1-\log(-t)`, :math:`f^*(g_f(v)) = v - 1`;
* ``"pearson_chi2"``: :math:`g_f(v) = v`, :math:`f^*(t) = s^2/4 + s` with :math:`s = \max(t, -2)`,
  :math:`f^*(g_f(v))` the same in :math:`v` (see below);
* ``"squared_hellinger"``: :math:`g_f(v) = 1-e^{-v}`, :math:`f^*(t) = t/(1-t)`,
  :math:`f^*(g_f(v)) = e^{v} - 1`;
* ``"js"``: :math:`g_f(v) = \tfrac12(\log 2 - \operatorname{sp}(-v))`,
  :math:`f^*(t) = -\tfrac12\log(2-e^{2t})`, :math:`f^*(g_f(v)) = \tfrac12(\operatorname{sp}(v) - \log 2)`;
* ``"gan"``: :math:`g_f(v) = -\operatorname{sp}(-v)`, :math:`f^*(t) = -\log(1-e^{t})`,
  :math:`f^*(g_f(v)) = \operatorname{sp}(v)`.

(sp = softplus.) The conjugates are taken over :math:`u \ge 0`, the values a density
ratio can take. For "pearson_chi2", :math:`f(u) = (u-1)^2`, this gives
:math:`t + t^2/4` for :math:`t \ge -2` and the constant :math:`-f(0) = -1` below
(continuous with its derivative at -2). Nowozin et al.'s Table 2 writes
:math:`t + t^2/4` for every :math:`t`, the conjugate over all real :math:`u`:
it gives the same divergence at the optimal critic, :math:`T = 2(p/q - 1) \ge -2`,
but it rises again below -2, so a critic whose output on the fakes falls under -2
sends the generator away from where it scores low. The conjugate over
:math:`u \ge 0` is smaller, so the bound is tighter and still a lower bound. Its
gradient is 0 below -2, and so at the optimal critic on empty space: a generator
minimising this bound gets no pull there, which is why the training command's
``fgan-pearson_chi2`` maximises :math:`\mathbb{E}\,T(G(z))` instead (Nowozin
et al., Sec. 3.2).

The divergences match :func:`divergences.f_divergence` of
the same name: "squared_hellinger" has no factor 1/2, and "js" is the
Jensen-Shannon divergence in ``[0, log 2]``, half of the "JS" row of Nowozin
et al., whose generator :math:`u\log u - (1+u)\log\frac{1+u}2` gives
:math:`2\,\mathrm{JS}`; halving :math:`f` halves the activation and gives the
conjugate :math:`\tfrac12 f_N^*(2t)`. "gan" is the GAN's generator
:math:`u \log u - (u+1)\log(u+1)`, whose divergence is
:math:`2\,\mathrm{JS} - \log 4` (it is not 0 at P = Q, so it has no entry in
``f_divergence``), and whose bound is minus :func:`gan_discriminator_loss`.

Composite terms :math:`f^*(g_f(v))` are computed in closed form (softplus,
``expm1``). Where a term grows exponentially or quadratically ("kl",
"reverse_kl", "squared_hellinger", "pearson_chi2"), the critic output is first
passed through a soft clip :math:`c(v)`, the identity on :math:`[-L, L]` and
saturating at :math:`\pm(L + 1)` beyond (:func:`divergences._numerics.soft_clip`),
with :math:`L = 50` for the three exponential ones (:math:`e^{51}` is far
from the float32 overflow at :math:`e^{88}`) and :math:`L = 10^4` for
"pearson_chi2". The activation is then :math:`g_f(c(v))`: still a valid
variational function, so the bound stays a lower bound, and it is unchanged for
every critic output within the range, which holds log density ratios up to
about 49 (ratios up to :math:`5 \cdot 10^3` for Pearson). So **every finite
critic output gives a finite bound with a finite gradient**, also for outputs
of 1e30; a critic saturated beyond the range gets a vanishing gradient pulling
it back.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences._gan import _paired_outputs
from divergences._numerics import LOG2 as _LOG2
from divergences._numerics import soft_clip

__all__ = [
    "FGAN_DIVERGENCES",
    "fgan_activation",
    "fgan_conjugate",
    "fgan_conjugate_activation",
    "fgan_objective",
]

FGAN_DIVERGENCES = ("kl", "reverse_kl", "pearson_chi2", "squared_hellinger", "js", "gan")

# The range within which the activation is exact; beyond it the critic output is soft-clipped
# (module docstring) so that exp and squares cannot overflow.
_CLIP = {"kl": 50.0, "reverse_kl": 50.0, "squared_hellinger": 50.0, "pearson_chi2": 1e4}


def _clip(x: jax.Array, divergence: str) -> jax.Array:
    return soft_clip(x, _CLIP[divergence]) if divergence in _CLIP else x


def _activation(x: jax.Array, divergence: str) -> jax.Array:
    x = _clip(x, divergence)
    if divergence in ("kl", "pearson_chi2"):
        return x
    if divergence == "reverse_kl":
        return -jnp.exp(-x)
    if divergence == "squared_hellinger":
        return -jnp.expm1(-x)
    if divergence == "js":
        return 0.5 * (_LOG2 - jax.nn.softplus(-x))
    return -jax.nn.softplus(-x)  # gan


def _pearson_conjugate(t: jax.Array) -> jax.Array:
    # sup over u >= 0 of u t - (u - 1)^2: the quadratic down to its minimum at t = -2, then -f(0) = -1.
    s = jnp.maximum(t, -2.0)
    return 0.25 * s**2 + s


def _conjugate_activation(x: jax.Array, divergence: str) -> jax.Array:
    x = _clip(x, divergence)
    if divergence == "kl":
        return jnp.exp(x - 1)
    if divergence == "reverse_kl":
        return x - 1
    if divergence == "pearson_chi2":
        return _pearson_conjugate(x)
    if divergence == "squared_hellinger":
        return jnp.expm1(x)
    if divergence == "js":
        return 0.5 * (jax.nn.softplus(x) - _LOG2)
    return jax.nn.softplus(x)  # gan


def _conjugate(t: jax.Array, divergence: str) -> jax.Array:
    inf = jnp.asarray(jnp.inf, t.dtype)
    if divergence == "kl":
        return jnp.exp(t - 1)
    if divergence == "pearson_chi2":
        return _pearson_conjugate(t)
    if divergence == "reverse_kl":
        ok = t < 0
        return jnp.where(ok, -1 - jnp.log(jnp.where(ok, -t, 1)), inf)
    if divergence == "squared_hellinger":
        ok = t < 1
        return jnp.where(ok, t / jnp.where(ok, 1 - t, 1), inf)
    if divergence == "js":
        ok = t < 0.5 * _LOG2
        safe = jnp.where(ok, t, 0)
        return jnp.where(ok, -0.5 * jnp.log(2 - jnp.exp(2 * safe)), inf)
    ok = t < 0  # gan
    return jnp.where(ok, -jnp.log(-jnp.expm1(jnp.where(ok, t, -1))), inf)


def _check_divergence(divergence: str) -> str:
    return v.check_choice("divergence", divergence, FGAN_DIVERGENCES)


def fgan_activation(x: ArrayLike, divergence: str) -> jax.Array:
    r"""The f-GAN output activation :math:`g_f`, mapping critic outputs into the domain of :math:`f^*`.

    See the module docstring for the formulas. A train step that needs the variational function
    :math:`T(x) = g_f(V(x))` itself (to plot it, or to estimate the density
    ratio through :math:`p/q = (f')^{-1}(T)`) uses this.

    Args:
      x: raw critic outputs :math:`V(x)`, any shape.
      divergence: one of ``FGAN_DIVERGENCES``.

    Returns:
      :math:`g_f(x)`, elementwise, the shape of ``x``.

    Example:
      >>> import divergences as dv
      >>> round(float(dv.fgan_activation(0.0, "gan")), 4)  # log sigmoid(0)
      -0.6931
    """
    _check_divergence(divergence)
    return _activation(v.as_float_array("x", x), divergence)


def fgan_conjugate(t: ArrayLike, divergence: str) -> jax.Array:
    r"""The convex conjugate :math:`f^*(t)` of the f-divergence's generator.

    Returns ``+inf`` outside the effective domain of :math:`f^*` (``t >= 0``
    for "reverse_kl" and "gan", ``t >= 1`` for "squared_hellinger",
    ``t >= log(2)/2`` for "js"), which is the conjugate's value there. For
    critic outputs prefer :func:`fgan_conjugate_activation`, the composite
    in a stable closed form.

    Args:
      t: points, any shape.
      divergence: one of ``FGAN_DIVERGENCES``.

    Returns:
      :math:`f^*(t)`, elementwise, the shape of ``t``.

    Example:
      >>> import divergences as dv
      >>> float(dv.fgan_conjugate(1.0, "kl"))  # exp(t - 1)
      1.0
    """
    _check_divergence(divergence)
    return _conjugate(v.as_float_array("t", t), divergence)


def fgan_conjugate_activation(x: ArrayLike, divergence: str) -> jax.Array:
    r""":math:`f^*(g_f(x))`, the fake-sample term of the f-GAN bound, in a stable closed form.

    Equal to ``fgan_conjugate(fgan_activation(x, d), d)`` (see the module
    docstring for the closed forms), but finite with finite gradients for every
    finite ``x``, where the composition rounds to the edge of the conjugate's
    domain for large ``x``.

    Args:
      x: raw critic outputs :math:`V(x)`, any shape.
      divergence: one of ``FGAN_DIVERGENCES``.

    Returns:
      Elementwise values, the shape of ``x``.

    Example:
      >>> import divergences as dv
      >>> round(float(dv.fgan_conjugate_activation(0.0, "gan")), 4)  # softplus(0)
      0.6931
    """
    _check_divergence(divergence)
    return _conjugate_activation(v.as_float_array("x", x), divergence)


def fgan_objective(t_real: ArrayLike, t_fake: ArrayLike, divergence: str) -> jax.Array:
    r"""The f-GAN variational lower bound on :math:`D_f(P \| Q)` from critic outputs.

    .. math::
        F(V) = \frac1n \sum_{i} g_f(V(x_i)) - \frac1m \sum_j f^*\big(g_f(V(y_j))\big)
        \ \le\ D_f(P \,\|\, Q), \qquad x_i \sim P,\ y_j \sim Q,

    in expectation, with equality when :math:`g_f(V) = f'(p/q)`. The critic
    **maximises** it: its loss is ``-fgan_objective(...)``; the generator
    (producing the ``Q`` samples) minimises it. For ``"gan"`` the bound is
    ``-gan_discriminator_loss(t_real, t_fake)`` exactly.

    Args:
      t_real: raw critic outputs :math:`V(x)` on samples of P, ``[n, ...]``.
      t_fake: raw critic outputs on samples of Q, ``[m, ...]`` with the same
        trailing axes.
      divergence: one of ``"kl"`` (KL(P||Q)), ``"reverse_kl"`` (KL(Q||P)),
        ``"pearson_chi2"``, ``"squared_hellinger"``, ``"js"``, ``"gan"``; see
        the module docstring for the activations and conjugates.

    Returns:
      Scalar estimate of the lower bound, in nats where logs appear.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> # P = Q: the constant critic at f'(1) makes the bound 0
      >>> float(dv.fgan_objective(jnp.ones(4), jnp.ones(4), "kl"))
      0.0

    References:
      Nowozin, Cseke and Tomioka, "f-GAN: Training Generative Neural
      Samplers using Variational Divergence Minimization", NeurIPS 2016,
      eq. 6 and Table 2. Nguyen, Wainwright and Jordan, "Estimating
      divergence functionals and the likelihood ratio by convex risk
      minimization", IEEE Trans. Inf. Theory 56 (2010).
    """
    _check_divergence(divergence)
    r, f = _paired_outputs("t_real", t_real, "t_fake", t_fake)
    return jnp.mean(_activation(r, divergence)) - jnp.mean(_conjugate_activation(f, divergence))

