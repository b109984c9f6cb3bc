r"""One-call neural estimators: fit a small critic to two samples, read off a dual bound.

Both estimators follow the same recipe, compiled as one program:

1. shuffle each sample and split it three ways: a training part, and a
   held-out part (``holdout`` of the samples) cut in two halves, a
   *validation* split and a *test* split;
2. fit a :class:`divergences.models.MLP` critic on minibatches of the training
   parts with Adam, in a :func:`jax.lax.scan` loop of ``steps`` updates (the
   critic maximises the dual objective; the Lipschitz constraint or the f-GAN
   activation is part of the fit);
3. **model selection**: the fit is cut into 20 chunks; after each, the
   training objective is evaluated on the validation split, and the critic
   with the best validation score is kept (not the last iterate, which may
   have overfitted the training part);
4. evaluate the readout on the **test** split with the kept critic and return
   it, with its standard error if asked (``return_stderr=True``).

A critic fitted and evaluated on the same samples overfits them and biases the
estimate up (a flexible critic separates two finite samples even when P = Q);
the test value is an honest plug-in estimate at a fixed critic, independent of
both the fit and the selection, with a sampling error of order
:math:`1/\sqrt{n_\text{test}}` that the returned standard error measures.

**The KL readout.** The f-GAN bound for KL, :math:`\mathbb{E}_P[V] -
\mathbb{E}_Q[e^{V-1}]` (Nguyen, Wainwright and Jordan), and the
Donsker-Varadhan bound :math:`\mathbb{E}_P[V] - \log\mathbb{E}_Q[e^{V}]` both
average an exponential of the critic over Q: their variance grows like
:math:`\mathbb{E}_Q[(p/q)^2]`, exponentially in the divergence (McAllester
and Stratos 2020; Song and Ermon 2020), and a critic that overshoots on a
few held-out points of Q makes them hugely negative (we measured -3.8 and
-23 for a true KL of 0.5 at 4096 samples). ``"kl"`` and ``"reverse_kl"``
therefore train a **logistic classifier** between the balanced minibatches of
P and Q (the bounded ``"gan"`` objective), whose logit estimates
:math:`\log p/q`, and read off the density-ratio plug-in
:math:`\widehat{\mathrm{KL}}(P\|Q) = \frac1{n'}\sum_i \operatorname{logit}(x_i)`
(and :math:`-\frac1{m'}\sum_j \operatorname{logit}(y_j)` for the reverse):
the mean of a bounded-variance quantity, never an exponential. It is not a
bound (a misfitted classifier can err on either side), but its error is that
of the fitted ratio, and its standard error is honest. The other f-divergences
use their f-GAN bound, which is bounded ("js", "gan") or overflow-safe
(:mod:`divergences._fgan`).

**Warnings.** Eager calls warn (:class:`UnreliableEstimateWarning`) when
fewer than ``MIN_TEST_SAMPLES`` (100) test samples per side remain, and when
the estimate of a non-negative quantity comes out negative (the value is
returned as is, not clipped: a clip would bias the average of repeated
estimates). Under ``jit`` nothing can be warned; check the standard error.

**Gradients** with respect to the samples are those of the test readout at
the fitted critic (the critic is fitted on stopped-gradient samples): by the
envelope theorem that is the gradient of the supremum when the critic is
optimal. They are finite, and zero on the training and validation samples.

Everything is traced once per set of static options (sizes, ``steps``, the
critic's architecture): a second call with new samples of the same shapes
reuses the compiled program. The functions are ``jit``- and ``vmap``-compatible
(the options are Python values, the samples and the key are arrays).
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences._fgan import FGAN_DIVERGENCES, fgan_activation, fgan_conjugate_activation, fgan_objective
from divergences._gan import gradient_penalty, wasserstein_critic_loss, weight_clipping
from divergences.models import MLP
from divergences.models import ACTIVATIONS

__all__ = [
    "estimate_wasserstein_dual",
    "estimate_f_divergence",
    "LIPSCHITZ_METHODS",
    "NeuralEstimate",
    "UnreliableEstimateWarning",
]

LIPSCHITZ_METHODS = ("gradient_penalty", "weight_clipping", "spectral_norm")


class NeuralEstimate(NamedTuple):
    r"""A neural estimate with its standard error (``return_stderr=True``).

    Attributes:
      value: the held-out estimate, a scalar.
      stderr: its standard error from the held-out samples at the fitted critic,
        :math:`\sqrt{\widehat{\mathrm{Var}}_P/n' + \widehat{\mathrm{Var}}_Q/m'}`
        (the sampling error of the readout; the error of the fit itself, such
        as a critic too small for the ratio, is not in it).
    """

    value: jax.Array
    stderr: jax.Array


class UnreliableEstimateWarning(UserWarning):
    """An eager neural estimate that should not be trusted: too few samples, or a negative value."""


# Held-out samples per side below which the estimates were measured to be unreliable (negative
# or far off the closed forms on the README's problems): warn before fitting.
MIN_TEST_SAMPLES = 100
# Checkpoints of the critic compared on the validation split (model selection).
_N_CHECKS = 20


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


# Divergences read off a logistic classifier's logit, the density-ratio plug-in (module docstring).
_PLUGIN = ("kl", "reverse_kl")
# Adam's learning rate when `learning_rate` is None: the plug-in's error is that of the fitted logit
# itself, so the classifiers take smaller steps than the bounds' critics.
_DEFAULT_LR = {"kl": 1e-3, "reverse_kl": 1e-3}


def _samples(name: str, x: ArrayLike) -> jax.Array:
    """``[n]`` or ``[n, ...]`` samples as ``[n, d]`` (one-dimensional data become ``[n, 1]``)."""
    x = v.check_samples(name, x, min_ndim=1, min_samples=6)
    return x[:, None] if x.ndim == 1 else x.reshape(x.shape[0], -1)


def _sizes(n: int, holdout: float) -> tuple[int, int, int]:
    """Train, validation and test sizes: ``holdout`` of the samples held out, split in halves."""
    n_held = min(max(int(round(holdout * n)), 4), n - 2)
    n_val = n_held // 2
    return n - n_held, n_val, n_held - n_val


def _split(x: jax.Array, key: jax.Array, holdout: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    n_train, n_val, _ = _sizes(x.shape[0], holdout)
    x = jax.random.permutation(key, x, axis=0)
    return x[:n_train], x[n_train : n_train + n_val], x[n_train + n_val :]


def _optimizer(cfg: _Config) -> optax.GradientTransformation:
    # Cosine decay to 0: the iterates settle, so neighbouring checkpoints differ little and the
    # validation split picks among good critics rather than among noisy Adam iterates.
    lr = optax.cosine_decay_schedule(cfg.learning_rate, cfg.steps)
    if cfg.lipschitz == "weight_clipping":
        # The WGAN paper's choice: RMSProp (momentum destabilises clipped critics), then the box.
        return optax.chain(optax.rmsprop(lr), weight_clipping(cfg.clip))
    # b1 = 0.5, b2 = 0.9 as in WGAN-GP (Gulrajani et al., Algorithm 1); they work for the f-GAN too.
    return optax.adam(lr, b1=0.5, b2=0.9)


def _train_objective(cfg: _Config, real: jax.Array, fake: jax.Array) -> jax.Array:
    """The objective the critic maximises, from critic outputs (also the validation score)."""
    if cfg.kind == "wasserstein":
        return -wasserstein_critic_loss(real, fake)
    if cfg.kind in _PLUGIN:
        return fgan_objective(real, fake, "gan")  # minus the logistic loss: logit -> log p/q
    return fgan_objective(real, fake, cfg.kind)


def _mean_se(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.mean(a), jnp.var(a, ddof=1) / a.shape[0]


def _readout(cfg: _Config, real: jax.Array, fake: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The held-out estimate and its standard error, from critic outputs on the test split."""
    if cfg.kind == "wasserstein":
        (mr, vr), (mf, vf) = _mean_se(real), _mean_se(fake)
    elif cfg.kind == "kl":  # KL(P||Q) = E_P[log p/q], the logit at P's samples
        (mr, vr), (mf, vf) = _mean_se(real), (jnp.zeros((), real.dtype), 0.0)
    elif cfg.kind == "reverse_kl":  # KL(Q||P) = -E_Q[log p/q]
        (mr, vr), (mf, vf) = (jnp.zeros((), real.dtype), 0.0), _mean_se(fake)
    else:
        (mr, vr), (mf, vf) = _mean_se(fgan_activation(real, cfg.kind)), _mean_se(
            fgan_conjugate_activation(fake, cfg.kind)
        )
    return mr - mf, jnp.sqrt(vr + vf)


@functools.partial(jax.jit, static_argnames=("cfg", "holdout"))
def _fit_and_estimate(
    x: jax.Array, y: jax.Array, key: jax.Array, cfg: _Config, holdout: float
) -> tuple[jax.Array, jax.Array]:
    k_x, k_y, k_init, k_loop, k_val = jax.random.split(key, 5)
    ok = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(y))
    x_train, x_val, x_test = _split(x, k_x, holdout)
    y_train, y_val, y_test = _split(y, k_y, holdout)
    # The critic is fitted as a function of the training and validation samples held fixed: the
    # estimate's gradient with respect to the samples is that of the held-out readout at the
    # fitted critic (the envelope theorem), finite, and zero on the fitting samples. (Through
    # the fit, Adam's sqrt of a zero second moment would make it NaN.)
    x_train, x_val, y_train, y_val = map(jax.lax.stop_gradient, (x_train, x_val, y_train, y_val))
    b = cfg.batch_size
    spectral = cfg.lipschitz == "spectral_norm"
    model = MLP(width=cfg.width, depth=cfg.depth, activation=cfg.activation, spectral_norm=spectral)
    variables = model.init(k_init, x_train[:1])
    params = variables["params"]
    stats = variables.get("batch_stats", {})
    tx = _optimizer(cfg)

    def apply(params, stats, z):
        return model.apply({"params": params, "batch_stats": stats} if spectral else {"params": params}, z)

    def penalised(params, stats, out_x, out_y, xb, yb, k_gp):
        value = _train_objective(cfg, out_x, out_y)
        if cfg.lipschitz == "gradient_penalty":
            critic = lambda z: apply(params, stats, z)  # noqa: E731
            value = value - cfg.penalty_weight * gradient_penalty(critic, xb, yb, k_gp)
        return value

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
        return -penalised(params, stats, out[:b], out[b:], xb, yb, k_gp), stats

    def step(carry, i):
        params, stats, opt_state = carry
        k_bx, k_by, k_gp = jax.random.split(jax.random.fold_in(k_loop, i), 3)
        xb = x_train[jax.random.randint(k_bx, (b,), 0, x_train.shape[0])]
        yb = y_train[jax.random.randint(k_by, (b,), 0, y_train.shape[0])]
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, xb, yb, k_gp)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), stats, opt_state), loss

    def validation_score(params, stats):
        # The training objective on the validation split (penalty on pairs of validation samples).
        k = min(x_val.shape[0], y_val.shape[0])
        score = penalised(
            params, stats, apply(params, stats, x_val), apply(params, stats, y_val), x_val[:k], y_val[:k], k_val
        )
        return jnp.where(jnp.isnan(score), -jnp.inf, score)

    # Model selection: train in _N_CHECKS chunks and keep the critic with the best validation
    # score (the remainder of steps // chunks runs first).
    n_checks = min(cfg.steps, _N_CHECKS)
    chunk, rest = divmod(cfg.steps, n_checks)
    carry = (params, stats, tx.init(params))
    if rest:
        carry, _ = jax.lax.scan(step, carry, jnp.arange(rest))

    def check(state, c):
        carry, best, best_score = state
        carry, _ = jax.lax.scan(step, carry, rest + c * chunk + jnp.arange(chunk))
        candidate = (carry[0], carry[1])
        score = validation_score(*candidate)
        better = score > best_score
        best = jax.tree_util.tree_map(lambda new, old: jnp.where(better, new, old), candidate, best)
        return (carry, best, jnp.where(better, score, best_score)), score

    init_best = (carry[0], carry[1])
    minus_inf = jnp.asarray(-jnp.inf, x.dtype)
    (_, (params, stats), _), _ = jax.lax.scan(check, (carry, init_best, minus_inf), jnp.arange(n_checks))
    out = apply(params, stats, jnp.concatenate([x_test, y_test]))
    value, stderr = _readout(cfg, out[: x_test.shape[0]], out[x_test.shape[0] :])
    nan = jnp.asarray(jnp.nan, value.dtype)
    return jnp.where(ok, value, nan), jnp.where(ok, stderr, nan)


def _finish(value, stderr, *, name, nonnegative, return_stderr):
    """Warn (eagerly) about a negative estimate of a non-negative quantity; shape the result."""
    if nonnegative and v.is_concrete(value) and float(value) < 0:
        warnings.warn(
            f"the held-out estimate of {name} is negative ({float(value):.4g} +- {float(stderr):.2g}): "
            "the critic did not separate the samples better than chance; the true value is likely "
            "below the standard error. Use more samples or steps, or a smaller critic.",
            UnreliableEstimateWarning,
            stacklevel=3,
        )
    return NeuralEstimate(value, stderr) if return_stderr else value


def _warn_small(x: jax.Array, y: jax.Array, holdout: float) -> None:
    n_test = min(_sizes(x.shape[0], holdout)[2], _sizes(y.shape[0], holdout)[2])
    if n_test < MIN_TEST_SAMPLES:
        warnings.warn(
            f"only {n_test} held-out test samples per side (`holdout` = {holdout} of "
            f"{x.shape[0]} and {y.shape[0]} samples): below {MIN_TEST_SAMPLES}, neural estimates "
            "are dominated by sampling error and can be far off or negative. Use more samples.",
            UnreliableEstimateWarning,
            stacklevel=4,
        )


def _common(x, y, steps, batch_size, holdout, width, depth, activation, learning_rate, return_stderr):
    if not isinstance(return_stderr, bool):
        raise v.fail("return_stderr", f"must be a bool; got {return_stderr!r}")
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
    if learning_rate is not None:
        v.check_scalar("learning_rate", learning_rate, low=0.0, low_inclusive=False)
    lr = None if learning_rate is None else float(learning_rate)
    if v.is_concrete(x, y):
        _warn_small(x, y, float(holdout))
    return x.astype(dtype), y.astype(dtype), steps, batch_size, float(holdout), width, depth, lr


def estimate_wasserstein_dual(
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array,
    *,
    lipschitz: str = "gradient_penalty",
    steps: int = 2000,
    batch_size: int = 256,
    holdout: float = 0.4,
    width: int = 64,
    depth: int = 2,
    activation: str = "relu",
    learning_rate: float = 1e-2,
    penalty_weight: float = 100.0,
    clip: float = 0.01,
    return_stderr: bool = False,
) -> jax.Array | NeuralEstimate:
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
      holdout: fraction of each sample kept out of the fit: half of it
        selects the critic (validation), half gives the estimate (test).
      width, depth, activation: the critic :class:`models.MLP`.
      learning_rate: Adam's (RMSProp's for weight clipping).
      penalty_weight: :math:`\lambda` of the gradient penalty.
      clip: the weight-clipping box half-width.
      return_stderr: also return the standard error of the test readout.

    Returns:
      Scalar estimate of W1 (in the units of the data), float32 at least; with
      ``return_stderr=True`` a :class:`NeuralEstimate` ``(value, stderr)``.
      Under ``jit``, NaN or infinite samples give NaN (an eager call raises).
      Eager calls warn (:class:`UnreliableEstimateWarning`) below 100 test
      samples per side and for a negative estimate.

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
        x, y, steps, batch_size, holdout, width, depth, activation, learning_rate, return_stderr
    )
    v.check_scalar("penalty_weight", penalty_weight, low=0.0)
    v.check_scalar("clip", clip, low=0.0, low_inclusive=False)
    cfg = _Config(
        "wasserstein", lipschitz, steps, batch_size, width, depth, activation, learning_rate,
        float(penalty_weight), float(clip),
    )  # fmt: skip
    value, stderr = _fit_and_estimate(x, y, v.check_key("key", key), cfg, holdout)
    return _finish(value, stderr, name="W1", nonnegative=True, return_stderr=return_stderr)


def estimate_f_divergence(
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array,
    *,
    divergence: str = "kl",
    steps: int = 2000,
    batch_size: int = 256,
    holdout: float = 0.4,
    width: int = 64,
    depth: int = 2,
    activation: str = "relu",
    learning_rate: float | None = None,
    return_stderr: bool = False,
) -> jax.Array | NeuralEstimate:
    r"""Neural estimate of an f-divergence :math:`D_f(P \| Q)`: a classifier's plug-in or the f-GAN bound.

    .. math::
        D_f(P \,\|\, Q) = \sup_V \mathbb{E}_P[g_f(V(x))] - \mathbb{E}_Q[f^*(g_f(V(y)))],

    (:func:`fgan_objective`), maximised over an MLP critic :math:`V` on part of
    the samples, the critic selected on a validation split, and evaluated on
    the test split (see the module docstring). In expectation the test value
    is a lower bound on :math:`D_f`; it is tight when the critic can represent
    the optimal :math:`V`. For ``"kl"`` and ``"reverse_kl"`` the critic is a
    logistic classifier instead, and the estimate the density-ratio plug-in

    .. math::
        \widehat{\mathrm{KL}}(P\|Q) = \frac1{n'} \sum_{i \in \text{test}} \hat\ell(x_i),
        \qquad \hat\ell \approx \log \frac{p}{q},

    whose variance does not grow exponentially with the divergence as the
    f-GAN and Donsker-Varadhan bounds' do (module docstring).

    Args:
      x: samples of P, ``[n]`` or ``[n, ...]``.
      y: samples of Q, ``[m]`` or ``[m, ...]``, same per-sample size.
      key: PRNG key.
      divergence: one of ``FGAN_DIVERGENCES`` ("kl" is KL(P||Q), "js" is the
        Jensen-Shannon divergence in ``[0, log 2]``, "gan" is
        ``2 JS - log 4``).
      learning_rate: Adam's; ``None`` for 1e-3 with the "kl" and
        "reverse_kl" classifiers and 1e-2 otherwise.
      steps, batch_size, holdout, width, depth, activation, return_stderr:
        as in :func:`estimate_wasserstein_dual`.

    Returns:
      Scalar estimate, in nats; with ``return_stderr=True`` a
      :class:`NeuralEstimate` ``(value, stderr)``. Under ``jit``, NaN or
      infinite samples give NaN (an eager call raises). Eager calls warn
      (:class:`UnreliableEstimateWarning`) below 100 test samples per side
      and for a negative estimate of a divergence (every one but "gan").

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
      and Jordan, IEEE Trans. Inf. Theory 56 (2010). Sugiyama, Suzuki and
      Kanamori, *Density Ratio Estimation in Machine Learning* (2012), ch. 4
      (probabilistic classification). Song and Ermon, "Understanding the
      Limitations of Variational Mutual Information Estimators", ICLR 2020.
      McAllester and Stratos, "Formal Limitations on the Measurement of
      Mutual Information", AISTATS 2020.
    """
    v.check_choice("divergence", divergence, FGAN_DIVERGENCES)
    x, y, steps, batch_size, holdout, width, depth, learning_rate = _common(
        x, y, steps, batch_size, holdout, width, depth, activation, learning_rate, return_stderr
    )
    if learning_rate is None:
        learning_rate = _DEFAULT_LR.get(divergence, 1e-2)
    cfg = _Config(divergence, None, steps, batch_size, width, depth, activation, learning_rate, 0.0, 0.0)
    value, stderr = _fit_and_estimate(x, y, v.check_key("key", key), cfg, holdout)
    nonnegative = divergence != "gan"  # 2 JS - log 4 lies in [-log 4, 0]
    return _finish(value, stderr, name=divergence, nonnegative=nonnegative, return_stderr=return_stderr)
