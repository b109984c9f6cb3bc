"""Maximum mean discrepancy.

Oracles: a direct numpy/scipy computation of the three estimators from the
full Gram matrices, scipy.stats.energy_distance, the median of scipy's
pairwise distances, and the unbiasedness of the U-statistic.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.test_util import check_grads
from scipy.spatial.distance import cdist, pdist

import divergences as dv
from divergences import _mmd

H = 0.8
KERNELS = {
    "gaussian": lambda r: np.exp(-(r**2) / (2 * H * H)),
    "laplace": lambda r: np.exp(-r / H),
    "inverse_multiquadric": lambda r: (1 + r**2 / H**2) ** -0.5,
    "energy": lambda r: -r,
}


def _reference(x, y, k, estimator):
    kxx, kyy, kxy = k(cdist(x, x)), k(cdist(y, y)), k(cdist(x, y))
    n, m = len(x), len(y)
    if estimator == "biased":
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    if estimator == "unbiased":
        return (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    half = min(n, m) // 2
    i = np.arange(half)
    return np.mean(kxx[2 * i, 2 * i + 1] + kyy[2 * i, 2 * i + 1] - kxy[2 * i, 2 * i + 1] - kxy[2 * i + 1, 2 * i])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((31, 3)), rng.standard_normal((24, 3)) + 0.5


@pytest.mark.parametrize("estimator", ["unbiased", "biased", "linear"])
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_estimators_match_numpy_reference(data, kernel, estimator):
    x, y = data
    bw = None if kernel == "energy" else H
    got = jax.jit(lambda x, y: dv.mmd(x, y, kernel=kernel, bandwidth=bw, estimator=estimator))(x, y)
    # float32 Gram sums of ~1000 terms of size <= 3: absolute error ~1e-6.
    np.testing.assert_allclose(got, _reference(x, y, KERNELS[kernel], estimator), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel", ["gaussian", "energy"])
@pytest.mark.parametrize("estimator", ["unbiased", "biased"])
def test_blocked_equals_unblocked(data, kernel, estimator):
    x, y = data
    bw = None if kernel == "energy" else H
    full = dv.mmd(x, y, kernel=kernel, bandwidth=bw, estimator=estimator)
    for block in (7, 64):  # 7 divides neither 31 nor 24; 64 exceeds both
        got = dv.mmd(x, y, kernel=kernel, bandwidth=bw, estimator=estimator, block_size=block)
        # The same float32 Gram sums (~1000 terms of size <= 3) in another order: ~1e-5 absolute.
        np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-5)
    g_full = jax.jit(jax.grad(lambda x: dv.mmd(x, y, kernel=kernel, bandwidth=bw, estimator=estimator)))(x)
    g_block = jax.jit(jax.grad(lambda x: dv.mmd(x, y, kernel=kernel, bandwidth=bw, estimator=estimator, block_size=7)))(x)
    np.testing.assert_allclose(g_block, g_full, rtol=1e-4, atol=1e-6)


def test_energy_kernel_gives_energy_distance():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(40), rng.standard_normal(33) * 2
    # scipy returns the square root of 2E|X-Y| - E|X-X'| - E|Y-Y'| (1-D only).
    ref = scipy.stats.energy_distance(x, y) ** 2
    np.testing.assert_allclose(dv.mmd(x[:, None], y[:, None], kernel="energy", estimator="biased"), ref, rtol=1e-5)


def test_unbiased_estimator_averages_to_zero_under_the_null():
    # Both samples from N(0, I): E[MMD_u^2] = 0 exactly. Over 400 seeds the
    # mean lies within 4 standard errors of 0; the biased estimator does not.
    keys = jax.random.split(jax.random.key(0), 400)

    def draw(k, estimator):
        kx, ky = jax.random.split(k)
        x, y = jax.random.normal(kx, (20, 2)), jax.random.normal(ky, (25, 2))
        return dv.mmd(x, y, bandwidth=1.0, estimator=estimator)

    all_three = jax.jit(jax.vmap(lambda k: [draw(k, e) for e in ("unbiased", "linear", "biased")]))
    unbiased, linear, biased = (np.asarray(a) for a in all_three(keys))
    for vals in (unbiased, linear):
        assert abs(vals.mean()) < 4 * vals.std() / np.sqrt(len(vals))
    assert biased.mean() > 4 * biased.std() / np.sqrt(len(biased))


def test_median_heuristic(data):
    x, y = data
    z = np.vstack([x, y])
    np.testing.assert_allclose(dv.median_bandwidth(x, y), np.median(pdist(z)), rtol=1e-5)
    np.testing.assert_allclose(
        dv.mmd(x, y), dv.mmd(x, y, bandwidth=float(np.median(pdist(z)))), rtol=1e-5
    )
    # Large samples: 1,000 strided points of the pooled sample, not all pairs.
    big = np.random.default_rng(2).standard_normal((5000, 2))
    idx = np.round(np.linspace(0, 4999, 1000)).astype(int)
    np.testing.assert_allclose(dv.median_bandwidth(big), np.median(pdist(big[idx])), rtol=1e-5)


def test_multiscale_bandwidth_is_sum_and_callable_kernel(data):
    x, y = data
    multi = dv.mmd(x, y, bandwidth=jnp.array([0.5, 2.0]))
    # float32 Gram sums of ~1000 terms of size <= 1 for each bandwidth: ~1e-5 absolute.
    np.testing.assert_allclose(multi, dv.mmd(x, y, bandwidth=0.5) + dv.mmd(x, y, bandwidth=2.0), rtol=1e-5, atol=1e-5)
    custom = dv.mmd(x, y, kernel=lambda a, b: jnp.exp(-jnp.sum((a - b) ** 2) / (2 * H * H)))
    np.testing.assert_allclose(custom, dv.mmd(x, y, bandwidth=H), rtol=1e-5)


def test_resolve_kernel_is_a_pytree_gram(data):
    x, y = data
    gram = dv.resolve_kernel("gaussian", None, x, y)
    assert isinstance(gram, _mmd.GaussianKernel)
    k = jax.jit(lambda g, a, b: g(a, b))(gram, x, y)  # passes through jit as an argument
    h = float(dv.median_bandwidth(x, y))
    np.testing.assert_allclose(k, np.exp(-cdist(x, y) ** 2 / (2 * h * h)), rtol=1e-5, atol=1e-6)
    assert dv.resolve_kernel("energy", None, x, y)(x, x).shape == (31, 31)


def test_dtypes(data):
    x, y = data
    assert dv.mmd(x.astype(jnp.bfloat16), y.astype(jnp.bfloat16), bandwidth=1.0).dtype == jnp.float32
    with jax.enable_x64(True):
        out = dv.mmd(x, y, bandwidth=H)
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(out, _reference(x, y, KERNELS["gaussian"], "unbiased"), rtol=1e-8)


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_gradients_check_grads(data, kernel):
    x, y = data
    bw = None if kernel == "energy" else H
    with jax.enable_x64(True):
        x64, y64 = jnp.asarray(x[:8]), jnp.asarray(y[:7])
        fn = jax.jit(lambda x, y: dv.mmd(x, y, kernel=kernel, bandwidth=bw, block_size=3))
        check_grads(fn, (x64, y64), order=1, modes=["rev"])


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("estimator", ["unbiased", "biased", "linear"])
def test_gradients_finite_at_x_equals_y(data, kernel, estimator):
    x = data[0]
    g = jax.jit(jax.grad(lambda x: dv.mmd(x, x, kernel=kernel, estimator=estimator)))(x)
    assert np.all(np.isfinite(g))


# ---------------------------------------------------------------- bad input


def test_bad_feature_dimension():
    with pytest.raises(ValueError, match="`y`"):
        dv.mmd(jnp.zeros((5, 3)), jnp.zeros((5, 2)))


def test_bad_too_few_samples_unbiased():
    with pytest.raises(ValueError, match="`x`"):
        dv.mmd(jnp.zeros((1, 3)), jnp.zeros((5, 3)))


def test_bad_kernel_name():
    # "rbf" is an alias of "gaussian" (tests/test_api.py); a misspelling is refused.
    with pytest.raises(ValueError, match="`kernel` must be one of .*'rbf' for 'gaussian'"):
        dv.mmd(jnp.zeros((5, 3)), jnp.ones((5, 3)), kernel="rbff")


def test_bad_estimator_name():
    with pytest.raises(ValueError, match="`estimator`"):
        dv.mmd(jnp.zeros((5, 3)), jnp.ones((5, 3)), estimator="quadratic")


def test_bad_bandwidth():
    with pytest.raises(ValueError, match="`bandwidth`"):
        dv.mmd(jnp.zeros((5, 3)), jnp.ones((5, 3)), bandwidth=-1.0)


def test_bad_bandwidth_for_energy():
    with pytest.raises(ValueError, match="`bandwidth`"):
        dv.mmd(jnp.zeros((5, 3)), jnp.ones((5, 3)), kernel="energy", bandwidth=1.0)


def test_bad_nan_samples():
    with pytest.raises(ValueError, match="`y`"):
        dv.mmd(jnp.zeros((5, 3)), jnp.ones((5, 3)).at[2, 1].set(jnp.inf))


def test_bad_block_size():
    with pytest.raises(ValueError, match="`block_size`"):
        dv.mmd(jnp.zeros((5, 3)), jnp.ones((5, 3)), block_size=0)


# --- issue 17: scale equivariance, the energy distance at 1e30, NaN under jit --------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_X = np.asarray(jax.random.normal(jax.random.key(0), (120, 3)))
_Y = np.asarray(jax.random.normal(jax.random.key(1), (90, 3))) + 0.5


@given(st.sampled_from([1e-30, 1e-6, 1e-3, 1.0, 1e3, 1e6, 1e30]), st.sampled_from([0.0, 1e3]))
@settings(max_examples=20, deadline=None)
def test_median_heuristic_and_mmd_scale_equivariant(scale, shift):
    # Issue 17: the median heuristic returned a bandwidth of 1.0 on tiny or huge data, so mmd
    # changed with the data's scale. Now h(c z + t) = c h(z), and every MMD estimate with the
    # heuristic (or a bandwidth scaled with the data) is unchanged; the energy distance scales
    # with c. Tolerance 1e-4 relative: float32 rounding of the shifted and scaled points (a shift
    # of 1e3 on unit-scale data keeps ~4 fewer digits of them).
    x, y = (scale * _X + scale * shift).astype(np.float32), (scale * _Y + scale * shift).astype(np.float32)
    ref_h = float(dv.median_bandwidth(_X.astype(np.float32), _Y.astype(np.float32)))
    np.testing.assert_allclose(float(dv.median_bandwidth(x, y)) / scale, ref_h, rtol=1e-4)
    for kernel in ["gaussian", "laplace", "inverse_multiquadric"]:
        ref = float(dv.mmd(_X, _Y, kernel=kernel))
        np.testing.assert_allclose(float(dv.mmd(x, y, kernel=kernel)), ref, rtol=1e-3, atol=1e-6)
    ref = float(dv.mmd(_X, _Y, kernel="energy", estimator="biased"))
    np.testing.assert_allclose(float(dv.mmd(x, y, kernel="energy", estimator="biased")) / scale, ref, rtol=1e-3)


def test_energy_distance_finite_at_scale_1e30():
    # Issue 17: NaN at scale 1e30 (squared distances overflow float32). Oracle: scipy's
    # energy_distance is the root of the 1-D energy distance, which is scale-equivariant.
    x, y = _X[:, :1], _Y[:, :1]
    ref = scipy.stats.energy_distance(x[:, 0], y[:, 0]) ** 2
    got = dv.mmd((1e30 * x).astype(np.float32), (1e30 * y).astype(np.float32), kernel="energy", estimator="biased")
    assert np.isfinite(float(got))
    np.testing.assert_allclose(float(got) / 1e30, ref, rtol=1e-4)


def test_median_bandwidth_fallbacks():
    # All points equal: 1. More than half the pairs equal: the mean distance, not 1.
    assert float(dv.median_bandwidth(np.zeros((5, 2)))) == 1.0
    z = np.zeros((10, 1))
    z[0, 0] = 1e-20
    h = float(dv.median_bandwidth(z.astype(np.float32)))
    np.testing.assert_allclose(h, 9 * 1e-20 / 45, rtol=1e-5)  # 9 of 45 pairs at distance 1e-20


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_median_bandwidth_nan_under_jit(bad):
    # Issue 17: finite numbers came out of median_bandwidth under jit for NaN or inf samples.
    x = _X.copy()
    x[3, 1] = bad
    assert np.isnan(float(jax.jit(dv.median_bandwidth)(x, _Y)))
    with pytest.raises(ValueError, match="^`x`"):
        dv.median_bandwidth(x, _Y)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (7, 300), (3, 5, 4)])
def test_matrix_sum_equals_the_sum_and_its_gradient_is_ones(shape, jit):
    # The kernel sums go through matrix_sum (a product with a vector of ones)
    # for speed on CPU; it must stay the plain sum of the entries (oracle:
    # NumPy's float64 sum; float32 row sums of 300 positive terms, rtol 1e-6)
    # with the sum's gradient, ones, and batch over leading axes.
    from divergences._numerics import matrix_sum

    k = np.random.default_rng(0).uniform(0.5, 2.0, size=shape).astype(np.float32)
    f = jax.jit(matrix_sum) if jit else matrix_sum
    np.testing.assert_allclose(float(f(k)), np.sum(k.astype(np.float64)), rtol=1e-6)
    np.testing.assert_array_equal(jax.grad(f)(jnp.asarray(k)), np.ones(shape, np.float32))
    with jax.enable_x64(True):
        np.testing.assert_allclose(float(f(jnp.asarray(k, jnp.float64))), np.sum(k.astype(np.float64)), rtol=1e-14)
