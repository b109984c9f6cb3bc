r"""The linear dual GAN (Li, Schwing, Wang and Zemel, "Dualing GANs", NeurIPS 2017).

For a log-linear discriminator :math:`D_w(x) = \sigma(w \cdot \phi(x))` with an
L2 penalty, the discriminator's problem is a regularised logistic regression,
convex in :math:`w`:

.. math::
    P(w) = \frac C2 \|w\|^2 + \sum_{x} \operatorname{softplus}(-w\cdot\phi(x))
           + \sum_{z} \operatorname{softplus}(w\cdot\phi(G(z))).

Writing :math:`\operatorname{softplus}(u) = \max_{\lambda\in[0,1]} \lambda u + H(\lambda)`,
with :math:`H(\lambda) = -\lambda\log\lambda - (1-\lambda)\log(1-\lambda)` the
binary entropy, and minimising over :math:`w` in closed form gives the dual

.. math::
    D(\lambda_x, \lambda_z) = -\frac1{2C}\Big\|\sum_x (1-\lambda_x)\phi(x) - \sum_z \lambda_z \phi(G(z))\Big\|^2
        + \sum_x H(\lambda_x) + \sum_z H(\lambda_z),

a concave maximisation over the box :math:`[0, 1]^{n+m}`, with
:math:`\min_w P = \max_\lambda D` (strong duality: P is strictly convex and
finite everywhere) and the primal solution

.. math::
    w^* = \frac1C\Big(\sum_x (1-\lambda^*_x)\phi(x) - \sum_z \lambda^*_z\phi(G(z))\Big).

At the optimum :math:`\lambda^*_x = D_{w^*}(x)` and :math:`\lambda^*_z = D_{w^*}(G(z))`.
The generator maximises the discriminator's optimal loss :math:`\min_w P`,
that is :math:`\max_\lambda D`: the GAN becomes a joint **maximisation** of
:math:`D` over the generator's parameters and :math:`\lambda`, with no saddle
point. By the envelope theorem the gradient of the optimal value with respect
to the generator's samples is the partial gradient of :math:`D` at the fixed
:math:`\lambda^*`: ``jax.grad`` of ``linear_gan_dual(lam_x, lam_z, x, gz, C=C)``
with the lambdas from :func:`solve_linear_gan_dual` (which carry no gradient).

The dual touches the features only through inner products
:math:`\phi(a)\cdot\phi(b)`, so a kernel :math:`k(a, b)` can stand for
them (``kernel=``, with the kernels of :func:`mmd`): the solver then works
on the :math:`(n+m)\times(n+m)` Gram matrix of the pooled samples, the
exact kernel logistic regression, at a cost set by :math:`n + m` and not by
the (possibly infinite) feature dimension, and the discriminator at a new
point is :func:`linear_gan_logits` (the representer form). Random features
of a kernel (:func:`random_fourier_features`) approximate it with explicit
features instead.

Sums, not means, as in the paper: :math:`C` trades the penalty against the
total loss, so with more samples the same :math:`C` regularises less.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.scipy.special import xlog1py, xlogy
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences._mmd import EnergyKernel, Kernel, _scale_free, resolve_kernel

__all__ = [
    "linear_gan_primal",
    "linear_gan_dual",
    "solve_linear_gan_dual",
    "linear_gan_weights",
    "linear_gan_logits",
    "random_fourier_features",
    "RandomFourierFeatures",
]

FeatureMap = Callable[[jax.Array], jax.Array]


class RandomFourierFeatures(struct.PyTreeNode):
    r"""Random Fourier features of the Gaussian kernel (a pytree: passes through ``jit``).

    .. math::
        \phi(x) = \sqrt{2/D}\,\cos(x\,\Omega / \sigma + b), \quad
        \Omega_{jk} \sim \mathcal N(0, 1),\ b_k \sim U[0, 2\pi],
        \qquad \mathbb{E}[\phi(x)\cdot\phi(y)] = \exp\!\big(-\|x - y\|^2 / (2\sigma^2)\big).

    Build one with :func:`random_fourier_features`; call it on ``[n, dim]``
    to get ``[n, num_features]``.
    """

    omega: jax.Array  # [dim, num_features]
    phase: jax.Array  # [num_features]
    bandwidth: jax.Array  # scalar sigma

    def __call__(self, x: jax.Array) -> jax.Array:
        d = self.omega.shape[1]
        return jnp.sqrt(2.0 / d) * jnp.cos(x @ (self.omega / self.bandwidth) + self.phase)


def random_fourier_features(
    key: jax.Array, dim: int, num_features: int, *, bandwidth: float = 1.0
) -> RandomFourierFeatures:
    r"""A ready feature map for the linear dual GAN: random Fourier features of a Gaussian kernel.

    Inner products of the features approximate the Gaussian kernel
    :math:`k(x, y) = \exp(-\|x-y\|^2 / (2\sigma^2))` with an error of order
    :math:`1/\sqrt{D}` (Rahimi and Recht 2007), so a linear discriminator on
    them approximates a kernel logistic regression.

    Args:
      key: PRNG key for the frequencies and phases.
      dim: the data dimension ``d``.
      num_features: ``D``, the number of features.
      bandwidth: :math:`\sigma > 0`, the kernel's length scale.

    Returns:
      A :class:`RandomFourierFeatures` map ``[n, dim] -> [n, num_features]``,
      float32 (float64 under x64).

    Example:
      >>> import jax, jax.numpy as jnp, divergences as dv
      >>> phi = dv.random_fourier_features(jax.random.key(0), 2, 4096)
      >>> x = jnp.array([[0.0, 0.0], [1.0, 0.0]])
      >>> k = phi(x) @ phi(x).T          # ~ exp(-1/2) = 0.61 off the diagonal
      >>> bool(abs(k[0, 1] - 0.6065) < 0.05)
      True

    References:
      Rahimi and Recht, "Random Features for Large-Scale Kernel Machines",
      NeurIPS 2007.
    """
    dim = v.check_int("dim", dim, minimum=1)
    num_features = v.check_int("num_features", num_features, minimum=1)
    v.check_scalar("bandwidth", bandwidth, low=0.0, low_inclusive=False)
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    k_omega, k_phase = jax.random.split(v.check_key("key", key))
    omega = jax.random.normal(k_omega, (dim, num_features), dtype)
    phase = jax.random.uniform(k_phase, (num_features,), dtype, 0.0, 2 * jnp.pi)
    return RandomFourierFeatures(omega, phase, jnp.asarray(bandwidth, dtype))


def _binary_entropy(lam: jax.Array) -> jax.Array:
    """-lam log lam - (1 - lam) log(1 - lam), 0 at both ends, finite gradient inside (0, 1)."""
    return -xlogy(lam, lam) - xlog1py(1 - lam, -lam)


def _features(x: jax.Array, gz: jax.Array, features: FeatureMap | None) -> tuple[jax.Array, jax.Array]:
    """``phi(x)`` and ``phi(gz)``, checked to be ``[n, k]`` and ``[m, k]``."""
    if features is None:
        return x, gz
    if not callable(features):
        raise v.fail("features", f"must be None or a callable feature map; got {type(features).__name__}")
    fx, fz = features(x), features(gz)
    for a, n in ((fx, x.shape[0]), (fz, gz.shape[0])):
        if getattr(a, "ndim", None) != 2 or a.shape[0] != n:
            raise v.fail(
                "features", f"must map [n, d] samples to [n, k] features; got shape {getattr(a, 'shape', None)} for n = {n}"
            )
    if fx.shape[1] != fz.shape[1]:
        raise v.fail("features", f"gives {fx.shape[1]} features for `x` but {fz.shape[1]} for `gz`")
    dtype = v.float_dtype(fx, fz)
    return fx.astype(dtype), fz.astype(dtype)


def _uses_kernel(features, kernel, bandwidth) -> bool:
    """Whether the call works with a kernel; refuses both representations at once."""
    if kernel is None:
        if bandwidth is not None:
            raise v.fail("bandwidth", "is the bandwidth of `kernel`, which is None")
        return False
    if features is not None:
        raise v.fail("kernel", "and `features` are two ways to give the discriminator's features: pass one")
    return True


def _resolve_kernel(kernel, bandwidth, x: jax.Array, gz: jax.Array) -> Kernel:
    gram = resolve_kernel(kernel, bandwidth, x, gz)
    if isinstance(gram, EnergyKernel):
        raise v.fail("kernel", "must be positive semi-definite; the energy kernel -|a - b| is only conditionally "
                               "so, and the dual would not be concave")
    return gram


def _kernel_matrix(gram: Kernel, a: jax.Array, b: jax.Array, center: jax.Array) -> jax.Array:
    """``k(a_i, b_j)``, ``[len(a), len(b)]``; distance kernels on points centred and rescaled as in ``mmd``.

    NaN throughout when a point is not finite (the clamped squared distances would hide it).
    """
    finite = jnp.all(jnp.isfinite(a)) & jnp.all(jnp.isfinite(b))
    if gram.translation_invariant:
        a, b = a - center, b - center
    gram, a, b, _ = _scale_free(gram, a, b)
    k = gram(a, b)
    if getattr(k, "shape", None) != (a.shape[0], b.shape[0]):
        raise v.fail("kernel", f"must give one scalar per pair of points; got a Gram matrix of shape "
                               f"{getattr(k, 'shape', None)} for {a.shape[0]} x {b.shape[0]} points")
    return jnp.where(finite, k.astype(v.float_dtype(a, k)), jnp.nan)


def _pooled(x: jax.Array, gz: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The pooled samples ``[n+m, d]``, ``x`` then ``gz``, and their mean (the kernel's centre, no gradient)."""
    z = jnp.concatenate([x, gz])
    return z, jax.lax.stop_gradient(jnp.mean(z, axis=0))


def _pooled_gram(kernel_fn, x: jax.Array, gz: jax.Array) -> jax.Array:
    """The ``[n+m, n+m]`` Gram matrix of ``x`` then ``gz`` under a resolved kernel."""
    z, center = _pooled(x, gz)
    return _kernel_matrix(kernel_fn, z, z, center)


def _samples(x: ArrayLike, gz: ArrayLike) -> tuple[jax.Array, jax.Array]:
    x = v.as_samples("x", x)
    gz = v.as_samples("gz", gz)
    v.check_same_dim("x", x, "gz", gz)
    dtype = v.float_dtype(x, gz)
    return x.astype(dtype), gz.astype(dtype)


def _check_C(C) -> None:  # noqa: N802 - the paper's name
    v.check_scalar("C", C, low=0.0, low_inclusive=False)


def _lambdas(lambda_x, lambda_z, n: int, m: int) -> tuple[jax.Array, jax.Array]:
    out = []
    for name, lam, size in (("lambda_x", lambda_x, n), ("lambda_z", lambda_z, m)):
        lam = v.as_float_array(name, lam)
        if lam.shape != (size,):
            raise v.fail(name, f"must have shape ({size},), one value per sample; got {lam.shape}")
        v.require(name, ~jnp.isnan(lam), "contains NaN")
        v.require(name, (lam >= 0) & (lam <= 1), "must lie in [0, 1]")
        out.append(lam)
    return out[0], out[1]


def linear_gan_primal(
    w: ArrayLike, x: ArrayLike, gz: ArrayLike, *, C: float, features: FeatureMap | None = None
) -> jax.Array:
    r"""The regularised discriminator loss of the linear GAN (the primal).

    .. math::
        P(w) = \frac C2 \|w\|^2 + \sum_{i=1}^n \operatorname{softplus}(-w\cdot\phi(x_i))
               + \sum_{j=1}^m \operatorname{softplus}(w\cdot\phi(G(z_j))),

    the negative log-likelihood of labelling real samples 1 and generated
    samples 0 with :math:`D_w = \sigma(w\cdot\phi)`, plus an L2 penalty.
    Minimised over ``w``; its minimum equals the maximum of
    :func:`linear_gan_dual`.

    Args:
      w: discriminator weights, ``[k]``.
      x: real samples, ``[n, d]``.
      gz: generated samples, ``[m, d]``.
      C: the L2 penalty, ``> 0``.
      features: ``None`` (``phi`` is the identity, ``k = d``) or a callable
        feature map ``[n, d] -> [n, k]`` such as
        :func:`random_fourier_features`.

    Returns:
      Scalar.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> x, gz = jnp.ones((2, 1)), -jnp.ones((3, 1))
      >>> round(float(dv.linear_gan_primal(jnp.zeros(1), x, gz, C=1.0)), 4)  # 5 log 2
      3.4657

    References:
      Li, Schwing, Wang and Zemel, "Dualing GANs", NeurIPS 2017, eq. 5.
    """
    _check_C(C)
    x, gz = _samples(x, gz)
    fx, fz = _features(x, gz, features)
    w = v.as_float_array("w", w)
    if w.shape != (fx.shape[1],):
        raise v.fail("w", f"must have shape ({fx.shape[1]},), one weight per feature; got {w.shape}")
    w = w.astype(v.float_dtype(w, fx))
    return 0.5 * C * jnp.sum(w**2) + jnp.sum(jax.nn.softplus(-(fx @ w))) + jnp.sum(jax.nn.softplus(fz @ w))


def _dual_from_gram(lam: jax.Array, gram: jax.Array, c: jax.Array, C) -> jax.Array:
    a = c - lam
    return -0.5 / C * (a @ (gram @ a)) + jnp.sum(_binary_entropy(lam))


def _feature_gap(lambda_x, lambda_z, x, gz, C, features):
    """Validated lambdas and ``sum_i (1 - lambda_x,i) phi(x_i) - sum_j lambda_z,j phi(gz_j)``.

    The vector shared by the dual objective (its squared norm) and the weights
    it determines (divided by C).
    """
    _check_C(C)
    x, gz = _samples(x, gz)
    fx, fz = _features(x, gz, features)
    lam_x, lam_z = _lambdas(lambda_x, lambda_z, fx.shape[0], fz.shape[0])
    dtype = v.float_dtype(lam_x, lam_z, fx)
    lam_x, lam_z = lam_x.astype(dtype), lam_z.astype(dtype)
    s = jnp.sum((1 - lam_x)[:, None] * fx, axis=0) - jnp.sum(lam_z[:, None] * fz, axis=0)
    return lam_x, lam_z, s


def _kernel_inputs(lambda_x, lambda_z, x, gz, C, kernel, bandwidth):
    """The checks the kernel forms share: validated lambdas, samples and the resolved kernel."""
    _check_C(C)
    x, gz = _samples(x, gz)
    gram = _resolve_kernel(kernel, bandwidth, x, gz)
    lam_x, lam_z = _lambdas(lambda_x, lambda_z, x.shape[0], gz.shape[0])
    return lam_x, lam_z, x, gz, gram


def linear_gan_dual(
    lambda_x: ArrayLike,
    lambda_z: ArrayLike,
    x: ArrayLike,
    gz: ArrayLike,
    *,
    C: float,
    features: FeatureMap | None = None,
    kernel: str | Kernel | Callable | None = None,
    bandwidth: ArrayLike | None = None,
) -> jax.Array:
    r"""The dual of the linear GAN's discriminator problem.

    .. math::
        D(\lambda_x, \lambda_z) = -\frac1{2C}\Big\|\sum_i (1-\lambda_{x,i})\phi(x_i) - \sum_j \lambda_{z,j}\phi(G(z_j))\Big\|^2
            + \sum_i H(\lambda_{x,i}) + \sum_j H(\lambda_{z,j}),

    :math:`H` the binary entropy in nats. Concave in the lambdas; every value
    is a lower bound on :func:`linear_gan_primal` (weak duality), with
    equality at the optimum (:func:`solve_linear_gan_dual`). Differentiable
    in the samples (the generator's gradient) and in the lambdas inside the
    open box :math:`(0, 1)`; at 0 and 1 the entropy's slope is infinite.

    Args:
      lambda_x: ``[n]``, in ``[0, 1]`` (at the optimum, ``D(x)``).
      lambda_z: ``[m]``, in ``[0, 1]`` (at the optimum, ``D(G(z))``).
      x: real samples, ``[n, d]``.
      gz: generated samples, ``[m, d]``.
      C: the L2 penalty of the primal, ``> 0``.
      features: as in :func:`linear_gan_primal`.
      kernel: instead of ``features``, a positive semi-definite kernel
        :math:`k(a, b) = \phi(a)\cdot\phi(b)` of implicit features, as in
        :func:`mmd`: a name (``"gaussian"``, ``"laplace"``,
        ``"inverse_multiquadric"``, ``"polynomial"``; not ``"energy"``,
        which is only conditionally positive definite), a :class:`Kernel`,
        or a callable ``fn(a, b) -> scalar`` on two points. The quadratic
        term is then :math:`a^\top K a / (2C)` with :math:`K` the Gram matrix
        of the pooled samples and :math:`a = (1 - \lambda_x, -\lambda_z)`:
        the exact kernel logistic regression, no random-feature error.
      bandwidth: the kernel's bandwidth (an array: the sum of the kernels at
        each, as in :func:`mmd`); ``None``: the median heuristic
        (:func:`median_bandwidth`). Only with a named ``kernel``.

    Returns:
      Scalar. Under ``jit``, NaN when a lambda lies outside ``[0, 1]`` (an
      eager call raises).

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> x, gz = jnp.ones((2, 1)), -jnp.ones((3, 1))
      >>> lam_x, lam_z = jnp.full(2, 0.5), jnp.full(3, 0.5)
      >>> round(float(dv.linear_gan_dual(lam_x, lam_z, x, gz, C=1.0)), 4)  # 5 log 2 - 2.5^2 / 2
      0.3407

    References:
      Li, Schwing, Wang and Zemel, "Dualing GANs", NeurIPS 2017, eq. 7.
    """
    if _uses_kernel(features, kernel, bandwidth):
        lam_x, lam_z, x, gz, gram = _kernel_inputs(lambda_x, lambda_z, x, gz, C, kernel, bandwidth)
        k = _pooled_gram(gram, x, gz)
        dtype = v.float_dtype(lam_x, lam_z, k)
        c = jnp.concatenate([jnp.ones(x.shape[:1], dtype), jnp.zeros(gz.shape[:1], dtype)])
        return _dual_from_gram(jnp.concatenate([lam_x, lam_z]).astype(dtype), k.astype(dtype), c, C)
    lam_x, lam_z, s = _feature_gap(lambda_x, lambda_z, x, gz, C, features)
    return -0.5 / C * jnp.sum(s**2) + jnp.sum(_binary_entropy(lam_x)) + jnp.sum(_binary_entropy(lam_z))


def linear_gan_weights(
    lambda_x: ArrayLike,
    lambda_z: ArrayLike,
    x: ArrayLike,
    gz: ArrayLike,
    *,
    C: float,
    features: FeatureMap | None = None,
) -> jax.Array:
    r"""The discriminator weights that the dual variables determine.

    .. math::
        w = \frac1C\Big(\sum_i (1-\lambda_{x,i})\phi(x_i) - \sum_j \lambda_{z,j}\phi(G(z_j))\Big),

    the minimiser over ``w`` of the Lagrangian; at the dual optimum it is the
    primal minimiser :math:`w^*`, and :math:`D_{w^*}(x) = \sigma(w^*\cdot\phi(x))`
    is the trained discriminator.

    Args:
      lambda_x, lambda_z, x, gz, C, features: as in :func:`linear_gan_dual`.

    Returns:
      ``[k]`` weights (``k = d`` without features).

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> x, gz = jnp.ones((2, 1)), -jnp.ones((3, 1))
      >>> dv.linear_gan_weights(jnp.full(2, 0.5), jnp.full(3, 0.5), x, gz, C=1.0).tolist()
      [2.5]

    References:
      Li, Schwing, Wang and Zemel, "Dualing GANs", NeurIPS 2017, eq. 6.
    """
    _, _, s = _feature_gap(lambda_x, lambda_z, x, gz, C, features)
    return s / C


def linear_gan_logits(
    lambda_x: ArrayLike,
    lambda_z: ArrayLike,
    x: ArrayLike,
    gz: ArrayLike,
    points: ArrayLike,
    *,
    C: float,
    features: FeatureMap | None = None,
    kernel: str | Kernel | Callable | None = None,
    bandwidth: ArrayLike | None = None,
) -> jax.Array:
    r"""The discriminator's logits :math:`w\cdot\phi(p)` at new points, for features or a kernel.

    .. math::
        w\cdot\phi(p) = \frac1C\Big(\sum_i (1-\lambda_{x,i})\,k(x_i, p) - \sum_j \lambda_{z,j}\,k(G(z_j), p)\Big),
        \qquad k(a, b) = \phi(a)\cdot\phi(b),

    with :math:`w` from :func:`linear_gan_weights` (the representer theorem
    for a kernel, whose features are implicit). At the dual optimum
    :math:`D(p) = \sigma(w^*\cdot\phi(p))` is the trained discriminator,
    and on the training samples themselves
    :math:`\sigma(w^*\cdot\phi(x_i)) = \lambda^*_{x,i}`,
    :math:`\sigma(w^*\cdot\phi(G(z_j))) = \lambda^*_{z,j}` (the optimality
    conditions). Differentiable in ``points``.

    Args:
      lambda_x, lambda_z, x, gz, C, features, kernel, bandwidth: as in
        :func:`linear_gan_dual` (the same ``kernel`` and ``bandwidth`` as
        the solve; ``bandwidth=None`` gives the same median of ``x`` and
        ``gz``).
      points: ``[k, d]``, where to evaluate the discriminator.

    Returns:
      ``[k]`` logits, of the dtype of the features (float32 at least).

    Example:
      >>> import jax, jax.numpy as jnp, divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (16, 2)) + 1.0
      >>> gz = jax.random.normal(jax.random.key(1), (16, 2)) - 1.0
      >>> lam_x, lam_z = dv.solve_linear_gan_dual(x, gz, C=1.0, kernel="gaussian", bandwidth=1.0)
      >>> logit = dv.linear_gan_logits(lam_x, lam_z, x, gz, x, C=1.0, kernel="gaussian", bandwidth=1.0)
      >>> bool(jnp.allclose(jax.nn.sigmoid(logit), lam_x, atol=1e-4))
      True

    References:
      Li, Schwing, Wang and Zemel, "Dualing GANs", NeurIPS 2017, eq. 6;
      Scholkopf, Herbrich and Smola, "A Generalized Representer Theorem",
      COLT 2001.
    """
    if not _uses_kernel(features, kernel, bandwidth):
        _, _, s = _feature_gap(lambda_x, lambda_z, x, gz, C, features)
        p = v.as_samples("points", points)
        v.check_same_dim("x", jnp.asarray(x), "points", p)
        fp = p if features is None else features(p.astype(s.dtype))
        return fp.astype(s.dtype) @ (s / C)
    lam_x, lam_z, x, gz, gram = _kernel_inputs(lambda_x, lambda_z, x, gz, C, kernel, bandwidth)
    p = v.as_samples("points", points)
    v.check_same_dim("x", x, "points", p)
    z, center = _pooled(x, gz)
    dtype = v.float_dtype(lam_x, lam_z, z, p)
    a = jnp.concatenate([1 - lam_x, -lam_z]).astype(dtype)
    return _kernel_matrix(gram, p.astype(dtype), z.astype(dtype), center.astype(dtype)) @ a / C


def _ascend(value, newton_step, row_norms, c, C, tol, max_iter: int):
    """The damped Newton loop shared by the feature and the kernel solvers.

    ``value(lam)`` is the dual, ``newton_step(lam) -> (d, dec)`` the Newton direction and the
    decrement ``grad . d``; ``row_norms`` the feature vectors' norms ``|phi_i|`` (with a kernel
    ``sqrt(k(z_i, z_i))``), which bound the rounding error of the dual's quadratic term.
    From lambda = 1/2: a step at most 99% of the way to the box's boundary, halved until the
    Armijo condition holds (up to that rounding); stops when half the decrement (the quadratic
    model's predicted gain) is below ``tol * max(1, |D|)``.
    """
    dtype = c.dtype
    n = c.shape[0]
    eps = jnp.finfo(dtype).eps
    lo, hi = jnp.finfo(dtype).tiny, 1 - eps  # keep lambda strictly inside (0, 1) in floating point

    def rounding(lam):
        # The rounding error of |phi^T (c - lam)|^2 / (2C) in the working precision.
        return eps * jnp.sum(jnp.abs(c - lam) * row_norms) ** 2 / C

    def cond(state):
        _, it, dec, val = state
        return (it < max_iter) & (0.5 * dec > tol * jnp.maximum(1, jnp.abs(val)))

    def body(state):
        lam, it, _, val = state
        d, dec = newton_step(lam)
        # Largest step before some lambda leaves (0, 1): (1 - lam)/d where d > 0, -lam/d where d < 0.
        room = jnp.where(d > 0, 1 - lam, lam)
        to_bound = jnp.where(d != 0, room / jnp.where(d != 0, jnp.abs(d), 1), jnp.inf)
        t0 = jnp.minimum(1.0, 0.99 * jnp.min(to_bound)).astype(dtype)
        slack = 10 * (eps * jnp.maximum(1, jnp.abs(val)) + rounding(lam))

        def bt_cond(s):
            t, k = s
            return (value(jnp.clip(lam + t * d, lo, hi)) < val + 0.25 * t * dec - slack) & (k < 60)

        t, k = jax.lax.while_loop(bt_cond, lambda s: (0.5 * s[0], s[1] + 1), (t0, 0))
        new = jnp.clip(lam + t * d, lo, hi)
        new_val = value(new)
        # A step that the line search could not make acceptable (60 halvings) or that produced a
        # non-finite value is not taken, and the loop ends (dec = 0).
        ok = (k < 60) & jnp.isfinite(new_val) & jnp.all(jnp.isfinite(new))
        return (
            jnp.where(ok, new, lam),
            it + 1,
            jnp.where(ok, dec, jnp.zeros_like(dec)),
            jnp.where(ok, new_val, val),
        )

    lam0 = jnp.full((n,), 0.5, dtype)
    init = (lam0, jnp.asarray(0), jnp.asarray(jnp.inf, dtype), value(lam0))
    lam, iters, dec, _ = jax.lax.while_loop(cond, body, init)
    return lam, iters, dec


@functools.partial(jax.jit, static_argnames=("max_iter",))
def _newton_gram(gram: jax.Array, c: jax.Array, C: jax.Array, tol: jax.Array, max_iter: int):
    """Damped Newton ascent on the dual given the Gram matrix ``K`` of the features (a kernel's).

    With ``S = diag(sqrt(lam(1-lam)))`` the Newton system ``(K/C + S^-2) d = grad`` is solved as
    ``d = S A^{-1} S grad`` with ``A = I + S K S / C``: eigenvalues >= 1 for a positive
    semi-definite ``K``, entries at most ``1 + k_max / (4C)``, so one Cholesky factorisation per
    iteration (``O((n+m)^3)``, several times cheaper than the SVD of the feature solver). Rounding
    can make a huge ``S K S / C`` (``k_max / C`` beyond ~1e5 in float32) indefinite by up to
    ``(n+m) eps |A|``; that much is added to the diagonal, which keeps the factorisation finite
    and the direction an ascent direction (convergence then slows, and the line search still
    guards every step).
    """
    dtype = gram.dtype
    n = c.shape[0]
    eps = jnp.finfo(dtype).eps
    diag = jnp.maximum(jnp.diagonal(gram), 0)
    row_norms = jnp.sqrt(diag)
    eye = jnp.eye(n, dtype=dtype)

    def value(lam):
        return _dual_from_gram(lam, gram, c, C)

    def newton_step(lam):
        g = gram @ (c - lam) / C + jnp.log1p(-lam) - jnp.log(lam)
        sd = jnp.sqrt(lam * (1 - lam))
        m = sd[:, None] * gram * sd[None, :] / C
        jitter = n * eps * jnp.max(sd * sd * diag) / C
        chol = jnp.linalg.cholesky(m + (1 + jitter) * eye)
        sg = sd * g
        y = jax.scipy.linalg.cho_solve((chol, True), sg)
        return sd * y, jnp.maximum(sg @ y, 0)

    return _ascend(value, newton_step, row_norms, c, C, tol, max_iter)


@functools.partial(jax.jit, static_argnames=("max_iter",))
def _newton(phi: jax.Array, c: jax.Array, C: jax.Array, tol: jax.Array, max_iter: int):
    """Damped Newton ascent on the concave dual over the open box, from lambda = 1/2.

    The Hessian is minus ``H = K/C + diag(1/(lam(1-lam)))``, ``K = phi phi^T``. With
    ``S = diag(sqrt(lam(1-lam)))`` and the thin SVD ``S phi / sqrt(C) = U diag(s) V^T``,

        H^{-1} = S (I + U diag(s^2) U^T)^{-1} S = S (I - U diag(s^2 / (1 + s^2)) U^T) S,

    positive definite by construction, exactly the identity on the null space of the features,
    and free of the Gram matrix's square of the data scale: a Cholesky factorisation of ``H``
    fails in float32 once ``|K| / C`` exceeds ~1e7 (data of scale 1e4, or ``C = 1e-12``),
    where rounding makes ``H`` indefinite. The steps and the stopping rule: :func:`_ascend`.
    """
    row_norms = jnp.sqrt(jnp.sum(phi * phi, axis=1))

    def value(lam):
        a = c - lam
        return -0.5 / C * jnp.sum((phi.T @ a) ** 2) + jnp.sum(_binary_entropy(lam))

    def newton_step(lam):
        # grad = phi v + e: the stiff part phi v (v = phi^T a / C) and the entropy's gradient e.
        v_ = phi.T @ (c - lam) / C
        e = jnp.log1p(-lam) - jnp.log(lam)
        grad = phi @ v_ + e
        sd = jnp.sqrt(lam * (1 - lam))
        u, sv, vh = jnp.linalg.svd(sd[:, None] * phi / jnp.sqrt(C), full_matrices=False)
        # S grad = sqrt(C) U diag(s) Vh v + S e: the stiff part lies in span(U) by construction,
        # so only S e is projected (no cancellation between huge, nearly parallel vectors), and
        # the decrement is a sum of squares (>= 0 in floating point too).
        r_soft = sd * e
        ur = jnp.sqrt(C) * sv * (vh @ v_) + u.T @ r_soft
        r_perp = r_soft - u @ (u.T @ r_soft)
        inv = 1 / (1 + sv**2)
        d = sd * (r_perp + u @ (inv * ur))
        dec = jnp.sum(r_perp**2) + jnp.sum(inv * ur**2)
        return d, dec

    return _ascend(value, newton_step, row_norms, c, C, tol, max_iter)


def solve_linear_gan_dual(
    x: ArrayLike,
    gz: ArrayLike,
    *,
    C: float,
    features: FeatureMap | None = None,
    kernel: str | Kernel | Callable | None = None,
    bandwidth: ArrayLike | None = None,
    tol: float | None = None,
    max_iter: int = 100,
) -> tuple[jax.Array, jax.Array]:
    r"""The optimal dual variables of the linear GAN, by damped Newton ascent.

    Maximises :func:`linear_gan_dual` over the box :math:`[0, 1]^{n+m}`. The
    objective is strictly concave and its entropy terms push the optimum
    inside the open box, so Newton's method with a step that stays 99% of
    the way inside the box and an Armijo backtracking converges globally,
    and quadratically near the optimum (typically 5 to 15 iterations). The
    loop is a jitted :func:`jax.lax.while_loop`. With ``features`` (evaluated
    once) each iteration takes a thin SVD of the scaled
    :math:`(n+m)\times k` feature matrix (see Precision below). With a
    ``kernel`` it works on the kernel's Gram matrix of the pooled samples
    (the exact kernel logistic regression): one Cholesky factorisation of
    :math:`I + S K S / C` per iteration, :math:`O((n+m)^3)`, several times
    cheaper than that SVD at equal size.

    Speed on CPU: the factorisations run in scipy's OpenBLAS (loaded at the
    first one); on a busy machine its spinning threads can make each solve
    much slower. Run the calls with one BLAS thread unless the matrices are
    large: ``with threadpoolctl.threadpool_limits(1, user_api="blas"):`` (the
    training loop of :mod:`divergences.train` does so, scoped to the loop;
    importing this library changes no thread pool).

    Precision: float64 (x64 enabled) reaches duality gaps of ~1e-12
    relative. In float32 a lambda within ~1e-7 of 1 rounds to 1, so logits
    :math:`w\cdot\phi` beyond ~16 saturate, and the gap stalls near 1e-6
    relative on well-scaled data. The Newton system is solved through an SVD
    of the scaled features (see ``_newton``), never a Cholesky factorisation
    of the Gram matrix, so no data scale or ``C`` gives NaN; but lambdas of
    resolution eps determine :math:`\Phi^\top(c - \lambda)/C` only to
    :math:`\varepsilon \sum_i |c_i - \lambda_i| \|\phi_i\| / C`: when the
    data are large or ``C`` tiny (``|phi|^2 / C`` beyond ~1e7 in float32)
    the optimum is not representable, and an eager call warns
    (``PrecisionWarning``). Standardise the features or enable float64 then.

    The returned lambdas carry no gradient (``stop_gradient``). To
    differentiate the optimal value with respect to the generated samples,
    differentiate ``linear_gan_dual(lam_x, lam_z, x, gz, C=C)`` at these
    fixed lambdas: by the envelope theorem that is the exact gradient of
    :math:`\max_\lambda D`.

    Args:
      x: real samples, ``[n, d]``.
      gz: generated samples, ``[m, d]``.
      C: the L2 penalty of the primal, ``> 0``.
      features: as in :func:`linear_gan_primal`.
      kernel, bandwidth: instead of ``features``, a kernel, as in
        :func:`linear_gan_dual`.
      tol: stop when the Newton estimate of the remaining suboptimality is
        below ``tol * max(1, |D|)``; default ``100 * eps`` of the dtype.
      max_iter: cap on Newton iterations.

    Returns:
      ``(lambda_x [n], lambda_z [m])`` in the open box, float32 at least.

    Example:
      >>> import jax, jax.numpy as jnp, divergences as dv
      >>> x = jax.random.normal(jax.random.key(0), (8, 2)) + 1.0
      >>> gz = jax.random.normal(jax.random.key(1), (6, 2))
      >>> lam_x, lam_z = dv.solve_linear_gan_dual(x, gz, C=1.0)
      >>> w = dv.linear_gan_weights(lam_x, lam_z, x, gz, C=1.0)
      >>> gap = dv.linear_gan_primal(w, x, gz, C=1.0) - dv.linear_gan_dual(lam_x, lam_z, x, gz, C=1.0)
      >>> bool(abs(gap) < 1e-4)
      True

    References:
      Li, Schwing, Wang and Zemel, "Dualing GANs", NeurIPS 2017, sec. 3.
      Boyd and Vandenberghe, *Convex Optimization* (2004), sec. 9.5
      (damped Newton, the Newton decrement).
    """
    _check_C(C)
    max_iter = v.check_int("max_iter", max_iter, minimum=1)
    x, gz = _samples(x, gz)
    gram = None
    if _uses_kernel(features, kernel, bandwidth):
        gram = jax.lax.stop_gradient(_pooled_gram(_resolve_kernel(kernel, bandwidth, x, gz), x, gz))
        dtype = gram.dtype
    else:
        fx, fz = _features(x, gz, features)
        dtype = fx.dtype
    if tol is None:
        tol = 100 * float(jnp.finfo(dtype).eps)
    v.check_scalar("tol", tol, low=0.0, low_inclusive=False)
    n, m = x.shape[0], gz.shape[0]
    c = jnp.concatenate([jnp.ones((n,), dtype), jnp.zeros((m,), dtype)])
    if gram is None:
        phi = jax.lax.stop_gradient(jnp.concatenate([fx, fz]))
        lam, _, _ = _newton(phi, c, jnp.asarray(C, dtype), jnp.asarray(tol, dtype), max_iter)
        finite = jnp.all(jnp.isfinite(phi))
    else:
        lam, _, _ = _newton_gram(gram, c, jnp.asarray(C, dtype), jnp.asarray(tol, dtype), max_iter)
        finite = jnp.all(jnp.isfinite(gram))
    lam = jax.lax.stop_gradient(lam)
    # Under jit the samples' values are unchecked: non-finite samples give NaN (eagerly: an error).
    lam = jnp.where(finite, lam, jnp.nan)
    if v.is_concrete(lam):
        lam64, c64 = np.asarray(lam, np.float64), np.asarray(c, np.float64)
        if gram is None:
            phi64 = np.asarray(phi, np.float64)
            row_norms, quad = np.linalg.norm(phi64, axis=1), float(np.sum((phi64.T @ (c64 - lam64)) ** 2))
        else:
            k64 = np.asarray(gram, np.float64)
            row_norms = np.sqrt(np.maximum(np.diagonal(k64), 0))
            quad = float((c64 - lam64) @ k64 @ (c64 - lam64))
        _warn_if_unresolved(row_norms, quad, np.asarray(c), np.asarray(lam), float(C))
    return lam[:n], lam[n:]


class PrecisionWarning(UserWarning):
    """The working precision cannot represent the linear GAN's dual optimum."""


def _warn_if_unresolved(row_norms: np.ndarray, quad: float, c: np.ndarray, lam: np.ndarray, C: float) -> None:
    """Warn when rounding of the lambdas alone moves the dual's quadratic term by 0.1% of the dual.

    With lambdas of resolution eps, ``|phi^T (c - lambda)|^2 / (2C)`` cannot be computed or
    driven below ``eps * (sum_i |c_i - lambda_i| |phi_i|)^2 / C``; when that exceeds 1e-3 of the
    dual's magnitude, the returned lambdas (and the weights they determine) are not the optimum.
    ``row_norms``: ``|phi_i|`` (with a kernel ``sqrt(k(z_i, z_i))``); ``quad``: the squared norm
    ``|phi^T (c - lambda)|^2``, in float64.
    """
    eps = float(np.finfo(lam.dtype).eps)
    a = c - lam
    floor = eps * float(np.sum(np.abs(a) * row_norms)) ** 2 / C
    lam64 = lam.astype(np.float64)
    entropy = -np.sum(lam64 * np.log(np.maximum(lam64, 1e-300)) + (1 - lam64) * np.log(np.maximum(1 - lam64, 1e-300)))
    dual = float(entropy - 0.5 / C * quad)
    # The optimum lies in [0, N log 2] (P(0) = N log 2): a dual far outside is itself rounding.
    if floor > 1e-3 * min(abs(dual), len(lam) * np.log(2.0)):
        warnings.warn(
            f"solve_linear_gan_dual: in {lam.dtype} the lambdas do not resolve this problem: "
            "|phi|^2 / C is so large that the weights w = phi^T (c - lambda) / C they determine "
            "(linear_gan_weights, and the gradient of linear_gan_dual at them) are rounding noise "
            f"(the floor of the dual's quadratic term, {floor:.3g}, exceeds 0.1% of the dual, "
            f"{dual:.3g}). Standardise the features (or raise `C`), or enable float64 with "
            "jax.config.update('jax_enable_x64', True).",
            PrecisionWarning,
            stacklevel=3,
        )
