"""Tests of the permutation two-sample tests and the classifier two-sample test.

Oracles: scipy (energy distance, hypergeometric tail, binomial bands), direct
numpy float64 sums for the statistics, and exact properties of permutation
tests (the p-value formula, uniformity of the relabellings, exact level).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import divergences as dv
from divergences import _two_sample as ts
from divergences._classifier_test import _hypergeom_sf

# ---------------------------------------------------------------------------
# Oracles.


def _pairwise(a, b):
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    return np.linalg.norm(a[:, None] - b[None], axis=-1)


def energy_np(a, b, unbiased=False):
    """Energy distance from the three mean pairwise distances (float64)."""
    n, m = len(a), len(b)
    dab, daa, dbb = _pairwise(a, b), _pairwise(a, a), _pairwise(b, b)
    if unbiased:
        return 2 * dab.mean() - daa.sum() / (n * (n - 1)) - dbb.sum() / (m * (m - 1))
    return 2 * dab.mean() - daa.mean() - dbb.mean()


def gaussian_mmd_np(a, b, bandwidth, unbiased):
    """Squared MMD with k(a, b) = exp(-|a - b|^2 / (2 h^2)) (float64)."""
    k = lambda p, q: np.exp(-_pairwise(p, q) ** 2 / (2 * bandwidth**2))  # noqa: E731
    n, m = len(a), len(b)
    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    if unbiased:
        return (
            (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean()
        )
    return kxx.mean() + kyy.mean() - 2 * kxy.mean()


def binomial_band(trials, level=0.05, coverage=0.99):
    """Central `coverage` band of Binomial(trials, level), from scipy."""
    lo, hi = st.binom.interval(coverage, trials, level)
    return int(lo), int(hi)


@pytest.fixture(scope="module")
def samples_1d():
    rng = np.random.default_rng(0)
    return rng.normal(size=120).astype(np.float32), (rng.normal(size=90) + 0.3).astype(np.float32)


@pytest.fixture(scope="module")
def samples_3d():
    rng = np.random.default_rng(1)
    return rng.normal(size=(60, 3)).astype(np.float32), (rng.normal(size=(45, 3)) + 0.3).astype(np.float32)


# ---------------------------------------------------------------------------
# Relabelling machinery.


def test_selection_labels_are_uniform_subsets():
    # All C(5, 2) = 10 subsets must be equally likely: a chi-square test of
    # 20000 draws against the uniform law (the threshold 1e-4 leaves a
    # one-in-10^4 chance of a false alarm; the seed is fixed anyway).
    keys = jax.random.split(jax.random.key(0), 20000)
    labels = np.asarray(jax.vmap(lambda k: ts._selection_labels(k, 5, 2))(keys))
    assert np.all(labels.sum(1) == 2)
    subsets = {s: i for i, s in enumerate(itertools.combinations(range(5), 2))}
    counts = np.bincount([subsets[tuple(np.flatnonzero(row))] for row in labels], minlength=10)
    assert st.chisquare(counts).pvalue > 1e-4


@pytest.mark.parametrize("unbiased", [False, True])
def test_quadratic_statistic_matches_direct_mmd(unbiased):
    # The quadratic form of a label vector reproduces the squared MMD of the
    # split it encodes; float32 sums of ~100^2 kernel values: atol 1e-5.
    rng = np.random.default_rng(2)
    z = rng.normal(size=(70, 2)).astype(np.float32)
    h = 1.3
    kmat = jnp.exp(-jnp.asarray(_pairwise(z, z) ** 2, jnp.float32) / (2 * h * h))
    diag = jnp.diagonal(kmat)
    k_off = kmat - jnp.diag(diag)
    row_sums = k_off.sum(1)
    for seed in range(3):
        s = np.zeros(70, np.float32)
        idx = np.random.default_rng(seed).choice(70, size=30, replace=False)
        s[idx] = 1
        got = ts._quadratic_statistic(jnp.asarray(s), k_off, diag, row_sums, row_sums.sum(), 30, 40, unbiased)
        want = gaussian_mmd_np(z[s == 1], z[s == 0], h, unbiased)
        np.testing.assert_allclose(float(got), want, atol=1e-5)


@pytest.mark.parametrize("unbiased", [False, True])
def test_energy_1d_fused_null_matches_label_formula(unbiased):
    # The fused selection-sampling scan draws the same labels as
    # `_selection_labels` for the same key, and its CDF sums must equal the
    # energy of that split computed directly (float64 oracle, rtol 1e-4 for
    # float32 running sums).
    rng = np.random.default_rng(3)
    z = rng.normal(size=50).astype(np.float32)
    order = np.argsort(z)
    gaps = jnp.asarray(np.diff(z[order]))
    for seed in range(3):
        key = jax.random.key(seed)
        fused = ts._energy_1d_null_one(key, gaps, 20, 30, unbiased)
        s_sorted = np.asarray(ts._selection_labels(key, 50, 20))
        s = np.zeros(50)
        s[order] = s_sorted
        want = energy_np(z[s == 1], z[s == 0], unbiased)
        np.testing.assert_allclose(float(fused), want, rtol=1e-4)


# ---------------------------------------------------------------------------
# The statistic on the observed samples. The tests share n_permutations=99
# and the sample fixtures, so that they share compiled functions.

B = 99


def test_energy_1d_statistic_is_scipy_energy_squared(samples_1d):
    # scipy returns the square root of the energy distance; rtol 1e-5 (float32).
    x, y = samples_1d
    res = dv.two_sample_test(x, y, jax.random.key(0), statistic="energy", n_permutations=B)
    np.testing.assert_allclose(float(res.statistic), st.energy_distance(x, y) ** 2, rtol=1e-5)
    assert res.null_statistics.shape == (B,)
    # A column vector is 1-D data too, and takes the same route.
    col = dv.two_sample_test(x[:, None], y[:, None], jax.random.key(0), statistic="energy", n_permutations=B)
    np.testing.assert_allclose(np.asarray(col.null_statistics), np.asarray(res.null_statistics), rtol=1e-6)


@pytest.mark.parametrize("estimator", ["biased", pytest.param("unbiased", marks=pytest.mark.slow)])
def test_energy_statistic_matches_direct_sums(samples_1d, samples_3d, estimator):
    # Both routes (1-D sorted CDFs and the d-D distance matrix) against the
    # float64 mean pairwise distances; rtol 1e-5.
    for x, y in (samples_1d, samples_3d):
        res = dv.two_sample_test(x, y, jax.random.key(0), statistic="energy", n_permutations=B, estimator=estimator)
        np.testing.assert_allclose(float(res.statistic), energy_np(x, y, estimator == "unbiased"), rtol=1e-5)


def test_energy_statistic_equals_mmd_with_the_energy_kernel(samples_3d):
    x, y = samples_3d
    res = dv.two_sample_test(x, y, jax.random.key(0), statistic="energy", n_permutations=B)
    want = dv.mmd(x, y, kernel="energy", estimator="biased")
    np.testing.assert_allclose(float(res.statistic), float(want), rtol=1e-5)


@pytest.mark.slow
def test_energy_routes_have_the_same_null_law(samples_1d):
    # The 1-D CDF route and a callable computing the energy from pairwise
    # distances use different random streams; their null distributions must
    # agree: two-sample KS test on 99 relabellings each (p > 1e-3).
    x, y = samples_1d

    def energy(a, b):
        d = lambda p, q: jnp.abs(p[:, None] - q[None])  # noqa: E731
        return 2 * d(a, b).mean() - d(a, a).mean() - d(b, b).mean()

    fast = dv.two_sample_test(x, y, jax.random.key(1), statistic="energy", n_permutations=B)
    slow = dv.two_sample_test(x, y, jax.random.key(2), statistic=energy, n_permutations=B)
    np.testing.assert_allclose(float(fast.statistic), float(slow.statistic), rtol=1e-5)
    assert st.ks_2samp(np.asarray(fast.null_statistics), np.asarray(slow.null_statistics)).pvalue > 1e-3


@pytest.mark.parametrize(
    "options",
    [{}, pytest.param({"estimator": "biased"}, marks=pytest.mark.slow), pytest.param({"kernel": "laplace", "bandwidth": 2.0}, marks=pytest.mark.slow)],
    ids=["default", "biased", "laplace"],
)
def test_mmd_statistic_equals_the_estimator(samples_3d, options):
    # Same kernel matrix entries, summed in another order: atol 1e-6 on
    # values of order 1e-2 (float32). The default is also checked against
    # float64 numpy sums with the bandwidth the library's heuristic chose.
    x, y = samples_3d
    res = dv.two_sample_test(x, y, jax.random.key(0), statistic="mmd", n_permutations=B, **options)
    np.testing.assert_allclose(float(res.statistic), float(dv.mmd(x, y, **options)), atol=1e-6)
    if not options:
        h = float(dv.median_bandwidth(x, y))
        np.testing.assert_allclose(float(res.statistic), gaussian_mmd_np(x, y, h, True), atol=1e-6)


def test_sliced_statistic_equals_the_estimator(samples_3d):
    # The projection key passed as statistic_key is the estimator's key.
    x, y = samples_3d
    proj = jax.random.key(5)
    res = dv.two_sample_test(
        x, y, jax.random.key(0), statistic="sliced_wasserstein", n_permutations=B, n_projections=32, statistic_key=proj
    )
    np.testing.assert_allclose(
        float(res.statistic), float(dv.sliced_wasserstein(x, y, proj, n_projections=32)), rtol=1e-6
    )


@pytest.mark.slow
def test_wasserstein_1d_statistic_equals_the_estimator(samples_1d):
    x1, y1 = samples_1d
    res = dv.two_sample_test(x1, y1, jax.random.key(0), statistic="wasserstein_1d", n_permutations=B, p=2)
    np.testing.assert_allclose(float(res.statistic), float(dv.wasserstein_1d(x1, y1, p=2)), rtol=1e-6)


# ---------------------------------------------------------------------------
# p-values.


def test_p_value_formula_with_a_callable_and_its_options():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=40), rng.normal(size=30) + 0.2
    shift = lambda a, b, *, scale: scale * (jnp.mean(b) - jnp.mean(a))  # noqa: E731
    res = dv.two_sample_test(x, y, jax.random.key(0), statistic=shift, n_permutations=B, scale=2.0)
    null = np.asarray(res.null_statistics)
    want = (1 + np.sum(null >= float(res.statistic))) / (1 + B)
    np.testing.assert_allclose(float(res.p_value), want, rtol=1e-6)
    np.testing.assert_allclose(float(res.statistic), 2 * (y.mean() - x.mean()), rtol=1e-5)


@pytest.mark.parametrize(
    "statistic, options",
    [
        ("mmd", {}),
        pytest.param("mmd", {"estimator": "biased"}, marks=pytest.mark.slow),
        pytest.param("energy", {}, marks=pytest.mark.slow),
    ],
    ids=["mmd", "mmd-biased", "energy"],
)
def test_identical_inputs_p_value_is_one(samples_3d, statistic, options):
    # x against itself: the observed energy and biased MMD are 0, the
    # smallest any relabelling can give; for the unbiased MMD every
    # relabelling gives at least the observed value too. So every
    # relabelling counts (ties within rounding included) and p = 1.
    x, _ = samples_3d
    res = dv.two_sample_test(x, x, jax.random.key(0), statistic=statistic, n_permutations=B, **options)
    assert float(res.p_value) == 1.0


def test_strong_difference_gives_the_smallest_p_value(samples_3d):
    x, y = samples_3d
    res = dv.two_sample_test(x, y + 3.0, jax.random.key(0), statistic="energy", n_permutations=B)
    assert float(res.p_value) == pytest.approx(1 / (1 + B))


def _null_p_values(statistic, n_rep, n, dim, n_permutations, **options):
    """p-values of `n_rep` tests with both samples from N(0, I_dim), vmapped over repetitions."""

    def one(key):
        kx, ky, kt = jax.random.split(key, 3)
        x = jax.random.normal(kx, (n, dim))
        y = jax.random.normal(ky, (n, dim))
        return dv.two_sample_test(x, y, kt, statistic=statistic, n_permutations=n_permutations, **options).p_value

    return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(2012), n_rep)))


@pytest.mark.parametrize(
    "statistic, options",
    [
        ("mmd", {}),
        pytest.param("energy", {}, marks=pytest.mark.slow),
        pytest.param("sliced_wasserstein", {"n_projections": 16}, marks=pytest.mark.slow),
    ],
    ids=["mmd", "energy", "sliced"],
)
def test_calibration_under_the_null(statistic, options):
    # 200 repetitions, n = m = 50 in 3-D, B = 199 relabellings (so that
    # p <= 0.05 has probability exactly 10/200 = 0.05 under the null). The
    # number of rejections must lie in the central 99% band of
    # Binomial(200, 0.05), computed by scipy: [3, 19]. The repetitions run
    # as one vmapped, compiled call. Measured (seed 2012): 14 (mmd),
    # 14 (energy), 12 (sliced) rejections of 200.
    p = _null_p_values(statistic, 200, 50, 3, 199, **options)
    lo, hi = binomial_band(200)
    rejections = int(np.sum(p <= 0.05))
    assert lo <= rejections <= hi, rejections
    assert np.all((p > 0) & (p <= 1))


@pytest.mark.slow
def test_power_of_mmd_rises_with_the_shift():
    # N(0, I) against N(delta e_1, I) in 5-D, n = m = 200, median-heuristic
    # Gaussian MMD, B = 199, 100 repetitions per delta, one compiled call.
    # Measured (seed 1): power 0.06, 0.15, 0.40, 0.97 at delta = 0, 0.1,
    # 0.25, 0.5 (and 1.0 at delta = 0.5 when all five coordinates shift).
    # The issue asks for >= 0.9 at delta = 0.5 and a rising curve.
    deltas = jnp.array([0.0, 0.1, 0.25, 0.5])

    def one(delta, key):
        kx, ky, kt = jax.random.split(key, 3)
        x = jax.random.normal(kx, (200, 5))
        y = jax.random.normal(ky, (200, 5)).at[:, 0].add(delta)
        return dv.two_sample_test(x, y, kt, statistic="mmd", n_permutations=199).p_value

    keys = jax.random.split(jax.random.key(1), 100)
    p = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))(deltas, keys)
    power = np.mean(np.asarray(p) <= 0.05, axis=1)
    assert np.all(np.diff(power) > 0), power
    assert power[-1] >= 0.9, power
    assert power[0] <= binomial_band(100)[1] / 100, power


# ---------------------------------------------------------------------------
# jit, vmap, grad.


@pytest.mark.slow
def test_statistic_gradient_matches_direct_energy(samples_3d):
    # The gradient of the observed statistic flows through the pooled
    # distance matrix; compare with autodiff of the direct formula (atol 1e-5).
    x, y = samples_3d
    x, y = jnp.asarray(x), jnp.asarray(y)

    def direct(a):
        d = lambda p, q: ts._safe_norm(p[:, None] - q[None])  # noqa: E731
        return 2 * d(a, y).mean() - d(a, a).mean() - d(y, y).mean()

    g = jax.grad(lambda a: dv.two_sample_test(a, y, jax.random.key(0), statistic="energy", n_permutations=B).statistic)(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(np.asarray(g), np.asarray(jax.grad(direct)(x)), atol=1e-5)


def test_nan_samples_under_jit_give_nan(samples_1d):
    x, y = samples_1d
    x = jnp.asarray(x).at[3].set(jnp.nan)
    fn = jax.jit(lambda a, b: dv.two_sample_test(a, b, jax.random.key(0), statistic="energy", n_permutations=B))
    res = fn(x, y)
    assert np.isnan(float(res.statistic)) and np.isnan(float(res.p_value))


def test_jit_and_chunk_size_do_not_change_the_result(samples_3d):
    # chunk_size = 7 splits 99 relabellings into 15 chunks (the last one
    # padded); under jit and in chunks the relabellings are the same ones.
    x, y = samples_3d
    a = dv.two_sample_test(x, y, jax.random.key(0), statistic="energy", n_permutations=B)
    fn = jax.jit(lambda a, b, k: dv.two_sample_test(a, b, k, statistic="energy", n_permutations=B, chunk_size=7))
    b = fn(x, y, jax.random.key(0))
    np.testing.assert_allclose(np.asarray(a.null_statistics), np.asarray(b.null_statistics), rtol=1e-5)
    np.testing.assert_allclose(float(a.p_value), float(b.p_value))


# ---------------------------------------------------------------------------
# Bad input.


def test_bad_n_permutations(samples_1d):
    x, y = samples_1d
    with pytest.raises(ValueError, match="`n_permutations`"):
        dv.two_sample_test(x, y, jax.random.key(0), n_permutations=0)


def test_bad_statistic_name(samples_1d):
    x, y = samples_1d
    with pytest.raises(ValueError, match="`statistic`"):
        dv.two_sample_test(x, y, jax.random.key(0), statistic="kolmogorov")


def test_bad_feature_dimension(samples_3d):
    x, y = samples_3d
    with pytest.raises(ValueError, match="`y`"):
        dv.two_sample_test(x, y[:, :2], jax.random.key(0), statistic="energy")


def test_bad_statistic_option(samples_1d):
    x, y = samples_1d
    with pytest.raises(ValueError, match="`bandwidth`"):
        dv.two_sample_test(x, y, jax.random.key(0), statistic="energy", bandwidth=1.0)


def test_bad_chunk_size(samples_1d):
    x, y = samples_1d
    with pytest.raises(ValueError, match="`chunk_size`"):
        dv.two_sample_test(x, y, jax.random.key(0), statistic="energy", chunk_size=0)


def test_bad_samples(samples_1d):
    x, y = samples_1d
    with pytest.raises(ValueError, match="`x`"):
        dv.two_sample_test(np.full(5, np.nan), y, jax.random.key(0), statistic="energy")
    with pytest.raises(ValueError, match="`x`"):
        dv.two_sample_test(np.zeros((4, 2, 2)), np.zeros((4, 2, 2)), jax.random.key(0), statistic="energy")


# ---------------------------------------------------------------------------
# Classifier two-sample test.


def test_hypergeometric_tail_matches_scipy():
    # P(K >= k) against scipy over a grid of cases of one population size
    # (vmapped: one compilation); rtol 1e-4 for float32 log-space sums.
    cases = np.array([(30, 45, 52), (0, 3, 4), (4, 3, 4), (50, 50, 50), (60, 60, 60), (97, 98, 99)], np.float32)
    got = jax.jit(jax.vmap(lambda c: _hypergeom_sf(c[0], 120, c[1], c[2])))(cases)
    want = [st.hypergeom.sf(k - 1, 120, marked, drawn) for k, marked, drawn in cases]
    np.testing.assert_allclose(np.asarray(got), np.maximum(want, np.finfo(np.float32).tiny), rtol=1e-4)


def test_classifier_test_detects_a_change_of_dependence():
    # Equal N(0, 1) marginals in 2-D; Q couples the coordinates (y2 = |y2|
    # sign(y1)), which puts Q in two quadrants. A classifier finds it at
    # once; the held-out accuracy must be far above chance.
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(k1, (300, 2))
    y = jax.random.normal(k2, (300, 2))
    y = y.at[:, 1].set(jnp.abs(y[:, 1]) * jnp.sign(y[:, 0]))
    res = dv.classifier_two_sample_test(x, y, k3, n_steps=200, width=32, depth=2, learning_rate=1e-2)
    assert float(res.statistic) > 0.65
    assert float(res.p_value) < 1e-4
    assert int(res.n_test) == 300


@pytest.mark.slow
def test_classifier_test_under_the_null_is_not_significant():
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(k1, (150, 3))
    y = jax.random.normal(k2, (100, 3))
    res = dv.classifier_two_sample_test(x, y, k3, n_steps=50, width=16, depth=1)
    assert 0.3 < float(res.statistic) < 0.7
    assert 0.0 < float(res.p_value) <= 1.0


@pytest.mark.slow
def test_classifier_test_calibration_under_the_null():
    # The conditional p-value is exact for any classifier: 200 repetitions
    # (unequal sizes 80 and 50) reject at 0.05 within the binomial 99% band.
    def one(key):
        a, b, c = jax.random.split(key, 3)
        x = jax.random.normal(a, (80, 4))
        y = jax.random.normal(b, (50, 4))
        return dv.classifier_two_sample_test(x, y, c, n_steps=60, width=16, depth=1).p_value

    p = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(7), 200)))
    lo, hi = binomial_band(200)
    # The accuracy is discrete, so the test is conservative: only the upper end binds.
    assert np.sum(p <= 0.05) <= hi


def test_classifier_bad_train_fraction():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="`train_fraction`"):
        dv.classifier_two_sample_test(x, x, jax.random.key(0), train_fraction=1.0)
    with pytest.raises(ValueError, match="`train_fraction`"):
        dv.classifier_two_sample_test(x, x, jax.random.key(0), train_fraction=0.01)


def test_classifier_bad_feature_dimension():
    with pytest.raises(ValueError, match="`y`"):
        dv.classifier_two_sample_test(np.zeros((10, 2)), np.zeros((10, 3)), jax.random.key(0))


def test_classifier_bad_activation():
    with pytest.raises(ValueError, match="`activation`"):
        dv.classifier_two_sample_test(np.zeros((10, 2)), np.ones((10, 2)), jax.random.key(0), activation="swish")


# --- issue 17: refused and accepted input, scale invariance, NaN under jit ----------------------

_XS = np.asarray(jax.random.normal(jax.random.key(0), (60, 3)))
_YS = np.asarray(jax.random.normal(jax.random.key(1), (50, 3))) + 0.3


@pytest.mark.parametrize("bandwidth", [-1.0, 0.0, np.inf, np.nan])
def test_bad_bandwidth_refused(bandwidth):
    # Issue 17: bandwidth=-1 and bandwidth=0 were accepted (the second returned NaN).
    with pytest.raises(ValueError, match="^`bandwidth`"):
        dv.two_sample_test(_XS, _YS, jax.random.key(0), bandwidth=bandwidth)


def test_bad_bandwidth_under_jit_gives_nan():
    fn = jax.jit(lambda h: dv.two_sample_test(_XS, _YS, jax.random.key(0), bandwidth=h, n_permutations=9).p_value)
    assert np.isnan(float(fn(-1.0))) and np.isfinite(float(fn(1.0)))


@pytest.mark.parametrize("statistic", ["mmd", "energy"])
@pytest.mark.parametrize("scale", [1e-20, 1e-6, 1e6, 1e20])
def test_p_value_scale_invariant(statistic, scale):
    # Issue 17: the p-value changed when the data were scaled by 1e20 (float32 squares overflow).
    # The same relabellings (same key) must give the same p-value at every scale.
    key = jax.random.key(3)
    ref = dv.two_sample_test(_XS, _YS, key, statistic=statistic, n_permutations=199)
    got = dv.two_sample_test((scale * _XS).astype(np.float32), (scale * _YS).astype(np.float32), key,
                             statistic=statistic, n_permutations=199)  # fmt: skip
    assert float(got.p_value) == float(ref.p_value)
    factor = scale if statistic == "energy" else 1.0
    np.testing.assert_allclose(float(got.statistic) / factor, float(ref.statistic), rtol=1e-4)


def test_vector_valued_statistic_refused():
    # Issue 17: a statistic callable returning a vector was accepted.
    with pytest.raises(ValueError, match="^`statistic`"):
        dv.two_sample_test(_XS, _YS, jax.random.key(0), statistic=lambda a, b: a.mean(0) - b.mean(0))


@pytest.mark.parametrize("statistic", ["mmd", "energy", "sliced_wasserstein"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_under_jit_give_nan(statistic, bad):
    # Issue 17: finite numbers came out of two_sample_test under jit given NaN or inf samples.
    x = _XS.copy()
    x[0, 0] = bad
    fn = jax.jit(lambda a: dv.two_sample_test(a, _YS, jax.random.key(0), statistic=statistic, n_permutations=9))
    res = fn(x)
    assert np.isnan(float(res.statistic)) and np.isnan(float(res.p_value))


def test_classifier_test_accepts_numpy_train_fraction():
    # Issue 17: train_fraction=np.float32(0.5) was refused.
    key = jax.random.key(0)
    a = dv.classifier_two_sample_test(_XS, _YS, key, train_fraction=np.float32(0.5), n_steps=20, width=8, depth=1)
    b = dv.classifier_two_sample_test(_XS, _YS, key, train_fraction=0.5, n_steps=20, width=8, depth=1)
    assert float(a.p_value) == float(b.p_value)
    with pytest.raises(ValueError, match="^`train_fraction`"):
        dv.classifier_two_sample_test(_XS, _YS, key, train_fraction=np.bool_(True))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_classifier_test_non_finite_under_jit_gives_nan(bad):
    x = _XS.copy()
    x[0, 0] = bad
    fn = jax.jit(lambda a: dv.classifier_two_sample_test(a, _YS, jax.random.key(0), n_steps=5, width=4, depth=1))
    res = fn(x)
    assert np.isnan(float(res.statistic)) and np.isnan(float(res.p_value))
