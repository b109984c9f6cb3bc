r"""One-call neural estimators: fit a small critic to two samples, read off a dual bound.

Both estimators follow the same recipe, compiled as one program:

1. shuffle each sample and split off a held-out part (``holdout``);
2. fit a :class:`models.MLP` critic on minibatches of the training parts with
   Adam, in a :func:`jax.lax.scan` loop of ``steps`` updates (the critic
   maximises the dual objective; the Lipschitz constraint or the f-GAN
   activation is part of the fit);
3. evaluate the dual objective on the **held-out** samples with the fitted
   critic and return it.

A critic fitted and evaluated on the same samples overfits them and biases the
estimate up (a flexible critic separates two finite samples even when P = Q);
the held-out value is an honest plug-in estimate of the dual objective at a
fixed critic, so in expectation it is a lower bound on the divergence (up to
the Lipschitz slack below), with a sampling error of order
:math:`1/\sqrt{n_\text{held-out}}`.

Everything is traced once per set of static options (sizes, ``steps``, the
critic's architecture): a second call with new samples of the same shapes
reuses the compiled program. The functions are ``jit``- and ``vmap``-compatible
(the options are Python values, the samples and the key are arrays).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences._fgan import FGAN_DIVERGENCES, fgan_objective
from divergences._gan import gradient_penalty, wasserstein_critic_loss, weight_clipping
from divergences.models import MLP
from divergences.models._mlp import ACTIVATIONS

__all__ = ["estimate_wasserstein_dual", "estimate_f_divergence", "LIPSCHITZ_METHODS"]

LIPSCHITZ_METHODS = ("gradient_penalty", "weight_clipping", "spectral_norm")


class _Config(NamedTuple):
    """Static options of one fit (hashable, so the compiled program is cached per config)."""

    kind: str  # "wasserstein" or an f-GAN divergence name
    lipschitz: str | None
    steps: int
    batch_size: int
    width: int
    depth: int
    activation: str
    learning_rate: float
    penalty_weight: float
    clip: float


def _samples(name: str, x: ArrayLike) -> jax.Array:
    """``[n]`` or ``[n, ...]`` samples as ``[n, d]`` (one-dimensional data become ``[n, 1]``)."""
    x = v.check_samples(name, x, min_ndim=1, min_samples=4)
    return x[:, None] if x.ndim == 1 else x.reshape(x.shape[0], -1)


def _split(x: jax.Array, key: jax.Array, holdout: float) -> tuple[jax.Array, jax.Array]:
    n = x.shape[0]
    n_test = min(max(int(round(holdout * n)), 2), n - 2)
    x = jax.random.permutation(key, x, axis=0)
    return x[: n - n_test], x[n - n_test :]


def _optimizer(cfg: _Config) -> optax.GradientTransformation:
    # Cosine decay to 0: the last critic is the average of a settling trajectory rather than one
    # noisy Adam iterate, which removes most of the run-to-run spread of the estimate.
    lr = optax.cosine_decay_schedule(cfg.learning_rate, cfg.steps)
    if cfg.lipschitz == "weight_clipping":
        # The WGAN paper's choice: RMSProp (momentum destabilises clipped critics), then the box.
        return optax.chain(optax.rmsprop(lr), weight_clipping(cfg.clip))
    # b1 = 0.5, b2 = 0.9 as in WGAN-GP (Gulrajani et al., Algorithm 1); they work for the f-GAN too.
    return optax.adam(lr, b1=0.5, b2=0.9)


def _objective(cfg: _Config, real: jax.Array, fake: jax.Array) -> jax.Array:
    """The dual objective to maximise, from critic outputs."""
    if cfg.kind == "wasserstein":
        return -wasserstein_critic_loss(real, fake)
    return fgan_objective(real, fake, cfg.kind)


@functools.partial(jax.jit, static_argnames=("cfg", "holdout"))
def _fit_and_estimate(x: jax.Array, y: jax.Array, key: jax.Array, cfg: _Config, holdout: float) -> jax.Array:
    k_x, k_y, k_init, k_loop = jax.random.split(key, 4)
    x_train, x_test = _split(x, k_x, holdout)
    y_train, y_test = _split(y, k_y, holdout)
    b = cfg.batch_size
    spectral = cfg.lipschitz == "spectral_norm"
    model = MLP(width=cfg.width, depth=cfg.depth, activation=cfg.activation, spectral_norm=spectral)
    variables = model.init(k_init, x_train[:1])
    params = variables["params"]
    stats = variables.get("batch_stats", {})
    tx = _optimizer(cfg)

    def loss_fn(params, stats, xb, yb, k_gp):
        both = jnp.concatenate([xb, yb])
        if spectral:
            # One forward pass for both batches: one power-iteration update per step.
            out, updated = model.apply(
                {"params": params, "batch_stats": stats}, both, update_stats=True, mutable=["batch_stats"]
            )
            stats = updated["batch_stats"]
        else:
            out = model.apply({"params": params}, both)
        loss = -_objective(cfg, out[:b], out[b:])
        if cfg.lipschitz == "gradient_penalty":
            critic = lambda z: model.apply({"params": params}, z)  # noqa: E731
            loss = loss + cfg.penalty_weight * gradient_penalty(critic, xb, yb, k_gp)
        return loss, stats

    def step(carry, i):
        params, stats, opt_state = carry
        k_bx, k_by, k_gp = jax.random.split(jax.random.fold_in(k_loop, i), 3)
        xb = x_train[jax.random.randint(k_bx, (b,), 0, x_train.shape[0])]
        yb = y_train[jax.random.randint(k_by, (b,), 0, y_train.shape[0])]
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, xb, yb, k_gp)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), stats, opt_state), loss

    carry = (params, stats, tx.init(params))
    (params, stats, _), _ = jax.lax.scan(step, carry, jnp.arange(cfg.steps))
    final = {"params": params, "batch_stats": stats} if spectral else {"params": params}
    out = model.apply(final, jnp.concatenate([x_test, y_test]))
    return _objective(cfg, out[: x_test.shape[0]], out[x_test.shape[0] :])


def _common(x, y, steps, batch_size, holdout, width, depth, activation, learning_rate):
    x = _samples("x", x)
    y = _samples("y", y)
    v.check_same_dim("x", x, "y", y)
    dtype = v.float_dtype(x, y)
    steps = v.check_int("steps", steps, minimum=1)
    batch_size = v.check_int("batch_size", batch_size, minimum=1)
    v.check_static("holdout", holdout)  # it sets the split sizes
    v.check_scalar("holdout", holdout, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    width = v.check_int("width", width, minimum=1)
    depth = v.check_int("depth", depth, minimum=0)
    if not isinstance(activation, str):
        raise v.fail("activation", f"must be a name; got {activation!r}")
    v.check_choice("activation", activation, tuple(ACTIVATIONS))
    v.check_scalar("learning_rate", learning_rate, low=0.0, low_inclusive=False)
    return x.astype(dtype), y.astype(dtype), steps, batch_size, float(holdout), width, depth, float(learning_rate)


def estimate_wasserstein_dual(
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array,
    *,
    lipschitz: str = "gradient_penalty",
    steps: int = 2000,
    batch_size: int = 256,
    holdout: float = 0.3,
    width: int = 64,
    depth: int = 2,
    activation: str = "relu",
    learning_rate: float = 1e-2,
    penalty_weight: float = 100.0,
    clip: float = 0.01,
) -> jax.Array:
    r"""Neural estimate of W1(P, Q) through the Kantorovich-Rubinstein dual.

    .. math::
        W_1(P, Q) = \sup_{\|f\|_L \le 1} \mathbb{E}_P[f(x)] - \mathbb{E}_Q[f(y)]
        \ \approx\ \frac1{n'}\sum_{i \in \text{held out}} \hat f(x_i) - \frac1{m'}\sum_{j \in \text{held out}} \hat f(y_j),

    with :math:`\hat f` an MLP critic fitted on the other samples (see the
    module docstring for the recipe). Three ways to keep the critic
    (approximately) 1-Lipschitz:

    * ``"gradient_penalty"`` (default): WGAN-GP, maximise the dual minus
      ``penalty_weight * gradient_penalty``. The penalty is soft: at the
      optimum of the penalised objective the critic's slope exceeds 1 by
      about :math:`W_1 / (2\lambda)` along the transport directions (for a
      translation, the maximiser of :math:`a W_1 - \lambda(a-1)^2` is
      :math:`a = 1 + W_1/(2\lambda)`), which inflates the estimate by the
      same factor. Hence the default :math:`\lambda = 100` here, not the
      paper's 10 (a 10% bias at :math:`W_1 = 2`); scale the data so that
      :math:`W_1 \ll 2\lambda`.
    * ``"spectral_norm"``: every layer spectrally normalised (Miyato et al.
      2018), so the critic is at most 1-Lipschitz (ReLU-like activations are
      1-Lipschitz) and the estimate is a lower bound in expectation; deep
      normalised ReLU nets often cannot reach slope 1, so it can be loose.
    * ``"weight_clipping"``: the original WGAN, parameters clipped to
      ``[-clip, clip]`` with RMSProp. This bounds the Lipschitz constant by an
      unknown constant ``K`` of the architecture, so the result estimates
      ``K * W1`` for some ``K``: useful to compare distances against the same
      critic, not as W1 itself.

    Args:
      x: samples of P, ``[n]`` or ``[n, ...]`` (flattened per sample).
      y: samples of Q, ``[m]`` or ``[m, ...]`` with the same per-sample size.
      key: PRNG key (split, shuffle, initialisation, minibatches, penalty).
      lipschitz: one of ``"gradient_penalty"``, ``"weight_clipping"``,
        ``"spectral_norm"``.
      steps: critic updates.
      batch_size: samples of each distribution per update.
      holdout: fraction of each sample kept out of the fit for the estimate.
      width, depth, activation: the critic :class:`models.MLP`.
      learning_rate: Adam's (RMSProp's for weight clipping).
      penalty_weight: :math:`\lambda` of the gradient penalty.
      clip: the weight-clipping box half-width.

    Returns:
      Scalar estimate of W1 (in the units of the data), float32 at least.
      Under ``jit``, NaN or infinite samples give NaN (an eager call raises).

    Example:
      >>> import jax, divergences as dv
      >>> kx, ky, kf = jax.random.split(jax.random.key(0), 3)
      >>> x = jax.random.normal(kx, (4000,))
      >>> y = jax.random.normal(ky, (4000,)) + 1.0  # W1 = 1
      >>> w = dv.estimate_wasserstein_dual(x, y, kf, steps=500)
      >>> bool(abs(w - 1.0) < 0.15)
      True

    References:
      Villani, *Optimal Transport* (2009), Thm. 5.10 (Kantorovich-Rubinstein).
      Arjovsky, Chintala and Bottou, "Wasserstein GAN", ICML 2017.
      Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
      Miyato et al., "Spectral Normalization for Generative Adversarial
      Networks", ICLR 2018.
    """
    v.check_choice("lipschitz", lipschitz, LIPSCHITZ_METHODS)
    x, y, steps, batch_size, holdout, width, depth, learning_rate = _common(
        x, y, steps, batch_size, holdout, width, depth, activation, learning_rate
    )
    v.check_scalar("penalty_weight", penalty_weight, low=0.0)
    v.check_scalar("clip", clip, low=0.0, low_inclusive=False)
    cfg = _Config(
        "wasserstein", lipschitz, steps, batch_size, width, depth, activation, learning_rate,
        float(penalty_weight), float(clip),
    )  # fmt: skip
    return _fit_and_estimate(x, y, v.check_key("key", key), cfg, holdout)


def estimate_f_divergence(
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array,
    *,
    divergence: str = "kl",
    steps: int = 2000,
    batch_size: int = 256,
    holdout: float = 0.3,
    width: int = 64,
    depth: int = 2,
    activation: str = "relu",
    learning_rate: float = 1e-2,
) -> jax.Array:
    r"""Neural estimate of an f-divergence :math:`D_f(P \| Q)` through the f-GAN bound.

    .. math::
        D_f(P \,\|\, Q) = \sup_V \mathbb{E}_P[g_f(V(x))] - \mathbb{E}_Q[f^*(g_f(V(y)))],

    (:func:`fgan_objective`), maximised over an MLP critic :math:`V` on part of
    the samples and evaluated on the held-out rest (see the module
    docstring). In expectation the held-out value is a lower bound on
    :math:`D_f`; it is tight when the critic can represent the optimal
    :math:`V` (for "kl", :math:`1 + \log p/q`). For "kl" and
    "squared_hellinger" the fake term involves :math:`\exp(V)`, so the
    estimate's variance grows with :math:`\mathbb{E}_Q[(p/q)^2]`; it is
    reliable when Q's tails cover P's (a wider Q).

    Args:
      x: samples of P, ``[n]`` or ``[n, ...]``.
      y: samples of Q, ``[m]`` or ``[m, ...]``, same per-sample size.
      key: PRNG key.
      divergence: one of ``FGAN_DIVERGENCES`` ("kl" is KL(P||Q), "js" is the
        Jensen-Shannon divergence in ``[0, log 2]``, "gan" is
        ``2 JS - log 4``).
      steps, batch_size, holdout, width, depth, activation, learning_rate:
        as in :func:`estimate_wasserstein_dual`.

    Returns:
      Scalar estimate, in nats. Under ``jit``, NaN or infinite samples give
      NaN (an eager call raises).

    Example:
      >>> import jax, divergences as dv
      >>> kx, ky, kf = jax.random.split(jax.random.key(0), 3)
      >>> x = jax.random.uniform(kx, (4000,))
      >>> y = jax.random.uniform(ky, (4000,)) + 2.0  # disjoint: JS = log 2
      >>> js = dv.estimate_f_divergence(x, y, kf, divergence="js", steps=500)
      >>> bool(abs(js - 0.6931) < 0.05)
      True

    References:
      Nowozin, Cseke and Tomioka, "f-GAN", NeurIPS 2016. Nguyen, Wainwright
      and Jordan, IEEE Trans. Inf. Theory 56 (2010).
    """
    v.check_choice("divergence", divergence, FGAN_DIVERGENCES)
    x, y, steps, batch_size, holdout, width, depth, learning_rate = _common(
        x, y, steps, batch_size, holdout, width, depth, activation, learning_rate
    )
    cfg = _Config(divergence, None, steps, batch_size, width, depth, activation, learning_rate, 0.0, 0.0)
    return _fit_and_estimate(x, y, v.check_key("key", key), cfg, holdout)
