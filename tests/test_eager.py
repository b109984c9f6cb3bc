"""Eager calls run as one compiled program (`_validation.compiled_when_eager`).

Oracles: the undecorated function (``fn.__wrapped__``) called eagerly, op by
op: the same values to float32 rounding (rtol 1e-5: the same arithmetic,
fused into one program) and the same ``ValueError``, message included, for
every kind of bad value the function checks; and a toy function that counts
its traces, for the route each call takes (compiled, cached, recomputed,
direct).
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

_rng = np.random.default_rng(0)
P = _rng.dirichlet(np.ones(6), size=3).astype(np.float32)  # [3, 6]: three distributions
Q = _rng.dirichlet(np.ones(6), size=3).astype(np.float32)
X = _rng.normal(size=(50, 2)).astype(np.float32)
Y = (_rng.normal(size=(40, 2)) + 0.5).astype(np.float32)
W = _rng.uniform(0.5, 1.5, size=50).astype(np.float32)

_neg = P.copy()
_neg[0, 0] = -0.1
_nan_p = P.copy()
_nan_p[1, 2] = np.nan
_nan_x = X[:, 0].copy()
_nan_x[7] = np.nan
_inf_y = Y[:, 0].copy()
_inf_y[3] = -np.inf

KEY = jax.random.key(4)
EDGES = np.linspace(-2.0, 2.5, 9, dtype=np.float32)
THETA = _rng.normal(size=(2, 12)).astype(np.float32)
_nan_cloud = X.copy()
_nan_cloud[5, 1] = np.nan
_inf_theta = THETA.copy()
_inf_theta[1, 3] = np.inf
_nan_theta = THETA.copy()
_nan_theta[0, 0] = np.nan

# name -> (function, valid calls as (args, kwargs), bad calls as (args, kwargs, message start))
CASES = {
    "kl_divergence": (
        dv.kl_divergence,
        [((P, Q), {}), ((P.T, Q.T), {"axis": 0}), ((jnp.asarray(P), Q[0]), {})],
        [((_neg, Q), {}, "`p` has negative"), ((P, _nan_p), {}, "`q` contains NaN"), ((P * 2, Q), {}, "`p` does not sum to 1")],
    ),
    "total_variation": (
        dv.total_variation,
        [((P, Q), {}), ((P.T, Q.T), {"axis": 0})],
        [((P, _neg), {}, "`q` has negative"), ((P, Q * 0.5), {}, "`q` does not sum to 1")],
    ),
    "js_divergence": (
        dv.js_divergence,
        [((P, Q), {}), ((P.astype(np.float16), Q), {})],
        [((_nan_p, Q), {}, "`p` contains NaN")],
    ),
    "f_divergence": (
        dv.f_divergence,
        [((P, Q, "squared_hellinger"), {}), ((P, Q), {"f": "pearson_chi2", "axis": 1})],
        [((P, _neg, "reverse_kl"), {}, "`q` has negative")],
    ),
    "wasserstein_1d": (
        dv.wasserstein_1d,
        [
            ((X[:, 0], Y[:, 0]), {}),
            ((X[:, 0], Y[:, 0]), {"p": 2}),
            ((X, Y[:40]), {}),
            ((X[:, 0], Y[:, 0]), {"x_weights": W}),
            ((np.tile(X[:, :1], (60, 1)), np.tile(Y[:, :1], (80, 1))), {"p": 1.5}),  # the general path
        ],
        [
            ((_nan_x, Y[:, 0]), {}, "`x` contains NaN"),
            ((X[:, 0], _inf_y), {"p": 3}, "`y` contains NaN or infinite"),
            ((X[:, 0], Y[:, 0]), {"x_weights": -W}, "`x_weights` has negative"),
            ((X[:, 0], Y[:, 0]), {"x_weights": W * 0}, "`x_weights` sums to 0"),
        ],
    ),
    "sliced_wasserstein": (
        dv.sliced_wasserstein,
        [
            ((X, Y, KEY), {"n_projections": 16}),
            ((X, Y, KEY), {"n_projections": 8, "p": 1, "orthogonal": True}),
            ((X, Y, None), {"projections": THETA, "x_weights": W}),
        ],
        [
            ((_nan_cloud, Y, KEY), {}, "`x` contains NaN"),
            ((X, Y, None), {"projections": _inf_theta}, "`projections` contains NaN or infinite"),
            ((X, Y, KEY), {"y_weights": -W[:40]}, "`y_weights` has negative"),
        ],
    ),
    "max_sliced_wasserstein": (
        dv.max_sliced_wasserstein,
        [((X, Y, KEY), {"n_projections": 16}), ((X, Y, KEY), {"n_projections": 8, "refine_steps": 5, "step_size": 0.05})],
        [((X, _nan_cloud[:40], KEY), {"refine_steps": 3}, "`y` contains NaN"), ((X, Y, None), {"projections": _nan_theta}, "`projections` contains NaN")],
    ),
    "frechet_distance": (
        dv.frechet_distance,
        [((X, Y), {}), ((X[:, :1], Y[:, :1]), {})],
        [((_nan_cloud, Y), {}, "`x_features` contains NaN"), ((X, -np.inf * Y), {}, "`y_features` contains NaN or infinite")],
    ),
    "mmd": (
        dv.mmd,
        [
            ((X, Y), {}),
            ((X, Y), {"bandwidth": 0.7, "estimator": "biased"}),
            ((X, Y), {"kernel": "laplace", "bandwidth": 2, "block_size": 16}),
            ((X, Y), {"kernel": "energy", "y_weights": W[:40]}),
            ((X, Y), {"bandwidth": np.float32(1.5), "estimator": "linear"}),
        ],
        [
            ((_nan_cloud, Y), {}, "`x` contains NaN"),
            ((X, Y), {"bandwidth": -1.0}, "`bandwidth` must be positive"),
            ((X, Y), {"bandwidth": 1.0, "x_weights": -W}, "`x_weights` has negative"),
            ((X, Y), {"y_weights": W[:40] * 0}, "`y_weights` sums to 0"),
        ],
    ),
    "binned_divergence": (
        dv.binned_divergence,
        [
            ((X[:, 0], Y[:, 0]), {"bins": 10}),
            ((X[:, :1], Y[:, 0]), {"bins": EDGES, "divergence": "js"}),
            ((X[:, 0], Y[:, 0]), {"bins": 7, "divergence": "tv"}),
        ],
        [
            ((_nan_x, Y[:, 0]), {"bins": 10}, "`x` contains NaN"),
            ((X[:, 0], Y[:, 0]), {"bins": EDGES[::-1]}, "`bins` as edges must be finite and strictly increasing"),
            ((X[:, 0], Y[:, 0]), {"bins": np.array([10.0, 11.0, 12.0], np.float32)}, "`x` has no sample inside the bins"),
        ],
    ),
}

_WRAPPER_CODE = v.compiled_when_eager(lambda: None).__code__


def test_every_compiled_public_function_is_tested_here():
    compiled = {
        name
        for name in dv.__all__
        if inspect.isfunction(getattr(dv, name)) and getattr(getattr(dv, name), "__code__", None) is _WRAPPER_CODE
    }
    assert compiled == set(CASES)


def _cases(kind):
    for name, (fn, good, bad) in CASES.items():
        for i, case in enumerate(good if kind == "good" else bad):
            yield pytest.param(fn, *case, id=f"{name}-{i}")


def _jitted(fn, args, kwargs):
    """``fn(*args, **kwargs)`` under the caller's own ``jit``, the positional arrays traced."""
    arrays = [i for i, a in enumerate(args) if isinstance(a, (np.ndarray, jax.Array))]

    def call(*traced):
        full = list(args)
        for i, a in zip(arrays, traced):
            full[i] = a
        return fn(*full, **kwargs)

    return jax.jit(call)(*(args[i] for i in arrays))


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("fn,args,kwargs", list(_cases("good")))
def test_values_equal_the_op_by_op_call(fn, args, kwargs, jit):
    expected = fn.__wrapped__(*args, **kwargs)
    got = _jitted(fn, args, kwargs) if jit else fn(*args, **kwargs)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("fn,args,kwargs,message", list(_cases("bad")))
def test_bad_values_raise_the_eager_error(fn, args, kwargs, message):
    with pytest.raises(ValueError) as eager:
        fn.__wrapped__(*args, **kwargs)
    assert str(eager.value).startswith(message)
    with pytest.raises(ValueError) as fast:
        fn(*args, **kwargs)
    assert str(fast.value) == str(eager.value)
    # Under jit the same call is NaN, not an error (the contract the recomputation relies on).
    assert np.isnan(np.asarray(_jitted(fn, args, kwargs))).any()


@pytest.mark.parametrize(
    "fn,call",
    [
        (dv.kl_divergence, lambda f: f(P, Q[:, :4])),  # shapes that do not broadcast: raised while tracing
        (dv.kl_divergence, lambda f: f(P, Q, axis=np.asarray(0))),  # an option as an array: traced in the compiled route
        (dv.kl_divergence, lambda f: f(P, Q, axis=3)),
        (dv.mmd, lambda f: f(X, Y, kernel="energy", bandwidth=1.0)),  # a traced bandwidth where none is allowed
        (dv.sliced_wasserstein, lambda f: f(X, Y[:, :1], KEY)),
    ],
    ids=["broadcast", "axis-array", "axis-range", "energy-bandwidth", "dimensions"],
)
def test_shape_and_option_errors_are_the_eager_ones(fn, call):
    with pytest.raises(ValueError) as eager:
        call(fn.__wrapped__)
    with pytest.raises(ValueError) as fast:
        call(fn)
    assert str(fast.value) == str(eager.value)


# ---------------------------------------------------------------------------
# The route of each call, on a toy function.


def _toy():
    seen = []

    @v.compiled_when_eager
    def toy(x, *, scale=1.0, name="sum"):
        seen.append(isinstance(x, jax.core.Tracer))
        x = v.as_float_array("x", x)
        ok = v.require("x", x >= 0, "has negative entries")
        value = (jnp.sum(x) if name == "sum" else jnp.max(x)) * scale
        return jnp.where(ok, value, jnp.nan)

    return toy, seen


def test_arrays_are_traced_once_per_signature_and_python_values_are_static():
    toy, seen = _toy()
    x = np.arange(4.0, dtype=np.float32)
    assert float(toy(x)) == 6.0 and float(toy(x + 1)) == 10.0
    assert seen == [True]  # one trace serves both calls
    assert float(toy(x, scale=2.0)) == 12.0 and float(toy(x, scale=2)) == 12.0
    assert seen == [True, True, True]  # 2.0 and 2 are equal, but of different types: two programs
    assert float(toy(x, name="max")) == 3.0 and len(seen) == 4
    assert float(toy(x[:2])) == 1.0 and len(seen) == 5  # a new shape: jit traces again


def test_other_calls_go_straight_to_the_function():
    toy, seen = _toy()
    assert float(toy([1.0, 2.0])) == 3.0  # a list: eager, op by op
    assert seen == [False]
    assert float(jax.jit(toy)(jnp.ones(3))) == 3.0  # inside the caller's jit: traced by it, once
    assert seen == [False, True]
    np.testing.assert_allclose(jax.grad(lambda x: toy(x, scale=3.0))(jnp.ones(2)), [3.0, 3.0])
    np.testing.assert_allclose(jax.vmap(toy)(jnp.ones((2, 3))), [3.0, 3.0])


def test_a_nan_result_is_recomputed_eagerly_and_raises():
    toy, seen = _toy()
    with pytest.raises(ValueError, match=r"^`x` has negative entries$"):
        toy(np.array([1.0, -1.0], np.float32))
    assert seen == [True, False]  # compiled (NaN), then the eager call that raises
    # Without the recomputation the compiled route would have returned NaN.
    assert np.isnan(jax.jit(toy)(np.array([1.0, -1.0], np.float32)))


def test_the_cache_keeps_the_most_recent_signatures(monkeypatch):
    monkeypatch.setattr(v, "_EAGER_CACHE_SIZE", 4)  # read at each call; the default holds 64
    toy, seen = _toy()
    x = np.ones(2, np.float32)
    for s in range(5):
        toy(x, scale=float(s))
    assert len(seen) == 5
    toy(x, scale=4.0)  # the most recent: cached
    toy(x, scale=1.0)  # kept, and now the most recent
    assert len(seen) == 5
    toy(x, scale=0.0)  # the oldest: evicted, traced again
    assert len(seen) == 6


def test_traced_options_compile_once_for_every_value():
    seen = []

    @v.compiled_when_eager(traced=("scale",))
    def toy(x, *, scale=1.0, power=1):
        seen.append(isinstance(scale, jax.core.Tracer))
        return jnp.sum(x**power) * scale

    x = np.arange(3.0, dtype=np.float32)
    assert [float(toy(x, scale=s)) for s in (2.0, 3.0, 0.5)] == [6.0, 9.0, 1.5]
    assert seen == [True]  # a bandwidth sweep: one program
    assert float(toy(x, scale=1.0, power=2)) == 5.0 and seen == [True, True]  # other options stay static
