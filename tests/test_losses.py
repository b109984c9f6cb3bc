"""Hinge, least-squares and relativistic GAN losses, R1/R2, weights and label smoothing.

Oracles: values worked out by hand on a TF-GAN-style fixture (four real and
four generated discriminator outputs), the textbook formulas in float64 NumPy
(naive ``log(sigmoid)``, safe at these magnitudes), finite differences
(``jax.test_util.check_grads``), integer weights against repeated samples, R1
against per-sample ``jax.grad`` and against ``gradient_penalty(target=0)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

import divergences as dv
from divergences.models import MLP

# TF-GAN's losses_impl_test fixture: discriminator outputs on real and generated samples.
REAL = np.array([5.0, 1.4, 12.5, 2.7])
FAKE = np.array([10.0, 4.4, -5.5, 3.6])


def _run(fn, jit, *args, **kw):
    if jit:
        return jax.jit(lambda *a: fn(*a, **kw))(*args)
    return fn(*args, **kw)


def _log_sigmoid(t):
    return np.log(1.0 / (1.0 + np.exp(-t)))


def _log1m_sigmoid(t):
    return np.log(1.0 - 1.0 / (1.0 + np.exp(-t)))


# --- hand-computed values on the fixture ------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
def test_hinge_hand_values(jit):
    # D: relu(1 - real) = 0 for every real output (all > 1); relu(1 + fake) = 11, 5.4, 0, 4.6 -> 21 / 4.
    np.testing.assert_allclose(_run(dv.hinge_discriminator_loss, jit, REAL, FAKE), 5.25, rtol=1e-6)
    # G: -(10 + 4.4 - 5.5 + 3.6) / 4.
    np.testing.assert_allclose(_run(dv.hinge_generator_loss, jit, FAKE), -3.125, rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_lsgan_hand_values(jit):
    # G (c = 1): 0.5 * mean(9^2, 3.4^2, 6.5^2, 2.6^2) = 0.5 * 141.57 / 4 (TF-GAN's expected value).
    np.testing.assert_allclose(_run(dv.lsgan_generator_loss, jit, FAKE), 17.69625, rtol=1e-6)
    # D (a = 0, b = 1): 0.5 * mean(4^2, 0.4^2, 11.5^2, 1.7^2) + 0.5 * mean(10^2, 4.4^2, 5.5^2, 3.6^2)
    #                 = 0.5 * 151.3 / 4 + 0.5 * 162.57 / 4.
    np.testing.assert_allclose(_run(dv.lsgan_discriminator_loss, jit, REAL, FAKE), 39.23375, rtol=1e-6)
    # a = -1, b = 1, c = 0 (the Pearson chi-square coding): G = 0.5 * mean(fake^2) = 162.57 / 8.
    np.testing.assert_allclose(_run(dv.lsgan_generator_loss, jit, FAKE, c=0.0), 20.32125, rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("form", ["standard", "hinge"])
def test_relativistic_matches_formula(jit, form):
    # mean(real) = 5.4, mean(fake) = 3.125, so the relativistic logits are
    # real - 3.125 = [1.875, -1.725, 9.375, -0.425] and fake - 5.4 = [4.6, -1.0, -10.9, -1.8].
    rel_r = np.array([1.875, -1.725, 9.375, -0.425])
    rel_f = np.array([4.6, -1.0, -10.9, -1.8])
    if form == "standard":
        d = -np.mean(_log_sigmoid(rel_r)) - np.mean(_log1m_sigmoid(rel_f))
        g = -np.mean(_log_sigmoid(rel_f)) - np.mean(_log1m_sigmoid(rel_r))
    else:
        # D: relu(1 - rel_r) = 0, 2.725, 0, 1.425; relu(1 + rel_f) = 5.6, 0, 0, 0 -> (4.15 + 5.6) / 4.
        d = (4.15 + 5.6) / 4
        # G: relu(1 - rel_f) = 0, 2, 11.9, 2.8; relu(1 + rel_r) = 2.875, 0, 10.375, 0.575.
        g = 16.7 / 4 + 13.825 / 4
    got_d = _run(dv.relativistic_discriminator_loss, jit, REAL, FAKE, form=form)
    got_g = _run(dv.relativistic_generator_loss, jit, REAL, FAKE, form=form)
    np.testing.assert_allclose(got_d, d, rtol=1e-6)
    np.testing.assert_allclose(got_g, g, rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_label_smoothing_is_soft_label_cross_entropy(jit):
    s = 0.1
    # Binary cross-entropy with real label 1 - s, fake label 0.
    expected = np.mean(-(1 - s) * _log_sigmoid(REAL / 4) - s * _log1m_sigmoid(REAL / 4)) - np.mean(_log1m_sigmoid(FAKE / 4))
    got = _run(dv.gan_discriminator_loss, jit, REAL / 4, FAKE / 4, label_smoothing=s)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # One-sided: the fake term is untouched, and s = 0 is the plain loss.
    np.testing.assert_allclose(
        dv.gan_discriminator_loss(REAL, FAKE, label_smoothing=0.0), dv.gan_discriminator_loss(REAL, FAKE), rtol=0
    )


def test_trailing_axes_and_random_batches_match_formulas():
    rng = np.random.default_rng(0)
    r, f = rng.normal(size=(7, 3)) * 2, rng.normal(size=(5, 3)) * 2
    np.testing.assert_allclose(dv.hinge_discriminator_loss(r, f), np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)), rtol=1e-6)
    # The relativistic batch mean is taken per output entry (axis 0 only).
    rel_r, rel_f = r - f.mean(0), f - r.mean(0)
    expected = -np.mean(_log_sigmoid(rel_r)) - np.mean(_log1m_sigmoid(rel_f))
    np.testing.assert_allclose(dv.relativistic_discriminator_loss(r, f), expected, rtol=1e-6)


# --- weights -----------------------------------------------------------------------------------

W_REAL = np.array([2, 1, 0, 3])
W_FAKE = np.array([1, 3, 1, 2])

WEIGHTED = {
    "gan_d": (lambda r, f, **w: dv.gan_discriminator_loss(r, f, label_smoothing=0.2, **w), True),
    "gan_g": (lambda r, f, **w: dv.gan_generator_loss(f, fake_weights=w.get("fake_weights")), False),
    "gan_g_sat": (lambda r, f, **w: dv.gan_generator_loss(f, saturating=True, fake_weights=w.get("fake_weights")), False),
    "wgan_d": (dv.wasserstein_critic_loss, True),
    "wgan_g": (lambda r, f, **w: dv.wasserstein_generator_loss(f, fake_weights=w.get("fake_weights")), False),
    "hinge_d": (dv.hinge_discriminator_loss, True),
    "hinge_g": (lambda r, f, **w: dv.hinge_generator_loss(f, fake_weights=w.get("fake_weights")), False),
    "lsgan_d": (lambda r, f, **w: dv.lsgan_discriminator_loss(r, f, a=-1.0, b=1.0, **w), True),
    "lsgan_g": (lambda r, f, **w: dv.lsgan_generator_loss(f, c=0.5, fake_weights=w.get("fake_weights")), False),
    "ra_d": (dv.relativistic_discriminator_loss, True),
    "ra_g": (dv.relativistic_generator_loss, True),
    "rahinge_d": (lambda r, f, **w: dv.relativistic_discriminator_loss(r, f, form="hinge", **w), True),
    "rahinge_g": (lambda r, f, **w: dv.relativistic_generator_loss(r, f, form="hinge", **w), True),
}


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", list(WEIGHTED))
def test_integer_weights_equal_repeated_samples(name, jit):
    fn, uses_real = WEIGHTED[name]
    r, f = REAL / 3, FAKE / 3
    kw = {"fake_weights": W_FAKE.astype(np.float32)}
    if uses_real:
        kw["real_weights"] = W_REAL.astype(np.float32)
    got = _run(lambda r, f: fn(r, f, **kw), jit, r, f)
    r_rep = np.repeat(r, W_REAL) if uses_real else r
    expected = fn(r_rep, np.repeat(f, W_FAKE))
    np.testing.assert_allclose(got, expected, rtol=2e-6)
    # Weights are normalised: scaling them changes nothing.
    scaled = {k: 7.5 * w for k, w in kw.items()}
    np.testing.assert_allclose(fn(r, f, **scaled), got, rtol=2e-6)


def test_weights_with_trailing_axes():
    rng = np.random.default_rng(3)
    r, f = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    got = dv.hinge_discriminator_loss(r, f, real_weights=W_REAL, fake_weights=W_FAKE)
    expected = dv.hinge_discriminator_loss(np.repeat(r, W_REAL, axis=0), np.repeat(f, W_FAKE, axis=0))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# --- finite differences -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(WEIGHTED))
def test_loss_grads_numerically(name):
    fn, uses_real = WEIGHTED[name]
    with jax.enable_x64(True):
        # Away from the hinge kinks (|1 -+ t| > 0.05 for every relativistic logit).
        r = jnp.array([0.3, -1.2, 2.0, 0.7])
        f = jnp.array([-0.5, 1.5, 0.1])
        jax.test_util.check_grads(lambda r, f: fn(r, f), (r, f), order=1, modes=["fwd", "rev"])
        w = {"fake_weights": jnp.array([1.0, 1.0, 3.0])}
        if uses_real:
            w["real_weights"] = jnp.array([1.0, 2.0, 0.5, 1.0])
        jax.test_util.check_grads(lambda r, f: fn(r, f, **w), (r, f), order=1, modes=["rev"])


def test_losses_finite_for_extreme_logits():
    r = jnp.array([-1e4, 1e4, -100.0])
    f = jnp.array([1e4, -1e4, 100.0])
    for name, (fn, _) in WEIGHTED.items():
        val = fn(r, f)
        grads = jax.grad(lambda r, f: fn(r, f), argnums=(0, 1))(r, f)
        assert bool(jnp.isfinite(val)), name
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads), name


# --- R1 / R2 -----------------------------------------------------------------------------------


def _per_sample_sq_norms(critic, x):
    # Oracle: one jax.grad per sample (no batching trick).
    return np.array([np.sum(np.asarray(jax.grad(lambda xi: critic(xi[None])[0])(x[i])) ** 2) for i in range(x.shape[0])])


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_r1_r2_match_per_sample_gradients(jit, spectral_norm):
    kx, ky, kp = jax.random.split(jax.random.key(0), 3)
    real = jax.random.normal(kx, (12, 3))
    fake = jax.random.normal(ky, (10, 3)) + 1.0
    mlp = MLP(width=16, depth=2, activation="tanh", spectral_norm=spectral_norm)
    variables = mlp.init(kp, real)
    # Spectral norm: the power-iteration vectors are frozen (update_stats=False) inside the penalty.
    critic = lambda x: mlp.apply(variables, x)  # noqa: E731
    r1 = _run(lambda x: dv.r1_penalty(critic, x), jit, real)
    r2 = _run(lambda x: dv.r2_penalty(critic, x), jit, fake)
    np.testing.assert_allclose(r1, _per_sample_sq_norms(critic, real).mean(), rtol=1e-5)  # float32 reassociation
    np.testing.assert_allclose(r2, _per_sample_sq_norms(critic, fake).mean(), rtol=1e-5)
    w = np.arange(12.0)
    np.testing.assert_allclose(
        dv.r1_penalty(critic, real, weights=w), np.sum(w * _per_sample_sq_norms(critic, real)) / w.sum(), rtol=1e-5
    )


def test_r1_equals_gradient_penalty_with_target_zero_on_real():
    # With fake = real every interpolate is the real sample, and (||g|| - 0)^2 = ||g||^2.
    kx, kp = jax.random.split(jax.random.key(1))
    real = jax.random.normal(kx, (9, 2, 2))  # image-shaped samples: the norm runs over all pixels
    w = jax.random.normal(kp, (4,))
    critic = lambda x: jnp.tanh(x.reshape(x.shape[0], -1) @ w) + jnp.sum(x**2, axis=(1, 2))  # noqa: E731
    gp = dv.gradient_penalty(critic, real, real, jax.random.key(2), target=0.0)
    np.testing.assert_allclose(dv.r1_penalty(critic, real), gp, rtol=1e-6)
    np.testing.assert_allclose(dv.r2_penalty(critic, real), gp, rtol=1e-6)


def test_r1_linear_critic_closed_form():
    a = jnp.array([1.2, -1.6])  # |a|^2 = 4
    np.testing.assert_allclose(dv.r1_penalty(lambda x: x @ a, jnp.ones((5, 2))), 4.0, rtol=1e-6)


def test_r1_grads_in_critic_params_numerically():
    with jax.enable_x64(True):
        real = jnp.array([[0.5, 1.0], [-1.0, 0.3], [0.2, 0.2]])

        def penalty(w):
            return dv.r1_penalty(lambda x: jnp.tanh(x @ w), real)

        jax.test_util.check_grads(penalty, (jnp.array([0.7, -0.4]),), order=1, modes=["fwd", "rev"])
        # Flat critic: the penalty is 0 and its gradient finite (no square root to blow up).
        g = jax.grad(lambda w: dv.r1_penalty(lambda x: x @ w, real))(jnp.zeros(2))
        assert bool(jnp.all(jnp.isfinite(g)))


# --- bad input ---------------------------------------------------------------------------------


def test_bad_weights():
    with pytest.raises(ValueError, match="^`real_weights` has shape"):
        dv.hinge_discriminator_loss(REAL, FAKE, real_weights=np.ones(3))
    with pytest.raises(ValueError, match="^`fake_weights` has negative"):
        dv.gan_discriminator_loss(REAL, FAKE, fake_weights=-np.ones(4))
    with pytest.raises(ValueError, match="^`fake_weights` sums to 0"):
        dv.relativistic_generator_loss(REAL, FAKE, fake_weights=np.zeros(4))
    with pytest.raises(ValueError, match="^`weights` has shape"):
        dv.r1_penalty(lambda x: x[:, 0], np.ones((4, 2)), weights=np.ones(5))
    with pytest.raises(ValueError, match="^`x_weights` is not supported"):
        dv.mmd(np.ones((4, 2)), np.zeros((4, 2)), bandwidth=1.0, estimator="linear", x_weights=np.ones(4))


def test_bad_options():
    with pytest.raises(ValueError, match="^`label_smoothing` must be >= 0.0 and < 1.0"):
        dv.gan_discriminator_loss(REAL, FAKE, label_smoothing=1.0)
    with pytest.raises(ValueError, match="^`form` must be one of 'standard', 'hinge'"):
        dv.relativistic_discriminator_loss(REAL, FAKE, form="least_squares")
    with pytest.raises(ValueError, match="^`b` must be a real number"):
        dv.lsgan_discriminator_loss(REAL, FAKE, b="1")
    with pytest.raises(ValueError, match="^`fake_logits` has shape"):
        dv.relativistic_discriminator_loss(np.ones((4, 1)), np.ones(4))
    with pytest.raises(ValueError, match="^`critic_fn` must return one value per sample"):
        dv.r1_penalty(lambda x: x, np.ones((4, 2)))
    with pytest.raises(ValueError, match="^`real_logits` contains NaN"):
        dv.hinge_discriminator_loss(np.array([np.nan, 1.0]), FAKE)


def test_nan_under_jit_propagates():
    got = jax.jit(dv.hinge_discriminator_loss)(jnp.array([jnp.nan, 1.0]), jnp.array([0.0]))
    assert bool(jnp.isnan(got))
    got = jax.jit(lambda r, f, w: dv.lsgan_discriminator_loss(r, f, real_weights=w))(REAL, FAKE, jnp.zeros(4))
    assert bool(jnp.isnan(got))  # weights summing to 0
