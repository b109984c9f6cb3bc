"""GAN and WGAN objectives: naive-formula oracles, the GAN/JS identity, the gradient penalty, clipping, bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import optax
import pytest

import divergences as dv
from divergences.models import MLP

LOG4 = math.log(4.0)


def _run(fn, jit, *args, **kw):
    if jit:
        return jax.jit(lambda *a: fn(*a, **kw))(*args)
    return fn(*args, **kw)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --- minimax / non-saturating GAN -------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
def test_discriminator_loss_matches_naive_formula(jit):
    rng = np.random.default_rng(0)
    r, f = rng.normal(size=64) * 3, rng.normal(size=48) * 3
    # Oracle: the textbook -E log D(x) - E log(1 - D(G(z))) in float64; logits of size ~10 keep it accurate.
    expected = -np.mean(np.log(_sigmoid(r))) - np.mean(np.log(1 - _sigmoid(f)))
    got = _run(dv.gan_discriminator_loss, jit, r.astype(np.float32), f.astype(np.float32))
    assert got.shape == () and got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=2e-6)  # float32 rounding of a mean of ~100 terms


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("saturating", [False, True])
def test_generator_loss_matches_naive_formula(jit, saturating):
    f = np.random.default_rng(1).normal(size=(32, 2)) * 3
    if saturating:
        expected = np.mean(np.log(1 - _sigmoid(f)))
    else:
        expected = -np.mean(np.log(_sigmoid(f)))
    got = _run(dv.gan_generator_loss, jit, f.astype(np.float32), saturating=saturating)
    np.testing.assert_allclose(got, expected, rtol=2e-6)


def test_losses_stable_for_extreme_logits():
    # log(sigmoid(-1e4)) underflows to -inf in a naive implementation; the softplus form is exact.
    r = jnp.array([-1e4, 1e4, -100.0])
    f = jnp.array([1e4, -1e4, 100.0])
    loss = dv.gan_discriminator_loss(r, f)
    np.testing.assert_allclose(loss, (1e4 + 0 + 100) / 3 + (1e4 + 0 + 100) / 3, rtol=1e-6)
    for fn in (
        lambda r, f: dv.gan_discriminator_loss(r, f),
        lambda r, f: dv.gan_generator_loss(f),
        lambda r, f: dv.gan_generator_loss(f, saturating=True),
    ):
        g = jax.grad(fn, argnums=(0, 1))(r, f)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in g)


def test_saturating_loss_saturates_and_non_saturating_does_not():
    # Gradient at a confidently rejected fake (logit -10): sigmoid(-10) ~ 4.5e-5 for the minimax
    # loss against -(1 - sigmoid(-10)) ~ -1 for the non-saturating one (Goodfellow et al., sec. 3).
    f = jnp.array([-10.0])
    g_sat = jax.grad(lambda f: dv.gan_generator_loss(f, saturating=True))(f)
    g_ns = jax.grad(lambda f: dv.gan_generator_loss(f))(f)
    np.testing.assert_allclose(g_sat, [-_sigmoid(-10.0)], rtol=1e-5)
    np.testing.assert_allclose(g_ns, [-(1 - _sigmoid(-10.0))], rtol=1e-6)


def test_gan_loss_grads_numerically():
    with jax.enable_x64(True):
        r = jnp.array([0.3, -1.2, 2.0])
        f = jnp.array([-0.5, 1.5])
        jax.test_util.check_grads(dv.gan_discriminator_loss, (r, f), order=2, modes=["rev"])
        jax.test_util.check_grads(lambda f: dv.gan_generator_loss(f, saturating=True), (f,), order=2)


def test_optimal_discriminator_values():
    got = dv.optimal_discriminator(jnp.array([[0.3, 0.0, 0.0, 1.0]]), jnp.array([0.1, 0.2, 0.0, 1.0]))
    np.testing.assert_allclose(got, [[0.75, 0.0, 0.5, 0.5]])
    assert got.shape == (1, 4)


@pytest.mark.parametrize("seed", range(3))
def test_value_at_optimal_discriminator_is_2js_minus_log4(seed):
    # Goodfellow et al., Theorem 1: V(G, D*) = 2 JS(p_data, p_G) - log 4; oracle: dv.js_divergence.
    rng = np.random.default_rng(seed)
    counts_p = rng.integers(1, 9, size=6)
    counts_q = rng.integers(1, 9, size=6)
    counts_p[0] = 0  # a support point where only the generator puts mass
    p, q = counts_p / counts_p.sum(), counts_q / counts_q.sum()
    with jax.enable_x64(True):
        d = dv.optimal_discriminator(p, q)
        value = np.sum(p * np.log(np.where(p > 0, d, 1.0))) + np.sum(q * np.log(1 - d))
        expected = 2 * dv.js_divergence(p, q) - LOG4
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)
        # Same identity through the loss, on samples that realise p and q exactly (one sample per
        # unit of count, so the sample means are the expectations). Logit of D* = log p - log q,
        # and -60 (D* = 9e-27, as good as 0 in float64) where p = 0.
        logit = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)) - np.log(q), -60.0)
        real = np.repeat(logit, counts_p)
        fake = np.repeat(logit, counts_q)
        loss = dv.gan_discriminator_loss(real, fake)
        np.testing.assert_allclose(-loss, expected, rtol=1e-12, atol=1e-12)
        # D* is the maximiser: any perturbed discriminator does worse.
        for _ in range(5):
            bumped = logit + rng.normal(size=6) * 0.3
            worse = -dv.gan_discriminator_loss(np.repeat(bumped, counts_p), np.repeat(bumped, counts_q))
            assert worse < -loss


# --- WGAN -------------------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
def test_wasserstein_losses(jit):
    r = jnp.array([1.0, 2.0, 3.0])
    f = jnp.array([0.0, -1.0])
    np.testing.assert_allclose(_run(dv.wasserstein_critic_loss, jit, r, f), -0.5 - 2.0)
    np.testing.assert_allclose(_run(dv.wasserstein_generator_loss, jit, f), 0.5)


def test_kr_dual_with_optimal_linear_critic_gives_w1():
    # For a location shift in 1-D the identity f(x) = x is an optimal 1-Lipschitz critic, so
    # -critic_loss estimates W1 = |shift| (Kantorovich-Rubinstein); the sampling error of a mean
    # of 2 * 20000 N(0,1) draws has sd 0.01, so 0.05 is a 5-sigma bound.
    key1, key2 = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key1, (20000,)) + 1.5
    y = jax.random.normal(key2, (20000,))
    estimate = -dv.wasserstein_critic_loss(x, y)
    closed = dv.closed_form.gaussian_w1_1d(1.5, 1.0, 0.0, 1.0)
    np.testing.assert_allclose(estimate, closed, atol=0.05)


# --- gradient penalty --------------------------------------------------------------------------


def _per_sample_reference(critic_fn, real, fake, key, target, one_sided):
    """Independent oracle: a per-sample vmap of grads (what gradient_penalty avoids), same interpolates."""
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), dtype=real.dtype)
    x_hat = eps * real + (1 - eps) * fake
    grads = jax.vmap(jax.grad(lambda x: critic_fn(x[None])[0]))(x_hat)
    norms = np.linalg.norm(np.asarray(grads).reshape(real.shape[0], -1), axis=1)
    gap = norms - target
    if one_sided:
        gap = np.maximum(gap, 0)
    return np.mean(gap**2)


@pytest.mark.parametrize(("jit", "one_sided", "target"), [(False, False, 1.0), (True, False, 1.0), (True, True, 0.5)])
def test_gradient_penalty_matches_per_sample_grads_mlp(jit, one_sided, target):
    kx, ky, kp, kgp = jax.random.split(jax.random.key(1), 4)
    real = jax.random.normal(kx, (16, 3))
    fake = jax.random.normal(ky, (16, 3)) + 2.0
    mlp = MLP(width=16, depth=2, activation="tanh")
    params = mlp.init(kp, real)
    critic = lambda x: mlp.apply(params, x)  # noqa: E731
    got = _run(
        lambda r, f, k: dv.gradient_penalty(critic, r, f, k, target=target, one_sided=one_sided),
        jit,
        real,
        fake,
        kgp,
    )
    expected = _per_sample_reference(critic, real, fake, kgp, target, one_sided)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)  # float32 reassociation


def test_gradient_penalty_image_shaped_samples():
    # Samples [n, h, w, c]: the norm runs over all axes but the first.
    kx, ky, kgp = jax.random.split(jax.random.key(2), 3)
    real = jax.random.normal(kx, (4, 5, 5, 2))
    fake = jax.random.normal(ky, (4, 5, 5, 2))
    critic = lambda x: jnp.sum(jnp.sin(x) * x, axis=(1, 2, 3))  # noqa: E731
    got = dv.gradient_penalty(critic, real, fake, kgp)
    np.testing.assert_allclose(got, _per_sample_reference(critic, real, fake, kgp, 1.0, False), rtol=1e-5)


def test_gradient_penalty_of_linear_critic_is_closed_form():
    a = jnp.array([1.2, -1.6])  # |a| = 2
    critic = lambda x: x @ a  # noqa: E731
    x, y = jnp.zeros((8, 2)), jnp.ones((8, 2))
    key = jax.random.key(3)
    np.testing.assert_allclose(dv.gradient_penalty(critic, x, y, key), 1.0, rtol=1e-6)
    np.testing.assert_allclose(dv.gradient_penalty(critic, x, y, key, target=2.0), 0.0, atol=1e-12)
    np.testing.assert_allclose(dv.gradient_penalty(critic, x, y, key, target=3.0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(dv.gradient_penalty(critic, x, y, key, target=3.0, one_sided=True), 0.0)


def test_gradient_penalty_differentiable_in_critic_params_even_when_flat():
    # A critic with all-zero weights has zero input gradients: the penalty is target^2 and its
    # gradient with respect to the parameters must be finite (a plain norm gives NaN there).
    mlp = MLP(width=8, depth=1)
    real = jnp.ones((4, 2))
    params = jax.tree.map(jnp.zeros_like, mlp.init(jax.random.key(0), real))

    def penalty(params):
        return dv.gradient_penalty(lambda x: mlp.apply(params, x), real, -real, jax.random.key(1))

    value, grads = jax.value_and_grad(penalty)(params)
    np.testing.assert_allclose(value, 1.0)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_gradient_penalty_grads_numerically():
    with jax.enable_x64(True):
        real = jnp.array([[0.5, 1.0], [-1.0, 0.3], [0.2, 0.2]])
        fake = jnp.array([[1.5, -1.0], [0.0, 2.0], [-0.4, 0.9]])

        def penalty(w):
            return dv.gradient_penalty(lambda x: jnp.tanh(x @ w), real, fake, jax.random.key(0))

        jax.test_util.check_grads(penalty, (jnp.array([0.7, -0.4]),), order=1, modes=["rev"])


# --- weight clipping --------------------------------------------------------------------------


def test_weight_clipping_projects_after_the_optimizer():
    params = {"a": jnp.array([0.005, -0.009, 0.0]), "b": {"c": jnp.array([[0.01]])}}
    grads = {"a": jnp.array([-1.0, 1.0, 0.003]), "b": {"c": jnp.array([[-0.5]])}}
    opt = optax.chain(optax.sgd(0.01), dv.weight_clipping(0.01))
    state = opt.init(params)
    updates, state = jax.jit(opt.update)(grads, state, params)
    new = optax.apply_updates(params, updates)
    # Oracle: plain SGD followed by np.clip.
    expected = jax.tree.map(lambda p, g: np.clip(p - 0.01 * g, -0.01, 0.01), params, grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-9), new, expected)


def test_weight_clipping_needs_params():
    opt = dv.weight_clipping(0.1)
    with pytest.raises(ValueError, match="`params`"):
        opt.update({"w": jnp.ones(2)}, opt.init({"w": jnp.ones(2)}))


# --- bad input --------------------------------------------------------------------------------


def test_bad_mismatched_logit_shapes():
    with pytest.raises(ValueError, match="`fake_logits`"):
        dv.gan_discriminator_loss(jnp.zeros(4), jnp.zeros((4, 1)))


def test_bad_mismatched_logit_shapes_under_jit():
    with pytest.raises(ValueError, match="`fake_logits`"):
        jax.jit(dv.gan_discriminator_loss)(jnp.zeros((4, 2)), jnp.zeros((4, 3)))


def test_bad_mismatched_critic_shapes():
    with pytest.raises(ValueError, match="`critic_fake`"):
        dv.wasserstein_critic_loss(jnp.zeros((3, 1)), jnp.zeros(3))


def test_bad_nan_logits():
    with pytest.raises(ValueError, match="`real_logits`"):
        dv.gan_discriminator_loss(jnp.array([0.0, jnp.nan]), jnp.zeros(2))


def test_bad_empty_logits():
    with pytest.raises(ValueError, match="`fake_logits`"):
        dv.gan_generator_loss(jnp.zeros(0))


def test_bad_scalar_critic_output():
    with pytest.raises(ValueError, match="`critic_fake`"):
        dv.wasserstein_generator_loss(1.0)


def test_bad_saturating_flag():
    with pytest.raises(ValueError, match="`saturating`"):
        dv.gan_generator_loss(jnp.zeros(2), saturating="yes")


def test_bad_negative_density():
    with pytest.raises(ValueError, match="`p_fake`"):
        dv.optimal_discriminator(jnp.array([0.5]), jnp.array([-0.1]))


def test_bad_critic_fn_output_not_one_per_sample():
    x = jnp.zeros((5, 2))
    with pytest.raises(ValueError, match="`critic_fn`"):
        dv.gradient_penalty(lambda x: x, x, x, jax.random.key(0))
    with pytest.raises(ValueError, match="`critic_fn`"):
        jax.jit(lambda x: dv.gradient_penalty(lambda x: jnp.sum(x), x, x, jax.random.key(0)))(x)


def test_bad_critic_fn_not_callable():
    with pytest.raises(ValueError, match="`critic_fn`"):
        dv.gradient_penalty(3.0, jnp.zeros((2, 1)), jnp.zeros((2, 1)), jax.random.key(0))


def test_bad_penalty_sample_shapes():
    with pytest.raises(ValueError, match="`fake`"):
        dv.gradient_penalty(lambda x: x[:, 0], jnp.zeros((5, 2)), jnp.zeros((4, 2)), jax.random.key(0))


def test_bad_penalty_target():
    with pytest.raises(ValueError, match="`target`"):
        dv.gradient_penalty(lambda x: x[:, 0], jnp.zeros((5, 2)), jnp.zeros((5, 2)), jax.random.key(0), target=-1.0)


def test_bad_clip():
    with pytest.raises(ValueError, match="`clip`"):
        dv.weight_clipping(-0.01)


def test_losses_vmap_over_a_batch_of_problems():
    rng = np.random.default_rng(7)
    r, f = rng.normal(size=(3, 10)).astype(np.float32), rng.normal(size=(3, 12)).astype(np.float32)
    batched = jax.vmap(dv.gan_discriminator_loss)(r, f)
    np.testing.assert_allclose(batched, [dv.gan_discriminator_loss(r[i], f[i]) for i in range(3)], rtol=1e-6)
    batched = jax.vmap(dv.wasserstein_critic_loss)(r, f)
    np.testing.assert_allclose(batched, [dv.wasserstein_critic_loss(r[i], f[i]) for i in range(3)], rtol=1e-6)


def test_checked_turns_nan_logits_into_an_error_under_jit():
    safe = dv.checked(dv.gan_discriminator_loss)
    np.testing.assert_allclose(safe(jnp.zeros(2), jnp.zeros(2)), math.log(4.0), rtol=1e-6)
    with pytest.raises(ValueError, match="`real_logits`"):
        safe(jnp.array([0.0, jnp.nan]), jnp.zeros(2))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_gradient_penalty_non_finite_samples_under_jit_give_nan(bad):
    # Issue 17: a finite number came out under jit for NaN or inf samples (the critic here has a
    # constant gradient, so nothing propagated the bad value).
    critic = lambda x: 2.0 * x[:, 0]  # noqa: E731
    x, y = jnp.zeros((5, 3)), jnp.ones((5, 3))
    fn = jax.jit(lambda a: dv.gradient_penalty(critic, a, y, jax.random.key(0)))
    assert float(fn(x)) == 1.0
    assert np.isnan(float(fn(x.at[0, 0].set(bad))))


def test_optimal_discriminator_invalid_densities_under_jit_give_nan():
    # Issue 17: negative or NaN densities gave numbers outside [0, 1] under jit.
    fn = jax.jit(dv.optimal_discriminator)
    out = np.asarray(fn(jnp.array([0.3, -1.0, jnp.nan, jnp.inf, 1.0]), jnp.array([0.1, 0.2, 0.2, 1.0, jnp.inf])))
    np.testing.assert_allclose(out[0], 0.75)
    assert np.isnan(out[1]) and np.isnan(out[2])
    assert out[3] == 1.0 and out[4] == 0.0
