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


def _tree_reference(x, y, k):
    """The same estimate with scipy's k-d tree (float64), for inputs too large for ``cdist``."""
    from scipy.spatial import cKDTree

    n, d = x.shape
    rho = cKDTree(x).query(x, k=[k + 1])[0][:, 0]  # the point itself is its first neighbour
    nu = cKDTree(y).query(x, k=[k])[0][:, 0]
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
    seeds = 8 if d == 1 else 4  # 5-D: the error is mostly bias, 4 seeds suffice
    small, large = _rmse(d, 200, seeds), _rmse(d, large_n, seeds)
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


# ---------------------------------------------------------------- tree and brute force: same answers


@pytest.fixture
def knn_path(monkeypatch):
    """``knn_path("tree" | "brute", rows=...)`` forces the neighbour search (the tree is the CPU path).

    ``rows`` sets the fewest query rows per block of the tree search, so that
    small samples are searched in several blocks too.
    """
    from divergences import _knn

    def force(path, rows=_knn.TREE_QUERY_ROWS):
        monkeypatch.setattr(_knn, "TREE_MAX_DIM", 10**9 if path == "tree" else -1)
        monkeypatch.setattr(_knn, "TREE_QUERY_ROWS", rows)
        jax.clear_caches()  # traces made under the other setting

    yield force
    jax.clear_caches()  # before monkeypatch restores the setting


@pytest.mark.parametrize("rows", [1024, 7])  # one block of query rows; several
@pytest.mark.parametrize("d", [1, 3])
def test_tree_and_brute_force_give_the_same_values_and_gradients(knn_path, d, rows):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((60, d)).astype(np.float32)
    y = (rng.standard_normal((45, d)) + 0.5).astype(np.float32)
    xb = np.stack([x, 1.5 * x + 0.1])
    f = lambda x, y: dv.knn_kl_divergence(x, y, k=3)

    def run():
        return (
            f(x, y),
            jax.jit(f)(x, y),
            jax.jit(jax.grad(f, argnums=(0, 1)))(x, y),
            jax.jvp(f, (x, y), (np.ones_like(x), -np.ones_like(y)))[1],
            jax.jit(jax.vmap(f, in_axes=(0, None)))(xb, y),
            jax.jit(jax.vmap(jax.grad(f), in_axes=(0, None)))(xb, y),
        )

    knn_path("brute")
    brute = run()
    knn_path("tree", rows=rows)
    tree = run()
    np.testing.assert_allclose(brute[0], _reference(x.astype(np.float64), y.astype(np.float64), 3), rtol=1e-5, atol=1e-5)
    # Same neighbours, same float32 arithmetic afterwards: equal up to the
    # order of float32 sums (rtol 1e-5).
    for got, ref in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(brute)):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rows", [1024, 2])
def test_duplicates_skipped_alike_on_both_paths(knn_path, rows):
    # Under jit, zero distances are skipped (the k-th positive distance):
    # both searches must agree with a direct computation of that rule.
    x = jnp.array([[0.0], [0.0], [1.0], [2.5], [4.0], [4.5]])
    y = jnp.array([[0.0], [1.2], [2.0], [3.0], [4.5]])
    dxx = np.abs(np.asarray(x) - np.asarray(x).T)
    np.fill_diagonal(dxx, np.inf)
    dxy = np.abs(np.asarray(x) - np.asarray(y).T)
    rho = np.sort(np.where(dxx > 0, dxx, np.inf), 1)[:, 0]
    nu = np.sort(np.where(dxy > 0, dxy, np.inf), 1)[:, 0]
    ref = np.mean(np.log(nu / rho)) + np.log(5 / 5)
    for path in ("brute", "tree"):
        knn_path(path, rows=rows)
        np.testing.assert_allclose(jax.jit(dv.knn_kl_divergence)(x, y), ref, rtol=1e-5)


@pytest.mark.parametrize("decimals", [1, 0])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_tree_search_in_blocks_finds_the_same_neighbours(monkeypatch, threads, decimals):
    # The host search split into blocks of rows over a pool of threads must
    # return exactly the indices of one search over all rows (each query is
    # answered by the same tree, whichever block holds it), also for the rows
    # asked again because of exact duplicates. Rounded data repeat often: to
    # one decimal, some rows find k positive distances only on asking again;
    # to none, most rows of x have fewer than k among k + 2 (index -1).
    from divergences import _knn

    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal((203, 2)), decimals)
    y = np.round(rng.standard_normal((150, 2)) + 0.3, 1)
    k = 3
    monkeypatch.setattr(_knn, "TREE_QUERY_ROWS", 10**9)
    whole = _knn._tree_search(x, y, k, k + 2, k + 2, 1)
    monkeypatch.setattr(_knn, "TREE_QUERY_ROWS", 5)
    assert len(_knn._tree_rows(203, threads)) == 4 * threads
    blocks = _knn._tree_search(x, y, k, k + 2, k + 2, threads)
    for got, ref in zip(blocks, whole):
        np.testing.assert_array_equal(got, ref)
    # Oracle for the rule itself: the k-th smallest positive distance among
    # the k + 2 nearest (self excluded), from the full distance matrix.
    for got, b, own in ((blocks[0], x, True), (blocks[1], y, False)):
        dist = np.linalg.norm(x[:, None] - b[None], axis=-1)
        if own:
            np.fill_diagonal(dist, np.inf)
        near = np.sort(dist, axis=1)[:, : k + 2]
        positive = np.where(near > 0, near, np.inf)
        want = np.sort(positive, axis=1)[:, k - 1]
        found = np.where(got >= 0, dist[np.arange(len(x)), np.maximum(got, 0)], np.inf)
        np.testing.assert_array_equal(found, want)


# ---------------------------------------------------------------- translation, float32 casts, x64


@pytest.mark.parametrize("shift", [10.0, 100.0, 1000.0])
def test_translation_invariant(shift):
    # Issue 17: N(0,1) vs N(1,1), n = 4000, shifted by 10, 100, 1000 gave
    # 0.433, 0.178, 0.084 (expanding |a|^2 + |b|^2 - 2ab in float32). Oracle:
    # scipy's cKDTree estimate on the same float64 points, and the estimate
    # on the unshifted points. The data are centred in float64 before the
    # float32 cast, so the shifted and unshifted casts agree (rtol 1e-5);
    # the cast itself moves the nearest distances (some ~1e-7) by float32
    # rounding of O(1) coordinates: 1e-3 absolute against scipy.
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((4000, 1)), 1.0 + rng.standard_normal((4000, 1))
    ref = _tree_reference(x, y, 1)
    got = dv.knn_kl_divergence(x + shift, y + shift)
    np.testing.assert_allclose(got, dv.knn_kl_divergence(x, y), rtol=1e-5)
    np.testing.assert_allclose(got, ref, atol=1e-3)


@pytest.mark.parametrize("path", ["tree", "brute"])
def test_translation_invariant_under_jit_in_float32(knn_path, path):
    # Traced float32 data are centred in float32 before squaring: the
    # estimate on shifted points equals scipy's on the same (rounded) points.
    knn_path(path)
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((2000, 2)) + 100.0).astype(np.float32)
    y = (rng.standard_normal((2000, 2)) + 100.5).astype(np.float32)
    ref = _tree_reference(x.astype(np.float64), y.astype(np.float64), 2)
    # The shifted float32 coordinates are exact; their differences are
    # exact too (Sterbenz), so only the sums of squares round: rtol 1e-4.
    np.testing.assert_allclose(jax.jit(lambda a, b: dv.knn_kl_divergence(a, b, k=2))(x, y), ref, rtol=1e-4)


@pytest.mark.parametrize("path", ["tree", "brute"])
def test_float32_cast_collisions_are_not_duplicates(knn_path, path):
    # Issue 17: two float64 samples of 20,000 points raised "`y` shares
    # points with `x`" with x64 off because their float32 casts collide.
    # Brute force too (GPU, one core): neighbours ~1e-4 apart are ranked by
    # coordinate differences in 1-D, where the matrix-product expansion's
    # float32 rounding (~1e-7) exceeds their squared distances (it was 0.019
    # off).
    knn_path(path)
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((20000, 1)), 1.0 + rng.standard_normal((20000, 1))
    got = float(dv.knn_kl_divergence(x, y, k=5))
    # The float64 estimate by scipy's tree (the library's own float64 path
    # is checked against it in test_float64_matches_scipy_with_x64; running
    # it here by brute force would take minutes).
    exact = float(_tree_reference(x, y, 5))
    # The few collisions move a handful of the 20,000 terms to the next
    # distinct neighbour: 1e-3 absolute.
    assert abs(got - exact) < 1e-3
    assert abs(exact - 0.5) < 0.05  # KL(N(0,1) || N(1,1)) = 1/2


def test_float64_matches_scipy_with_x64():
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((5000, 1)), 1.0 + rng.standard_normal((5000, 1))
    ref = _tree_reference(x, y, 3)
    with jax.enable_x64(True):
        got = dv.knn_kl_divergence(jnp.asarray(x), jnp.asarray(y), k=3)
        assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, ref, rtol=1e-10)
