"""GAN and Wasserstein GAN objectives, as pure functions of critic outputs.

Conventions shared by every function here:

* every loss is **for minimisation**: a train step calls ``jax.grad`` of the
  loss and descends (the discriminator's and the generator's losses are two
  separate functions; nothing here is a saddle-point objective to ascend);
* a discriminator outputs **logits** ``l`` with ``D(x) = sigmoid(l)``; the
  losses use ``log sigmoid(l) = -softplus(-l)`` and
  ``log(1 - sigmoid(l)) = -softplus(l)``, never the log of a sigmoid, so they
  are finite and have finite gradients for any finite logit;
* the first axis of a logit or critic array is the sample axis; the real and
  the fake batch may hold different numbers of samples, but the shape of one
  sample's output (the axes after the first) must agree, which catches the
  classic ``[n]`` against ``[n, 1]`` broadcasting slip. Means run over every
  entry;
* natural logarithms (nats).

Bad input follows the library's contract (:mod:`divergences._validation`):
shape and option errors raise ``ValueError`` naming the argument, eagerly
and at trace time; value errors (NaN logits, a negative density) raise
eagerly, and under ``jit`` the NaN simply propagates to the loss.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from divergences import _validation as v

__all__ = [
    "gan_discriminator_loss",
    "gan_generator_loss",
    "optimal_discriminator",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "gradient_penalty",
    "weight_clipping",
]


def _outputs(name: str, x: ArrayLike) -> jax.Array:
    """One critic/discriminator output array: float, at least 1-D, non-empty, finite (eager)."""
    x = v.as_float_array(name, x, min_ndim=1)
    v.check_nonempty(name, x, 0)
    v.check_finite(name, x)
    return x


def _paired_outputs(name_r: str, r: ArrayLike, name_f: str, f: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Real and fake outputs: same per-sample shape, common float dtype."""
    r = _outputs(name_r, r)
    f = _outputs(name_f, f)
    if r.shape[1:] != f.shape[1:]:
        raise v.fail(
            name_f,
            f"has shape {f.shape} but `{name_r}` has shape {r.shape}: the axes after the sample "
            f"axis must agree (one output of the same shape per sample)",
        )
    dtype = v.float_dtype(r, f)
    return r.astype(dtype), f.astype(dtype)


def _sample_mean(values: jax.Array, weights: ArrayLike | None, name: str, samples_name: str) -> jax.Array:
    r"""Mean of per-sample losses ``values [n, ...]``, weighted along the sample axis.

    Without weights: the mean of every entry. With ``weights [n]`` (``>= 0``,
    positive total): :math:`\sum_i w_i \bar\ell_i / \sum_i w_i`, with
    :math:`\bar\ell_i` the mean of sample ``i``'s entries. Under ``jit``,
    weights summing to 0 give NaN.
    """
    if weights is None:
        return jnp.mean(values)
    n = values.shape[0]
    w = v.check_weights(name, weights, shape=(n,), samples_name=samples_name).astype(values.dtype)
    return jnp.sum(w * jnp.mean(values.reshape(n, -1), axis=1))


def _sample_average(values: jax.Array, weights: ArrayLike | None, name: str, samples_name: str) -> jax.Array:
    """The (weighted) mean over the sample axis only: shape ``values.shape[1:]``."""
    if weights is None:
        return jnp.mean(values, axis=0)
    n = values.shape[0]
    w = v.check_weights(name, weights, shape=(n,), samples_name=samples_name).astype(values.dtype)
    return jnp.tensordot(w, values, axes=1)


def gan_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    real_weights: ArrayLike | None = None,
    fake_weights: ArrayLike | None = None,
) -> jax.Array:
    r"""The discriminator loss of the original (minimax) GAN, from logits.

    .. math::
        \mathcal{L}_D = -\mathbb{E}_{x}[\log D(x)] - \mathbb{E}_{z}[\log(1 - D(G(z)))]
        = \mathbb{E}_x[\operatorname{softplus}(-l(x))] + \mathbb{E}_z[\operatorname{softplus}(l(G(z)))],

    with :math:`D = \sigma(l)`: the binary cross-entropy with label 1 for real
    and 0 for fake samples. It is :math:`-V(G, D)` of Goodfellow et al., so
    minimising it maximises the value of the game over D. At the optimal
    discriminator (:func:`optimal_discriminator`) its minimum is
    :math:`\log 4 - 2\,\mathrm{JS}(p_\text{data}, p_G)`.

    One-sided label smoothing (Salimans et al. 2016) replaces the real
    label 1 by :math:`1 - s`, so the real term becomes :math:`(1 - s)\operatorname{softplus}(-l) + s\operatorname{softplus}(l)`;
    the fake label stays 0 (smoothing it too moves the optimal discriminator
    towards the fakes, which is why it is one-sided). TF-GAN's
    ``label_smoothing=t`` goes through ``tf.losses.sigmoid_cross_entropy``,
    whose real label is :math:`1 - t/2`: it is ``label_smoothing=t / 2``
    here. Per-sample weights
    turn each expectation into a weighted mean,
    :math:`\sum_i w_i \ell_i / \sum_i w_i` (TF-GAN divides by the number of
    non-zero weights instead; the two agree for 0/1 weights).

    Args:
      real_logits: discriminator logits on real samples, shape ``[n, ...]``.
      fake_logits: logits on generated samples, shape ``[m, ...]`` with the
        same trailing axes.
      label_smoothing: ``s`` in ``[0, 1)``, the amount taken off the real label.
      real_weights: optional weights ``[n]`` of the real samples (``>= 0``,
        positive total); ``None``: equal weights.
      fake_weights: optional weights ``[m]`` of the generated samples.

    Returns:
      Scalar loss, ``>= 0``, float32 at least.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> round(float(dv.gan_discriminator_loss(jnp.zeros(4), jnp.zeros(4))), 4)  # log 4
      1.3863

    References:
      Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, eq. 1.
    """
    r, f = _paired_outputs("real_logits", real_logits, "fake_logits", fake_logits)
    v.check_scalar("label_smoothing", label_smoothing, low=0.0, high=1.0, high_inclusive=False)
    s = jnp.asarray(label_smoothing, r.dtype)
    real_term = (1 - s) * jax.nn.softplus(-r) + s * jax.nn.softplus(r)
    return _sample_mean(real_term, real_weights, "real_weights", "real_logits") + _sample_mean(
        jax.nn.softplus(f), fake_weights, "fake_weights", "fake_logits"
    )


def gan_generator_loss(
    fake_logits: ArrayLike, *, saturating: bool = False, fake_weights: ArrayLike | None = None
) -> jax.Array:
    r"""The generator loss of the GAN, minimax (saturating) or non-saturating.

    .. math::
        \mathcal{L}_G^\text{sat} = \mathbb{E}_z[\log(1 - D(G(z)))] = -\mathbb{E}_z[\operatorname{softplus}(l)],
        \qquad
        \mathcal{L}_G^\text{ns} = -\mathbb{E}_z[\log D(G(z))] = \mathbb{E}_z[\operatorname{softplus}(-l)].

    ``saturating=True`` is the generator's side of the minimax game; its
    gradient vanishes when the discriminator confidently rejects the fakes
    (``l -> -inf``). The default is the non-saturating heuristic of the same
    paper, which has the same fixed point and strong gradients early on.

    Args:
      fake_logits: discriminator logits on generated samples, shape ``[m, ...]``.
      saturating: use the minimax loss instead of the non-saturating one.
      fake_weights: optional per-sample weights ``[m]`` (``>= 0``, positive
        total): the expectation becomes a weighted mean.

    Returns:
      Scalar loss (``<= 0`` when saturating, ``>= 0`` otherwise).

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> round(float(dv.gan_generator_loss(jnp.zeros(3))), 4)  # log 2
      0.6931

    References:
      Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, sec. 3.
    """
    if not isinstance(saturating, bool):
        raise v.fail("saturating", f"must be a bool; got {saturating!r}")
    f = _outputs("fake_logits", fake_logits)
    if saturating:
        return -_sample_mean(jax.nn.softplus(f), fake_weights, "fake_weights", "fake_logits")
    return _sample_mean(jax.nn.softplus(-f), fake_weights, "fake_weights", "fake_logits")


def optimal_discriminator(p_real: ArrayLike, p_fake: ArrayLike) -> jax.Array:
    r"""The optimal discriminator of the GAN game for fixed densities.

    .. math::
        D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_G(x)},

    the pointwise maximiser of :math:`p_\text{data} \log D + p_G \log(1 - D)`.
    Where both densities are 0 any value is optimal; this returns 1/2 there.
    Plugging it into the game gives
    :math:`V(G, D^*) = 2\,\mathrm{JS}(p_\text{data}, p_G) - \log 4`.

    Args:
      p_real: density or probability of the data at some points, ``>= 0``.
      p_fake: density of the generator at the same points, broadcastable
        with ``p_real``.

    Returns:
      Array of the broadcast shape, in ``[0, 1]`` (1 where only ``p_real``
      is infinite, 0 where only ``p_fake`` is). Under ``jit``, NaN where a
      density is negative or NaN (an eager call raises).

    Example:
      >>> import divergences as dv
      >>> dv.optimal_discriminator([0.3, 0.0, 0.0], [0.1, 0.2, 0.0]).tolist()
      [0.75, 0.0, 0.5]

    References:
      Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, Prop. 1.
    """
    p = v.as_float_array("p_real", p_real)
    q = v.as_float_array("p_fake", p_fake)
    shape = v.broadcast_shapes({"p_real": p.shape, "p_fake": q.shape})
    dtype = v.float_dtype(p, q)
    p = jnp.broadcast_to(p.astype(dtype), shape)
    q = jnp.broadcast_to(q.astype(dtype), shape)
    for name, a in (("p_real", p), ("p_fake", q)):
        v.require(name, ~jnp.isnan(a), "contains NaN")
        v.require(name, a >= 0, "has negative entries; densities must be >= 0")
    total = p + q
    pos = total > 0
    value = jnp.where(pos, p / jnp.where(pos, total, 1), 0.5)
    # An infinite density against a finite one: the limits 1 and 0; invalid densities (under jit): NaN.
    value = jnp.where(jnp.isinf(p) & jnp.isfinite(q), 1.0, jnp.where(jnp.isinf(q) & jnp.isfinite(p), 0.0, value))
    bad = jnp.isnan(p) | jnp.isnan(q) | (p < 0) | (q < 0)
    return jnp.where(bad, jnp.nan, value).astype(dtype)


def wasserstein_critic_loss(
    critic_real: ArrayLike,
    critic_fake: ArrayLike,
    *,
    real_weights: ArrayLike | None = None,
    fake_weights: ArrayLike | None = None,
) -> jax.Array:
    r"""The WGAN critic loss: the negated Kantorovich-Rubinstein dual objective.

    .. math::
        \mathcal{L}_f = \mathbb{E}_z[f(G(z))] - \mathbb{E}_x[f(x)]
        = -\Big(\mathbb{E}_x[f(x)] - \mathbb{E}_z[f(G(z))]\Big).

    By the Kantorovich-Rubinstein duality,
    :math:`W_1(P, Q) = \sup_{\|f\|_L \le 1} \mathbb{E}_P f - \mathbb{E}_Q f`,
    so minimising this loss over 1-Lipschitz critics gives ``-W1``: the
    estimate is ``-loss``. The constraint is not part of the loss; add
    :func:`gradient_penalty`, use :func:`weight_clipping`, or a spectrally
    normalised critic.

    Args:
      critic_real: critic values on real samples, ``[n, ...]``.
      critic_fake: critic values on generated samples, ``[m, ...]``.
      real_weights: optional per-sample weights ``[n]`` (``>= 0``, positive
        total): each expectation becomes a weighted mean.
      fake_weights: optional weights ``[m]`` of the generated samples.

    Returns:
      Scalar loss.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> float(dv.wasserstein_critic_loss(jnp.array([1.0, 3.0]), jnp.array([0.5])))
      -1.5

    References:
      Arjovsky, Chintala and Bottou, "Wasserstein GAN", ICML 2017, eq. 3.
    """
    r, f = _paired_outputs("critic_real", critic_real, "critic_fake", critic_fake)
    return _sample_mean(f, fake_weights, "fake_weights", "critic_fake") - _sample_mean(
        r, real_weights, "real_weights", "critic_real"
    )


def wasserstein_generator_loss(critic_fake: ArrayLike, *, fake_weights: ArrayLike | None = None) -> jax.Array:
    r"""The WGAN generator loss, :math:`-\mathbb{E}_z[f(G(z))]`.

    The generator minimises the dual objective
    :math:`\mathbb{E}_x f(x) - \mathbb{E}_z f(G(z))` (the W1 estimate); the
    real term does not depend on it, which leaves this loss. Minimising it
    moves the fakes up the critic's slope.

    Args:
      critic_fake: critic values on generated samples, ``[m, ...]``.
      fake_weights: optional per-sample weights ``[m]`` (a weighted mean).

    Returns:
      Scalar loss.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> float(dv.wasserstein_generator_loss(jnp.array([1.0, 2.0])))
      -1.5

    References:
      Arjovsky, Chintala and Bottou, "Wasserstein GAN", ICML 2017, Algorithm 1.
    """
    return -_sample_mean(_outputs("critic_fake", critic_fake), fake_weights, "fake_weights", "critic_fake")


def _safe_norm(sq: jax.Array) -> jax.Array:
    """sqrt of a sum of squares whose gradient is 0 (not NaN) where the sum is 0."""
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1)), 0)


def _squared_grad_norms(critic_fn: Callable[[jax.Array], jax.Array], name: str, x: ArrayLike) -> jax.Array:
    """``||grad critic_fn(x_i)||^2`` for every sample, from one reverse-mode pass: ``[n]``."""
    if not callable(critic_fn):
        raise v.fail("critic_fn", f"must be callable; got {type(critic_fn).__name__}")
    x = v.check_samples(name, x)
    n = x.shape[0]
    out, pullback = jax.vjp(critic_fn, x)
    if not hasattr(out, "shape") or tuple(out.shape) != (n,):
        raise v.fail(
            "critic_fn",
            f"must return one value per sample, shape ({n},); got "
            f"{getattr(out, 'shape', type(out).__name__)} for input of shape {x.shape}",
        )
    # Row i of the gradient of sum_i f(x_i) is grad f(x_i): samples are independent.
    (grads,) = pullback(jnp.ones_like(out))
    return jnp.sum(grads.reshape(n, -1).astype(x.dtype) ** 2, axis=1)


def gradient_penalty(
    critic_fn: Callable[[jax.Array], jax.Array],
    real: ArrayLike,
    fake: ArrayLike,
    key: jax.Array,
    *,
    target: float = 1.0,
    one_sided: bool = False,
) -> jax.Array:
    r"""The WGAN-GP gradient penalty on random interpolates of real and fake samples.

    .. math::
        \hat x_i = \epsilon_i x_i + (1 - \epsilon_i) \tilde x_i,\quad \epsilon_i \sim U[0, 1],
        \qquad
        \mathrm{GP} = \frac1n \sum_i \big(\|\nabla f(\hat x_i)\|_2 - c\big)^2,

    with :math:`c` the ``target`` (1 for a 1-Lipschitz critic), or with
    :math:`\max(0, \|\nabla f(\hat x_i)\|_2 - c)^2` when ``one_sided`` (Petzka
    et al. 2018: only slopes above ``c`` are penalised). The penalty is
    returned unscaled; the WGAN-GP critic loss is
    ``wasserstein_critic_loss(...) + 10 * gradient_penalty(...)``.

    All per-sample gradients come from **one** reverse-mode pass: the
    gradient of :math:`\sum_i f(\hat x_i)` with respect to the batch
    :math:`\hat x` has row :math:`i` equal to :math:`\nabla f(\hat x_i)`,
    because sample :math:`i`'s output depends on sample :math:`i` only. That
    holds for MLPs, convolutional nets, layer norm and spectral norm, but not
    for batch norm (which couples samples; Gulrajani et al. advise against it
    in the critic). The norm has a zero (not NaN) gradient where the critic is
    flat, so the penalty is differentiable everywhere, as the critic's
    training step needs (it differentiates through this gradient).

    Args:
      critic_fn: ``[n, ...] -> [n]``, the critic with its parameters closed
        over, one value per sample.
      real: real samples, ``[n, ...]``.
      fake: generated samples, the shape of ``real``.
      key: PRNG key for the interpolation weights.
      target: the slope ``c`` the penalty pulls the gradient norm towards
        (``>= 0``; 0 gives the zero-centred penalty at interpolates of
        Thanh-Tung et al. 2019, and with ``real is fake`` the R1 penalty
        :func:`r1_penalty`).
      one_sided: penalise only gradient norms above ``target``.

    Returns:
      Scalar penalty, ``>= 0``. Under ``jit``, NaN when a sample is not finite.

    Example:
      >>> import jax, jax.numpy as jnp, divergences as dv
      >>> critic = lambda x: 2.0 * x[:, 0]              # slope 2 everywhere
      >>> x, y = jnp.zeros((5, 3)), jnp.ones((5, 3))
      >>> float(dv.gradient_penalty(critic, x, y, jax.random.key(0)))
      1.0

    References:
      Gulrajani, Ahmed, Arjovsky, Dumoulin and Courville, "Improved Training
      of Wasserstein GANs", NeurIPS 2017, Algorithm 1. Petzka, Fischer and
      Lukovnikov, "On the regularization of Wasserstein GANs", ICLR 2018.
    """
    if not callable(critic_fn):
        raise v.fail("critic_fn", f"must be callable; got {type(critic_fn).__name__}")
    if not isinstance(one_sided, bool):
        raise v.fail("one_sided", f"must be a bool; got {one_sided!r}")
    v.check_scalar("target", target, low=0.0)
    x = v.check_samples("real", real)
    y = v.check_samples("fake", fake)
    if x.shape != y.shape:
        raise v.fail("fake", f"has shape {y.shape} but `real` has shape {x.shape}; they are paired sample by sample")
    dtype = v.float_dtype(x, y)
    x, y = x.astype(dtype), y.astype(dtype)
    n = x.shape[0]
    key = v.check_key("key", key)
    eps = jax.random.uniform(key, (n,) + (1,) * (x.ndim - 1), dtype=dtype)
    x_hat = eps * x + (1 - eps) * y
    norms = _safe_norm(_squared_grad_norms(critic_fn, "x", x_hat).astype(dtype))
    gap = norms - jnp.asarray(target, dtype)
    if one_sided:
        gap = jnp.maximum(gap, 0)
    # Under jit the samples' values are unchecked: NaN or inf samples give NaN (eagerly: an error).
    finite = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(y))
    return jnp.where(finite, jnp.mean(gap**2), jnp.nan)


def weight_clipping(clip: float = 0.01) -> optax.GradientTransformation:
    r"""Clip every parameter to ``[-clip, clip]`` after the update (the original WGAN).

    An optax transformation to chain **last**, after the optimizer:
    ``optax.chain(optax.rmsprop(5e-5), dv.weight_clipping(0.01))``. It turns
    the update ``u`` into ``P(params + u) - params``, with ``P`` the
    projection onto the box (:func:`optax.projections.projection_linf_ball`),
    so that ``optax.apply_updates`` lands on the clipped parameters. It
    keeps no state and needs ``params`` in ``update``.

    Clipping bounds the critic's Lipschitz constant by a (loose) constant that
    depends on the architecture, so the W1 estimate is off by that unknown
    factor; the WGAN-GP penalty or spectral norm avoid this.

    Args:
      clip: the half-width of the box (``> 0``; 0.01 in the WGAN paper).

    Returns:
      An :class:`optax.GradientTransformation`.

    Example:
      >>> import jax.numpy as jnp, optax, divergences as dv
      >>> opt = optax.chain(optax.sgd(1.0), dv.weight_clipping(0.1))
      >>> params = {"w": jnp.array([0.05, -0.05])}
      >>> updates, _ = opt.update({"w": jnp.array([-1.0, 0.01])}, opt.init(params), params)
      >>> [round(float(w), 4) for w in optax.apply_updates(params, updates)["w"]]
      [0.1, -0.06]

    References:
      Arjovsky, Chintala and Bottou, "Wasserstein GAN", ICML 2017, Algorithm 1.
    """
    v.check_scalar("clip", clip, low=0.0, low_inclusive=False)

    def update_fn(updates, state, params=None):
        if params is None:
            raise v.fail("params", "must be passed to the update of `weight_clipping` (it projects the new parameters)")
        new_params = optax.projections.projection_linf_ball(optax.apply_updates(params, updates), clip)
        return jax.tree.map(lambda new, p: new - p, new_params, params), state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)
