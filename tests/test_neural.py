"""One-call neural estimators against closed forms (held-out estimates, fixed seeds), and bad input.

Every convergence test uses the same sample shapes within a group, so the compiled fit is reused
across parametrisations (the first test of a group pays the compilation, a few seconds).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import divergences as dv
from divergences.closed_form import gaussian_kl, gaussian_w1_1d, parallel_lines, uniform_shift

N = 4000  # samples per distribution; 30% held out, so the held-out means have sd ~ 1/sqrt(1200)
STEPS = 2000


def _lines(key, theta, n=N):
    """WGAN Example 1: (theta, Z), Z ~ U[0, 1]."""
    z = jax.random.uniform(key, (n,))
    return jnp.stack([jnp.full((n,), theta), z], axis=1)


@pytest.mark.parametrize("theta", [0.5, 1.0, 2.0])
def test_w1_gradient_penalty_parallel_lines(theta):
    kx, ky, kf = jax.random.split(jax.random.key(0), 3)
    w = dv.estimate_wasserstein_dual(_lines(kx, 0.0), _lines(ky, theta), kf, steps=STEPS)
    # Issue bar: 10%. Measured: +0.3%, +0.5%, +1.0% (the last is the W1/(2 lambda) = 1% bias of
    # the soft penalty at lambda = 100, see the docstring).
    np.testing.assert_allclose(w, parallel_lines(theta)["w1"], rtol=0.10)


def test_w1_gradient_penalty_gaussians_1d():
    kx, ky, kf = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(kx, (N,))
    y = 2.0 * jax.random.normal(ky, (N,)) + 1.0
    w = dv.estimate_wasserstein_dual(x, y, kf, steps=STEPS)
    # Issue bar: 10% of the folded-normal closed form 1.1666. Measured: -0.3%.
    np.testing.assert_allclose(w, gaussian_w1_1d(0.0, 1.0, 1.0, 2.0), rtol=0.10)


def test_w1_spectral_norm_parallel_lines():
    kx, ky, kf = jax.random.split(jax.random.key(0), 3)
    w = dv.estimate_wasserstein_dual(_lines(kx, 0.0), _lines(ky, 1.0), kf, steps=STEPS, lipschitz="spectral_norm")
    # A spectrally normalised ReLU critic is 1-Lipschitz, so the value cannot exceed W1 by more
    # than the held-out sampling error (here 0: every x has first coordinate 0, every y 1).
    # Measured: 1 - 3e-6.
    assert float(w) <= 1.0 + 1e-4
    np.testing.assert_allclose(w, 1.0, rtol=0.10)


@pytest.mark.slow  # ~10 s of compilation for an ordering check; the option is traced by the test below
def test_w1_weight_clipping_is_monotone_in_the_shift():
    # Clipping bounds the slope by an unknown constant K, so the value is K * W1 (approximately),
    # not W1: only its ordering is checked.
    kx, ky, kz, kf = jax.random.split(jax.random.key(2), 4)
    x = _lines(kx, 0.0)
    near = dv.estimate_wasserstein_dual(x, _lines(ky, 0.5), kf, steps=500, lipschitz="weight_clipping")
    far = dv.estimate_wasserstein_dual(x, _lines(kz, 2.0), kf, steps=500, lipschitz="weight_clipping")
    assert 0.0 < float(near) < float(far)


def test_kl_gaussians_2d():
    m1, s1 = jnp.array([1.0, -0.5]), jnp.array([[1.0, 0.3], [0.3, 0.8]])
    m2, s2 = jnp.zeros(2), jnp.array([[1.5, 0.0], [0.0, 1.2]])  # Q wider than P: E_Q (p/q)^2 < inf
    kx, ky, kf = jax.random.split(jax.random.key(0), 3)
    n = 20000  # the exp(V) term of the KL bound is noisier than the others: 10000 held out each
    x = jax.random.multivariate_normal(kx, m1, s1, (n,))
    y = jax.random.multivariate_normal(ky, m2, s2, (n,))
    kl = dv.estimate_f_divergence(x, y, kf, divergence="kl", steps=STEPS, holdout=0.5)
    # Issue bar: 10% of KL = 0.5693. Measured: -1.1% (seeds 1 and 2 of the same setup: -5.1%, +2.7%).
    np.testing.assert_allclose(kl, gaussian_kl(m1, s1, m2, s2), rtol=0.10)


@pytest.mark.parametrize("eps", [0.25, 0.5, 2.0])
def test_js_uniform_shift(eps):
    kx, ky, kf = jax.random.split(jax.random.key(0), 3)
    n = 20000
    x = jax.random.uniform(kx, (n,))
    y = jax.random.uniform(ky, (n,)) + eps
    js = dv.estimate_f_divergence(x, y, kf, divergence="js", steps=STEPS, holdout=0.5)
    # Issue bar: 0.05 nats. Measured errors: +0.0008, +0.0028, -6e-8 nats.
    np.testing.assert_allclose(js, uniform_shift(eps)["js"], atol=0.05)


@pytest.mark.parametrize("lipschitz", dv.LIPSCHITZ_METHODS)
def test_estimators_trace_under_jit_and_vmap(lipschitz):
    # Tracing only (jax.eval_shape compiles nothing): every option composes with jit and vmap and
    # returns one float32 scalar per problem.
    x, y = jnp.zeros((64, 2)), jnp.ones((64, 2))
    keys = jax.random.split(jax.random.key(3), 5)
    opts = dict(steps=3, width=4, depth=1, batch_size=8)
    w1 = lambda x, y, k: dv.estimate_wasserstein_dual(x, y, k, lipschitz=lipschitz, **opts)  # noqa: E731
    out = jax.eval_shape(jax.jit(jax.vmap(w1, in_axes=(None, None, 0))), x, y, keys)
    assert out.shape == (5,) and out.dtype == jnp.float32
    fdiv = lambda x, y, k: dv.estimate_f_divergence(x, y, k, divergence="js", **opts)  # noqa: E731
    out = jax.eval_shape(jax.jit(jax.vmap(fdiv, in_axes=(None, None, 0))), x, y, keys)
    assert out.shape == (5,) and out.dtype == jnp.float32


# --- bad input --------------------------------------------------------------------------------

X = jnp.zeros((16, 2))


def test_bad_lipschitz_name():
    with pytest.raises(ValueError, match="`lipschitz`"):
        dv.estimate_wasserstein_dual(X, X, jax.random.key(0), lipschitz="clamp")


def test_bad_divergence_name():
    with pytest.raises(ValueError, match="`divergence`"):
        dv.estimate_f_divergence(X, X, jax.random.key(0), divergence="tv")


def test_bad_dimension_mismatch():
    with pytest.raises(ValueError, match="`y`"):
        dv.estimate_wasserstein_dual(X, jnp.zeros((16, 3)), jax.random.key(0))


def test_bad_steps():
    with pytest.raises(ValueError, match="`steps`"):
        dv.estimate_f_divergence(X, X, jax.random.key(0), steps=0)


def test_bad_holdout():
    with pytest.raises(ValueError, match="`holdout`"):
        dv.estimate_f_divergence(X, X, jax.random.key(0), holdout=1.0)


def test_bad_too_few_samples():
    with pytest.raises(ValueError, match="`x`"):
        dv.estimate_wasserstein_dual(jnp.zeros((2, 2)), X, jax.random.key(0))


def test_bad_nan_samples():
    with pytest.raises(ValueError, match="`y`"):
        dv.estimate_wasserstein_dual(X, X.at[0, 0].set(jnp.nan), jax.random.key(0))


def test_bad_activation():
    with pytest.raises(ValueError, match="`activation`"):
        dv.estimate_wasserstein_dual(X, X, jax.random.key(0), activation="sigmoidish")
