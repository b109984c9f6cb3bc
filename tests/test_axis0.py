"""Samples along axis 0 for every sample estimator: `[n]`, `[n, 1]`, `[n, d]` and a batch.

Oracles: scipy (`wasserstein_distance`, `energy_distance`, `pdist`), numpy
histograms, and a direct numpy MMD; `[n]` must give exactly what `[n, 1]`
gives (the same computation); a batch must give what one problem at a time
gives (float32 rounding: rtol 1e-5).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats

import divergences as dv

RTOL = 1e-5


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = (1.5 * rng.normal(size=(50, 3)) + 0.5).astype(np.float32)
    return x, y


def _maybe_jit(fn, jit):
    return jax.jit(fn) if jit else fn


def _np_mmd2_biased(x, y, h):
    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * h * h))

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()


# ---------------------------------------------------------------------------
# MMD and the median heuristic.


@pytest.mark.parametrize("jit", [False, True])
def test_mmd_reads_samples_along_axis_0(samples, jit):
    x, y = samples
    f = _maybe_jit(lambda a, b: dv.mmd(a, b, bandwidth=1.2, estimator="biased"), jit)
    np.testing.assert_allclose(f(x, y), _np_mmd2_biased(x, y, 1.2), rtol=1e-4)
    one_d = f(x[:, 0], y[:, 0])
    np.testing.assert_array_equal(np.asarray(one_d), np.asarray(f(x[:, :1], y[:, :1])))
    np.testing.assert_allclose(one_d, _np_mmd2_biased(x[:, :1], y[:, :1], 1.2), rtol=1e-4)


def test_mmd_batch_of_problems_equals_one_at_a_time(samples):
    x, y = samples
    xb, yb = np.stack([x, x[::-1] * 2]), np.stack([y, y + 1])
    batched = jax.vmap(lambda a, b: dv.mmd(a, b, bandwidth=1.0))(xb, yb)
    singles = [dv.mmd(a, b, bandwidth=1.0) for a, b in zip(xb, yb)]
    np.testing.assert_allclose(batched, singles, rtol=RTOL, atol=1e-7)


def test_mmd_refuses_higher_rank_samples(samples):
    x, y = samples
    with pytest.raises(ValueError, match=r"^`x` must have shape \[n\] or \[n, d\]"):
        dv.mmd(x[:, :, None], y[:, :, None])


def test_median_bandwidth_axis_0(samples):
    x, y = samples
    expected = np.median(scipy.spatial.distance.pdist(np.concatenate([x[:, 0], y[:, 0]])[:, None]))
    np.testing.assert_allclose(dv.median_bandwidth(x[:, 0], y[:, 0]), expected, rtol=RTOL)
    np.testing.assert_array_equal(np.asarray(dv.median_bandwidth(x[:, 0], y[:, 0])), np.asarray(dv.median_bandwidth(x[:, :1], y[:, :1])))
    np.testing.assert_allclose(dv.median_bandwidth(x, y), np.median(scipy.spatial.distance.pdist(np.concatenate([x, y]))), rtol=RTOL)


# ---------------------------------------------------------------------------
# Histogram plug-in.


@pytest.mark.parametrize("jit", [False, True])
def test_binned_accepts_n_and_n_by_1(samples, jit):
    x, y = samples
    f = _maybe_jit(lambda a, b: dv.binned_divergence(a, b, bins=5, range=(-4.0, 4.0), divergence="js"), jit)
    hx = np.histogram(x[:, 0], bins=5, range=(-4, 4))[0].astype(np.float64)
    hy = np.histogram(y[:, 0], bins=5, range=(-4, 4))[0].astype(np.float64)
    expected = scipy.spatial.distance.jensenshannon(hx / hx.sum(), hy / hy.sum()) ** 2
    np.testing.assert_allclose(f(x[:, 0], y[:, 0]), expected, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(f(x[:, 0], y[:, 0])), np.asarray(f(x[:, :1], y[:, :1])))


def test_binned_refuses_multivariate_samples(samples):
    x, y = samples
    with pytest.raises(ValueError, match=r"^`x` must hold one-dimensional samples"):
        dv.binned_divergence(x, y[:, :1], bins=4)


# ---------------------------------------------------------------------------
# kNN (owned by the perf branch; it already reads axis 0).


def test_knn_accepts_n_and_n_by_1(samples):
    x, y = samples
    np.testing.assert_array_equal(
        np.asarray(dv.knn_kl_divergence(x[:, 0], y[:, 0], k=3)), np.asarray(dv.knn_kl_divergence(x[:, :1], y[:, :1], k=3))
    )


# ---------------------------------------------------------------------------
# Two-sample tests and the bootstrap.


@pytest.mark.parametrize("statistic", ["mmd", "energy"])
def test_two_sample_test_accepts_n_and_n_by_1(samples, statistic):
    x, y = samples
    key = jax.random.key(0)
    a = dv.two_sample_test(x[:, 0], y[:, 0], key, statistic=statistic, n_permutations=49)
    b = dv.two_sample_test(x[:, :1], y[:, :1], key, statistic=statistic, n_permutations=49)
    np.testing.assert_allclose(a.statistic, b.statistic, rtol=RTOL)
    np.testing.assert_allclose(a.null_statistics, b.null_statistics, rtol=RTOL, atol=1e-7)
    if statistic == "energy":  # scipy returns the square root of the energy distance
        np.testing.assert_allclose(a.statistic, scipy.stats.energy_distance(x[:, 0], y[:, 0]) ** 2, rtol=1e-4)


def test_two_sample_wasserstein_1d_statistic_accepts_n_and_n_by_1(samples):
    x, y = samples
    key = jax.random.key(0)
    a = dv.two_sample_test(x[:, 0], y[:, 0], key, statistic="wasserstein_1d", n_permutations=19)
    b = dv.two_sample_test(x[:, :1], y[:, :1], key, statistic="wasserstein_1d", n_permutations=19)
    np.testing.assert_allclose(a.statistic, scipy.stats.wasserstein_distance(x[:, 0], y[:, 0]), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(a.null_statistics), np.asarray(b.null_statistics))


def test_bootstrap_resamples_along_axis_0(samples):
    x, y = samples
    key = jax.random.key(1)
    est = lambda a, b: dv.mmd(a, b, bandwidth=1.0)  # noqa: E731
    a = dv.bootstrap(est, x[:, 0], y[:, 0], key, n_resamples=8)
    b = dv.bootstrap(est, x[:, :1], y[:, :1], key, n_resamples=8)
    assert a.estimate.shape == () and a.resamples.shape == (8,)
    np.testing.assert_allclose(a.resamples, b.resamples, rtol=RTOL, atol=1e-7)
    # Each replicate is the estimator on rows of x and y drawn with replacement.
    c = dv.bootstrap(est, x, y, key, n_resamples=8)
    assert c.resamples.shape == (8,)


def test_bootstrap_of_wasserstein_1d_on_n_by_1_is_a_scalar(samples):
    x, y = samples
    res = dv.bootstrap(dv.wasserstein_1d, x[:, :1], y[:, :1], jax.random.key(0), n_resamples=4)
    assert res.estimate.shape == ()
    np.testing.assert_allclose(res.estimate, scipy.stats.wasserstein_distance(x[:, 0], y[:, 0]), rtol=1e-5)


# ---------------------------------------------------------------------------
# Wasserstein.


@pytest.mark.parametrize("jit", [False, True])
def test_wasserstein_1d_on_n(samples, jit):
    x, y = samples
    f = _maybe_jit(lambda a, b: dv.wasserstein_1d(a, b), jit)
    np.testing.assert_allclose(f(x[:, 0], y[:, 0]), scipy.stats.wasserstein_distance(x[:, 0], y[:, 0]), rtol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_wasserstein_1d_on_n_by_1(samples, jit):
    x, y = samples
    f = _maybe_jit(lambda a, b: dv.wasserstein_1d(a, b), jit)
    out = f(x[:, :1], y[:, :1])
    np.testing.assert_allclose(np.squeeze(out), scipy.stats.wasserstein_distance(x[:, 0], y[:, 0]), rtol=1e-5)
    assert np.size(out) == 1


@pytest.mark.parametrize("jit", [False, True])
def test_wasserstein_1d_columns_are_a_batch(samples, jit):
    # [n, d]: the trailing axis is a batch of d one-dimensional problems (POT's convention).
    x, y = samples
    f = _maybe_jit(lambda a, b: dv.wasserstein_1d(a, b), jit)
    expected = [scipy.stats.wasserstein_distance(x[:, j], y[:, j]) for j in range(x.shape[1])]
    np.testing.assert_allclose(f(x, y), expected, rtol=1e-5)


def test_wasserstein_1d_axis_option_is_the_sample_axis(samples):
    x, y = samples
    expected = [scipy.stats.wasserstein_distance(x[:, j], y[:, j]) for j in range(x.shape[1])]
    np.testing.assert_allclose(dv.wasserstein_1d(x.T, y.T, axis=1), expected, rtol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_sliced_in_one_dimension_is_the_exact_distance(samples, jit):
    # Both directions of the line give the same 1-D distance.
    x, y = samples
    f = _maybe_jit(lambda a, b: dv.sliced_wasserstein(a, b, jax.random.key(0), n_projections=4, p=1), jit)
    np.testing.assert_allclose(f(x[:, :1], y[:, :1]), scipy.stats.wasserstein_distance(x[:, 0], y[:, 0]), rtol=1e-5)


def test_sliced_batch_of_problems_equals_one_at_a_time(samples):
    x, y = samples
    xb, yb = np.stack([x, 2 * x]), np.stack([y, y - 1])
    f = lambda a, b: dv.sliced_wasserstein(a, b, jax.random.key(0), n_projections=16)  # noqa: E731
    np.testing.assert_allclose(jax.vmap(f)(xb, yb), [f(a, b) for a, b in zip(xb, yb)], rtol=RTOL)


# ---------------------------------------------------------------------------
# Linear dual GAN.


def test_linear_gan_accepts_n_and_n_by_1(samples):
    x, y = samples
    w = jnp.array([0.3])
    np.testing.assert_array_equal(
        np.asarray(dv.linear_gan_primal(w, x[:, 0], y[:, 0], C=1.0)),
        np.asarray(dv.linear_gan_primal(w, x[:, :1], y[:, :1], C=1.0)),
    )
    # The primal by hand: C/2 w^2 + sum softplus(-w x) + sum softplus(w y).
    expected = 0.5 * 0.09 + np.logaddexp(0, -0.3 * x[:, 0].astype(np.float64)).sum() + np.logaddexp(0, 0.3 * y[:, 0].astype(np.float64)).sum()
    np.testing.assert_allclose(dv.linear_gan_primal(w, x[:, 0], y[:, 0], C=1.0), expected, rtol=1e-5)


def test_classifier_test_accepts_n_and_n_by_1(samples):
    x, y = samples
    key = jax.random.key(2)
    a = dv.classifier_two_sample_test(x[:, 0], y[:, 0], key, n_steps=20, width=8, depth=1)
    b = dv.classifier_two_sample_test(x[:, :1], y[:, :1], key, n_steps=20, width=8, depth=1)
    for u, w in zip(a, b):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(w))


@pytest.mark.parametrize("estimator", [dv.estimate_f_divergence, dv.estimate_wasserstein_dual])
def test_neural_estimators_accept_n_and_n_by_1(samples, estimator):
    x, y = samples
    options = dict(steps=5, width=8, depth=1, batch_size=16)
    a = estimator(x[:, 0], y[:, 0], jax.random.key(3), **options)
    b = estimator(x[:, :1], y[:, :1], jax.random.key(3), **options)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
