"""Tests of the bootstrap standard errors and percentile intervals.

Oracles: closed forms (the W1 distance between two Gaussians, the standard
error of a difference of means), scipy.stats.bootstrap, numpy quantiles.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import divergences as dv


@pytest.fixture(scope="module")
def gaussians():
    rng = np.random.default_rng(0)
    return rng.normal(size=300).astype(np.float32), (2.0 + 1.5 * rng.normal(size=250)).astype(np.float32)


def mean_gap(a, b):
    return jnp.mean(b) - jnp.mean(a)


def test_wasserstein_1d_intervals_cover_the_closed_form():
    # x ~ N(0, 1), y ~ N(2, 1.5^2), n = m = 200: W1 = gaussian_w1_1d(0, 1, 2, 1.5)
    # (about 2.0). The quantile functions do not cross in practice, so the
    # estimator is nearly unbiased and the 95% percentile interval should
    # cover in about 95% of repetitions; the issue asks for >= 90 of 100.
    # Repetitions vmapped in one compiled call (B = 200 resamples each).
    truth = float(dv.closed_form.gaussian_w1_1d(0.0, 1.0, 2.0, 1.5))

    def one(key):
        kx, ky, kb = jax.random.split(key, 3)
        x = jax.random.normal(kx, (200,))
        y = 2.0 + 1.5 * jax.random.normal(ky, (200,))
        res = dv.bootstrap(dv.wasserstein_1d, x, y, kb, n_resamples=200, confidence=0.95)
        return res.low, res.high

    low, high = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), 100))
    covered = int(np.sum((np.asarray(low) <= truth) & (truth <= np.asarray(high))))
    assert covered >= 90, covered


def test_standard_error_and_interval_of_a_mean_difference(gaussians):
    # The bootstrap distribution of mean(y*) - mean(x*) has standard
    # deviation sqrt(s_x^2 / n + s_y^2 / m) (plug-in variances, ddof=0);
    # with B = 1000 replicates the Monte-Carlo error of the estimated
    # standard deviation is about 1/sqrt(2B) = 2.2%: rtol 8%. The interval
    # and the standard error are the numpy quantiles and ddof=1 standard
    # deviation of the returned replicates (rtol 1e-5, float32).
    x, y = gaussians
    res = dv.bootstrap(mean_gap, x, y, jax.random.key(0), n_resamples=1000, confidence=0.8)
    want = np.sqrt(x.var() / len(x) + y.var() / len(y))
    np.testing.assert_allclose(float(res.standard_error), want, rtol=0.08)
    np.testing.assert_allclose(float(res.estimate), y.mean() - x.mean(), rtol=1e-5)
    r = np.asarray(res.resamples, np.float64)
    assert r.shape == (1000,)
    np.testing.assert_allclose(float(res.low), np.quantile(r, 0.1), rtol=1e-5)
    np.testing.assert_allclose(float(res.high), np.quantile(r, 0.9), rtol=1e-5)
    np.testing.assert_allclose(float(res.standard_error), r.std(ddof=1), rtol=1e-5)


@pytest.mark.slow
def test_standard_error_agrees_with_scipy_bootstrap(gaussians):
    # scipy.stats.bootstrap on the same W1 estimator with its own
    # resampling: two Monte-Carlo estimates of one standard error, each
    # within about 1/sqrt(2B) = 3.5% (B = 400): rtol 15%.
    x, y = gaussians
    ours = dv.bootstrap(dv.wasserstein_1d, x, y, jax.random.key(1), n_resamples=400)
    ref = st.bootstrap(
        (x.astype(np.float64), y.astype(np.float64)),
        st.wasserstein_distance,
        n_resamples=400,
        vectorized=False,
        method="percentile",
        random_state=0,
    )
    np.testing.assert_allclose(float(ours.standard_error), ref.standard_error, rtol=0.15)
    np.testing.assert_allclose(float(ours.estimate), st.wasserstein_distance(x, y), rtol=1e-5)


@pytest.mark.slow
def test_pytree_output_jit_and_chunking(gaussians):
    # A dict of estimates is summarised leaf by leaf. Under jit and with
    # chunk_size = 7 (five chunks, the last padded) the replicates are the
    # same as eagerly in one chunk: the resampling depends on the key only.
    x, y = gaussians

    def both(a, b):
        return {"gap": jnp.mean(b) - jnp.mean(a), "spread": jnp.stack([jnp.std(a), jnp.std(b)])}

    a = dv.bootstrap(both, x, y, jax.random.key(4), n_resamples=30)
    b = jax.jit(functools.partial(dv.bootstrap, both, n_resamples=30, chunk_size=7))(x, y, jax.random.key(4))
    assert a.standard_error["spread"].shape == (2,)
    assert a.resamples["spread"].shape == (30, 2)
    np.testing.assert_allclose(np.asarray(a.resamples["gap"]), np.asarray(b.resamples["gap"]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(a.high["spread"]), np.asarray(b.high["spread"]), rtol=1e-5)


@pytest.mark.slow
def test_library_estimator_with_options_and_a_key():
    # Options reach the estimator; an estimator that takes a key gets it as
    # an option (the same projections in every replicate).
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(80, 3)), rng.normal(size=(70, 3)) + 0.5
    proj = jax.random.key(9)
    res = dv.bootstrap(dv.sliced_wasserstein, x, y, jax.random.key(0), n_resamples=20, estimator_key=proj, n_projections=16)
    np.testing.assert_allclose(
        float(res.estimate), float(dv.sliced_wasserstein(x, y, proj, n_projections=16)), rtol=1e-6
    )
    assert float(res.standard_error) > 0 and float(res.low) <= float(res.high)


@pytest.mark.slow
def test_standard_error_is_differentiable(gaussians):
    x, y = gaussians
    g = jax.grad(lambda a: dv.bootstrap(mean_gap, a, y, jax.random.key(0), n_resamples=20).standard_error)(x)
    assert np.all(np.isfinite(np.asarray(g)))


# ---------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1])
def test_bad_confidence(gaussians, confidence):
    x, y = gaussians
    with pytest.raises(ValueError, match="`confidence`"):
        dv.bootstrap(mean_gap, x, y, jax.random.key(0), confidence=confidence)


def test_bad_n_resamples(gaussians):
    x, y = gaussians
    with pytest.raises(ValueError, match="`n_resamples`"):
        dv.bootstrap(mean_gap, x, y, jax.random.key(0), n_resamples=1)


def test_bad_estimator(gaussians):
    x, y = gaussians
    with pytest.raises(ValueError, match="`estimator`"):
        dv.bootstrap("wasserstein_1d", x, y, jax.random.key(0))


def test_bad_samples(gaussians):
    _, y = gaussians
    with pytest.raises(ValueError, match="`x`"):
        dv.bootstrap(mean_gap, np.array([0.0, np.nan]), y, jax.random.key(0))
