"""Exact 1-D Wasserstein distance and the fast platform-dependent sort.

Oracles: scipy.stats.wasserstein_distance (p = 1, with weights), POT's
ot.wasserstein_1d (which returns W_p^p; we return W_p), the closed forms of
divergences.closed_form, and jnp.sort / jnp.argsort for the sort.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
import scipy.stats
from jax.test_util import check_grads

import divergences as dv
from divergences import _sort

# float32 sums of O(100) terms of size O(1): a relative error of a few 1e-6;
# 1e-5 leaves a margin.
RTOL = 1e-5


def _maybe_jit(fn, jit):
    return jax.jit(fn) if jit else fn


@pytest.fixture
def samples():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(57).astype(np.float32)
    y = (2 * rng.standard_normal(41) + 0.5).astype(np.float32)
    a = rng.random(57).astype(np.float32) + 0.1
    b = rng.random(41).astype(np.float32) + 0.1
    return x, y, a, b


# ---------------------------------------------------------------- the sort


@pytest.mark.parametrize("jit", [False, True])
def test_sort_matches_jnp_with_ties_and_signed_zeros(jit):
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, size=(4, 50)).astype(np.float32)  # many ties
    x[0, :5] = [0.0, -0.0, 0.0, -0.0, 0.0]
    x = jnp.asarray(x)
    np.testing.assert_array_equal(_maybe_jit(_sort.argsort, jit)(x), jnp.argsort(x, axis=-1, stable=True))
    np.testing.assert_array_equal(_maybe_jit(_sort.sort, jit)(x), jnp.sort(x, axis=-1))
    np.testing.assert_array_equal(_maybe_jit(jax.vmap(_sort.argsort), jit)(x), jnp.argsort(x, axis=-1, stable=True))


def test_sort_float64_matches_jnp():
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(2).integers(0, 5, size=(3, 40)).astype(np.float64))
        np.testing.assert_array_equal(jax.jit(_sort.argsort)(x), jnp.argsort(x, axis=-1, stable=True))
        assert _sort.sort(x).dtype == jnp.float64


def test_sort_gradient_equals_jnp_sort_gradient():
    x = jnp.asarray(np.random.default_rng(3).standard_normal((3, 20)).astype(np.float32))
    w = jnp.arange(20.0)
    ours = jax.jit(jax.grad(lambda x: jnp.sum(_sort.sort(x) ** 2 * w)))(x)
    ref = jax.grad(lambda x: jnp.sum(jnp.sort(x) ** 2 * w))(x)
    np.testing.assert_array_equal(ours, ref)
    check_grads(_sort.sort, (x,), order=2, modes=["fwd", "rev"])


def test_searchsorted_matches_numpy():
    rng = np.random.default_rng(4)
    a = np.sort(rng.integers(0, 10, size=(3, 30)).astype(np.float32), axis=-1)
    q = rng.integers(-1, 11, size=(3, 17)).astype(np.float32)
    for side in ("left", "right"):
        ref = np.stack([np.searchsorted(a[i], q[i], side=side) for i in range(3)])
        np.testing.assert_array_equal(jax.jit(functools.partial(_sort.searchsorted, side=side))(a, q), ref)
        np.testing.assert_array_equal(jax.vmap(functools.partial(_sort.searchsorted, side=side))(a, q), ref)


# ---------------------------------------------------------------- oracles


@pytest.mark.parametrize("jit", [False, True])
def test_w1_matches_scipy_unequal_sizes(samples, jit):
    x, y, _, _ = samples
    got = _maybe_jit(dv.wasserstein_1d, jit)(x, y)
    np.testing.assert_allclose(got, scipy.stats.wasserstein_distance(x, y), rtol=RTOL)


@pytest.mark.parametrize("jit", [False, True])
def test_w1_matches_scipy_with_weights(samples, jit):
    x, y, a, b = samples
    fn = _maybe_jit(lambda x, y, a, b: dv.wasserstein_1d(x, y, x_weights=a, y_weights=b), jit)
    np.testing.assert_allclose(fn(x, y, a, b), scipy.stats.wasserstein_distance(x, y, a, b), rtol=RTOL)


@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_wp_matches_pot(samples, p, weighted):
    x, y, a, b = samples
    kw = dict(x_weights=a, y_weights=b) if weighted else {}
    got = jax.jit(lambda x, y: dv.wasserstein_1d(x, y, p=p, **kw))(x, y)
    ua, vb = (a / a.sum(), b / b.sum()) if weighted else (None, None)
    ref = ot.wasserstein_1d(x.astype(np.float64), y.astype(np.float64), ua, vb, p=p) ** (1 / p)  # POT: W_p^p
    np.testing.assert_allclose(got, ref, rtol=RTOL)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_equal_sizes_matches_pot(p):
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2, 100)).astype(np.float32)
    ref = ot.wasserstein_1d(x.astype(np.float64), y.astype(np.float64), p=p) ** (1 / p)
    np.testing.assert_allclose(dv.wasserstein_1d(x, y, p=p), ref, rtol=RTOL)


def test_gaussian_w1_closed_form_large_samples():
    # 200,000 samples each: the empirical W1 is within ~ 3/sqrt(n) ~ 0.007 of
    # the population value (plus a bias of the same order); 0.02 is safe.
    kx, ky = jax.random.split(jax.random.key(0))
    n = 200_000
    x = 0.3 + 1.0 * jax.random.normal(kx, (n,))
    y = -0.4 + 2.0 * jax.random.normal(ky, (n + 17,))
    exact = dv.closed_form.gaussian_w1_1d(0.3, 1.0, -0.4, 2.0)
    np.testing.assert_allclose(dv.wasserstein_1d(x, y), exact, atol=0.02)


@pytest.mark.parametrize("eps", [0.1, 0.5, 2.0])
def test_uniform_shift_closed_form(eps):
    # W1 between U[0,1] and U[eps, 1+eps] is eps; with 100,000 samples the
    # Monte-Carlo error is about 1/sqrt(n) ~ 0.003 (tolerance 0.01).
    kx, ky = jax.random.split(jax.random.key(1))
    x = jax.random.uniform(kx, (100_000,))
    y = eps + jax.random.uniform(ky, (100_000,))
    np.testing.assert_allclose(dv.wasserstein_1d(x, y), dv.closed_form.uniform_shift(eps)["w1"], atol=0.01)


def test_weights_equal_repeated_samples():
    # Integer weights are the same measure as repeated samples (exact identity).
    x = jnp.array([0.0, 1.0, 4.0])
    y = jnp.array([2.0, 3.0])
    got = dv.wasserstein_1d(x, y, x_weights=jnp.array([1.0, 2.0, 1.0]), y_weights=jnp.array([3.0, 1.0]), p=2)
    ref = dv.wasserstein_1d(jnp.array([0.0, 1.0, 1.0, 4.0]), jnp.array([2.0, 2.0, 2.0, 3.0]), p=2)
    np.testing.assert_allclose(got, ref, rtol=RTOL)


# ---------------------------------------------------------------- batching, dtypes


def test_batch_axes_broadcast_and_match_vmap(samples):
    x, y, _, _ = samples
    xb = jnp.stack([x, x + 1.0, 2.0 * x])  # [3, 57]
    got = dv.wasserstein_1d(xb, y, p=2)  # y broadcasts over the batch
    ref = jnp.stack([dv.wasserstein_1d(xi, y, p=2) for xi in xb])
    np.testing.assert_allclose(got, ref, rtol=RTOL)
    np.testing.assert_allclose(jax.vmap(lambda a: dv.wasserstein_1d(a, y, p=2))(xb), ref, rtol=RTOL)
    assert dv.wasserstein_1d(xb[:, None], jnp.stack([y, y])[None], p=1).shape == (3, 2)


def test_dtypes():
    x = jnp.arange(5, dtype=jnp.bfloat16)
    assert dv.wasserstein_1d(x, x + 1).dtype == jnp.float32
    with jax.enable_x64(True):
        out = dv.wasserstein_1d(np.arange(5.0), np.arange(5.0) + 1, p=2)
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(out, 1.0, rtol=1e-12)


# ---------------------------------------------------------------- gradients


def test_gradients_check_grads_x64(samples):
    x, y, a, b = samples
    with jax.enable_x64(True):
        args = tuple(jnp.asarray(t[:8], jnp.float64) for t in (x, y, a, b))
        for p in (1, 2, 3):
            fn = jax.jit(lambda x, y, a, b: dv.wasserstein_1d(x, y[:6], x_weights=a, y_weights=b[:6], p=p))
            check_grads(fn, args, order=1, modes=["rev"])
        check_grads(jax.jit(lambda x, y: dv.wasserstein_1d(x, y, p=2)), args[:2], order=1, modes=["fwd", "rev"])


@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
def test_gradients_finite_at_x_equals_y(samples, p):
    x, _, a, _ = samples
    g = jax.grad(lambda x: dv.wasserstein_1d(x, x[::-1], p=p))(x)
    gw = jax.grad(lambda a: dv.wasserstein_1d(x, x, x_weights=a, y_weights=a, p=p))(a)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(gw))


# ---------------------------------------------------------------- bad input


def test_bad_nan_samples():
    with pytest.raises(ValueError, match="`x`"):
        dv.wasserstein_1d(jnp.array([0.0, jnp.nan]), jnp.array([1.0]))


def test_bad_inf_samples():
    with pytest.raises(ValueError, match="`y`"):
        dv.wasserstein_1d(jnp.array([0.0, 1.0]), jnp.array([jnp.inf]))


def test_nan_samples_under_jit_give_nan():
    assert np.isnan(jax.jit(dv.wasserstein_1d)(jnp.array([0.0, jnp.nan]), jnp.array([1.0, 2.0])))


def test_bad_negative_weights():
    with pytest.raises(ValueError, match="`x_weights`"):
        dv.wasserstein_1d(jnp.array([0.0, 1.0]), jnp.array([1.0]), x_weights=jnp.array([1.0, -0.5]))


def test_bad_zero_sum_weights():
    with pytest.raises(ValueError, match="`y_weights`"):
        dv.wasserstein_1d(jnp.array([0.0, 1.0]), jnp.array([1.0, 2.0]), y_weights=jnp.array([0.0, 0.0]))


def test_bad_weight_shape():
    with pytest.raises(ValueError, match="`x_weights`"):
        dv.wasserstein_1d(jnp.array([0.0, 1.0]), jnp.array([1.0]), x_weights=jnp.array([1.0, 1.0, 1.0]))


def test_bad_p():
    with pytest.raises(ValueError, match="`p`"):
        dv.wasserstein_1d(jnp.array([0.0, 1.0]), jnp.array([1.0]), p=0.5)


def test_bad_empty_samples():
    with pytest.raises(ValueError, match="`x`"):
        dv.wasserstein_1d(jnp.zeros((0,)), jnp.array([1.0]))


def test_bad_batch_shapes():
    with pytest.raises(ValueError, match="`y`"):
        dv.wasserstein_1d(jnp.zeros((3, 4)), jnp.zeros((2, 5)))
