"""Closed forms against numerical integration, Monte Carlo and independent formulas."""

from __future__ import annotations

import math

import jax
import jax.test_util  # noqa: F401  (check_grads)
import jax.numpy as jnp
import numpy as np
import ot
import pytest
import scipy.integrate
import scipy.linalg
import scipy.stats

from divergences import closed_form as cf

LOG2 = math.log(2.0)


def _interval_reference(a1, b1, a2, b2):
    """KL, TV, JS by quadrature of the densities; W1 by quadrature of the quantile gap."""
    p = lambda t: (a1 <= t <= b1) / (b1 - a1)  # noqa: E731
    q = lambda t: (a2 <= t <= b2) / (b2 - a2)  # noqa: E731
    lo, hi = min(a1, a2), max(b1, b2)
    pts = sorted({a1, b1, a2, b2})
    quad = lambda g: scipy.integrate.quad(g, lo, hi, points=pts, limit=200)[0]  # noqa: E731

    def js_integrand(t):
        pt, qt = p(t), q(t)
        m = 0.5 * (pt + qt)
        out = 0.0
        if pt > 0:
            out += 0.5 * pt * math.log(pt / m)
        if qt > 0:
            out += 0.5 * qt * math.log(qt / m)
        return out

    contained = a1 >= a2 and b1 <= b2
    kl = quad(lambda t: p(t) * math.log(p(t) / q(t)) if p(t) > 0 else 0.0) if contained else math.inf
    tv = 0.5 * quad(lambda t: abs(p(t) - q(t)))
    js = quad(js_integrand)
    w1 = scipy.integrate.quad(lambda u: abs((a1 + (b1 - a1) * u) - (a2 + (b2 - a2) * u)), 0, 1, limit=200)[0]
    return {"kl": kl, "tv": tv, "js": js, "w1": w1}


@pytest.mark.parametrize(
    "a1,b1,a2,b2",
    [(0, 1, 0.25, 1.25), (0, 1, -1, 3), (0, 2, 0.5, 1.0), (0, 1, 3, 5), (-1, 0.5, 0, 4), (0, 1, 0, 1)],
)
def test_uniform_intervals_against_quadrature(a1, b1, a2, b2):
    got = {k: float(x) for k, x in cf.uniform_intervals(a1, b1, a2, b2).items()}
    ref = _interval_reference(a1, b1, a2, b2)
    # quad on piecewise-constant integrands with the breakpoints given is exact to ~1e-10;
    # the closed forms run in float32: 1e-6 relative.
    for key in ref:
        if math.isinf(ref[key]):
            assert math.isinf(got[key])
        else:
            assert got[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-6), key


def test_uniform_intervals_vectorised_and_jit():
    a2 = jnp.linspace(-2, 2, 9)
    out = jax.jit(cf.uniform_intervals)(0.0, 1.0, a2, a2 + 0.5)
    for key in ("kl", "tv", "js", "w1"):
        assert out[key].shape == (9,)
        for i in range(9):
            ref = _interval_reference(0.0, 1.0, float(a2[i]), float(a2[i]) + 0.5)[key]
            assert float(out[key][i]) == pytest.approx(ref, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.25, 0.5, 1.0, 2.0, -0.3, 3.0])
def test_uniform_shift_hand_values(eps):
    out = {k: float(x) for k, x in cf.uniform_shift(eps).items()}
    a = abs(eps)
    assert out["kl"] == (0.0 if eps == 0 else math.inf)
    assert out["tv"] == pytest.approx(min(a, 1.0))
    assert out["js"] == pytest.approx(min(a, 1.0) * LOG2)
    assert out["w1"] == pytest.approx(a)
    general = cf.uniform_intervals(0.0, 1.0, eps, 1.0 + eps)
    for key in out:
        assert float(general[key]) == pytest.approx(out[key], rel=1e-6, abs=1e-7)


def test_uniform_shift_monte_carlo_w1_and_tv():
    # W1 from samples (exact 1-D OT of 20k samples each) and TV from a fine histogram.
    rng = np.random.default_rng(0)
    eps = 0.5
    x, y = rng.uniform(0, 1, 20000), rng.uniform(eps, 1 + eps, 20000)
    w1 = scipy.stats.wasserstein_distance(x, y)
    assert w1 == pytest.approx(eps, abs=0.01)  # sampling error ~ 1/sqrt(n) = 0.007
    edges = np.linspace(-0.5, 2.0, 101)
    hx, hy = np.histogram(x, edges)[0] / x.size, np.histogram(y, edges)[0] / y.size
    assert 0.5 * np.abs(hx - hy).sum() == pytest.approx(float(cf.uniform_shift(eps)["tv"]), abs=0.03)


@pytest.mark.parametrize("theta", [0.0, 0.5, -1.0, 2.0])
def test_parallel_lines(theta):
    out = {k: float(x) for k, x in cf.parallel_lines(theta).items()}
    apart = theta != 0
    assert out["kl"] == (math.inf if apart else 0.0)
    assert out["tv"] == (1.0 if apart else 0.0)
    assert out["js"] == pytest.approx(LOG2 if apart else 0.0)
    assert out["w1"] == pytest.approx(abs(theta))
    # Monte Carlo: exact OT between 300 samples of each segment (Euclidean cost).
    rng = np.random.default_rng(1)
    z0, z1 = rng.uniform(size=300), rng.uniform(size=300)
    x = np.stack([np.zeros(300), z0], 1)
    y = np.stack([np.full(300, theta), z1], 1)
    w1 = ot.emd2(ot.unif(300), ot.unif(300), ot.dist(x, y, metric="euclidean"))
    # The vertical mismatch of two empirical uniforms adds O(1/sqrt(n)) ~ 0.06 at most.
    assert w1 == pytest.approx(abs(theta), abs=0.06)


def test_gaussian_kl_1d_formula():
    m1, s1, m2, s2 = 0.3, 0.7, -1.1, 1.9
    expected = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    got = cf.gaussian_kl(jnp.array([m1]), jnp.array([[s1**2]]), jnp.array([m2]), jnp.array([[s2**2]]))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d) * 0.5


def test_gaussian_kl_3d_against_formula_and_monte_carlo():
    rng = np.random.default_rng(2)
    m1, m2 = rng.normal(size=3), rng.normal(size=3)
    c1, c2 = _random_spd(rng, 3), _random_spd(rng, 3)
    inv2 = np.linalg.inv(c2)
    expected = 0.5 * (
        np.trace(inv2 @ c1) + (m2 - m1) @ inv2 @ (m2 - m1) - 3 + np.log(np.linalg.det(c2) / np.linalg.det(c1))
    )
    with jax.enable_x64(True):
        got = float(cf.gaussian_kl(m1, c1, m2, c2))
    assert got == pytest.approx(expected, rel=1e-10)
    # Monte Carlo: E_P[log p - log q] over 200k samples; 4 standard errors.
    x = rng.multivariate_normal(m1, c1, size=200_000)
    llr = scipy.stats.multivariate_normal(m1, c1).logpdf(x) - scipy.stats.multivariate_normal(m2, c2).logpdf(x)
    assert abs(llr.mean() - got) < 4 * llr.std() / math.sqrt(x.shape[0])


def test_gaussian_kl_batched():
    rng = np.random.default_rng(3)
    m1, m2 = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    c = np.stack([_random_spd(rng, 2) for _ in range(4)])
    got = cf.gaussian_kl(m1, c, m2, np.eye(2))
    assert got.shape == (4,)
    for i in range(4):
        assert float(got[i]) == pytest.approx(float(cf.gaussian_kl(m1[i], c[i], m2[i], np.eye(2))), rel=1e-5)


@pytest.mark.parametrize("m1,s1,m2,s2", [(0, 1, 0, 2), (0, 1, 3, 1), (1, 0.5, -0.5, 2.0), (0, 0, 0, 1), (2, 1.5, 2.2, 0.3)])
def test_gaussian_w1_1d_against_quantile_quadrature(m1, s1, m2, s2):
    def gap(u):
        return abs((m1 + s1 * scipy.stats.norm.ppf(u)) - (m2 + s2 * scipy.stats.norm.ppf(u)))

    ref = scipy.integrate.quad(gap, 0, 1, limit=200)[0]
    assert float(cf.gaussian_w1_1d(m1, s1, m2, s2)) == pytest.approx(ref, rel=1e-5, abs=1e-6)


def test_gaussian_w1_1d_gradient_finite_at_equal_scales():
    g = jax.grad(lambda s: cf.gaussian_w1_1d(0.0, s, 1.0, 1.0))(1.0)
    assert jnp.isfinite(g)


def test_gaussian_w2_against_pot_and_1d():
    rng = np.random.default_rng(4)
    m1, m2 = rng.normal(size=4), rng.normal(size=4)
    c1, c2 = _random_spd(rng, 4), _random_spd(rng, 4)
    ref = float(ot.gaussian.bures_wasserstein_distance(m1, m2, c1, c2))
    with jax.enable_x64(True):
        got = float(cf.gaussian_w2(m1, c1, m2, c2))
    # Independent route: scipy.linalg.sqrtm.
    r2 = scipy.linalg.sqrtm(c2)
    alt = math.sqrt(np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(scipy.linalg.sqrtm(r2 @ c1 @ r2))))
    assert got == pytest.approx(ref, rel=1e-8)
    assert got == pytest.approx(alt, rel=1e-8)
    # 1-D: W2^2 = (m1 - m2)^2 + (s1 - s2)^2.
    assert float(cf.gaussian_w2([0.0], [[4.0]], [1.0], [[1.0]])) == pytest.approx(math.sqrt(2.0), rel=1e-6)


# --- bad input -------------------------------------------------------------------


def test_reversed_interval():
    with pytest.raises(ValueError, match="`b1`"):
        cf.uniform_intervals(1.0, 0.0, 0.0, 1.0)


def test_nan_shift():
    with pytest.raises(ValueError, match="`eps`.*NaN"):
        cf.uniform_shift(float("nan"))


def test_intervals_do_not_broadcast():
    with pytest.raises(ValueError, match="`a2`.*broadcast"):
        cf.uniform_intervals(jnp.zeros(2), 1.0, jnp.zeros(3), 1.0)


def test_covariance_not_positive_definite():
    with pytest.raises(ValueError, match="`cov2`.*positive definite"):
        cf.gaussian_kl(jnp.zeros(2), jnp.eye(2), jnp.zeros(2), jnp.array([[1.0, 2.0], [2.0, 1.0]]))


def test_covariance_shape_mismatch():
    with pytest.raises(ValueError, match="`cov1`"):
        cf.gaussian_kl(jnp.zeros(2), jnp.eye(3), jnp.zeros(2), jnp.eye(2))


def test_negative_scale():
    with pytest.raises(ValueError, match="`s2`"):
        cf.gaussian_w1_1d(0.0, 1.0, 0.0, -1.0)


# --- issue 17: gaussian_w2 gradients and semi-definite covariances; uniform_intervals endpoints ---


@pytest.mark.parametrize("jit", [False, True])
def test_gaussian_w2_gradients_finite_at_equality(jit):
    # Issue 17: the gradients with respect to the means and covariances were NaN at equality.
    m, c = jnp.array([0.5, -1.0]), jnp.array([[2.0, 0.3], [0.3, 1.0]])
    grad = jax.grad(cf.gaussian_w2, argnums=(0, 1, 2, 3))
    grads = (jax.jit(grad) if jit else grad)(m, c, m, c)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    # W2 = 0 is a minimum: the mean gradients are the zero subgradient.
    np.testing.assert_allclose(grads[0], 0.0, atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_gaussian_w2_gradients_isotropic_against_finite_differences(jit):
    # Issue 17: NaN gradients with isotropic covariances (repeated eigenvalues) and different means.
    # W2 is smooth there, so central finite differences in float64 are the oracle.
    with jax.enable_x64(True):
        def fn(m1, s1, m2, s2):  # symmetric covariances from any perturbation of s1, s2
            return cf.gaussian_w2(m1, 0.5 * (s1 + s1.T), m2, 0.5 * (s2 + s2.T))

        fn = jax.jit(fn) if jit else fn
        args = (jnp.zeros(3), jnp.eye(3), jnp.array([1.0, 0.0, 2.0]), 2.0 * jnp.eye(3))
        jax.test_util.check_grads(fn, args, order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def test_gaussian_w2_accepts_semidefinite_covariances():
    # Degenerate Gaussians on a line: commuting covariances, W2^2 = |dm|^2 + sum (sqrt a - sqrt b)^2.
    a, b = jnp.diag(jnp.array([1.0, 0.0])), jnp.diag(jnp.array([4.0, 0.0]))
    w = cf.gaussian_w2(jnp.zeros(2), a, jnp.array([0.0, 3.0]), b)
    np.testing.assert_allclose(float(w), np.sqrt(9.0 + 1.0), rtol=1e-6)
    g = jax.grad(cf.gaussian_w2, argnums=(1, 3))(jnp.zeros(2), a, jnp.array([0.0, 3.0]), b)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in g)
    with pytest.raises(ValueError, match="^`cov2`"):
        cf.gaussian_w2(jnp.zeros(2), a, jnp.zeros(2), jnp.diag(jnp.array([1.0, -0.5])))


@pytest.mark.parametrize("name", ["a1", "b1", "a2", "b2"])
def test_uniform_intervals_infinite_endpoint_refused(name):
    # Issue 17: an infinite endpoint was accepted.
    ends = dict(a1=0.0, b1=1.0, a2=0.0, b2=2.0)
    ends[name] = -np.inf if name.startswith("a") else np.inf
    with pytest.raises(ValueError, match=f"^`{name}`"):
        cf.uniform_intervals(**ends)
    out = jax.jit(cf.uniform_intervals)(**ends)
    assert all(bool(jnp.isnan(x)) for x in out.values())
