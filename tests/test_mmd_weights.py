"""MMD with the polynomial kernel and with sample weights.

Oracles: full Gram matrices in float64 NumPy (scipy's cdist for the distance
kernels), integer weights against repeated samples for the V-statistic, equal
weights against the unweighted U-statistic, finite differences.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.distance import cdist

import divergences as dv


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((31, 3)), rng.standard_normal((24, 3)) + 0.5


def _poly(a, b, degree=3, gamma=None, coef=1.0):
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    return (gamma * a @ b.T + coef) ** degree


def _weighted_reference(kxx, kyy, kxy, wx, wy, estimator):
    wx, wy = wx / wx.sum(), wy / wy.sum()
    if estimator == "biased":
        return wx @ kxx @ wx + wy @ kyy @ wy - 2 * wx @ kxy @ wy
    off = lambda k, w: (w @ k @ w - np.sum(w * w * np.diag(k))) / (1 - np.sum(w * w))  # noqa: E731
    return off(kxx, wx) + off(kyy, wy) - 2 * wx @ kxy @ wy


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("estimator", ["unbiased", "biased"])
def test_polynomial_kernel_matches_numpy(data, jit, estimator):
    x, y = data
    fn = lambda x, y: dv.mmd(x, y, kernel="polynomial", estimator=estimator)  # noqa: E731
    got = jax.jit(fn)(x, y) if jit else fn(x, y)
    w = lambda n: np.ones(n)  # noqa: E731
    expected = _weighted_reference(_poly(x, x), _poly(y, y), _poly(x, y), w(31), w(24), estimator)
    # float32 sums of ~1000 kernel values of size ~10: absolute error ~1e-5.
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-5)


def test_polynomial_kernel_options(data):
    x, y = data
    kernel = dv.PolynomialKernel(degree=2, gamma=0.5, coef=0.3)
    with jax.enable_x64(True):
        got = jax.jit(lambda x, y, k: dv.mmd(x, y, kernel=k, estimator="biased"))(x, y, kernel)
        p = lambda a, b: _poly(a, b, 2, 0.5, 0.3)  # noqa: E731
        np.testing.assert_allclose(got, p(x, x).mean() + p(y, y).mean() - 2 * p(x, y).mean(), rtol=1e-12)
        # The Gram matrix itself, and the kernel is a pytree with the degree static.
        np.testing.assert_allclose(kernel(jnp.asarray(x), jnp.asarray(y)), p(x, y), rtol=1e-12)
        leaves, treedef = jax.tree.flatten(kernel)
        assert len(leaves) == 2 and jax.tree.unflatten(treedef, leaves).degree == 2


def test_polynomial_kernel_is_not_centred(data):
    # The polynomial kernel is not translation invariant: shifting both samples changes MMD^2.
    x, y = data
    a = dv.mmd(x, y, kernel="polynomial", estimator="biased")
    b = dv.mmd(x + 3.0, y + 3.0, kernel="polynomial", estimator="biased")
    k = lambda a, b: _poly(a, b)  # noqa: E731
    np.testing.assert_allclose(b, k(x + 3, x + 3).mean() + k(y + 3, y + 3).mean() - 2 * k(x + 3, y + 3).mean(), rtol=1e-4)
    assert abs(float(a) - float(b)) > 1e-2


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("kernel", ["gaussian", "energy", "polynomial"])
@pytest.mark.parametrize("estimator", ["unbiased", "biased"])
def test_weighted_mmd_matches_numpy(data, jit, kernel, estimator):
    x, y = data
    rng = np.random.default_rng(1)
    wx, wy = rng.uniform(0.1, 2, 31), rng.uniform(0.1, 2, 24)
    bw = 0.8 if kernel == "gaussian" else None
    if kernel == "gaussian":
        k = lambda a, b: np.exp(-cdist(a, b, "sqeuclidean") / (2 * 0.8**2))  # noqa: E731
    elif kernel == "energy":
        k = lambda a, b: -cdist(a, b)  # noqa: E731
    else:
        k = _poly
    fn = lambda x, y, wx, wy: dv.mmd(x, y, kernel=kernel, bandwidth=bw, estimator=estimator, x_weights=wx, y_weights=wy)  # noqa: E731
    got = jax.jit(fn)(x, y, wx, wy) if jit else fn(x, y, wx, wy)
    expected = _weighted_reference(k(x, x), k(y, y), k(x, y), wx, wy, estimator)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-5)
    # Blocked sums give the same value (7 divides neither 31 nor 24).
    blocked = dv.mmd(x, y, kernel=kernel, bandwidth=bw, estimator=estimator, x_weights=wx, y_weights=wy, block_size=7)
    np.testing.assert_allclose(blocked, got, rtol=1e-5, atol=1e-6)


def test_integer_weights_equal_repeated_samples_biased(data):
    x, y = data
    wx = np.arange(31) % 3  # 0, 1, 2, ...
    got = dv.mmd(x, y, bandwidth=0.8, estimator="biased", x_weights=wx)
    expected = dv.mmd(np.repeat(x, wx, axis=0), y, bandwidth=0.8, estimator="biased")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_equal_weights_give_the_u_statistic(data):
    x, y = data
    got = dv.mmd(x, y, bandwidth=0.8, x_weights=np.full(31, 2.0), y_weights=np.ones(24))
    np.testing.assert_allclose(got, dv.mmd(x, y, bandwidth=0.8), rtol=1e-5, atol=1e-7)


def test_weighted_mmd_grads_numerically(data):
    x, y = data
    with jax.enable_x64(True):
        wx, wy = jnp.linspace(0.5, 1.5, 31), jnp.linspace(1.0, 2.0, 24)
        for kernel, bw in (("gaussian", 0.8), ("polynomial", None)):
            fn = lambda x, wx: dv.mmd(x, y, kernel=kernel, bandwidth=bw, x_weights=wx, y_weights=wy)  # noqa: E731
            check_grads(fn, (jnp.asarray(x), wx), order=1, modes=["rev"])


def test_bad_weights(data):
    x, y = data
    with pytest.raises(ValueError, match="^`y_weights` has shape"):
        dv.mmd(x, y, bandwidth=1.0, y_weights=np.ones(31))
    with pytest.raises(ValueError, match="^`x_weights` has negative entries"):
        dv.mmd(x, y, bandwidth=1.0, x_weights=-np.ones(31))
    with pytest.raises(ValueError, match="^`degree` must be >= 1"):
        dv.PolynomialKernel(degree=0)
    with pytest.raises(ValueError, match="^`bandwidth` must be None for the 'polynomial' kernel"):
        dv.mmd(x, y, kernel="polynomial", bandwidth=1.0)
