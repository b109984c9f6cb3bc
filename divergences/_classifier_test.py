r"""The classifier two-sample test (C2ST) of Lopez-Paz and Oquab (2017).

Train a classifier to tell the pooled samples apart on one part of them and
measure its accuracy on the other part: if P = Q, no classifier beats
chance on held-out points. This is the test to reach for when the data live
in many dimensions or on structure that a fixed kernel misses (a change in
the dependence between coordinates with equal marginals, images), where a
learnt feature does better than a median-heuristic bandwidth.

The p-value here is the exact conditional one. Given the trained classifier
and the held-out points, the classifier's predictions are fixed; under
P = Q the held-out labels are a uniformly random assignment of the
:math:`n_x` X-labels among the :math:`T` held-out points (the pooled sample
is exchangeable and the split is random). The number :math:`K` of points
predicted X that are X is then hypergeometric, and the accuracy
:math:`(2K + T - a - n_x) / T` (``a`` the number predicted X) increases with
:math:`K`:

.. math::
    p = \Pr\big(K' \ge K\big), \qquad K' \sim \mathrm{Hypergeometric}(T, n_x, a).

This needs no balance between the two samples and no normal approximation;
for equal sample sizes it is close to the binomial test
:math:`\mathrm{Bin}(T, 1/2)` of Lopez-Paz and Oquab, and exact where theirs
is asymptotic.

References:
  Lopez-Paz and Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017.
  Friedman, "On Multivariate Goodness-of-Fit and Two-Sample Testing",
  PHYSTAT 2003.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.scipy.special import gammaln
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences.models import MLP

__all__ = ["ClassifierTestResult", "classifier_two_sample_test"]


class ClassifierTestResult(NamedTuple):
    """The outcome of :func:`classifier_two_sample_test`.

    Attributes:
      statistic: the held-out accuracy of the classifier, in ``[0, 1]``.
      p_value: the exact conditional p-value of that accuracy under P = Q,
        in ``(0, 1]`` (a tail below float32's smallest normal number, about
        1e-38, is reported as that number).
      n_test: the number of held-out points (an int32 scalar).
    """

    statistic: jax.Array
    p_value: jax.Array
    n_test: jax.Array


def _log_choose(n: jax.Array, k: jax.Array) -> jax.Array:
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def _hypergeom_sf(k_obs: jax.Array, total: int, n_marked: jax.Array, n_drawn: jax.Array) -> jax.Array:
    """``P(K >= k_obs)`` for ``K ~ Hypergeometric(total, n_marked, n_drawn)``, summed over the support."""
    k = jnp.arange(total + 1, dtype=jnp.float32)
    n_marked = n_marked.astype(jnp.float32)
    n_drawn = n_drawn.astype(jnp.float32)
    lo = jnp.maximum(0.0, n_drawn + n_marked - total)
    hi = jnp.minimum(n_drawn, n_marked)
    support = (k >= lo) & (k <= hi)
    safe = jnp.where(support, k, lo)
    logpmf = (
        _log_choose(n_marked, safe) + _log_choose(total - n_marked, n_drawn - safe) - _log_choose(jnp.float32(total), n_drawn)
    )
    in_tail = support & (k >= k_obs)
    tail = jax.nn.logsumexp(jnp.where(in_tail, logpmf, -jnp.inf))
    # Never exactly 0: a tail below the smallest normal float is reported as that float.
    return jnp.clip(jnp.exp(tail), jnp.finfo(jnp.float32).tiny, 1.0)


@functools.partial(
    jax.jit, static_argnames=("n_train", "width", "depth", "n_steps", "batch_size", "activation")
)
def _c2st_core(x, y, key, learning_rate, weight_decay, *, n_train, width, depth, n_steps, batch_size, activation):
    n, m = x.shape[0], y.shape[0]
    z = jnp.concatenate([x.reshape(n, -1), y.reshape(m, -1)], axis=0)
    labels = jnp.concatenate([jnp.ones(n), jnp.zeros(m)]).astype(z.dtype)
    k_split, k_init, k_batch = jax.random.split(key, 3)
    perm = jax.random.permutation(k_split, n + m)
    z, labels = z[perm], labels[perm]
    z_train, l_train = z[:n_train], labels[:n_train]
    z_test, l_test = z[n_train:], labels[n_train:]

    # Standardise with the training part only, so the held-out points stay unseen.
    mean = jnp.mean(z_train, axis=0)
    std = jnp.std(z_train, axis=0)
    std = jnp.where(std > 0, std, 1.0)
    z_train = (z_train - mean) / std
    z_test = (z_test - mean) / std

    # Class-balanced loss: each class weighs one half whatever the sample sizes.
    n_pos = jnp.sum(l_train)
    n_neg = n_train - n_pos
    w_train = jnp.where(l_train > 0, 0.5 / jnp.maximum(n_pos, 1), 0.5 / jnp.maximum(n_neg, 1)) * n_train

    model = MLP(width=width, depth=depth, out_features=1, activation=activation)
    params = model.init(k_init, z_train[:1])
    opt = optax.adamw(learning_rate, weight_decay=weight_decay)
    opt_state = opt.init(params)

    def loss_fn(p, zb, lb, wb):
        logits = model.apply(p, zb)
        return jnp.sum(wb * optax.sigmoid_binary_cross_entropy(logits, lb)) / jnp.sum(wb)

    def step(carry, k):
        p, s = carry
        if batch_size is None or batch_size >= n_train:
            zb, lb, wb = z_train, l_train, w_train
        else:
            idx = jax.random.randint(k, (batch_size,), 0, n_train)
            zb, lb, wb = z_train[idx], l_train[idx], w_train[idx]
        grads = jax.grad(loss_fn)(p, zb, lb, wb)
        updates, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), None

    (params, _), _ = lax.scan(step, (params, opt_state), jax.random.split(k_batch, n_steps))

    pred = (model.apply(params, z_test) > 0).astype(z.dtype)
    t = z_test.shape[0]
    accuracy = jnp.mean(pred == l_test)
    n_marked = jnp.sum(l_test)
    n_drawn = jnp.sum(pred)
    k_obs = jnp.sum(pred * l_test)
    p_value = _hypergeom_sf(k_obs, t, n_marked, n_drawn)
    nan = ~jnp.all(jnp.isfinite(z))  # NaN or inf samples under jit
    return ClassifierTestResult(
        jnp.where(nan, jnp.nan, accuracy), jnp.where(nan, jnp.nan, p_value), jnp.asarray(t, jnp.int32)
    )


def classifier_two_sample_test(
    x: ArrayLike,
    y: ArrayLike,
    key: jax.Array,
    *,
    train_fraction: float = 0.5,
    width: int = 64,
    depth: int = 2,
    activation: str = "relu",
    n_steps: int = 500,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int | None = None,
) -> ClassifierTestResult:
    r"""Classifier two-sample test: held-out accuracy of a small network against chance.

    The pooled samples are shuffled and split; an MLP
    (:class:`models.MLP`, inputs standardised with the training part) learns
    to tell X from Y on the first ``train_fraction`` of them with a
    class-balanced logistic loss and AdamW, in ``n_steps`` compiled steps;
    its accuracy on the rest is the statistic. The p-value is exact given
    the trained classifier (the hypergeometric tail of the module docstring),
    so the test keeps its level for any network, any training length and
    unequal sample sizes; what training buys is power.

    Args:
      x: samples of P, shape ``[n, ...]`` (trailing axes are flattened into
        features).
      y: samples of Q, shape ``[m, ...]``, same trailing shape.
      key: a PRNG key for the split, the initialisation and the minibatches.
      train_fraction: the share of the pooled sample used for training, in
        ``(0, 1)``; both parts must hold at least one point.
      width: hidden width of the MLP.
      depth: number of hidden layers.
      activation: a name of :data:`models.ACTIVATIONS`.
      n_steps: optimiser steps, at least 1.
      learning_rate: AdamW step size, > 0.
      weight_decay: AdamW decoupled weight decay, >= 0.
      batch_size: minibatch size drawn with replacement at each step;
        ``None`` (default) trains on the full training part.

    Returns:
      A :class:`ClassifierTestResult` ``(statistic, p_value, n_test)``: the
      held-out accuracy, its p-value (float32 scalars) and the number of
      held-out points. Under ``jit`` with non-finite samples, NaN for both.
      The result is not differentiable (predictions are thresholded).

    Raises:
      ValueError: naming the argument, for samples of different trailing
        shapes, ``train_fraction`` outside ``(0, 1)`` or leaving an empty
        part, non-positive sizes or steps, an unknown activation, or
        (eagerly) non-finite samples.

    Example:
      >>> import jax, divergences as dv
      >>> kx, ky, kt = jax.random.split(jax.random.key(0), 3)
      >>> x = jax.random.normal(kx, (300, 2))
      >>> y = 0.3 * jax.random.normal(ky, (300, 2))   # same mean, smaller spread
      >>> res = dv.classifier_two_sample_test(x, y, kt, n_steps=300)
      >>> bool(res.p_value < 1e-3), bool(res.statistic > 0.7)
      (True, True)

    References:
      Lopez-Paz and Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017.
    """
    from divergences.models import ACTIVATIONS

    x = v.check_samples("x", x)
    y = v.check_samples("y", y)
    if x.shape[1:] != y.shape[1:]:
        if x.ndim == y.ndim:
            v.check_same_dim("x", x, "y", y)
        raise v.fail("y", f"has shape {y.shape}, whose trailing shape does not match `x` of shape {x.shape}")
    v.check_static("train_fraction", train_fraction)  # it sets the split sizes
    if isinstance(train_fraction, (bool, np.bool_)) or not isinstance(
        train_fraction, (int, float, np.integer, np.floating)
    ):
        raise v.fail("train_fraction", f"must be a Python or NumPy number in (0, 1); got {train_fraction!r}")
    train_fraction = float(train_fraction)
    v.check_scalar("train_fraction", train_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    n_total = x.shape[0] + y.shape[0]
    n_train = int(train_fraction * n_total)
    if n_train < 1 or n_train >= n_total:
        raise v.fail(
            "train_fraction",
            f"= {train_fraction} leaves {n_train} training and {n_total - n_train} held-out points of {n_total}; both need 1",
        )
    width = v.check_int("width", width, minimum=1)
    depth = v.check_int("depth", depth, minimum=0)
    n_steps = v.check_int("n_steps", n_steps, minimum=1)
    if batch_size is not None:
        batch_size = v.check_int("batch_size", batch_size, minimum=1)
    v.check_choice("activation", activation, tuple(ACTIVATIONS))
    v.check_scalar("learning_rate", learning_rate, low=0.0, low_inclusive=False)
    v.check_scalar("weight_decay", weight_decay, low=0.0)
    dtype = v.float_dtype(x, y)
    return _c2st_core(
        x.astype(dtype),
        y.astype(dtype),
        v.check_key("key", key),
        jnp.asarray(learning_rate, dtype),
        jnp.asarray(weight_decay, dtype),
        n_train=n_train,
        width=width,
        depth=depth,
        n_steps=n_steps,
        batch_size=batch_size,
        activation=activation,
    )
