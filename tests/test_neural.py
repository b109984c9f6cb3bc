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


# --- issue 17: estimates that report how sure they are ----------------------------------------


def _gaussians(seed, n, shift):
    kx, ky, kf = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jax.random.normal(kx, (n, 2))
    y = jax.random.normal(ky, (n, 2)) + jnp.asarray(shift)
    return x, y, kf


def _estimate(fn, *args, **kw):
    """(value, stderr, warned) of one eager call."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = fn(*args, return_stderr=True, **kw)
    warned = any(issubclass(w.category, dv.UnreliableEstimateWarning) for w in caught)
    return float(r.value), float(r.stderr), warned


def test_kl_issue_seed_within_its_standard_error():
    # Issue 17: N(0, I) vs N((1, 0), I), n = 4096, PRNGKey(2) gave -11.2 (true KL 0.5). The
    # classifier plug-in reads the mean logit, a bounded-variance quantity. Measured: 0.540 +- 0.037.
    x, y, kf = _gaussians(2, 4096, [1.0, 0.0])
    value, se, warned = _estimate(dv.estimate_f_divergence, x, y, kf, divergence="kl")
    assert not warned and 0 < se < 0.1
    assert abs(value - 0.5) < 3 * se


@pytest.mark.slow
def test_kl_property_over_seeds():
    # Issue 17: -0.67, -3.84, -4.35, -23.4 on four of five seeds. Now: never negative, and the
    # truth within 3 standard errors for at least 4 of 5 seeds (the standard error is that of the
    # test readout; the fit adds its own error, so not every seed is within 2).
    # Measured (seeds 0-4): 0.499, 0.455, 0.540, 0.501, 0.443 (se 0.033 to 0.037).
    inside = 0
    for seed in range(5):
        x, y, kf = _gaussians(seed, 4096, [1.0, 0.0])
        value, se, warned = _estimate(dv.estimate_f_divergence, x, y, kf, divergence="kl")
        assert value > 0 and not warned
        inside += abs(value - 0.5) < 3 * se
    assert inside >= 4


@pytest.mark.parametrize("divergence, n, truth", [("kl", 256, 1.0), ("js", 256, 0.2011)])
def test_small_samples_warn_and_stay_sensible(divergence, n, truth):
    # Issue 17: N(0, I) vs N((1, 1), I): KL at n = 256 gave -inf, JS at n = 256 gave -0.29. Below
    # 100 test samples per side the call warns; the value is finite and inside 4 standard errors
    # of the truth. Measured: KL 0.967 +- 0.181, JS 0.115 +- 0.064.
    x, y, kf = _gaussians(0, n, [1.0, 1.0])
    value, se, warned = _estimate(dv.estimate_f_divergence, x, y, kf, divergence=divergence)
    assert warned
    assert np.isfinite(value) and abs(value - truth) < 4 * se


def test_kl_moderate_samples_within_standard_error():
    # Issue 17: n = 2000, true KL 1.0 gave -73.5. Measured: 0.986 +- 0.070.
    x, y, kf = _gaussians(0, 2000, [1.0, 1.0])
    value, se, warned = _estimate(dv.estimate_f_divergence, x, y, kf, divergence="kl")
    assert not warned and abs(value - 1.0) < 3 * se


def test_w1_small_sample_within_standard_error():
    # Issue 17: n = 256, true W1 = sqrt(2) gave 1.645 (+16%) with no uncertainty reported. The
    # reported standard error covers it: |estimate - truth| < 3 se.
    x, y, kf = _gaussians(0, 256, [1.0, 1.0])
    value, se, warned = _estimate(dv.estimate_wasserstein_dual, x, y, kf)
    assert warned  # 51 test samples per side
    assert abs(value - np.sqrt(2.0)) < 3 * se


def test_negative_estimates_always_warn():
    # P = Q: the estimate scatters around 0. Whenever it is negative, the call must have warned.
    for seed in range(3):
        x, y, kf = _gaussians(seed, 600, [0.0, 0.0])
        for fn, kw in [(dv.estimate_f_divergence, dict(divergence="js")), (dv.estimate_wasserstein_dual, {})]:
            value, _, warned = _estimate(fn, x, y, kf, steps=200, **kw)
            assert value >= 0 or warned


def test_return_stderr_keeps_the_default_value():
    x, y, kf = _gaussians(0, 400, [1.0, 0.0])
    plain = dv.estimate_f_divergence(x, y, kf, divergence="js", steps=50)
    r = dv.estimate_f_divergence(x, y, kf, divergence="js", steps=50, return_stderr=True)
    assert isinstance(r, dv.NeuralEstimate)
    assert float(r.value) == float(plain) and float(r.stderr) > 0
    with pytest.raises(ValueError, match="`return_stderr`"):
        dv.estimate_f_divergence(x, y, kf, return_stderr="yes")


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("which", ["w1", "kl", "js"])
def test_gradients_with_respect_to_samples_are_finite(which, jit):
    # Issue 17: jax.grad of either estimator was NaN on every training-part entry. The critic is
    # fitted on stopped-gradient samples, so the gradient is the test readout's at the fitted
    # critic: finite, zero on the fitting samples, nonzero on the test ones.
    x, y, kf = _gaussians(0, 64, [1.0, 0.0])
    opts = dict(steps=3, width=8, depth=1, batch_size=16)
    if which == "w1":
        fn = lambda a: dv.estimate_wasserstein_dual(a, y, kf, **opts)  # noqa: E731
    else:
        fn = lambda a: dv.estimate_f_divergence(a, y, kf, divergence=which, **opts)  # noqa: E731
    grad = jax.grad(jax.jit(fn) if jit else fn)(x)
    assert bool(jnp.all(jnp.isfinite(grad)))
    assert float(jnp.abs(grad).sum()) > 0


def test_nan_samples_under_jit_give_nan():
    x, y, kf = _gaussians(0, 64, [1.0, 0.0])
    fn = jax.jit(lambda a: dv.estimate_f_divergence(a, y, kf, divergence="js", steps=3, width=4, depth=1))
    assert np.isnan(float(fn(x.at[0, 0].set(jnp.nan))))
