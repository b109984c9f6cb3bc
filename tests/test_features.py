"""Fréchet distance, KID, precision/recall and density/coverage from feature arrays.

Oracles: the pytorch-fid formula with ``scipy.linalg.sqrtm`` in float64,
``closed_form.gaussian_w2`` squared, the data-matrix identity
``tr (Sx Sy)^{1/2} = ||A B^T||_* / sqrt((n-1)(m-1))`` (a nuclear norm, exact
for singular covariances) in float64 NumPy, a NumPy implementation of the
unbiased polynomial-kernel MMD for KID, and the ``prdc`` package for
precision, recall, density and coverage.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import scipy.stats
import prdc  # test extra of pyproject.toml
import pytest
import scipy.linalg

import divergences as dv


def _fid_scipy(x, y):
    # The reference formula of pytorch-fid / TTUR (calculate_frechet_distance), float64.
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def _fid_nuclear(x, y):
    # Exact for any n, d: the eigenvalues of Sx Sy are the squared singular values of A B^T / sqrt((n-1)(m-1)).
    a, b = x - x.mean(0), y - y.mean(0)
    n, m = len(x), len(y)
    tr_sqrt = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt((n - 1) * (m - 1))
    diff = x.mean(0) - y.mean(0)
    return diff @ diff + np.sum(a * a) / (n - 1) + np.sum(b * b) / (m - 1) - 2 * tr_sqrt


def _correlated(rng, n, d, shift=0.0):
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + shift


# --- Fréchet distance -------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
def test_frechet_matches_scipy_float64(jit):
    rng = np.random.default_rng(0)
    x, y = _correlated(rng, 400, 8), _correlated(rng, 300, 8, 0.3)
    with jax.enable_x64(True):
        fn = jax.jit(dv.frechet_distance) if jit else dv.frechet_distance
        got = fn(x, y)
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(got, _fid_scipy(x, y), rtol=1e-5)
        # The closed form between the fitted Gaussians, squared (it returns the root).
        w2 = dv.closed_form.gaussian_w2(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
        np.testing.assert_allclose(got, w2**2, rtol=1e-8)


@pytest.mark.parametrize("jit", [False, True])
def test_frechet_float32(jit):
    rng = np.random.default_rng(1)
    x, y = _correlated(rng, 400, 8), _correlated(rng, 300, 8, 0.3)
    fn = jax.jit(dv.frechet_distance) if jit else dv.frechet_distance
    got = fn(x.astype(np.float32), y.astype(np.float32))
    assert got.dtype == jnp.float32
    # float32 statistics and eigen-decompositions of 8 x 8 matrices: relative error ~1e-6 (15x margin).
    np.testing.assert_allclose(got, _fid_scipy(x, y), rtol=1e-5)


@pytest.mark.parametrize("n", [20, 64])
def test_frechet_singular_covariances(n):
    # n <= d: both covariances have rank n - 1 < d = 64. scipy's sqrtm is unreliable here; the
    # nuclear-norm identity is exact.
    rng = np.random.default_rng(2)
    x, y = _correlated(rng, n, 64), _correlated(rng, n + 5, 64, 0.2)
    ref = _fid_nuclear(x, y)
    with jax.enable_x64(True):
        got = dv.frechet_distance(x, y)
        np.testing.assert_allclose(got, ref, rtol=1e-9)
    got32 = dv.frechet_distance(x.astype(np.float32), y.astype(np.float32))
    assert bool(jnp.isfinite(got32))
    # float32: the null space is cut off at eigh's round-off (error ~3e-7 at n = 20); at n = 64
    # (rank 63) the smallest genuine eigenvalues are near that cut-off (error ~8e-4).
    np.testing.assert_allclose(got32, ref, rtol=3e-3)


def test_frechet_of_identical_sets_is_zero():
    x = _correlated(np.random.default_rng(3), 50, 6)
    with jax.enable_x64(True):
        np.testing.assert_allclose(dv.frechet_distance(x, x), 0.0, atol=1e-10)


@pytest.mark.parametrize("x64", [True, False])
def test_streaming_equals_one_shot(x64):
    rng = np.random.default_rng(4)
    x, y = _correlated(rng, 301, 10, 1.0) + 5.0, _correlated(rng, 200, 10)
    with jax.enable_x64(x64):
        dtype = np.float64 if x64 else np.float32
        x, y = x.astype(dtype), y.astype(dtype)
        one_shot = dv.frechet_distance(x, y)
        sx, sy = dv.frechet_init(10), dv.frechet_init(10)
        update = jax.jit(dv.frechet_update)
        for chunk in np.array_split(x, [1, 100]):  # uneven batches, one of a single sample
            sx = update(sx, chunk)
        for chunk in np.array_split(y, 4):
            sy = update(sy, chunk)
        streamed = dv.frechet_compute(sx, sy)
        np.testing.assert_allclose(sx.mean, x.mean(0), rtol=1e-12 if x64 else 1e-6)
        np.testing.assert_allclose(sx.scatter / 300, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10 if x64 else 2e-5, atol=1e-12 if x64 else 2e-6)
        np.testing.assert_allclose(streamed, one_shot, rtol=1e-10 if x64 else 1e-4)
        np.testing.assert_allclose(streamed, _fid_scipy(x.astype(np.float64), y.astype(np.float64)), rtol=1e-8 if x64 else 1e-4)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("d", [3, 511, 512, 515, 1000, 2051])
def test_scatter_blocks_equal_the_product(d, jit):
    # The block-triangular scatter (one product below d = 512; 2 column blocks at 512 and
    # 515, 3 at 1000, 8 of uneven widths at 2051) equals dev.T @ dev in float64 NumPy and
    # has the product's gradient, dev @ (w + w.T).
    from divergences._features import _scatter

    rng = np.random.default_rng(d)
    dev = rng.normal(size=(40, d))
    w = rng.normal(size=(d, d))
    fn = jax.jit(_scatter) if jit else _scatter
    with jax.enable_x64(True):
        got = np.asarray(fn(jnp.asarray(dev)))
        ref = dev.T @ dev
        # float64 sums of 40 products of unit normals: rounding ~1e-15 of the largest entry.
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
        grad = jax.grad(lambda a: jnp.sum(jnp.asarray(w) * fn(a)))(jnp.asarray(dev))
        np.testing.assert_allclose(grad, dev @ (w + w.T), rtol=1e-10, atol=1e-10)
        # vmap over a batch of two: each item as alone.
        pair = np.stack([dev, -0.5 * dev[::-1]])
        batched = np.asarray(jax.vmap(fn)(jnp.asarray(pair)))
        for item, one in zip(batched, pair):
            one_ref = one.T @ one
            np.testing.assert_allclose(item, one_ref, rtol=0, atol=1e-12 * np.abs(one_ref).max())


def test_frechet_distance_vmaps_over_sets_with_blocked_scatter():
    # d = 520 takes the two-block scatter; vmap over three pairs equals three calls and
    # the float64 scipy formula.
    rng = np.random.default_rng(6)
    x = np.stack([_correlated(rng, 700, 520) for _ in range(3)])
    y = np.stack([_correlated(rng, 600, 520, 0.1) for _ in range(3)])
    with jax.enable_x64(True):
        got = np.asarray(jax.vmap(dv.frechet_distance)(jnp.asarray(x), jnp.asarray(y)))
        # float64 statistics and eigen-decompositions of 520 x 520 matrices: rounding far below 1e-8.
        np.testing.assert_allclose(got, [_fid_scipy(a, b) for a, b in zip(x, y)], rtol=1e-8)


def test_frechet_grads_numerically_and_finite_at_equality():
    rng = np.random.default_rng(5)
    x, y = _correlated(rng, 12, 3), _correlated(rng, 10, 3, 0.5)
    with jax.enable_x64(True):
        jax.test_util.check_grads(dv.frechet_distance, (jnp.asarray(x), jnp.asarray(y)), order=1, modes=["rev"])
        # Equal sets: the minimum, gradient 0 (not NaN, as through eigh with repeated eigenvalues).
        g = jax.grad(dv.frechet_distance)(jnp.asarray(x), jnp.asarray(x))
        np.testing.assert_allclose(g, 0.0, atol=1e-8)
        # Isotropic covariances (all eigenvalues equal) with different means: grad = 2 (mu_x - mu_y) / n per row.
        iso = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        g = jax.grad(dv.frechet_distance)(jnp.asarray(iso + 1.0), jnp.asarray(iso))
        np.testing.assert_allclose(g, np.full((4, 2), 2 * 1.0 / 4), atol=1e-8)
    # Singular covariances: finite gradients.
    g = jax.grad(dv.frechet_distance)(jnp.asarray(_correlated(rng, 5, 16)), jnp.asarray(_correlated(rng, 6, 16)))
    assert bool(jnp.all(jnp.isfinite(g)))


def test_frechet_bad_input():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="^`y_features` has feature dimension 4"):
        dv.frechet_distance(x, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="^`x_features` must hold at least 2 samples"):
        dv.frechet_distance(np.zeros((1, 3)), x)
    with pytest.raises(ValueError, match="^`y_features` contains NaN"):
        dv.frechet_distance(x, np.full((5, 3), np.nan))
    with pytest.raises(ValueError, match="^`features` has feature dimension 2"):
        dv.frechet_update(dv.frechet_init(3), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="^`state_x` holds fewer than 2 samples"):
        dv.frechet_compute(dv.frechet_update(dv.frechet_init(3), np.ones((1, 3))), dv.frechet_update(dv.frechet_init(3), x))
    with pytest.raises(ValueError, match="^`state_y` holds 2-dimensional"):
        dv.frechet_compute(dv.frechet_init(3), dv.frechet_init(2))
    assert bool(jnp.isnan(jax.jit(dv.frechet_distance)(x, jnp.full((5, 3), jnp.nan))))
    # Shape errors raise at trace time under jit too.
    with pytest.raises(ValueError, match="^`y_features` has feature dimension 4"):
        jax.jit(dv.frechet_distance)(x, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="^`fake` has feature dimension 4"):
        jax.jit(dv.precision_recall)(x, np.zeros((5, 4)))


# --- KID ---------------------------------------------------------------------------------------


def _kid_numpy(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * k(x, y).mean()


@pytest.mark.parametrize("jit", [False, True])
def test_kid_one_full_subset_is_the_unbiased_mmd(jit):
    # A subset of all n rows is a permutation, and the estimator is permutation invariant.
    rng = np.random.default_rng(6)
    x, y = np.abs(rng.normal(size=(60, 16))), np.abs(rng.normal(size=(60, 16))) * 1.2
    fn = lambda x, y, key: dv.kernel_inception_distance(x, y, key=key, n_subsets=1, subset_size=60)  # noqa: E731
    with jax.enable_x64(True):
        got = (jax.jit(fn) if jit else fn)(x, y, jax.random.key(0))
        np.testing.assert_allclose(got.mean, _kid_numpy(x, y), rtol=1e-10)
        np.testing.assert_allclose(got.std, 0.0, atol=1e-12)


def test_kid_subsets_match_numpy():
    rng = np.random.default_rng(7)
    x, y = np.abs(rng.normal(size=(90, 8))), np.abs(rng.normal(size=(70, 8))) + 0.1
    key = jax.random.key(3)
    with jax.enable_x64(True):
        got = dv.kernel_inception_distance(x, y, key=key, n_subsets=3, subset_size=40)
        # The same subsets, drawn as documented: one key per subset, split for x and y; each
        # subset the rows of the largest uniform keys (distinct rows, without replacement).
        values = []
        for k in jax.random.split(key, 3):
            kx, ky = jax.random.split(k)
            ix = np.argsort(-np.asarray(jax.random.uniform(kx, (90,), jnp.float32)))[:40]
            iy = np.argsort(-np.asarray(jax.random.uniform(ky, (70,), jnp.float32)))[:40]
            assert len(set(ix.tolist())) == 40
            values.append(_kid_numpy(x[ix], y[iy]))
        np.testing.assert_allclose(got.mean, np.mean(values), rtol=1e-10)
        np.testing.assert_allclose(got.std, np.std(values), rtol=1e-8)
    # float32 (no x64): the same to float32 cancellation in sums of 1,600 values of size ~10.
    got32 = dv.kernel_inception_distance(x, y, key=key, n_subsets=3, subset_size=40)
    np.testing.assert_allclose(got32.mean, np.mean(values), rtol=1e-3, atol=1e-4)


def test_kid_subsets_are_uniform_without_replacement():
    # Each of n rows is in a random q-subset with probability q / n: over 2,000 draws
    # of 30 of 50 rows, a chi-square test of the inclusion counts (49 degrees of
    # freedom, counts ~ 1,200 each), and no subset repeats a row.
    from divergences._features import _random_subset

    subsets = np.asarray(jax.vmap(lambda k: _random_subset(k, 50, 30))(jax.random.split(jax.random.key(0), 2000)))
    assert all(len(set(row)) == 30 for row in subsets.tolist())
    counts = np.bincount(subsets.ravel(), minlength=50)
    expected = 2000 * 30 / 50
    # Inclusions are negatively correlated within a subset (a fixed total), which only
    # shrinks the statistic; p = 1e-4 under independence.
    assert np.sum((counts - expected) ** 2 / expected) < scipy.stats.chi2.ppf(1 - 1e-4, 49)


def test_kid_bad_input():
    x = np.ones((10, 3))
    with pytest.raises(ValueError, match="^`subset_size` is 11, more than the samples"):
        dv.kernel_inception_distance(x, x, key=jax.random.key(0), subset_size=11)
    with pytest.raises(ValueError, match="^`y` has feature dimension 2"):
        dv.kernel_inception_distance(x, np.ones((10, 2)), key=jax.random.key(0), subset_size=5)
    with pytest.raises(ValueError, match="^`x` contains NaN"):
        dv.kernel_inception_distance(np.full((10, 3), np.nan), x, key=jax.random.key(0), subset_size=5)
    with pytest.raises(ValueError, match="^`n_subsets` must be >= 1"):
        dv.kernel_inception_distance(x, x, key=jax.random.key(0), n_subsets=0, subset_size=5)
    with pytest.raises(ValueError, match="^`y` must hold at least 2 samples"):
        dv.kernel_inception_distance(x, np.ones((1, 3)), key=jax.random.key(0), subset_size=1)


# --- precision / recall, density / coverage ---------------------------------------------------


@pytest.fixture(scope="module")
def manifolds():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(200, 16))
    fake = 1.3 * rng.normal(size=(150, 16)) + 0.4
    return real, fake


@pytest.mark.parametrize(("jit", "k"), [(False, 1), (False, 3), (True, 5)])
def test_prdc_matches_the_prdc_package(manifolds, jit, k, capsys):
    real, fake = manifolds
    ref = prdc.compute_prdc(real, fake, nearest_k=k)
    pr_fn = lambda r, f: dv.precision_recall(r, f, k=k, block_size=64)  # noqa: E731
    dc_fn = lambda r, f: dv.density_coverage(r, f, k=k, block_size=64)  # noqa: E731
    with jax.enable_x64(True):
        pr = (jax.jit(pr_fn) if jit else pr_fn)(real, fake)
        dc = (jax.jit(dc_fn) if jit else dc_fn)(real, fake)
    # Ratios of counts: equal unless a distance ties with a radius to float64 rounding.
    np.testing.assert_allclose([pr.precision, pr.recall, dc.density, dc.coverage], [ref["precision"], ref["recall"], ref["density"], ref["coverage"]], rtol=1e-12)
    # float32 distances (no x64): the same counts on this data.
    pr32 = dv.precision_recall(real, fake, k=k)
    dc32 = dv.density_coverage(real, fake, k=k)
    np.testing.assert_allclose([pr32.precision, pr32.recall, dc32.density, dc32.coverage], [ref["precision"], ref["recall"], ref["density"], ref["coverage"]], rtol=1e-6)


def test_prdc_blocking_does_not_change_the_result(manifolds):
    real, fake = manifolds[0][:50], manifolds[1][:40]
    full = dv.precision_recall(real, fake, block_size=1000), dv.density_coverage(real, fake, block_size=1000)
    for block in (1, 7):
        got = dv.precision_recall(real, fake, block_size=block), dv.density_coverage(real, fake, block_size=block)
        np.testing.assert_array_equal(np.array(got), np.array(full))


def test_identical_sets(manifolds):
    real, _ = manifolds
    pr = dv.precision_recall(real, real)
    dc = dv.density_coverage(real, real)
    assert float(pr.precision) == 1.0 and float(pr.recall) == 1.0 and float(dc.coverage) == 1.0
    # Density of the real set against itself: each point lies in its own ball plus those whose
    # k-th neighbour is farther; prdc gives the same.
    np.testing.assert_allclose(dc.density, prdc.compute_prdc(real, real, nearest_k=5)["density"], rtol=1e-6)


def test_prdc_bad_input(manifolds):
    real, fake = manifolds
    with pytest.raises(ValueError, match="^`k` must be smaller than min"):
        dv.precision_recall(real[:4], fake, k=4)
    with pytest.raises(ValueError, match="^`k` must be smaller than n = 4"):
        dv.density_coverage(real[:4], fake, k=4)
    with pytest.raises(ValueError, match="^`fake` has feature dimension 3"):
        dv.precision_recall(real, fake[:, :3])
    with pytest.raises(ValueError, match="^`real` must hold at least 2 samples"):
        dv.density_coverage(real[:1], fake, k=1)
    bad = fake.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="^`fake` contains NaN"):
        dv.precision_recall(real, bad)
    got = jax.jit(dv.density_coverage)(real, bad)
    assert bool(jnp.isnan(got.density)) and bool(jnp.isnan(got.coverage))


@pytest.mark.parametrize("k", [1, 2, 3, 5, 16, 17])
def test_kth_smallest_counts_ties_like_a_sort(k):
    # The k-th smallest entry of each row with multiplicity (np.sort's k-th column),
    # on rows full of ties and of infinities (the excluded self-distances), by the
    # iterated minima (k <= ITERATIVE_MAX_K) and by lax.top_k (above).
    from divergences._features import _kth_smallest

    rng = np.random.default_rng(k)
    d2 = rng.integers(0, 4, size=(40, 30)).astype(np.float32)
    d2[rng.random(d2.shape) < 0.2] = np.inf
    got = jax.jit(lambda a: _kth_smallest(a, k))(d2)
    np.testing.assert_array_equal(np.asarray(got), np.sort(d2, axis=1)[:, k - 1])


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("q", [2, 17, 41])
def test_kid_within_sum_is_the_off_diagonal_sum(q, jit):
    # KID's within-set sum (the kernel matrix summed by a matrix-vector
    # product, less its diagonal) equals the plain sum over i != j of the
    # cubic kernel; float64, so to rounding (rtol 1e-12).
    from divergences._features import _within_sum
    from divergences._mmd import PolynomialKernel

    a = np.abs(np.random.default_rng(q).normal(size=(q, 6)))
    f = lambda a: _within_sum(PolynomialKernel(degree=3), a)
    with jax.enable_x64(True):
        got = float((jax.jit(f) if jit else f)(jnp.asarray(a)))
    k = (a @ a.T / 6 + 1) ** 3
    np.testing.assert_allclose(got, k.sum() - np.trace(k), rtol=1e-12)
