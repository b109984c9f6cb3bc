"""Histogram plug-in divergences.

Oracle: numpy.histogram for the bin frequencies, then scipy.stats.entropy
(KL), scipy.spatial.distance.jensenshannon (its square: JS) and half the L1
distance (TV).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
from jax.test_util import check_grads

import divergences as dv


def _freqs(x, y, bins, range_):
    edges = np.histogram_bin_edges(np.concatenate([x, y]), bins=bins, range=range_)
    p = np.histogram(x, bins=edges)[0].astype(float)
    q = np.histogram(y, bins=edges)[0].astype(float)
    return p / p.sum(), q / q.sum()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal(500).astype(np.float32), (rng.standard_normal(400) * 1.5 + 0.5).astype(np.float32)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("bins,range_", [(12, None), (8, (-2.0, 2.0)), (np.linspace(-3, 4, 9), None)])
def test_matches_numpy_histogram(data, jit, bins, range_):
    x, y = data
    p, q = _freqs(x, y, bins, range_)
    for name, ref in {
        "tv": 0.5 * np.abs(p - q).sum(),
        "js": scipy.spatial.distance.jensenshannon(p, q) ** 2,  # scipy: the root
        "kl": scipy.stats.entropy(p, q),
    }.items():
        fn = lambda x, y: dv.binned_divergence(x, y, bins=bins, divergence=name, range=range_)
        got = (jax.jit(fn) if jit else fn)(x, y)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)  # float32 frequencies


def test_kl_infinite_on_empty_q_bin():
    x = jnp.array([0.1, 0.9])
    y = jnp.array([0.1, 0.2])
    assert np.isinf(dv.binned_divergence(x, y, bins=2, range=(0.0, 1.0)))
    np.testing.assert_allclose(dv.binned_divergence(x, y, bins=2, range=(0.0, 1.0), divergence="tv"), 0.5)


def test_converges_for_uniform_shift():
    # U[0,1] against U[1/2, 3/2]: TV = 1/2 and JS = (log 2)/2 (closed_form.uniform_shift);
    # with 20,000 samples and bins of width 1/20 the plug-ins are within 0.02.
    kx, ky = jax.random.split(jax.random.key(0))
    x = jax.random.uniform(kx, (20_000,))
    y = 0.5 + jax.random.uniform(ky, (20_000,))
    exact = dv.closed_form.uniform_shift(0.5)
    for name in ("tv", "js"):
        got = dv.binned_divergence(x, y, bins=30, range=(0.0, 1.5), divergence=name)
        np.testing.assert_allclose(got, exact[name], atol=0.02)


def test_vmap_and_zero_gradient(data):
    x, y = data
    xs = jnp.stack([x, x + 0.1])
    got = jax.vmap(lambda a: dv.binned_divergence(a, y, bins=10, range=(-3.0, 3.0), divergence="js"))(xs)
    np.testing.assert_allclose(got[0], dv.binned_divergence(x, y, bins=10, range=(-3.0, 3.0), divergence="js"), rtol=1e-6)
    g = jax.grad(lambda a: dv.binned_divergence(a, y, bins=10, divergence="js"))(x)
    np.testing.assert_array_equal(g, np.zeros_like(x))  # piecewise constant


def test_check_grads_and_finite_at_x_equals_y(data):
    x, y = data
    with jax.enable_x64(True):
        # Away from bin edges the function is locally constant: both the
        # analytic and the numerical derivative are 0.
        xs = jnp.asarray([0.25, 0.75, 1.25], jnp.float64)
        check_grads(lambda a: dv.binned_divergence(a, xs, bins=4, range=(0.0, 2.0), divergence="tv"), (xs,), order=1, modes=["rev"], eps=1e-3)
    for name in ("kl", "tv", "js"):
        g = jax.grad(lambda a: dv.binned_divergence(a, a, bins=10, divergence=name))(x)
        assert np.all(np.isfinite(g))


def test_bad_divergence_name(data):
    x, y = data
    with pytest.raises(ValueError, match="`divergence`"):
        dv.binned_divergence(x, y, bins=5, divergence="hellinger")


def test_bad_bins(data):
    x, y = data
    with pytest.raises(ValueError, match="`bins`"):
        dv.binned_divergence(x, y, bins=0)


def test_bad_edges(data):
    x, y = data
    with pytest.raises(ValueError, match="`bins`"):
        dv.binned_divergence(x, y, bins=jnp.array([0.0, 2.0, 1.0]))


def test_bad_range(data):
    x, y = data
    with pytest.raises(ValueError, match="`range`"):
        dv.binned_divergence(x, y, bins=5, range=(1.0, 0.0))


def test_bad_nan_samples(data):
    x, y = data
    with pytest.raises(ValueError, match="`y`"):
        dv.binned_divergence(x, np.where(np.arange(len(y)) == 0, np.nan, y), bins=5)


@pytest.mark.parametrize("rng", [(0.0, np.inf), (-np.inf, 1.0), (-np.inf, np.inf)])
def test_infinite_range_refused(rng):
    # Issue 17: binned_divergence accepted an infinite `range`.
    x, y = np.linspace(0, 1, 20), np.linspace(0.2, 1.2, 20)
    with pytest.raises(ValueError, match="^`range`"):
        dv.binned_divergence(x, y, bins=4, range=rng)
    fn = jax.jit(lambda a, lo, hi: dv.binned_divergence(a, y, bins=4, range=(lo, hi)))
    assert np.isnan(float(fn(x, *rng)))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.sampled_from([1e-6, 1.0, 1e6]), st.sampled_from([0.0, 1e3]))
@settings(max_examples=12, deadline=None)
def test_default_bins_translation_and_scale_invariant(scale, shift):
    # Bins over [min, max] of the pooled data: shifting by 1e3 and scaling by 1e-6..1e6 moves the
    # edges with the data, so the histograms and every divergence are unchanged (float64: the
    # float32 rounding of a shift of 1e3 could move points across an edge).
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=200), rng.normal(size=150) + 0.5
    with jax.enable_x64(True):
        ref = float(dv.binned_divergence(x, y, bins=10, divergence="js"))
        got = float(dv.binned_divergence(scale * x + shift * scale, scale * y + shift * scale, bins=10, divergence="js"))
    np.testing.assert_allclose(got, ref, rtol=1e-9)
