"""The rational-quadratic spline, its coupling layer, the Neural Spline Flow and the ``coupling="spline"`` objective.

References: the spline interpolates its knots with the knot derivatives
(Gregory and Delbourgo 1982), knots computed here independently in NumPy;
the log-determinant against ``slogdet`` of the autodiff Jacobian; the density
against quadrature (total mass 1); the inverse against the forward map.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import divergences as dv
from divergences import models
from divergences.train import _likelihood_objectives as lo


def _maybe_jit(f, jit):
    return jax.jit(f) if jit else f


def _raw(key, shape, k, scale=1.0, dtype=jnp.float32):
    kw, kh, kd = jax.random.split(key, 3)
    return (scale * jax.random.normal(kw, shape + (k,), dtype), scale * jax.random.normal(kh, shape + (k,), dtype),
            scale * jax.random.normal(kd, shape + (k - 1,), dtype))


# ---------------------------------------------------------------- the spline

@pytest.mark.parametrize("jit", [False, True])
def test_spline_is_identity_at_zero_parameters(jit):
    x = jnp.linspace(-6.0, 6.0, 101)
    z = jnp.zeros((101, 8))
    y, log_d = _maybe_jit(lambda x: models.rational_quadratic_spline(x, z, z, z[:, :7], bound=3.0), jit)(x)
    np.testing.assert_allclose(y, x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(log_d, 0.0, rtol=0, atol=1e-6)


def test_spline_interpolates_its_knots_with_the_knot_derivatives():
    # knots and derivatives built here in NumPy from the documented parameterisation
    bound, k, mins = 2.5, 6, 1e-3
    rng = np.random.default_rng(0)
    rw, rh, rd = rng.normal(size=k), rng.normal(size=k), rng.normal(size=k - 1)

    def knots(raw):
        share = mins + (1 - mins * k) * np.exp(raw) / np.exp(raw).sum()
        return np.concatenate([[-bound], -bound + 2 * bound * np.cumsum(share)])

    xs, ys = knots(rw), knots(rh)
    deriv = np.concatenate([[1.0], mins + np.log1p(np.exp(rd + np.log(np.expm1(1 - mins)))), [1.0]])
    with jax.enable_x64(True):
        args = tuple(jnp.broadcast_to(jnp.asarray(a), (k + 1, a.size)) for a in (rw, rh, rd))
        y, log_d = models.rational_quadratic_spline(jnp.asarray(xs), *args, bound=bound, min_derivative=mins)
        np.testing.assert_allclose(y, ys, rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.exp(log_d), deriv, rtol=1e-10)


@pytest.mark.parametrize("jit", [False, True])
def test_spline_inverse_and_derivative_are_exact_including_the_tails(jit):
    with jax.enable_x64(True):
        n, k, bound = 2000, 10, 3.0
        raw = _raw(jax.random.key(1), (n,), k, scale=2.0, dtype=jnp.float64)
        x = 2.5 * jax.random.normal(jax.random.key(2), (n,), jnp.float64)  # about a quarter in the tails
        x = x.at[:4].set(jnp.array([-bound, bound, -7.0, 9.0]))

        def check(x, *raw):
            y, log_d = models.rational_quadratic_spline(x, *raw, bound=bound)
            x_back, log_d_inv = models.rational_quadratic_spline(y, *raw, bound=bound, inverse=True)
            grad = jax.vmap(jax.grad(lambda u, *r: models.rational_quadratic_spline(u, *r, bound=bound)[0]))(x, *raw)
            return y, log_d, x_back, log_d_inv, grad

        y, log_d, x_back, log_d_inv, grad = _maybe_jit(check, jit)(x, *raw)
        tails = jnp.abs(x) > bound
        assert 0.1 < float(jnp.mean(tails)) < 0.5
        np.testing.assert_array_equal(y[tails], x[tails])
        np.testing.assert_array_equal(log_d[tails], 0.0)
        assert float(jnp.max(jnp.abs(y - x))) > 0.3  # not the identity inside
        assert bool(jnp.all(grad > 0))  # monotone
        # random splines this steep have slopes down to ~1e-6, where the inverse amplifies y's rounding by
        # 1 / g': the error is measured in y's units (backward stability), and directly where g' >= 0.01
        np.testing.assert_allclose((x_back - x) * grad, 0.0, rtol=0, atol=1e-14)
        ok = grad >= 0.01
        assert float(jnp.mean(ok)) > 0.6
        np.testing.assert_allclose(x_back[ok], x[ok], rtol=0, atol=1e-12)
        np.testing.assert_allclose(log_d_inv[ok], -log_d[ok], rtol=0, atol=1e-10)
        np.testing.assert_allclose(log_d, jnp.log(grad), rtol=0, atol=1e-9)


def test_spline_float32_inverse_to_float_tolerance():
    raw = _raw(jax.random.key(3), (5000,), 16, scale=1.0)
    x = 3.0 * jax.random.normal(jax.random.key(4), (5000,))
    y, log_d = models.rational_quadratic_spline(x, *raw, bound=4.0)
    x_back, log_d_inv = models.rational_quadratic_spline(y, *raw, bound=4.0, inverse=True)
    y_again, _ = models.rational_quadratic_spline(x_back, *raw, bound=4.0)
    assert y.dtype == jnp.float32
    slope = jnp.exp(log_d)
    np.testing.assert_allclose(y_again, y, rtol=0, atol=1e-5)  # backward error: a few float32 ulps of |y| <= 4
    np.testing.assert_allclose((x_back - x) * slope, 0.0, rtol=0, atol=1e-5)
    ok = slope >= 0.1
    assert float(jnp.mean(ok)) > 0.8
    np.testing.assert_allclose(x_back[ok], x[ok], rtol=0, atol=1e-4)
    np.testing.assert_allclose(log_d_inv[ok], -log_d[ok], rtol=0, atol=1e-4)


def test_spline_gradients():
    with jax.enable_x64(True):
        raw = _raw(jax.random.key(5), (7,), 5, dtype=jnp.float64)
        x = jnp.array([-4.0, -1.7, -0.2, 0.4, 1.1, 2.9, 5.0], jnp.float64)
        for inverse in (False, True):
            check_grads(lambda x, *r: models.rational_quadratic_spline(x, *r, bound=3.0, inverse=inverse)[0],
                        (x,) + raw, order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)
            check_grads(lambda x, *r: models.rational_quadratic_spline(x, *r, bound=3.0, inverse=inverse)[1],
                        (x,) + raw, order=1, modes=["rev"], eps=1e-6, atol=1e-6, rtol=1e-6)


def test_spline_refuses_bad_options():
    z = jnp.zeros((3, 4))
    with pytest.raises(ValueError, match=r"^`bins` must be >= 2"):
        models.rational_quadratic_spline(jnp.zeros(3), z[:, :1], z[:, :1], z[:, :0])
    with pytest.raises(ValueError, match=r"^`bound` must be > 0"):
        models.rational_quadratic_spline(jnp.zeros(3), z, z, z[:, :3], bound=0.0)
    with pytest.raises(ValueError, match=r"^`min_bin_width` times `bins`"):
        models.rational_quadratic_spline(jnp.zeros(3), z, z, z[:, :3], min_bin_width=0.25)
    with pytest.raises(ValueError, match=r"^`min_derivative` must be in"):
        models.rational_quadratic_spline(jnp.zeros(3), z, z, z[:, :3], min_derivative=1.0)
    with pytest.raises(ValueError, match=r"^`raw_heights` must have K = 4"):
        models.rational_quadratic_spline(jnp.zeros(3), z, z, z)


# ---------------------------------------------------------------- the flow

def _random_flow(dim=2, n_layers=4, seed=0, noise=0.1, rotations=False, bins=6, bound=2.0):
    flow = models.NeuralSplineFlow(dim=dim, n_layers=n_layers, bins=bins, bound=bound, width=16, depth=2,
                                   rotations=rotations)
    params = flow.init(jax.random.key(seed), jnp.zeros((1, dim)))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    # the last layers start at zero (identity flow): perturb every parameter to test a generic map (noise
    # 0.1 moves points by 2 to 5; 0.3 makes the map so steep, log-det down to -33, that float64's rounding of
    # z, amplified by e^33 in the inverse, reaches 1e-7)
    leaves = [a + noise * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)]
    return flow, jax.tree.unflatten(tree, leaves)


@pytest.mark.parametrize("jit", [False, True])
def test_flow_is_identity_at_initialisation(jit):
    flow = models.NeuralSplineFlow(dim=3, n_layers=3, bins=8, bound=3.0, width=8, rotations=False)
    x = 2.0 * jax.random.normal(jax.random.key(0), (50, 3))
    params = flow.init(jax.random.key(1), x)
    z, ld = _maybe_jit(lambda x: flow.apply(params, x), jit)(x)
    np.testing.assert_allclose(z, x, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ld, 0.0, rtol=0, atol=1e-5)
    layer = models.SplineCoupling(mask=(1, 0), bins=4, width=8)
    z, ld = layer.apply(layer.init(jax.random.key(2), x[:, :2]), x[:, :2], method="inverse")
    np.testing.assert_allclose(z, x[:, :2], rtol=0, atol=1e-5)


# eager only in the plainest case: op-by-op dispatch of jacfwd through the stack costs seconds per case
# The eager and the 3-d cases are slow (seconds of dispatch and compilation): the default suite runs the two jitted 2-d ones.
@pytest.mark.parametrize(("dim", "rotations", "jit"), [pytest.param(2, False, False, marks=pytest.mark.slow),
                                                       (2, False, True), (2, True, True),
                                                       pytest.param(3, True, True, marks=pytest.mark.slow)])
def test_flow_inverse_and_log_det_are_exact(dim, rotations, jit):
    flow, params = _random_flow(dim=dim, rotations=rotations)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        x = 1.5 * jax.random.normal(jax.random.key(7), (64, dim), jnp.float64)  # bound 2: some points in the tails

        def check(x):
            z, ld = flow.apply(params, x)
            x_back, ld_inv = flow.apply(params, z, method="inverse")
            jac = jax.vmap(jax.jacfwd(lambda u: flow.apply(params, u)[0]))(x)
            return z, x_back, ld, ld_inv, jnp.linalg.slogdet(jac)

        z, x_back, ld, ld_inv, (sign, logabs) = _maybe_jit(check, jit)(x)
        assert z.dtype == jnp.float64
        assert float(jnp.max(jnp.abs(z - x))) > 0.1  # the map is not the identity
        assert bool(jnp.any(jnp.abs(x) > 2.0))
        np.testing.assert_allclose(x_back, x, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ld_inv, -ld, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ld, logabs, rtol=0, atol=1e-9)
        if not rotations:
            assert bool(jnp.all(sign > 0))  # monotone splines preserve orientation


@pytest.mark.parametrize("rotations", [False, True])
def test_flow_density_integrates_to_one(rotations):
    flow, params = _random_flow(dim=2, rotations=rotations)
    g = np.linspace(-10, 10, 801, dtype=np.float32)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1))

    @jax.jit
    def log_p(x):
        z, ld = flow.apply(params, x)
        return dv.flow_log_prob(dv.diag_gaussian_log_prob(z), ld)

    dens = np.exp(np.asarray(log_p(pts), np.float64)).reshape(xx.shape)
    mass = np.trapezoid(np.trapezoid(dens, g, axis=1), g)
    # trapezoid rule on a 0.025 grid of a density with a continuous derivative; mass beyond |x| = 10 negligible
    np.testing.assert_allclose(mass, 1.0, atol=5e-3)


@pytest.mark.parametrize("jit", [pytest.param(False, marks=pytest.mark.slow), True])
def test_flow_gradients_are_finite_at_the_bounds_and_in_the_tails(jit):
    flow, params = _random_flow(dim=2, bound=2.0)
    # points on the bound, on a knot of the identity spline, deep in the tails, and typical ones
    x = jnp.array([[2.0, -2.0], [0.0, 0.0], [-40.0, 3.0], [0.3, -0.7], [1e3, -1e3]])

    def nll(p, x):
        z, ld = flow.apply(p, x)
        return -jnp.mean(dv.flow_log_prob(dv.diag_gaussian_log_prob(z), ld))

    g_params, g_x = _maybe_jit(jax.grad(nll, argnums=(0, 1)), jit)(params, x)
    leaves = jax.tree.leaves(g_params)
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in leaves)
    assert bool(jnp.all(jnp.isfinite(g_x)))
    assert any(float(jnp.max(jnp.abs(a))) > 0 for a in leaves)


def test_flow_refuses_bad_configuration():
    x = jnp.zeros((1, 2))
    with pytest.raises(ValueError, match=r"^`dim` must be >= 2"):
        models.NeuralSplineFlow(dim=1).init(jax.random.key(0), jnp.zeros((1, 1)))
    with pytest.raises(ValueError, match=r"^`bins` must be >= 2"):
        models.NeuralSplineFlow(dim=2, bins=1).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match=r"^`bound` must be > 0"):
        models.NeuralSplineFlow(dim=2, bound=-1.0).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match=r"^`mask` must leave"):
        models.SplineCoupling(mask=(1, 1)).init(jax.random.key(0), x)


# ---------------------------------------------------------------- the objective

def test_config_refuses_bad_spline_settings():
    with pytest.raises(ValueError, match=r"^`coupling` must be 'affine' or 'spline'"):
        lo.LikelihoodConfig(coupling="rq")
    with pytest.raises(ValueError, match=r"^`spline_bins` must be >= 2"):
        lo.LikelihoodConfig(coupling="spline", spline_bins=1)
    with pytest.raises(ValueError, match=r"^`spline_bound` must be > 0"):
        lo.LikelihoodConfig(coupling="spline", spline_bound=0.0)
    with pytest.raises(ValueError, match=r"^`coupling` 'spline' needs `data_dim` >= 2"):
        lo.LikelihoodConfig(coupling="spline", data_dim=1)


def test_spline_objective_trains_and_its_heldout_nll_is_exact():
    cfg = lo.LikelihoodConfig(objective="flow", coupling="spline", spline_bins=8, spline_bound=4.0, width=16,
                              n_layers=2, learning_rate=3e-3)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(512, 2)) * [1.5, 0.5] + [0.5, -1.0], jnp.float32)
    p0 = lo.init(jax.random.key(0), cfg)
    assert "coupling_0" in p0["flow"]["params"]
    before = lo.heldout_nll_nats_per_dim(p0, x, jax.random.key(1), cfg=cfg)
    params, history = lo.fit(cfg, x, jax.random.key(0), steps=300, batch_size=128, steps_per_call=300)
    after = lo.heldout_nll_nats_per_dim(params, x, jax.random.key(1), cfg=cfg)
    exact = -float(jnp.mean(lo.flow_log_prob(params, x, cfg=cfg))) / 2
    assert after == pytest.approx(exact, abs=1e-5)
    assert after < before - 0.1, (before, after)
    assert np.isfinite(history[-1]["loss"])
    assert lo.sample(params, jax.random.key(2), 7, cfg=cfg).shape == (7, 2)


# ---------------------------------------------------------------- the benchmark script's configuration

def test_likelihood_runs_configs_overrides_and_labels():
    from benchmarks import likelihood_runs as lr

    for name, settings in lr.CONFIGS.items():
        lo.LikelihoodConfig(**settings)  # every entry is a valid configuration
    assert lr.CONFIGS["flow"]["coupling"] == "spline" and lr.CONFIGS["flow-affine"]["coupling"] == "affine"
    assert lr.parse_overrides(["spline_bins=12", "spline_bound=5", "rotations=false", "coupling=affine"]) == {
        "spline_bins": 12, "spline_bound": 5.0, "rotations": False, "coupling": "affine"}
    with pytest.raises(ValueError, match=r"^`--set` takes KEY=VALUE"):
        lr.parse_overrides(["bins=12"])
    with pytest.raises(ValueError, match=r"^`--set rotations` takes true or false"):
        lr.parse_overrides(["rotations=yes"])
    # rows written before the coupling field existed are affine flows
    assert lr.label({"objective": "flow", "config": {"objective": "flow"}}) == "flow (affine)"
    assert lr.label({"objective": "flow", "config": {"objective": "flow", "coupling": "spline"}}) == "flow (spline)"
    assert lr.label({"objective": "vae", "config": {"objective": "vae"}}) == "vae"


def test_likelihood_runs_merge_keeps_the_rows_it_does_not_redo_in_order():
    from benchmarks import likelihood_runs as lr

    def row(ds, coupling, tag):
        return {"objective": "flow", "dataset": ds, "tag": tag, "config": {"objective": "flow", "coupling": coupling}}

    old = [row("8g", "affine", "old"), row("25g", "affine", "old"), row("roll", "affine", "old"),
           row("roll", "spline", "old")]
    merged = lr.merge_rows(old, [row("8g", "spline", "new"), row("roll", "spline", "new")])
    assert [(r["dataset"], r["config"]["coupling"], r["tag"]) for r in merged] == [
        ("8g", "affine", "old"), ("8g", "spline", "new"), ("25g", "affine", "old"),
        ("roll", "affine", "old"), ("roll", "spline", "new")]
