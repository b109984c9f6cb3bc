"""The likelihood pieces (ELBO, KL, IWAE, change of variables), the VAE and flow models, the two objectives.

Oracles: scipy's Gaussian log-densities, ``closed_form.gaussian_kl``, a
hand-written Monte-Carlo ELBO, the exact marginal likelihood of a
linear-Gaussian model, numerical quadrature of a flow's density, and the
Jacobian from ``jax.jacfwd``.
"""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import divergences as dv
from divergences import _likelihood, models
from divergences.train import _likelihood_objectives as lo

JIT = [False, True]


def _maybe_jit(f, jit):
    return jax.jit(f) if jit else f


def test_docstring_examples():
    result = doctest.testmod(_likelihood, raise_on_error=False, verbose=False)
    assert result.attempted >= 6 and result.failed == 0


# ---------------------------------------------------------------- pure pieces

@pytest.mark.parametrize("jit", JIT)
def test_diag_gaussian_log_prob_matches_scipy(jit):
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    scale = rng.uniform(0.1, 3.0, size=(7, 3))
    got = _maybe_jit(dv.diag_gaussian_log_prob, jit)(x, mean, scale)
    want = stats.norm.logpdf(x, mean, scale).sum(-1)
    # float32 arithmetic on O(10) values
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    std = _maybe_jit(dv.diag_gaussian_log_prob, jit)(x)
    np.testing.assert_allclose(std, stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("jit", JIT)
def test_diag_kl_matches_closed_form_gaussian_kl(jit):
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(5, 4))
    scale = rng.uniform(0.2, 2.5, size=(5, 4))
    got = _maybe_jit(dv.diag_gaussian_kl_standard, jit)(mean, scale)
    cov = jax.vmap(jnp.diag)(jnp.asarray(scale**2, jnp.float32))
    want = dv.closed_form.gaussian_kl(mean, cov, jnp.zeros(4), jnp.eye(4))
    # both float32; the Cholesky route of gaussian_kl rounds a little differently
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_diag_kl_at_equality_is_zero_with_finite_gradient():
    mean, scale = jnp.zeros(3), jnp.ones(3)
    assert float(dv.diag_gaussian_kl_standard(mean, scale)) == 0.0
    g = jax.grad(lambda m, s: dv.diag_gaussian_kl_standard(m, s), argnums=(0, 1))(mean, scale)
    assert all(bool(jnp.all(jnp.isfinite(t))) and float(jnp.max(jnp.abs(t))) == 0.0 for t in g)
    # Near sigma = 1 the expm1 form keeps its relative precision (float64 reference).
    s = 1.0 + 1e-3
    want = 0.5 * (s**2 - 1 - 2 * np.log(s))
    np.testing.assert_allclose(dv.diag_gaussian_kl_standard(jnp.zeros(1), jnp.full(1, s)), want, rtol=1e-3)


def test_gradients_match_finite_differences():
    from jax.test_util import check_grads

    x = jnp.array([[0.3, -1.2]])
    check_grads(lambda m, s: dv.diag_gaussian_log_prob(x, m, s), (jnp.array([0.1, 0.2]), jnp.array([0.7, 1.3])),
                order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
    check_grads(dv.diag_gaussian_kl_standard, (jnp.array([0.1, -0.4]), jnp.array([0.7, 1.3])),
                order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


def test_softplus_scale_is_positive_and_does_not_overflow():
    raw = jnp.array([-1e4, -30.0, 0.0, 30.0, 1e4])
    s = dv.softplus_scale(raw, min_scale=1e-3)
    assert bool(jnp.all(s >= 1e-3)) and bool(jnp.all(jnp.isfinite(s)))
    np.testing.assert_allclose(s[2], np.log(2) + 1e-3, rtol=1e-6)
    g = jax.grad(lambda r: jnp.sum(dv.softplus_scale(r)))(raw)
    np.testing.assert_allclose(g, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)  # the sigmoid


# A linear-Gaussian model with a known marginal: z ~ N(0, I_k), x | z ~ N(W z + b, s^2 I_d),
# so x ~ N(b, W W^T + s^2 I) and z | x ~ N(P W^T (x - b) / s^2, P), P = (I + W^T W / s^2)^-1.
# The encoder q(z|x) = N(mu, diag(sd^2)) is deliberately not that posterior (shifted mean,
# inflated diagonal scales), so that the ELBO is strictly below log p(x).
_RNG = np.random.default_rng(2)
_K, _D = 2, 3
_W = _RNG.normal(size=(_D, _K))
_B = _RNG.normal(size=_D)
_S = 0.7
_X = _RNG.normal(size=_D) * 1.5
_POST_COV = np.linalg.inv(np.eye(_K) + _W.T @ _W / _S**2)
_MU = _POST_COV @ _W.T @ (_X - _B) / _S**2 + np.array([0.3, -0.3])
_SD = 1.6 * np.sqrt(np.diag(_POST_COV))


def _exact_log_marginal():
    return stats.multivariate_normal(_B, _W @ _W.T + _S**2 * np.eye(_D)).logpdf(_X)


def _closed_form_reconstruction():
    # E_q log N(x; W z + b, s^2 I) = -(||x - W mu - b||^2 + sum_j ||W_j||^2 sd_j^2) / (2 s^2) - d log s - d/2 log 2 pi
    r = _X - _W @ _MU - _B
    quad = r @ r + np.sum((_W**2).sum(0) * _SD**2)
    return -quad / (2 * _S**2) - _D * np.log(_S) - 0.5 * _D * np.log(2 * np.pi)


def _log_weights(z):
    """log p(x, z) - log q(z | x) for z [..., k], in float64 (numpy, scipy)."""
    log_lik = stats.norm.logpdf(_X, z @ _W.T + _B, _S).sum(-1)
    return log_lik + stats.norm.logpdf(z).sum(-1) - stats.norm.logpdf(z, _MU, _SD).sum(-1)


@pytest.mark.parametrize("jit", JIT)
def test_elbo_equals_hand_monte_carlo(jit):
    elbo = _maybe_jit(dv.gaussian_elbo, jit)(jnp.asarray([_closed_form_reconstruction()]), _MU[None], _SD[None])
    z = _MU + _SD * np.random.default_rng(3).standard_normal((200_000, _K))
    lw = _log_weights(z)
    mc, se = lw.mean(), lw.std() / np.sqrt(len(lw))
    # 4 Monte-Carlo standard errors (plus float32 rounding of the closed form)
    assert abs(float(elbo[0]) - mc) < 4 * se + 1e-4, (float(elbo[0]), mc, se)
    assert float(elbo[0]) < _exact_log_marginal()


def test_iwae_increases_with_k_towards_the_exact_log_likelihood():
    exact = _exact_log_marginal()
    rng = np.random.default_rng(4)
    reps, ks = 4000, (1, 5, 25, 125, 1000)
    # nested samples: the bound with K draws uses the first K of the same 1000 per replicate,
    # so that the differences between consecutive K are paired (their noise mostly cancels)
    z = _MU + _SD * rng.standard_normal((ks[-1], reps, _K))
    lw = jnp.asarray(_log_weights(z), jnp.float32)
    bounds = np.stack([np.asarray(dv.iwae_bound(lw[:k]), np.float64) for k in ks])  # [len(ks), reps]
    means, ses = bounds.mean(1), bounds.std(1) / np.sqrt(reps)
    # K = 1 is the ELBO in expectation (4 standard errors)
    elbo = float(dv.gaussian_elbo(jnp.asarray([_closed_form_reconstruction()]), _MU[None], _SD[None])[0])
    assert abs(means[0] - elbo) < 4 * ses[0]
    # strictly increasing up to K = 125: every paired step up by more than 4 of its standard
    # errors (the step from 125 to 1000, ~0.006 nats, is within the noise; checked below instead)
    steps = np.diff(bounds[:4], axis=0)
    assert np.all(steps.mean(1) > 4 * steps.std(1) / np.sqrt(reps)), (means, ses)
    # below the exact log-likelihood (3 standard errors), and at K = 1000 within 2% of the K = 1 gap
    assert np.all(means < exact + 3 * ses)
    assert exact - means[-1] < 0.02 * (exact - means[0]), (exact, means)


@pytest.mark.parametrize("jit", JIT)
def test_iwae_bound_is_a_stable_log_mean_exp(jit):
    lw = np.random.default_rng(5).normal(size=(50, 4)) * 30 + 800  # exp overflows in float32
    got = _maybe_jit(lambda w: dv.iwae_bound(w, axis=0), jit)(jnp.asarray(lw, jnp.float32))
    want = logsumexp(lw, axis=0) - np.log(50)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    got_t = _maybe_jit(lambda w: dv.iwae_bound(w, axis=1), jit)(jnp.asarray(lw.T, jnp.float32))
    np.testing.assert_allclose(got_t, want, rtol=1e-6)


def test_flow_log_prob_sums_layers():
    base = jnp.array([-1.0, -2.0])
    np.testing.assert_allclose(dv.flow_log_prob(base, [jnp.array([0.5, 0.1]), jnp.array([0.25, -0.1])]), [-0.25, -2.0])
    np.testing.assert_allclose(dv.flow_log_prob(base, jnp.array([0.5, 0.1])), [-0.5, -1.9])


def test_bad_input():
    with pytest.raises(ValueError, match=r"^`scale` must be > 0"):
        dv.diag_gaussian_log_prob(jnp.zeros((2, 2)), 0.0, jnp.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"^`scale` must be > 0"):
        dv.diag_gaussian_kl_standard(jnp.zeros(2), jnp.zeros(2))
    # under jit: NaN for the affected sample only
    out = jax.jit(dv.diag_gaussian_kl_standard)(jnp.zeros((2, 2)), jnp.array([[1.0, 1.0], [1.0, 0.0]]))
    assert float(out[0]) == 0.0 and bool(jnp.isnan(out[1]))
    with pytest.raises(ValueError, match=r"^`scale` must be > 0"):
        dv.checked(dv.diag_gaussian_kl_standard)(jnp.zeros(2), -jnp.ones(2))
    # shape errors at trace time
    with pytest.raises(ValueError, match=r"^`mean` has shape \(3,\)"):
        jax.jit(dv.diag_gaussian_log_prob)(jnp.zeros((4, 2)), jnp.zeros(3))
    with pytest.raises(ValueError, match=r"^`log_det_jacobian` has shape"):
        jax.jit(dv.flow_log_prob)(jnp.zeros(4), jnp.zeros(3))
    with pytest.raises(ValueError, match=r"^`log_det_jacobian` is an empty sequence"):
        dv.flow_log_prob(jnp.zeros(4), [])
    with pytest.raises(ValueError, match=r"^`mean` must have a feature axis"):
        dv.diag_gaussian_kl_standard(1.0, 1.0)
    with pytest.raises(ValueError, match=r"^`min_scale` must be >= 0"):
        dv.softplus_scale(jnp.zeros(2), min_scale=-1.0)
    with pytest.raises(ValueError, match=r"^`log_weights` is empty along axis 0"):
        dv.iwae_bound(jnp.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"^`objective` must be one of"):
        lo.LikelihoodConfig(objective="gan")


# ---------------------------------------------------------------- models

def _random_flow(dim=2, n_layers=4, seed=0, noise=0.3, rotations=False):
    flow = models.RealNVP(dim=dim, n_layers=n_layers, width=16, depth=2, rotations=rotations)
    params = flow.init(jax.random.key(seed), jnp.zeros((1, dim)))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    # the last layers start at zero (identity flow): perturb every parameter to test a generic map
    leaves = [a + noise * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)]
    return flow, jax.tree.unflatten(tree, leaves)


@pytest.mark.parametrize("rotations", [False, True])
@pytest.mark.parametrize("dim", [2, 3])
def test_flow_inverse_and_log_det_are_exact(dim, rotations):
    flow, params = _random_flow(dim=dim, rotations=rotations)
    # float64, so that "exact" is tested to 1e-10 and not hidden by float32 rounding, which
    # the layers' scales (up to e^3 each) amplify
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        x = 2.0 * jax.random.normal(jax.random.key(7), (64, dim), jnp.float64)

        @jax.jit
        def check(x):
            z, ld = flow.apply(params, x)
            x_back, ld_inv = flow.apply(params, z, method="inverse")
            jac = jax.vmap(jax.jacfwd(lambda u: flow.apply(params, u)[0]))(x)
            return z, x_back, ld, ld_inv, jnp.linalg.slogdet(jac)

        z, x_back, ld, ld_inv, (sign, logabs) = check(x)
        assert z.dtype == jnp.float64
        assert float(jnp.max(jnp.abs(z - x))) > 0.1  # the map is not the identity
        np.testing.assert_allclose(x_back, x, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ld_inv, -ld, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ld, logabs, rtol=0, atol=1e-9)
        if not rotations:
            assert bool(jnp.all(sign > 0))  # couplings with exp scales preserve orientation


@pytest.mark.parametrize("rotations", [False, True])
def test_flow_density_integrates_to_one(rotations):
    flow, params = _random_flow(dim=2, noise=0.2, rotations=rotations)
    g = np.linspace(-10, 10, 801, dtype=np.float32)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1))

    @jax.jit
    def log_p(x):
        z, ld = flow.apply(params, x)
        return dv.flow_log_prob(dv.diag_gaussian_log_prob(z), ld)

    dens = np.exp(np.asarray(log_p(pts), np.float64)).reshape(xx.shape)
    mass = np.trapezoid(np.trapezoid(dens, g, axis=1), g)
    # trapezoid rule on a 0.025 grid of a smooth density; mass beyond |x| = 10 is negligible
    np.testing.assert_allclose(mass, 1.0, atol=5e-3)


def test_vae_model_shapes():
    x = jax.ShapeDtypeStruct((5, 64), jnp.float32)
    for enc, dec in [
        (models.GaussianEncoder(latent_dim=3, width=8), models.GaussianDecoder(out_features=64, width=8)),
        (models.GaussianEncoder(latent_dim=3, width=8), models.GaussianDecoder(out_features=64, width=8, shared_scale=True)),
        (models.ConvGaussianEncoder(image_shape=(8, 8, 1), latent_dim=3, features=4),
         models.ConvGaussianDecoder(image_shape=(8, 8, 1), features=4)),
    ]:
        ev = jax.eval_shape(enc.init, jax.random.key(0), x)
        mean, raw = jax.eval_shape(enc.apply, ev, x)
        assert mean.shape == raw.shape == (5, 3)
        z = jax.ShapeDtypeStruct((7, 5, 3), jnp.float32)  # a leading Monte-Carlo axis
        dv_ = jax.eval_shape(dec.init, jax.random.key(0), z)
        xm, xr = jax.eval_shape(dec.apply, dv_, z)
        assert xm.shape == xr.shape == (7, 5, 64)


# ---------------------------------------------------------------- objectives and short runs

def test_objective_functions_agree():
    cfg = lo.LikelihoodConfig(objective="vae", width=16, depth=1, iwae_samples=100)
    params = lo.init(jax.random.key(0), cfg)
    x = jax.random.normal(jax.random.key(1), (200, 2))
    # IWAE (K = 100) >= ELBO on average; both are nats per dimension
    neg_elbo, metrics = jax.jit(lambda p, b, k: lo.loss(p, b, k, cfg=cfg))(params, x, jax.random.key(2))
    nll = lo.heldout_nll_nats_per_dim(params, x, jax.random.key(3), cfg=cfg, chunk=100)
    assert nll <= float(neg_elbo) + 0.01
    np.testing.assert_allclose(metrics["neg_elbo"], metrics["kl"] + metrics["reconstruction"], rtol=1e-5)
    # the KL warm-up weight scales the KL term only (same key: same reparameterised samples)
    half, m_half = lo.loss(params, x, jax.random.key(2), cfg=cfg, kl_weight=0.5)
    np.testing.assert_allclose(half, m_half["reconstruction"] + 0.5 * m_half["kl"], rtol=1e-5)
    np.testing.assert_allclose(m_half["neg_elbo"], neg_elbo, rtol=1e-5)
    assert lo.sample(params, jax.random.key(4), 10, cfg=cfg).shape == (10, 2)
    fcfg = lo.LikelihoodConfig(objective="flow", width=16, n_layers=2)
    fparams = lo.init(jax.random.key(0), fcfg)
    exact = -float(jnp.mean(lo.flow_log_prob(fparams, x, cfg=fcfg))) / 2
    np.testing.assert_allclose(lo.heldout_nll_nats_per_dim(fparams, x, jax.random.key(3), cfg=fcfg, chunk=64), exact, rtol=1e-5)


def test_flow_run_recovers_gaussian_mean_and_covariance():
    mean = np.array([1.0, -2.0])
    cov = np.array([[2.0, 1.2], [1.2, 1.5]])
    rng = np.random.default_rng(0)
    data = rng.multivariate_normal(mean, cov, size=10_000).astype(np.float32)
    held = rng.multivariate_normal(mean, cov, size=2_000).astype(np.float32)
    cfg = lo.LikelihoodConfig(objective="flow", width=32, depth=1, n_layers=4, learning_rate=3e-3, decay_steps=1500)
    params, _ = lo.fit(cfg, data, jax.random.key(0), steps=1500, batch_size=256, steps_per_call=500)
    s = np.asarray(lo.sample(params, jax.random.key(1), 20_000, cfg=cfg), np.float64)
    # a learned flow, 1500 steps: mean within 0.1 (std ~1.3), covariance within 10% of its scale
    np.testing.assert_allclose(s.mean(0), mean, atol=0.1)
    np.testing.assert_allclose(np.cov(s.T), cov, atol=0.2)
    # held-out NLL near the Gaussian's entropy per dimension (closed form), above it minus sampling error
    entropy = 0.5 * (2 * np.log(2 * np.pi * np.e) + np.linalg.slogdet(cov)[1]) / 2
    nll = lo.heldout_nll_nats_per_dim(params, held, jax.random.key(2), cfg=cfg)
    assert entropy - 0.05 < nll < entropy + 0.05, (nll, entropy)


def test_vae_run_lowers_heldout_nll_on_8_gaussians():
    from divergences.train import load_dataset

    ds = load_dataset("8gaussians", n_train=5000, n_test=1000)
    cfg = lo.LikelihoodConfig(objective="vae", width=64, depth=2)
    key = jax.random.key(0)
    before = lo.heldout_nll_nats_per_dim(lo.init(jax.random.split(key, 3)[0], cfg), ds.test, key, cfg=cfg)
    params, _ = lo.fit(cfg, ds.train, key, steps=1500, batch_size=256, steps_per_call=500)
    after = lo.heldout_nll_nats_per_dim(params, ds.test, key, cfg=cfg)
    # a decrease far beyond the IWAE estimate's noise (~0.01 nats/dim on 1000 points)
    assert after < before - 0.5, (before, after)


def test_conv_vae_objective_shapes():
    # the DCGAN-style pair on 8x8 digits, dequantised: shapes only (eval_shape, no compilation)
    cfg = lo.LikelihoodConfig(objective="vae", model="dcgan", image_shape=(8, 8, 1), data_dim=64, width=4,
                              latent_dim=3, dequantize=0.125, iwae_samples=5)
    params = jax.eval_shape(lambda k: lo.init(k, cfg), jax.random.key(0))
    batch = jax.ShapeDtypeStruct((6, 64), jnp.float32)
    value, metrics = jax.eval_shape(lambda p, b, k: lo.loss(p, b, k, cfg=cfg), params, batch, jax.random.key(1))
    assert value.shape == () and set(metrics) == {"neg_elbo", "kl", "reconstruction"}
    assert jax.eval_shape(lambda p, k: lo.sample(p, k, 7, cfg=cfg), params, jax.random.key(2)).shape == (7, 64)
    assert jax.eval_shape(lambda p, b, k: lo.log_likelihood(p, b, k, cfg=cfg), params, batch, jax.random.key(3)).shape == (6,)
    with pytest.raises(ValueError, match=r"^`model` 'dcgan' needs"):
        lo.LikelihoodConfig(objective="flow", model="dcgan", image_shape=(8, 8, 1))
