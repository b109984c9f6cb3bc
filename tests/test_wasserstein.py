"""Exact 1-D Wasserstein distance and the fast platform-dependent sort.

Oracles: scipy.stats.wasserstein_distance (p = 1, with weights), POT's
ot.wasserstein_1d (which returns W_p^p; we return W_p), the closed forms of
divergences.closed_form, and jnp.sort / jnp.argsort for the sort.
"""

import functools
import os

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


@pytest.fixture
def sort_path(monkeypatch):
    """``sort_path("xla" | "host")`` forces every sort onto one path (the host call is the CPU path)."""

    def force(path):
        for name in ("HOST_SORT_MIN_SIZE", "HOST_ARGSORT_MIN_SIZE"):
            monkeypatch.setattr(_sort, name, 0 if path == "host" else 2**62)
        jax.clear_caches()  # traces made under the other threshold

    yield force
    jax.clear_caches()  # before monkeypatch restores the thresholds


@pytest.mark.parametrize("path", ["xla", "host"])
@pytest.mark.parametrize("jit", [False, True])
def test_sort_matches_jnp_with_ties_and_signed_zeros(sort_path, jit, path):
    sort_path(path)
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, size=(4, 50)).astype(np.float32)  # many ties
    x[0, :5] = [0.0, -0.0, 0.0, -0.0, 0.0]
    x = jnp.asarray(x)
    np.testing.assert_array_equal(_maybe_jit(_sort.argsort, jit)(x), jnp.argsort(x, axis=-1, stable=True))
    np.testing.assert_array_equal(_maybe_jit(_sort.sort, jit)(x), jnp.sort(x, axis=-1))
    np.testing.assert_array_equal(_maybe_jit(jax.vmap(_sort.argsort), jit)(x), jnp.argsort(x, axis=-1, stable=True))


def test_sort_large_batches_use_threads_and_match_jnp():
    # 4 x 70,000 values: above the size where rows are sorted in threads.
    x = jnp.asarray(np.random.default_rng(5).standard_normal((70_000, 4)).astype(np.float32))
    np.testing.assert_array_equal(jax.jit(lambda a: _sort.argsort(a, 0))(x), jnp.argsort(x, axis=0, stable=True).T)
    np.testing.assert_array_equal(jax.jit(lambda a: _sort.sort(a, 0))(x), jnp.sort(x, axis=0).T)


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
    check_grads(jax.jit(_sort.sort), (x,), order=1, modes=["fwd", "rev"])


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
    # 100,000 samples each: the empirical W1 is within ~ 3/sqrt(n) ~ 0.01 of
    # the population value (plus a bias of the same order); 0.03 is safe.
    kx, ky = jax.random.split(jax.random.key(0))
    n = 100_000
    x = 0.3 + 1.0 * jax.random.normal(kx, (n,))
    y = -0.4 + 2.0 * jax.random.normal(ky, (n + 17,))
    exact = dv.closed_form.gaussian_w1_1d(0.3, 1.0, -0.4, 2.0)
    np.testing.assert_allclose(dv.wasserstein_1d(x, y), exact, atol=0.03)


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
    # Samples along axis 0 (as POT); the trailing axes are batch axes.
    x, y, _, _ = samples
    xb = jnp.stack([x, x + 1.0, 2.0 * x], axis=1)  # [57, 3]
    got = dv.wasserstein_1d(xb, y[:, None], p=2)  # y [m, 1] broadcasts over the batch
    ref = jnp.stack([dv.wasserstein_1d(xb[:, i], y, p=2) for i in range(3)])
    np.testing.assert_allclose(got, ref, rtol=RTOL)
    np.testing.assert_allclose(jax.vmap(lambda a: dv.wasserstein_1d(a, y, p=2), in_axes=1)(xb), ref, rtol=RTOL)
    assert dv.wasserstein_1d(xb[:, :, None], jnp.stack([y, y], axis=1)[:, None], p=1).shape == (3, 2)


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
        for p in (1, 3):
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


@pytest.mark.parametrize("n", [300, 5000])  # XLA's sort, the host sort (CPU)
@pytest.mark.parametrize("weighted", [False, True])  # sorted values, sorted by a permutation
def test_non_finite_samples_under_jit_give_nan_in_exactly_their_rows(n, weighted):
    # The check reads the ends of the sorted samples, where every sort puts
    # infinities and NaN of either sign. Oracle: rows with a non-finite
    # sample are NaN, the others equal the all-finite computation.
    rng = np.random.default_rng(n)
    bad = [np.nan, -np.nan, np.inf, -np.inf, np.float32(np.frombuffer(np.uint32(0xFFC00001).tobytes(), np.float32)[0])]
    x = rng.standard_normal((n, 2 * len(bad) + 1)).astype(np.float32)
    y = rng.standard_normal((n + 7 if weighted else n, x.shape[1])).astype(np.float32)
    kw = {"x_weights": jnp.asarray(rng.uniform(0.5, 1.5, x.shape), jnp.float32)} if weighted else {}
    fn = jax.jit(lambda x, y: dv.wasserstein_1d(x, y, **kw))
    clean = np.asarray(fn(x, y))
    for col, value in enumerate(bad):
        x[rng.integers(n), col] = value  # columns 0..4 in x, 5..9 in y, the last one clean
        y[rng.integers(y.shape[0]), len(bad) + col] = value
    got = np.asarray(fn(x, y))
    assert np.isnan(got[:-1]).all(), got
    np.testing.assert_array_equal(got[-1], clean[-1])
    assert np.isfinite(clean).all()


@pytest.mark.parametrize("p", [1, 2, 1.5])
@pytest.mark.parametrize("n", [300, 5_000])  # XLA's sort, the host sort
def test_invalid_weights_under_jit_give_nan_in_exactly_their_rows(n, p):
    # Oracle: columns whose weight vector an eager call refuses (a negative,
    # NaN or infinite entry, all zeros) are NaN; the others equal the
    # computation with only valid weights. The quantile merge of p > 1 does
    # not carry NaN weights to the distance by itself.
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    y = rng.standard_normal((n + 11, 5)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, x.shape).astype(np.float32)
    fn = jax.jit(lambda x, y, w: dv.wasserstein_1d(x, y, x_weights=w, p=p))
    clean = np.asarray(fn(x, y, w))
    for col, value in enumerate([-1.0, np.nan, np.inf]):
        w[rng.integers(n), col] = value
    w[:, 3] = 0.0
    got = np.asarray(fn(x, y, w))
    assert np.isnan(got[:4]).all(), got
    np.testing.assert_array_equal(got[4], clean[4])
    assert np.isfinite(clean).all()


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


# ---------------------------------------------------------------- axis 0, one column, axis=


@pytest.mark.parametrize("jit", [False, True])
def test_samples_along_axis_0_and_one_column_inputs(samples, jit):
    x, y, a, b = samples
    fn = _maybe_jit(lambda x, y: dv.wasserstein_1d(x, y, p=2), jit)
    ref = ot.wasserstein_1d(x.astype(np.float64), y.astype(np.float64), p=2) ** 0.5
    for xx, yy in [(x, y), (x[:, None], y[:, None]), (x[:, None], y), (x, y[:, None])]:
        got = fn(xx, yy)
        assert got.shape == ()
        np.testing.assert_allclose(got, ref, rtol=RTOL)
    got = dv.wasserstein_1d(x[:, None], y[:, None], x_weights=a[:, None], y_weights=b, p=2)
    np.testing.assert_allclose(got, dv.wasserstein_1d(x, y, x_weights=a, y_weights=b, p=2), rtol=RTOL)


@pytest.mark.parametrize("jit", [False, True])
def test_axis_option_matches_moveaxis(jit):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 4, 3)).astype(np.float32)
    y = rng.standard_normal((20, 4, 3)).astype(np.float32) + 0.5
    w = (rng.random((30, 4, 3)) + 0.1).astype(np.float32)
    base = _maybe_jit(lambda x, y, w: dv.wasserstein_1d(x, y, x_weights=w, p=2), jit)(x, y, w)
    assert base.shape == (4, 3)
    ref = [[ot.wasserstein_1d(x[:, i, j].astype(np.float64), y[:, i, j].astype(np.float64), w[:, i, j] / w[:, i, j].sum(), p=2) ** 0.5 for j in range(3)] for i in range(4)]
    np.testing.assert_allclose(base, ref, rtol=RTOL)
    for axis in (1, 2, -1):
        moved = lambda a: np.moveaxis(a, 0, axis)
        fn = _maybe_jit(lambda x, y, w: dv.wasserstein_1d(x, y, x_weights=w, p=2, axis=axis), jit)
        np.testing.assert_allclose(fn(moved(x), moved(y), moved(w)), base, rtol=RTOL)


def test_bootstrap_of_one_column_samples_is_scalar():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = rng.standard_normal((48, 3)).astype(np.float32)
    res = dv.bootstrap(dv.wasserstein_1d, x[:, :1], y[:, :1], jax.random.key(0), n_resamples=20)
    assert jnp.shape(res.estimate) == ()
    np.testing.assert_allclose(res.estimate, dv.wasserstein_1d(x[:, 0], y[:, 0]), rtol=RTOL)


def test_bad_axis():
    with pytest.raises(ValueError, match="`axis`"):
        dv.wasserstein_1d(jnp.zeros((5, 2)), jnp.ones((5, 2)), axis=2)


# ---------------------------------------------------------------- scale-free powers


@pytest.mark.parametrize("p", [2, 4, 10, 1.5])
@pytest.mark.parametrize("scale", [1e-30, 1e-6, 1e6, 1e30])
@pytest.mark.parametrize("weighted", [False, True])
def test_homogeneous_in_the_scale_of_the_data(samples, p, scale, weighted):
    # W_p(c x, c y) = c W_p(x, y); in float32 |d|^p would underflow or
    # overflow at these scales (1e-60 or 1e60 for p = 2) without the scale
    # factored out. Reference: POT in float64 at scale 1; rtol 1e-5 (float32
    # sums of O(100) terms; the scaling itself is exact up to one rounding).
    x, y, a, b = samples
    kw = {"x_weights": a, "y_weights": b} if weighted else {}
    ua, vb = (a / a.sum(), b / b.sum()) if weighted else (None, None)
    ref = ot.wasserstein_1d(x.astype(np.float64), y.astype(np.float64), ua, vb, p=p) ** (1 / p)
    got = jax.jit(lambda x, y: dv.wasserstein_1d(x, y, p=p, **kw))(np.float32(scale) * x, np.float32(scale) * y)
    np.testing.assert_allclose(got, scale * ref, rtol=RTOL)


def test_large_spread_and_single_samples():
    # p = 4 with a spread of 1e10 (|d|^4 = 1e40 overflows float32) and
    # p = 10 between single samples (|d|^10 overflows for |d| > 7e3).
    x = np.array([0.0, 1e10, -3e9], np.float32)
    y = np.array([1.0, 2e9, 5e9], np.float32)
    ref = ot.wasserstein_1d(x.astype(np.float64), y.astype(np.float64), p=4) ** 0.25
    np.testing.assert_allclose(dv.wasserstein_1d(x, y, p=4), ref, rtol=RTOL)
    np.testing.assert_allclose(dv.wasserstein_1d([3e4], [-1e4], p=10), 4e4, rtol=RTOL)
    g = jax.grad(lambda a: dv.wasserstein_1d(a, jnp.array([-1e4]), p=10))(jnp.array([3e4]))
    np.testing.assert_allclose(g, [1.0], rtol=RTOL)  # d W / d x = sign(x - y) for one point


# ---------------------------------------------------------------- XLA and host sorts: same answers


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("p", [1, 2])
def test_host_and_xla_sorts_give_the_same_values_and_gradients(sort_path, samples, weighted, p):
    x, y, a, b = samples
    kw = {"x_weights": a, "y_weights": b} if weighted else {}
    xb = jnp.stack([x, 2 * x + 1, -x], axis=1)  # a batch along axis 1

    def run():
        f = lambda x, y: dv.wasserstein_1d(x, y, p=p, **kw)
        return (
            jax.jit(f)(x, y),
            jax.jit(jax.grad(f, argnums=(0, 1)))(x, y),
            jax.jvp(f, (x, y), (jnp.ones_like(x), -jnp.ones_like(y)))[1],
            jax.jit(jax.vmap(jax.grad(f), in_axes=(1, None)))(xb, y),
        )

    sort_path("xla")
    xla = run()
    sort_path("host")
    host = run()
    for got, ref in zip(jax.tree_util.tree_leaves(host), jax.tree_util.tree_leaves(xla)):
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=1e-7)


def _callbacks(fn, *args):
    return jax.jit(fn).lower(*args).as_text().count("callback")


def test_sort_is_chosen_by_total_size():
    # On CPU: XLA's sort below HOST_SORT_MIN_SIZE values in one call, the
    # host call above; under vmap the batch counts, and both samples of a
    # distance share one call.
    if jax.default_backend() != "cpu":
        pytest.skip("the host sort is the CPU path")
    if not _sort.host_callbacks_usable():
        pytest.skip("host calls unusable here: XLA sorts everything (test_host_paths_with_one_core_and_without_buffer_callbacks)")
    small, large = _sort.HOST_SORT_MIN_SIZE // 4, _sort.HOST_SORT_MIN_SIZE
    assert _callbacks(dv.wasserstein_1d, jnp.ones(small), jnp.ones(small)) == 0
    assert _callbacks(dv.wasserstein_1d, jnp.ones(large), jnp.ones(large)) == 1
    assert _callbacks(jax.vmap(dv.wasserstein_1d), jnp.ones((8, small)), jnp.ones((8, small))) == 1
    assert _callbacks(jax.vmap(dv.wasserstein_1d), jnp.ones((2, 64)), jnp.ones((2, 64))) == 0
    assert _callbacks(jax.vmap(jax.vmap(_sort.sort)), jnp.ones((4, 4, small))) == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_xla_integer_key_sort_matches_jnp_sort(dtype):
    # Signed zeros, infinities, ties, subnormals: the order-preserving
    # integer map sorts them as np.sort does (equal values compare equal;
    # XLA's CPU float comparator treats subnormals as zero, NumPy does not).
    with jax.enable_x64(dtype == "float64"):
        x = np.array([3.0, -0.0, 0.0, -np.inf, np.inf, 1e-42, -1e-42, 2.0, 2.0, -5.5, 0.0, -0.0], dtype)
        x = np.stack([x, x[::-1], np.random.default_rng(0).standard_normal(x.size).astype(dtype)])
        got = jax.jit(lambda a: _sort._xla_sort((a,), -1)[0])(x)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, np.sort(x, axis=-1))
        np.testing.assert_array_equal(_sort._xla_sort((x,), 0)[0], np.sort(x, axis=0).T)


# ------------------------------------------- small problems: the inline program on CPU

from divergences import _wasserstein as _wmod  # noqa: E402


@pytest.mark.parametrize("n,m,p", [(128, 128, 1), (128, 128, 2), (128, 128, 3.5), (57, 41, 1), (100, 128, 1),
                                   (1, 1, 1), (1, 3, 1), (7, 7, 2)])
@pytest.mark.parametrize("jit", [False, True])
def test_small_problem_path_equals_pot_and_the_general_path(n, m, p, jit):
    # Oracle: POT's W_p^p (root taken here); the general path (its own sorts) to float32 rounding.
    rng = np.random.default_rng(n + 7 * m)
    x = rng.integers(-4, 5, n).astype(np.float32) * 0.5 + rng.standard_normal(n).astype(np.float32) * (n % 2)
    y = (1.5 * rng.standard_normal(m) + 0.3).astype(np.float32)
    assert _wmod._inline_fits(n, m, p)
    got = _maybe_jit(lambda x, y: dv.wasserstein_1d(x, y, p=p), jit)(x, y)
    steps = jax.jit(lambda x, y: _wmod._w1d_steps(x, y, p))(x, y)
    general = jax.jit(lambda x, y: _wmod._w(x, y, None, None, p))(x, y)
    ref = ot.wasserstein_1d(x.astype(np.float64), y.astype(np.float64), p=p) ** (1 / p)
    np.testing.assert_allclose(got, ref, rtol=RTOL)
    np.testing.assert_allclose(steps, general, rtol=RTOL)


@pytest.mark.parametrize("p", [1, 2])
def test_small_problem_path_gradients_vmap_and_nan(p):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal(64), jnp.float32)
    y = jnp.asarray(rng.standard_normal(64) + 1, jnp.float32)
    general = lambda x, y: _wmod._w(x, y, None, None, p)  # noqa: E731
    for argnums in (0, 1):
        np.testing.assert_allclose(jax.jit(jax.grad(lambda x, y: dv.wasserstein_1d(x, y, p=p), argnums))(x, y),
                                   jax.grad(general, argnums)(x, y), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(jax.jacfwd(lambda x: dv.wasserstein_1d(x, y, p=p))(x),
                               jax.grad(general)(x, y), rtol=1e-5, atol=1e-8)
    xs, ys = jnp.stack([x, y, 2 * x]), jnp.stack([y, x, y])
    np.testing.assert_allclose(jax.vmap(lambda a, b: dv.wasserstein_1d(a, b, p=p))(xs, ys),
                               [general(a, b) for a, b in zip(xs, ys)], rtol=RTOL)
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        assert np.isnan(jax.jit(lambda x, y: dv.wasserstein_1d(x, y, p=p))(x.at[5].set(bad), y))
        assert np.isnan(jax.jit(lambda x, y: dv.wasserstein_1d(x, y, p=p))(x, y.at[0].set(bad)))
    assert np.all(np.isfinite(jax.grad(lambda x: dv.wasserstein_1d(x, x[::-1], p=p))(x)))


def test_small_problem_program_is_estimated_cheap_on_cpu():
    # The path exists for one property of the compiled program: XLA's CPU
    # client runs it on the calling thread when HloCostAnalysis estimates it
    # under 1,000 flops (see divergences._wasserstein). If a new XLA changes
    # that estimate, this fails, and the path is only a loop over a switch.
    if jax.default_backend() != "cpu":
        pytest.skip("the inline path is the CPU path")
    for n, m, p in [(128, 128, 1), (128, 128, 2), (100, 128, 1), (3, 2, 1)]:
        flops = jax.jit(lambda x, y: dv.wasserstein_1d(x, y, p=p)).lower(jnp.ones(n), jnp.ones(m)).compile()
        assert flops.cost_analysis()["flops"] < 1000, (n, m, p)
    # The general path, for comparison, is over it at this size.
    general = jax.jit(lambda x, y: _wmod._w1d_checked(x, y, 1)).lower(jnp.ones(128), jnp.ones(128)).compile()
    assert general.cost_analysis()["flops"] >= 1000
    # Batches, weights and larger sizes take the general path (no loop).
    for fn, args in [(jax.vmap(dv.wasserstein_1d), (jnp.ones((4, 128)),) * 2),
                     (lambda x, y: dv.wasserstein_1d(x, y, x_weights=jnp.ones(128)), (jnp.ones(128),) * 2),
                     (dv.wasserstein_1d, (jnp.ones(129),) * 2)]:
        assert "while" not in jax.jit(fn).lower(*args).as_text()


HOST_PATH_SCRIPT = """
import os, sys
one_core, buffers = sys.argv[1] == "1", sys.argv[2] == "1"
if one_core:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
import numpy as np, jax, jax.numpy as jnp
import divergences as dv
from divergences import _sort
if not buffers:  # as on a JAX without buffer callbacks: host_call is a pure_callback
    _sort._buffer_callback = None
rng = np.random.default_rng(0)
x = jnp.asarray(rng.standard_normal((2500, 128)), jnp.float32)
sort2 = jax.jit(lambda a, b: _sort.sort_many((a, b), 0))
perm = jax.jit(lambda a: _sort.argsort(a, 0))
where = jax.jit(lambda a, v: _sort.searchsorted(a, v, side="right"))
calls = sum(f.lower(*args).as_text().count("callback") for f, args in
            [(sort2, (x, x + 1)), (perm, (x,)), (where, (x.T, x.T[:, :50]))])
for _ in range(6):  # repeated: the wait for the arguments did not always hang on the first call
    got = sort2(x, x + 1)[0]
np.testing.assert_array_equal(got, np.sort(np.asarray(x), 0).T)
np.testing.assert_array_equal(perm(x), np.argsort(np.asarray(x), 0, kind="stable").T)
rows = np.sort(np.asarray(x).T, -1)
np.testing.assert_array_equal(where(rows, rows[:, :50]), [np.searchsorted(r, r[:50], "right") for r in rows])
a, b = jnp.asarray(rng.standard_normal((2500, 2)), jnp.float32), jnp.asarray(rng.standard_normal((2500, 2)), jnp.float32)
for _ in range(3):
    sw = float(dv.sliced_wasserstein(a, b, jax.random.key(0), n_projections=128))
    kl = float(dv.knn_kl_divergence(a, b, k=5))
print(_sort.host_callbacks_usable(), calls, sw, kl)
"""


@pytest.mark.parametrize("one_core,buffers", [(True, True), (True, False), (False, False)])
def test_host_paths_with_one_core_and_without_buffer_callbacks(one_core, buffers):
    # Host calls are buffer callbacks where JAX has them, and pure_callbacks
    # otherwise. A pure_callback's arguments are copied on the CPU client's
    # thread pool, one thread per usable core; with one core that copy waited
    # forever (JAX 0.10), so that case takes the XLA paths. A buffer callback
    # copies nothing and works with one core. Each child process must finish,
    # with the sorts, permutations and insertion points of NumPy, and the
    # sliced and kNN values of this process (default paths) to float rounding.
    import subprocess
    import sys

    if one_core and not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this OS")
    if buffers and _sort._buffer_callback is None:
        pytest.skip("this JAX has no buffer callbacks")
    args = [sys.executable, "-c", HOST_PATH_SCRIPT, str(int(one_core)), str(int(buffers))]
    out = subprocess.run(args, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    usable, calls, sw, kl = out.stdout.split()
    assert usable == str(buffers or not one_core)
    assert (int(calls) == 3) == (usable == "True") and int(calls) in (0, 3)
    rng = np.random.default_rng(0)
    rng.standard_normal((2500, 128))
    a, b = jnp.asarray(rng.standard_normal((2500, 2)), jnp.float32), jnp.asarray(rng.standard_normal((2500, 2)), jnp.float32)
    np.testing.assert_allclose(float(sw), dv.sliced_wasserstein(a, b, jax.random.key(0), n_projections=128), rtol=1e-6)
    np.testing.assert_allclose(float(kl), dv.knn_kl_divergence(a, b, k=5), rtol=1e-6)
