"""The calling conventions of the public API: keys, `checked` with options, static options, names.

Oracles: each call through a new route (a key by keyword, `checked`, a
kernel or divergence alias, `static_argnames`) is compared with the same
computation through the established route; values agree to float32
rounding (rtol 1e-5: the same arithmetic, compiled in a different program).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import divergences as dv
from divergences import _validation as v

RTOL = 1e-5


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 2)).astype(np.float32), (rng.normal(size=(30, 2)) + 0.5).astype(np.float32)


# ---------------------------------------------------------------------------
# PRNG keys.

BAD_KEYS = {
    "python int": 0,
    "string": "seed",
    "float array": np.zeros(2, np.float32),
    "batch of typed keys": jax.random.split(jax.random.key(0), 3),
    "batch of raw keys": jax.random.split(jax.random.PRNGKey(0), 3),
}


@pytest.mark.parametrize("bad", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
def test_check_key_refuses_what_is_not_one_key(bad):
    with pytest.raises(ValueError, match=r"^`key` ") as err:
        v.check_key("key", bad)
    message = str(err.value)
    assert "jax.random.key(0)" in message or "single key" in message


@pytest.mark.parametrize("good", [jax.random.key(3), jax.random.PRNGKey(3)], ids=["typed", "raw"])
def test_check_key_accepts_typed_and_raw_keys(good):
    out = v.check_key("key", good)
    # The same key: the same random numbers.
    np.testing.assert_array_equal(np.asarray(jax.random.uniform(out, (3,))), np.asarray(jax.random.uniform(good, (3,))))


def test_check_key_is_a_static_check_under_jit():
    with pytest.raises(ValueError, match=r"^`key` is a batch"):
        jax.jit(lambda k: v.check_key("key", k))(jax.random.split(jax.random.key(0), 2))


def _mean_gap(a, b):
    return jnp.mean(b) - jnp.mean(a)


def _critic(z):
    return jnp.sum(z**2, axis=-1)


# (function, positional args before the key, keyword options); the key is the
# argument named `key` of each signature.
KEYED = {
    "two_sample_test": (dv.two_sample_test, "xy", dict(n_permutations=9)),
    "bootstrap": (dv.bootstrap, "est_xy", dict(n_resamples=4)),
    "classifier_two_sample_test": (dv.classifier_two_sample_test, "xy", dict(n_steps=3, width=8, depth=1)),
    "gradient_penalty": (dv.gradient_penalty, "gp", {}),
    "random_fourier_features": (dv.random_fourier_features, "none", dict(dim=2, num_features=8)),
    "estimate_f_divergence": (dv.estimate_f_divergence, "xy", dict(steps=3, width=8, depth=1, batch_size=16)),
    "estimate_wasserstein_dual": (dv.estimate_wasserstein_dual, "xy", dict(steps=3, width=8, depth=1, batch_size=16)),
    "sliced_wasserstein": (dv.sliced_wasserstein, "xy", dict(n_projections=4)),
    "max_sliced_wasserstein": (dv.max_sliced_wasserstein, "xy", dict(n_projections=4)),
    "kernel_inception_distance": (dv.kernel_inception_distance, "xy", dict(n_subsets=3, subset_size=10)),
}


def _leading(kind, xy):
    x, y = xy
    return {
        "xy": (x, y),
        "est_xy": (_mean_gap, x[:, 0], y[:, 0]),
        "gp": (_critic, x[:30], y),
        "none": (),
    }[kind]


def _values(out):
    return [np.asarray(leaf, np.float64) for leaf in jax.tree_util.tree_leaves(out)]


def test_every_library_function_with_a_key_is_listed():
    # Inspecting the signatures, so that a new random function is not left out.
    with_key = {
        name for name in dv.__all__
        if callable(getattr(dv, name)) and not inspect.isclass(getattr(dv, name))
        and "key" in inspect.signature(getattr(dv, name)).parameters
    }
    assert with_key == set(KEYED)


@pytest.mark.parametrize("name", list(KEYED))
def test_key_by_keyword_equals_key_by_position(name, xy):
    fn, kind, options = KEYED[name]
    args = _leading(kind, xy)
    key = jax.random.key(7)
    assert inspect.signature(fn).parameters["key"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    by_position = fn(*args, key, **options)
    by_keyword = fn(*args, key=key, **options)
    for a, b in zip(_values(by_position), _values(by_keyword)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(KEYED))
def test_a_key_that_is_not_a_prng_key_is_refused(name, xy, request):
    fn, kind, options = KEYED[name]
    args = _leading(kind, xy)
    with pytest.raises(ValueError, match=r"^`key` must be a PRNG key.*jax\.random\.key\(0\)"):
        fn(*args, 0, **options)


def test_statistic_and_estimator_keys(xy):
    x, y = xy
    proj = jax.random.key(5)
    res = dv.two_sample_test(x, y, jax.random.key(0), statistic="sliced_wasserstein", n_permutations=9,
                             n_projections=8, statistic_key=proj)
    np.testing.assert_allclose(float(res.statistic), float(dv.sliced_wasserstein(x, y, proj, n_projections=8)), rtol=RTOL)
    boot = dv.bootstrap(dv.sliced_wasserstein, x, y, jax.random.key(0), n_resamples=3, estimator_key=proj, n_projections=8)
    np.testing.assert_allclose(float(boot.estimate), float(dv.sliced_wasserstein(x, y, proj, n_projections=8)), rtol=RTOL)
    with pytest.raises(ValueError, match=r"^`statistic_key` is only used"):
        dv.two_sample_test(x, y, jax.random.key(0), statistic="mmd", statistic_key=proj)
    with pytest.raises(ValueError, match=r"^`estimator_key` must be a PRNG key"):
        dv.bootstrap(dv.sliced_wasserstein, x, y, jax.random.key(0), estimator_key=1)


# ---------------------------------------------------------------------------
# `checked` with every kind of option.


def _checked_cases(xy):
    x, y = xy
    p = np.array([[0.2, 0.5], [0.8, 0.5]], np.float32)
    q = np.array([[0.5, 0.25], [0.5, 0.75]], np.float32)
    edges = np.linspace(-3, 3, 7).astype(np.float32)
    k = jax.random.key(1)
    return {
        "axis": (dv.kl_divergence, (p, q), dict(axis=0)),
        "name": (dv.f_divergence, (p, q, "squared_hellinger"), dict(axis=0)),
        "n_projections": (dv.sliced_wasserstein, (x, y, k), dict(n_projections=8)),
        "p (order)": (dv.sliced_wasserstein, (x, y, k), dict(n_projections=8, p=1)),
        "p of wasserstein_1d": (dv.wasserstein_1d, (x[:, 0], y[:, 0]), dict(p=3)),
        "k": (dv.knn_kl_divergence, (x, y), dict(k=3)),
        "bins (count)": (dv.binned_divergence, (x[:, 0], y[:, 0]), dict(bins=5, divergence="js")),
        "bins (edges)": (dv.binned_divergence, (x[:, 0], y[:, 0]), dict(bins=edges, divergence="total_variation")),
        "kernel and float bandwidth": (dv.mmd, (x, y), dict(kernel="laplace", bandwidth=1.5, estimator="biased")),
        "array bandwidth": (dv.mmd, (x, y), dict(bandwidth=jnp.array([0.5, 2.0]), block_size=16)),
        "Kernel instance": (dv.mmd, (x, y), dict(kernel=dv.GaussianKernel(1.0))),
        "test options": (dv.two_sample_test, (x, y, k), dict(statistic="energy", n_permutations=19)),
    }


CHECKED_CASES = list(_checked_cases((np.zeros((2, 2)), np.zeros((2, 2)))))


@pytest.mark.parametrize("case", CHECKED_CASES)
def test_checked_accepts_options(case, xy):
    fn, args, options = _checked_cases(xy)[case]
    expected = fn(*args, **options)
    got = dv.checked(fn)(*args, **options)
    for a, b in zip(_values(expected), _values(got)):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-6)


def test_checked_still_raises_with_options_and_reuses_its_compilation():
    q = jnp.array([[0.5], [0.5]])
    safe = dv.checked(dv.kl_divergence)
    with pytest.raises(ValueError, match=r"^`p` has negative entries"):
        safe(jnp.array([[1.5], [-0.5]]), q, axis=0)
    # A second call with the same structure and new values: the same program, a correct value.
    np.testing.assert_allclose(safe(jnp.array([[0.25], [0.75]]), q, axis=0), dv.kl_divergence(jnp.array([0.25, 0.75]), jnp.array([0.5, 0.5])), rtol=RTOL)


def test_checked_tells_equal_options_of_different_types_apart(xy):
    # 1 and True hash alike: a cached program must not serve the other (`one_sided` must be a bool).
    x, y = xy
    safe = dv.checked(dv.gradient_penalty)
    np.testing.assert_allclose(safe(_critic, x, x, jax.random.key(0), one_sided=True), dv.gradient_penalty(_critic, x, x, jax.random.key(0), one_sided=True), rtol=RTOL)
    with pytest.raises(ValueError, match=r"^`one_sided` must be a bool"):
        safe(_critic, x, x, jax.random.key(0), one_sided=1)


def test_checked_of_a_non_callable_names_fn():
    with pytest.raises(ValueError, match=r"^`fn` must be a callable"):
        dv.checked(dv.mmd(np.ones((3, 1)), np.zeros((3, 1)), bandwidth=1.0))


# ---------------------------------------------------------------------------
# Structural options passed as traced values under jit.

P2 = np.array([[0.2, 0.5], [0.8, 0.5]], np.float32)
Q2 = np.array([[0.5, 0.25], [0.5, 0.75]], np.float32)
_X = np.random.default_rng(1).normal(size=(20, 2)).astype(np.float32)
_Y = _X + 1.0

TRACED = {
    "axis": (lambda a: dv.kl_divergence(P2, Q2, axis=a), 0),
    "k": (lambda a: dv.knn_kl_divergence(_X, _Y, k=a), 3),
    "bins": (lambda a: dv.binned_divergence(_X[:, 0], _Y[:, 0], bins=a), 4),
    "block_size": (lambda a: dv.mmd(_X, _Y, bandwidth=1.0, block_size=a), 8),
    "n_projections": (lambda a: dv.sliced_wasserstein(_X, _Y, jax.random.key(0), n_projections=a), 8),
    "n_permutations": (lambda a: dv.two_sample_test(_X, _Y, jax.random.key(0), n_permutations=a), 9),
    "p": (lambda a: dv.wasserstein_1d(_X[:, 0], _Y[:, 0], p=a), 2),
    "holdout": (lambda a: dv.estimate_wasserstein_dual(_X, _Y, jax.random.key(0), holdout=a, steps=2), 0.3),
    "train_fraction": (lambda a: dv.classifier_two_sample_test(_X, _Y, jax.random.key(0), train_fraction=a, n_steps=2), 0.5),
}


@pytest.mark.parametrize("name", list(TRACED))
def test_a_traced_structural_option_asks_to_mark_it_static(name, request):
    fn, value = TRACED[name]
    with pytest.raises(ValueError, match=rf"^`{name}` is a traced value.*static_argnames"):
        jax.jit(fn)(value)


def test_marked_static_it_works():
    fn = jax.jit(dv.kl_divergence, static_argnames="axis")
    np.testing.assert_allclose(fn(P2, Q2, axis=0), dv.kl_divergence(P2.T, Q2.T), rtol=RTOL)


# ---------------------------------------------------------------------------
# Names: kernel aliases, one name for total variation.


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("alias,name", [("rbf", "gaussian"), ("imq", "inverse_multiquadric"), ("laplacian", "laplace")])
def test_kernel_aliases(alias, name, jit, xy):
    x, y = xy
    f = (lambda a, b, kernel: dv.mmd(a, b, kernel=kernel, bandwidth=1.3))
    if jit:
        f = jax.jit(f, static_argnames="kernel")
    np.testing.assert_array_equal(np.asarray(f(x, y, alias)), np.asarray(f(x, y, name)))
    assert type(dv.resolve_kernel(alias, 1.0, x, y)) is dv.KERNELS[name]


def test_kernel_alias_in_the_two_sample_test(xy):
    x, y = xy
    a = dv.two_sample_test(x, y, jax.random.key(0), kernel="rbf", bandwidth=1.0, n_permutations=19)
    b = dv.two_sample_test(x, y, jax.random.key(0), kernel="gaussian", bandwidth=1.0, n_permutations=19)
    np.testing.assert_array_equal(np.asarray(a.null_statistics), np.asarray(b.null_statistics))


def test_inverse_multiquadric_kernel_formula():
    a, b = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])
    np.testing.assert_allclose(dv.InverseMultiquadricKernel(2.0)(a, b), [[(1 + 25 / 4) ** -0.5]], rtol=RTOL)


def test_total_variation_has_one_name_and_tv_is_its_alias(xy):
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.5, 0.25, 0.25])
    tv = 0.5 * np.abs(p - q).sum()
    for spelling in ("total_variation", "tv"):
        np.testing.assert_allclose(dv.f_divergence(p, q, spelling), tv, rtol=RTOL)
    x, y = xy
    np.testing.assert_array_equal(
        np.asarray(dv.binned_divergence(x[:, 0], y[:, 0], bins=6, divergence="tv")),
        np.asarray(dv.binned_divergence(x[:, 0], y[:, 0], bins=6, divergence="total_variation")),
    )
    assert "total_variation" in dv.F_DIVERGENCES and "tv" not in dv.F_DIVERGENCES
    with pytest.raises(ValueError, match=r"^`divergence` must be one of .*aliases: 'tv' for 'total_variation'"):
        dv.binned_divergence(x[:, 0], y[:, 0], bins=6, divergence="hellinger")


# ---------------------------------------------------------------------------
# Public surface.


def test_all_is_complete_and_exact():
    public = {n for n in dir(dv) if not n.startswith("_") and not inspect.ismodule(getattr(dv, n))}
    assert public <= set(dv.__all__)
    assert all(hasattr(dv, n) for n in dv.__all__)
    assert "closed_form" in dv.__all__
    assert len(dv.__all__) == len(set(dv.__all__))


def test_the_documented_kernel_classes_are_exported(xy):
    x, y = xy
    for cls in ("Kernel", "GaussianKernel", "LaplaceKernel", "InverseMultiquadricKernel", "EnergyKernel", "CallableKernel"):
        assert cls in dv.__all__ and inspect.isclass(getattr(dv, cls))
    # A Kernel instance passed to mmd gives what its name gives.
    np.testing.assert_allclose(dv.mmd(x, y, kernel=dv.LaplaceKernel(2.0)), dv.mmd(x, y, kernel="laplace", bandwidth=2.0), rtol=RTOL)


def test_closed_form_exposes_only_its_functions():
    cf = dv.closed_form
    listed = [n for n in dir(cf) if not n.startswith("_")]
    assert sorted(listed) == sorted(cf.__all__)
    assert not {"jax", "jnp", "erf", "ArrayLike", "annotations", "v"} & set(listed)
    assert all(inspect.isfunction(getattr(cf, n)) for n in cf.__all__)
