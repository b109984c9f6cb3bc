"""f-GAN bound: every (activation, conjugate) pair against the exact f-divergence, conjugates against a
numerical supremum, stability, bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import divergences as dv

LOG4 = math.log(4.0)

# Written here independently of the library: the generator f, its derivative f', and the critic
# output v that the activation maps to f'(u) (so g_f(v*(u)) = f'(u), the optimal T at u = p/q).
GENERATORS = {
    "kl": (lambda u: u * np.log(u), lambda u: np.log(u) + 1, lambda u: np.log(u) + 1),
    "reverse_kl": (lambda u: -np.log(u), lambda u: -1 / u, lambda u: np.log(u)),
    "pearson_chi2": (lambda u: (u - 1) ** 2, lambda u: 2 * (u - 1), lambda u: 2 * (u - 1)),
    "squared_hellinger": (lambda u: (np.sqrt(u) - 1) ** 2, lambda u: 1 - 1 / np.sqrt(u), lambda u: 0.5 * np.log(u)),
    "js": (
        lambda u: 0.5 * (u * np.log(u) - (1 + u) * np.log((1 + u) / 2)),
        lambda u: 0.5 * np.log(2 * u / (1 + u)),
        lambda u: np.log(u),
    ),
    "gan": (lambda u: u * np.log(u) - (u + 1) * np.log(u + 1), lambda u: np.log(u / (u + 1)), lambda u: np.log(u)),
}

# Points inside each conjugate's domain, and the maximiser u* = (f')^{-1}(t) of u t - f(u).
CONJUGATE_POINTS = {
    "kl": [-1.0, 0.0, 0.5],
    "reverse_kl": [-2.0, -0.5],
    # -3 and -10: below -2 the supremum over u >= 0 sits at u = 0, f*(t) = -f(0) = -1 (Table 2's
    # t + t^2/4 over all real u would give -0.75 and 15 there).
    "pearson_chi2": [-10.0, -3.0, -1.0, 0.5, 2.0],
    "squared_hellinger": [-1.0, 0.0, 0.5],
    "js": [-1.0, 0.0, 0.2],
    "gan": [-2.0, -0.5],
}
OUTSIDE_DOMAIN = {"reverse_kl": 0.1, "squared_hellinger": 1.5, "js": 0.4, "gan": 0.2}


def _exact(p, q, divergence):
    if divergence == "gan":
        return 2 * dv.js_divergence(p, q) - LOG4
    return dv.f_divergence(p, q, divergence)


def _counts(rng, k):
    return rng.integers(1, 9, size=k)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("divergence", dv.FGAN_DIVERGENCES)
def test_bound_is_tight_at_optimal_critic(divergence, jit):
    # With T = g_f(V) = f'(p/q) the bound equals D_f exactly (Nowozin et al., eq. 5; Nguyen et al.
    # 2010). Samples realise p and q exactly (one sample per unit of count), so the sample means
    # are the expectations and the comparison is exact up to float64 rounding.
    rng = np.random.default_rng(0)
    cp, cq = _counts(rng, 7), _counts(rng, 7)
    p, q = cp / cp.sum(), cq / cq.sum()
    _, fprime, v_star = GENERATORS[divergence]
    u = p / q
    with jax.enable_x64(True):
        v = v_star(u)
        np.testing.assert_allclose(dv.fgan_activation(v, divergence), fprime(u), rtol=1e-12, atol=1e-14)
        real, fake = np.repeat(v, cp), np.repeat(v, cq)
        fn = jax.jit(dv.fgan_objective, static_argnums=2) if jit else dv.fgan_objective
        bound = fn(real, fake, divergence)
        np.testing.assert_allclose(bound, _exact(p, q, divergence), rtol=1e-12, atol=1e-12)
        # Any other critic gives a smaller value (the bound is a pointwise supremum).
        for _ in range(5):
            w = v + rng.normal(size=v.shape) * 0.3
            assert dv.fgan_objective(np.repeat(w, cp), np.repeat(w, cq), divergence) < bound


@pytest.mark.parametrize("divergence", dv.FGAN_DIVERGENCES)
def test_conjugate_against_numerical_supremum(divergence):
    # Oracle: f*(t) = sup_u {u t - f(u)} by bounded Brent in log u (u in [e^-20, e^8]), float64.
    f = GENERATORS[divergence][0]
    with jax.enable_x64(True):
        for t in CONJUGATE_POINTS[divergence]:
            res = scipy.optimize.minimize_scalar(
                lambda s: -(np.exp(s) * t - f(np.exp(s))), bounds=(-20, 8), method="bounded", options={"xatol": 1e-10}
            )
            np.testing.assert_allclose(dv.fgan_conjugate(np.float64(t), divergence), -res.fun, rtol=1e-7, atol=1e-9)
        if divergence in OUTSIDE_DOMAIN:
            assert dv.fgan_conjugate(OUTSIDE_DOMAIN[divergence], divergence) == np.inf


@pytest.mark.parametrize("divergence", dv.FGAN_DIVERGENCES)
def test_conjugate_activation_is_the_composition(divergence):
    x = np.linspace(-3, 3, 25)
    with jax.enable_x64(True):
        composed = dv.fgan_conjugate(dv.fgan_activation(x, divergence), divergence)
        np.testing.assert_allclose(dv.fgan_conjugate_activation(x, divergence), composed, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("divergence", dv.FGAN_DIVERGENCES)
def test_objective_finite_with_finite_grads(divergence):
    # float32 critic outputs of +-30 (a saturated critic): the stable forms stay finite.
    x = jnp.linspace(-30.0, 30.0, 13)
    value, grads = jax.value_and_grad(dv.fgan_objective, argnums=(0, 1))(x, x[::-1], divergence)
    assert bool(jnp.isfinite(value))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("divergence", dv.FGAN_DIVERGENCES)
@pytest.mark.parametrize("scale", [100.0, 1e30, -100.0, -1e30])
def test_objective_finite_for_huge_critic_outputs(divergence, scale, jit):
    # Issue 17: "kl", "reverse_kl", "squared_hellinger" and "pearson_chi2" gave -inf and infinite
    # gradients for critic outputs of 100 or 1e30 (float32). The soft clip keeps them finite.
    out = jnp.full((4,), scale, jnp.float32)
    fn = jax.value_and_grad(lambda r, f: dv.fgan_objective(r, f, divergence), argnums=(0, 1))
    value, grads = (jax.jit(fn) if jit else fn)(out, out)
    assert bool(jnp.isfinite(value))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


@pytest.mark.parametrize("divergence", dv.FGAN_DIVERGENCES)
def test_conjugate_activation_finite_with_finite_gradient_on_a_wide_range(divergence):
    # Issue 17: fgan_conjugate_activation(v, "kl") was not finite with a finite gradient on [-100, 100].
    v = jnp.linspace(-100.0, 100.0, 401)
    value = dv.fgan_conjugate_activation(v, divergence)
    grad = jax.vmap(jax.grad(lambda t: dv.fgan_conjugate_activation(t, divergence)))(v)
    assert bool(jnp.all(jnp.isfinite(value))) and bool(jnp.all(jnp.isfinite(grad)))
    act_grad = jax.vmap(jax.grad(lambda t: dv.fgan_activation(t, divergence)))(v)
    assert bool(jnp.all(jnp.isfinite(dv.fgan_activation(v, divergence)))) and bool(jnp.all(jnp.isfinite(act_grad)))


@pytest.mark.parametrize("divergence", ["kl", "reverse_kl", "squared_hellinger", "pearson_chi2"])
def test_clip_leaves_the_activation_exact_within_its_range(divergence):
    # The clip is the identity on [-L, L] (L = 50, or 1e4 for Pearson): the Table 2 activation exactly.
    lim = 1e4 if divergence == "pearson_chi2" else 50.0
    v = np.linspace(-lim, lim, 11) if divergence == "pearson_chi2" else np.linspace(-20, 20, 11)
    exact = {
        "kl": lambda: v, "pearson_chi2": lambda: v,
        "reverse_kl": lambda: -np.exp(-v), "squared_hellinger": lambda: 1 - np.exp(-v),
    }[divergence]()  # fmt: skip
    with jax.enable_x64(True):
        np.testing.assert_allclose(dv.fgan_activation(v, divergence), exact, rtol=1e-12)
        # Beyond the range the activation is monotone and bounded (a valid variational function).
        far = dv.fgan_activation(np.array([lim, lim + 0.5, lim + 1e3, 1e300]), divergence)
        assert np.all(np.diff(np.asarray(far)) >= 0) and np.all(np.isfinite(far))


def test_gan_bound_is_minus_discriminator_loss():
    rng = np.random.default_rng(3)
    r, f = rng.normal(size=20).astype(np.float32), rng.normal(size=30).astype(np.float32)
    np.testing.assert_allclose(dv.fgan_objective(r, f, "gan"), -dv.gan_discriminator_loss(r, f), rtol=1e-6)


def test_js_bound_is_log2_plus_half_gan_value():
    # Our "js" is half of Nowozin's: JS-bound = log 2 + V(D)/2 for the GAN value V = -discriminator loss.
    rng = np.random.default_rng(4)
    r, f = rng.normal(size=20).astype(np.float32), rng.normal(size=30).astype(np.float32)
    expected = math.log(2.0) - 0.5 * dv.gan_discriminator_loss(r, f)
    np.testing.assert_allclose(dv.fgan_objective(r, f, "js"), expected, rtol=1e-6)


def test_bad_divergence_name():
    with pytest.raises(ValueError, match="`divergence`"):
        dv.fgan_objective(jnp.zeros(3), jnp.zeros(3), "wasserstein")


def test_bad_divergence_name_in_helpers():
    with pytest.raises(ValueError, match="`divergence`"):
        dv.fgan_activation(jnp.zeros(3), "tv")


def test_bad_mismatched_output_shapes():
    with pytest.raises(ValueError, match="`t_fake`"):
        dv.fgan_objective(jnp.zeros((3,)), jnp.zeros((3, 1)), "kl")


def test_bad_nan_outputs():
    with pytest.raises(ValueError, match="`t_real`"):
        dv.fgan_objective(jnp.array([jnp.nan]), jnp.zeros(3), "kl")


def test_objective_vmaps_over_critics():
    rng = np.random.default_rng(5)
    r, f = rng.normal(size=(4, 9)).astype(np.float32), rng.normal(size=(4, 7)).astype(np.float32)
    batched = jax.vmap(lambda a, b: dv.fgan_objective(a, b, "js"))(r, f)
    np.testing.assert_allclose(batched, [dv.fgan_objective(r[i], f[i], "js") for i in range(4)], rtol=1e-6)
