"""k-nearest-neighbour KL estimator (Wang, Kulkarni and Verdu 2009).

Oracle: the closed-form KL between Gaussians (divergences.closed_form),
approached as n grows; and a direct numpy/scipy nearest-neighbour
computation of the same formula on small inputs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.distance import cdist

import divergences as dv


def _reference(x, y, k):
    n, d = x.shape
    dxx = cdist(x, x)
    np.fill_diagonal(dxx, np.inf)
    rho = np.sort(dxx, axis=1)[:, k - 1]
    nu = np.sort(cdist(x, y), axis=1)[:, k - 1]
    return d * np.mean(np.log(nu / rho)) + np.log(len(y) / (n - 1))


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("block_size", [1024, 7])
def test_matches_direct_computation(k, block_size):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((33, 3)) + 0.3
    got = dv.knn_kl_divergence(x, y, k=k, block_size=block_size)
    # float32 distances, exact for the selected neighbours: rtol 1e-5.
    np.testing.assert_allclose(got, _reference(x, y, k), rtol=1e-5, atol=1e-5)


def _rmse(d, n, seeds, k=4):
    """RMSE over seeds of the estimate of KL(N(0, I) || N(1/2, 2 I)) in d dimensions."""
    exact = dv.closed_form.gaussian_kl(jnp.zeros(d), jnp.eye(d), jnp.full(d, 0.5), 2.0 * jnp.eye(d))

    def one(key):
        kx, ky = jax.random.split(key)
        x = jax.random.normal(kx, (n, d))
        y = 0.5 + jnp.sqrt(2.0) * jax.random.normal(ky, (n, d))
        return dv.knn_kl_divergence(x, y, k=k)

    vals = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(n + d), seeds))
    return float(jnp.sqrt(jnp.mean((vals - exact) ** 2)))


@pytest.mark.parametrize("d", [1, 5])
def test_converges_to_gaussian_kl(d):
    # Measured (8 seeds, k = 4): 1-D RMSE 0.071 at n = 200, 0.041 at 800,
    # 0.026 at 3200; 5-D 0.22, 0.15, 0.11 (bias-dominated). Require a clear
    # decrease and a small final error (KL = 0.159 in 1-D, 0.795 in 5-D).
    large_n = 3200 if d == 1 else 1600
    small, large = _rmse(d, 200, 8), _rmse(d, large_n, 8)
    assert large < 0.75 * small
    assert large < (0.05 if d == 1 else 0.18)


@pytest.mark.slow
@pytest.mark.parametrize("d", [1, 5])
def test_error_shrinks_along_n(d):
    errors = [_rmse(d, n, 8) for n in (200, 800, 3200, 12800)]
    print(f"d={d} RMSE by n=200,800,3200,12800: {errors}")
    assert errors[-1] < errors[0] / 2


def test_vmap_and_jit():
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((3, 30, 2))
    y = rng.standard_normal((25, 2))
    got = jax.jit(jax.vmap(lambda x: dv.knn_kl_divergence(x, y, k=2)))(xs)
    np.testing.assert_allclose(got, [_reference(x, y, 2) for x in xs], rtol=1e-5, atol=1e-5)


def test_one_dimensional_input_shape():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(50), rng.standard_normal(40)
    np.testing.assert_allclose(dv.knn_kl_divergence(x, y), _reference(x[:, None], y[:, None], 1), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- gradients


def test_gradients_check_grads():
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        x, y = jnp.asarray(rng.standard_normal((12, 2))), jnp.asarray(rng.standard_normal((10, 2)))
        check_grads(jax.jit(lambda x, y: dv.knn_kl_divergence(x, y, k=2)), (x, y), order=1, modes=["fwd", "rev"])


def test_gradients_finite_at_x_equals_y():
    x = jnp.asarray(np.random.default_rng(4).standard_normal((20, 2)))
    # Under jit the zero distances are clamped (an eager call raises instead).
    g = jax.jit(jax.grad(lambda x: dv.knn_kl_divergence(x, x)))(x)
    assert np.all(np.isfinite(g))


# ---------------------------------------------------------------- bad input


def test_duplicates_in_x_raise_eagerly_and_stay_finite_under_jit():
    x = jnp.array([[0.0], [0.0], [1.0], [2.0]])
    y = x + 0.5
    with pytest.raises(ValueError, match="`x`"):
        dv.knn_kl_divergence(x, y)
    assert np.isfinite(jax.jit(dv.knn_kl_divergence)(x, y))
    assert np.isfinite(dv.knn_kl_divergence(x, y, k=2))  # a larger k sees past the duplicate


def test_points_shared_with_y_raise_eagerly():
    x = jnp.array([[0.0], [1.0], [2.0]])
    with pytest.raises(ValueError, match="`y`"):
        dv.knn_kl_divergence(x, x)
    assert np.isfinite(jax.jit(dv.knn_kl_divergence)(x, x))


def test_bad_k_too_large():
    with pytest.raises(ValueError, match="`k`"):
        dv.knn_kl_divergence(jnp.zeros((5, 2)), jnp.ones((9, 2)), k=5)


def test_bad_feature_dimension():
    with pytest.raises(ValueError, match="`y`"):
        dv.knn_kl_divergence(jnp.zeros((5, 2)), jnp.ones((9, 3)))


def test_bad_nan_samples():
    with pytest.raises(ValueError, match="`x`"):
        dv.knn_kl_divergence(jnp.arange(5.0).at[1].set(jnp.nan), jnp.ones(9))
