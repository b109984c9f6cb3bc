"""Sliced and max-sliced Wasserstein distances.

Oracles: the mean of exact 1-D distances over the same directions (an
identity), POT's ot.sliced_wasserstein_distance (same directions: equal;
its own random directions: within Monte-Carlo error), and the exact
ot.emd2 in d = 1 and as an upper bound of max-sliced.
"""

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from jax.test_util import check_grads

import divergences as dv

RTOL = 1e-5  # float32 means of O(100) terms


@pytest.fixture
def sort_path(monkeypatch):
    """``sort_path("xla" | "host")`` forces every sort onto one path (the host call is the CPU path)."""
    from divergences import _sort

    def force(path):
        for name in ("HOST_SORT_MIN_SIZE", "HOST_ARGSORT_MIN_SIZE"):
            monkeypatch.setattr(_sort, name, 0 if path == "host" else 2**62)
        jax.clear_caches()  # traces made under the other threshold

    yield force
    jax.clear_caches()  # before monkeypatch restores the thresholds


@pytest.fixture(scope="module")
def clouds():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = (rng.standard_normal((45, 4)) * [1.0, 2.0, 0.5, 1.0] + 0.3).astype(np.float32)
    theta = rng.standard_normal((4, 16)).astype(np.float32)
    theta /= np.linalg.norm(theta, axis=0)
    a = (rng.random(60) + 0.1).astype(np.float32)
    b = (rng.random(45) + 0.1).astype(np.float32)
    return x, y, theta, a, b


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_fixed_projections_equal_mean_of_1d(clouds, jit, p):
    # SW_p^p is the mean of W_p^p over the directions (the root is taken last).
    x, y, theta, a, b = clouds
    fn = lambda x, y: dv.sliced_wasserstein(x, y, None, projections=theta, p=p, x_weights=a, y_weights=b)
    sw = (jax.jit(fn) if jit else fn)(x, y)
    one = lambda t: dv.wasserstein_1d(x @ t, y @ t, x_weights=a, y_weights=b, p=p)
    per_direction = jax.jit(jax.vmap(one, in_axes=1))(theta)
    np.testing.assert_allclose(sw**p, jnp.mean(per_direction**p), rtol=RTOL)


def test_same_projections_as_pot(clouds):
    x, y, theta, a, b = clouds
    ref = ot.sliced_wasserstein_distance(x, y, a / a.sum(), b / b.sum(), projections=theta, p=2)  # POT: the root
    np.testing.assert_allclose(dv.sliced_wasserstein(x, y, None, projections=theta, x_weights=a, y_weights=b), ref, rtol=RTOL)


def test_random_directions_agree_with_pot_within_monte_carlo_error(clouds):
    x, y, _, _, _ = clouds
    L = 2000
    ours = dv.sliced_wasserstein(x, y, jax.random.key(0), n_projections=L, p=2)
    theirs = ot.sliced_wasserstein_distance(x, y, n_projections=L, p=2, seed=0)
    # Standard error of each estimate of SW_2^2, from the spread of W_2^2 over
    # directions; the difference of two independent estimates has sqrt(2) of it.
    th = jax.random.normal(jax.random.key(1), (4, L))
    th = th / jnp.linalg.norm(th, axis=0)
    w22 = np.asarray(jax.jit(jax.vmap(lambda t: dv.wasserstein_1d(x @ t, y @ t, p=2) ** 2, in_axes=1))(th))
    se = np.sqrt(2) * w22.std() / np.sqrt(L)
    assert abs(float(ours) ** 2 - theirs**2) < 4 * se


@pytest.mark.parametrize("p", [1, 2])
def test_d1_equals_exact_emd(p):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 1))
    y = rng.standard_normal((22, 1)) * 1.5 + 0.2
    exact = ot.emd2(np.full(30, 1 / 30), np.full(22, 1 / 22), ot.dist(x, y, metric="euclidean") ** p) ** (1 / p)
    sw = dv.sliced_wasserstein(x, y, jax.random.key(0), n_projections=3, p=p)  # every direction is +-1
    np.testing.assert_allclose(sw, exact, rtol=1e-5)


def test_chunked_equals_unchunked(clouds):
    x, y, _, _, _ = clouds
    key = jax.random.key(3)
    full = dv.sliced_wasserstein(x, y, key, n_projections=50)
    for chunk in (1, 7, 50, 64):
        np.testing.assert_allclose(jax.jit(lambda x, y: dv.sliced_wasserstein(x, y, key, n_projections=50, chunk_size=chunk))(x, y), full, rtol=RTOL)
    g_full = jax.grad(lambda x: dv.sliced_wasserstein(x, y, key, n_projections=50))(x)
    g_chunk = jax.grad(lambda x: dv.sliced_wasserstein(x, y, key, n_projections=50, chunk_size=7))(x)
    np.testing.assert_allclose(g_chunk, g_full, rtol=1e-4, atol=1e-7)


def test_orthogonal_frames_are_orthonormal_and_reduce_variance():
    from divergences._wasserstein import _directions

    th = _directions(jax.random.key(0), 5, 12, jnp.float32, True)
    assert th.shape == (5, 12)
    frame = th[:, :5]
    np.testing.assert_allclose(frame.T @ frame, np.eye(5), atol=1e-5)
    # Variance of the estimate over keys, L = d = 8 directions: a full frame
    # averages out the direction of the mean shift (its squared projections
    # sum to ||shift||^2 exactly), so the variance drops sharply.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 8)).astype(np.float32)
    y = x + 1.0
    keys = jax.random.split(jax.random.key(1), 40)
    est = lambda o: jax.vmap(lambda k: dv.sliced_wasserstein(x, y, k, n_projections=8, orthogonal=o))(keys)
    assert float(jnp.var(est(True))) < 0.1 * float(jnp.var(est(False)))


def test_max_sliced_bounds(clouds):
    x, y, theta, _, _ = clouds
    key = jax.random.key(4)
    sw = dv.sliced_wasserstein(x, y, key, n_projections=64)
    msw = dv.max_sliced_wasserstein(x, y, key, n_projections=64)
    refined = dv.max_sliced_wasserstein(x, y, key, n_projections=64, refine_steps=20)
    exact = np.sqrt(ot.emd2(np.full(60, 1 / 60), np.full(45, 1 / 45), ot.dist(x.astype(float), y.astype(float))))
    # SW_2 <= max-SW_2 <= refined <= W_2 (projections are 1-Lipschitz).
    assert float(sw) <= float(msw) + 1e-6
    assert float(msw) <= float(refined) + 1e-6
    assert float(refined) <= exact + 1e-5


def test_max_sliced_refinement_finds_the_shift():
    x = jax.random.normal(jax.random.key(0), (400, 5))
    y = x.at[:, 2].add(3.0)
    got = dv.max_sliced_wasserstein(x, y, jax.random.key(1), n_projections=8, refine_steps=30, step_size=0.2)
    np.testing.assert_allclose(got, 3.0, rtol=0.01)


# ---------------------------------------------------------------- gradients


def test_gradients_check_grads(clouds):
    x, y, theta, _, _ = clouds
    with jax.enable_x64(True):
        th64 = jnp.asarray(theta[:, :4], jnp.float64)
        x64, y64 = (jnp.asarray(t[:12], jnp.float64) for t in (x, y))
        check_grads(jax.jit(lambda x, y: dv.sliced_wasserstein(x, y, None, projections=th64, p=2)), (x64, y64[:9]), order=1, modes=["rev"])
        check_grads(jax.jit(lambda x: dv.max_sliced_wasserstein(x, y64, None, projections=th64, p=2)), (x64,), order=1, modes=["rev"])


def test_gradients_finite_at_x_equals_y(clouds):
    x = clouds[0]
    for fn in (dv.sliced_wasserstein, dv.max_sliced_wasserstein):
        g = jax.jit(jax.grad(lambda x: fn(x, x[::-1], jax.random.key(0), n_projections=8)))(x)
        assert np.all(np.isfinite(g))


# ---------------------------------------------------------------- bad input


def test_bad_feature_dimension():
    with pytest.raises(ValueError, match="`y`"):
        dv.sliced_wasserstein(jnp.zeros((5, 3)), jnp.zeros((5, 4)), jax.random.key(0))


def test_bad_n_projections():
    with pytest.raises(ValueError, match="`n_projections`"):
        dv.sliced_wasserstein(jnp.zeros((5, 3)), jnp.ones((5, 3)), jax.random.key(0), n_projections=0)


def test_bad_n_projections_max_sliced():
    with pytest.raises(ValueError, match="`n_projections`"):
        dv.max_sliced_wasserstein(jnp.zeros((5, 3)), jnp.ones((5, 3)), jax.random.key(0), n_projections=0)


def test_bad_p():
    with pytest.raises(ValueError, match="`p`"):
        dv.sliced_wasserstein(jnp.zeros((5, 3)), jnp.ones((5, 3)), jax.random.key(0), p=0.9)


def test_bad_projections_shape():
    with pytest.raises(ValueError, match="`projections`"):
        dv.sliced_wasserstein(jnp.zeros((5, 3)), jnp.ones((5, 3)), None, projections=jnp.ones((4, 2)))


def test_bad_missing_key():
    with pytest.raises(ValueError, match="`key`"):
        dv.sliced_wasserstein(jnp.zeros((5, 3)), jnp.ones((5, 3)), None)


def test_bad_nan_samples():
    with pytest.raises(ValueError, match="`x`"):
        dv.sliced_wasserstein(jnp.zeros((5, 3)).at[0, 0].set(jnp.nan), jnp.ones((5, 3)), jax.random.key(0))


def test_bad_weights():
    with pytest.raises(ValueError, match="`y_weights`"):
        dv.sliced_wasserstein(jnp.zeros((5, 3)), jnp.ones((4, 3)), jax.random.key(0), y_weights=-jnp.ones(4))


def test_bad_chunk_size():
    with pytest.raises(ValueError, match="`chunk_size`"):
        dv.sliced_wasserstein(jnp.zeros((5, 3)), jnp.ones((4, 3)), jax.random.key(0), chunk_size=0)


def test_bad_orthogonal_not_a_bool():
    with pytest.raises(ValueError, match="`orthogonal`"):
        dv.sliced_wasserstein(jnp.zeros((5, 3)), jnp.ones((4, 3)), jax.random.key(0), orthogonal="no")


# ---------------------------------------------------------------- scale, sort paths


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_homogeneous_in_the_scale_of_the_data(clouds, scale):
    # SW_p(c x, c y) = c SW_p(x, y); |d|^2 would underflow or overflow in
    # float32 at these scales without the scale factored out.
    x, y, theta, _, _ = clouds
    for fn in (dv.sliced_wasserstein, dv.max_sliced_wasserstein):
        base = fn(x, y, None, projections=theta, p=2)
        got = jax.jit(lambda a, b: fn(a, b, None, projections=theta, p=2))(np.float32(scale) * x, np.float32(scale) * y)
        np.testing.assert_allclose(got, scale * base, rtol=RTOL)


@pytest.mark.parametrize("weighted", [False, True])
def test_host_and_xla_sorts_give_the_same_values_and_gradients(sort_path, clouds, weighted):
    x, y, theta, a, b = clouds
    kw = {"x_weights": a, "y_weights": b} if weighted else {}
    f = lambda x, y: dv.sliced_wasserstein(x, y, None, projections=theta, p=2, **kw)

    def run():
        xb = jnp.stack([x, 2 * x])
        return (
            jax.jit(f)(x, y),
            jax.jit(jax.grad(f, argnums=(0, 1)))(x, y),
            jax.jvp(f, (x, y), (jnp.ones_like(x), jnp.ones_like(y)))[1],
            jax.jit(jax.vmap(jax.grad(f), in_axes=(0, None)))(xb, y),
            jax.jit(lambda x, y: dv.sliced_wasserstein(x, y, None, projections=theta, chunk_size=5, **kw))(x, y),
        )

    sort_path("xla")
    xla = run()
    sort_path("host")
    host = run()
    for got, ref in zip(jax.tree_util.tree_leaves(host), jax.tree_util.tree_leaves(xla)):
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=1e-7)
