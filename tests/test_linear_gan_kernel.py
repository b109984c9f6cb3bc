"""Linear dual GAN with a kernel (the exact kernel logistic regression): strong duality against an
independent scipy solve of the kernel primal in float64, equality with the feature solver on the
features' own Gram matrix, the optimality conditions through `linear_gan_logits`, the envelope
gradient, jit and vmap, float32 at other scales, bad input."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from scipy.special import expit

import divergences as dv

BANDWIDTHS = np.array([0.3, 1.0, 3.0])


def _problem(seed, n=24, m=18, d=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) + 1.0, rng.normal(size=(m, d)) * 1.5


def _np_gaussian_gram(a, b, bandwidths):
    """Independent numpy Gram matrix: the sum of exp(-|a - b|^2 / (2 h^2)) over the bandwidths."""
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return sum(np.exp(-d2 / (2 * h * h)) for h in np.atleast_1d(bandwidths))


def _scipy_kernel_primal(k, n, C):
    """min over alpha of the kernel logistic regression, w = sum_i alpha_i phi(z_i) (float64, L-BFGS-B):

    C/2 alpha^T K alpha + sum_x softplus(-(K alpha)_x) + sum_z softplus((K alpha)_z).
    """

    def fun(alpha):
        s = k @ alpha
        sx, sz = s[:n], s[n:]
        value = 0.5 * C * alpha @ s + np.logaddexp(0, -sx).sum() + np.logaddexp(0, sz).sum()
        g_s = np.concatenate([-expit(-sx), expit(sz)])
        return value, C * s + k @ g_s

    opts = dict(maxiter=20000, gtol=1e-13, ftol=1e-16)
    return scipy.optimize.minimize(fun, np.zeros(k.shape[0]), jac=True, method="L-BFGS-B", options=opts).fun


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_kernel_strong_duality_against_scipy(C, jit):
    # The dual at the solved lambdas equals the primal minimum of an independent float64 solve.
    # Both are optimal to ~1e-12 relative; the bar 1e-8 leaves room for L-BFGS's stopping.
    x, gz = _problem(0)
    with jax.enable_x64(True):
        def solve_and_value(x, gz):
            lam = dv.solve_linear_gan_dual(x, gz, C=C, kernel="gaussian", bandwidth=BANDWIDTHS)
            return dv.linear_gan_dual(*lam, x, gz, C=C, kernel="gaussian", bandwidth=BANDWIDTHS)

        value = float((jax.jit(solve_and_value) if jit else solve_and_value)(x, gz))
    z = np.concatenate([x, gz])
    opt = _scipy_kernel_primal(_np_gaussian_gram(z, z, BANDWIDTHS), len(x), C)
    np.testing.assert_allclose(value, opt, rtol=1e-8)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("which", ["identity", "random_fourier"])
def test_kernel_of_features_equals_the_feature_solver(which, jit):
    # k(a, b) = phi(a) . phi(b) as a callable kernel: the same lambdas, dual and generator gradient
    # as features=phi (float64: the two solvers factorise different matrices, so ~1e-10 apart).
    x, gz = _problem(1)
    with jax.enable_x64(True):
        phi = None if which == "identity" else dv.random_fourier_features(jax.random.key(3), 2, 32, bandwidth=0.7)
        fmap = (lambda a: a) if phi is None else phi

        def kern(a, b):
            return fmap(a[None])[0] @ fmap(b[None])[0]

        def run(x, gz):
            lf = dv.solve_linear_gan_dual(x, gz, C=0.5, features=phi)
            lk = dv.solve_linear_gan_dual(x, gz, C=0.5, kernel=kern)
            gf = jax.grad(lambda g: dv.linear_gan_dual(*lf, x, g, C=0.5, features=phi))(gz)
            gk = jax.grad(lambda g: dv.linear_gan_dual(*lk, x, g, C=0.5, kernel=kern))(gz)
            return lf, lk, gf, gk

        lf, lk, gf, gk = (jax.jit(run) if jit else run)(jnp.asarray(x), jnp.asarray(gz))
        for a, b in zip(lf, lk):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(gf, gk, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("bandwidth", [None, 0.5, BANDWIDTHS])
def test_logits_meet_the_optimality_conditions(bandwidth, jit):
    # At the optimum lambda_x = sigmoid(w* . phi(x)) and lambda_z = sigmoid(w* . phi(gz)), with
    # w* . phi(p) from the representer form (float64: equal to ~1e-10; bar 1e-8).
    x, gz = _problem(2)
    with jax.enable_x64(True):
        def run(x, gz):
            lam = dv.solve_linear_gan_dual(x, gz, C=0.3, kernel="gaussian", bandwidth=bandwidth)
            return lam, dv.linear_gan_logits(*lam, x, gz, jnp.concatenate([x, gz]), C=0.3, kernel="gaussian",
                                             bandwidth=bandwidth)

        lam, logits = (jax.jit(run) if jit else run)(jnp.asarray(x), jnp.asarray(gz))
        np.testing.assert_allclose(expit(np.asarray(logits)), np.concatenate(lam), atol=1e-8)


def test_logits_with_features_are_the_weights_applied():
    # The feature path of linear_gan_logits is phi(p) . linear_gan_weights (float32 rounding).
    x, gz = _problem(3)
    phi = dv.random_fourier_features(jax.random.key(0), 2, 64)
    lam = dv.solve_linear_gan_dual(x, gz, C=1.0, features=phi)
    p = np.random.default_rng(0).normal(size=(7, 2))
    w = dv.linear_gan_weights(*lam, x, gz, C=1.0, features=phi)
    np.testing.assert_allclose(dv.linear_gan_logits(*lam, x, gz, p, C=1.0, features=phi),
                               phi(jnp.asarray(p, jnp.float32)) @ w, rtol=1e-5, atol=1e-5)


def test_kernel_envelope_gradient_against_finite_differences():
    # d/dgz max_lambda D = dD/dgz at the fixed optimum (float64 central differences, h = 1e-5:
    # truncation ~1e-10, rounding ~1e-11 relative; bar 1e-6).
    x, gz = _problem(4, n=12, m=10)
    rng = np.random.default_rng(1)
    kw = dict(C=0.5, kernel="gaussian", bandwidth=BANDWIDTHS)
    with jax.enable_x64(True):
        def optimal_value(g):
            return dv.linear_gan_dual(*dv.solve_linear_gan_dual(x, g, **kw), x, g, **kw)

        lam = dv.solve_linear_gan_dual(x, gz, **kw)
        envelope = np.asarray(jax.grad(lambda g: dv.linear_gan_dual(*lam, x, g, **kw))(jnp.asarray(gz)))
        for _ in range(3):
            u = rng.normal(size=gz.shape)
            fd = (float(optimal_value(gz + 1e-5 * u)) - float(optimal_value(gz - 1e-5 * u))) / 2e-5
            np.testing.assert_allclose(np.sum(envelope * u), fd, rtol=1e-6)


def test_kernel_solver_is_vmappable():
    x, gz = _problem(5, n=10, m=8)
    kw = dict(C=1.0, kernel="gaussian", bandwidth=BANDWIDTHS)
    with jax.enable_x64(True):
        gzs = jnp.stack([jnp.asarray(gz), jnp.asarray(gz) + 0.5])
        lam_x, lam_z = jax.vmap(lambda g: dv.solve_linear_gan_dual(x, g, **kw))(gzs)
        for i in range(2):
            ex, ez = dv.solve_linear_gan_dual(x, gzs[i], **kw)
            np.testing.assert_allclose(lam_x[i], ex, rtol=1e-10)
            np.testing.assert_allclose(lam_z[i], ez, rtol=1e-10)


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
def test_float32_is_translation_and_scale_free(scale):
    # A distance kernel sees the pooled samples centred and rescaled (as in mmd): data of any scale,
    # shifted far from 0, with the bandwidths scaled alike, give the float64 lambdas of the unit
    # problem to float32 accuracy (measured ~1e-6; bar 1e-4), with no warning.
    x, gz = _problem(6)
    with jax.enable_x64(True):
        ref = np.concatenate(dv.solve_linear_gan_dual(x, gz, C=1.0, kernel="gaussian", bandwidth=BANDWIDTHS))
    shift = 1e3 * scale
    xs, gs = (scale * x + shift).astype(np.float32), (scale * gz + shift).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", dv.PrecisionWarning)
        lam = dv.solve_linear_gan_dual(xs, gs, C=1.0, kernel="gaussian", bandwidth=scale * BANDWIDTHS)
    np.testing.assert_allclose(np.concatenate(lam), ref, atol=1e-4)


@pytest.mark.parametrize("C", [1e-6, 1e-12])
def test_float32_tiny_C_stays_finite_and_warns(C):
    # |K| / C of 1e6 to 1e12: the factorised system gets its rounding added to the diagonal, so the
    # lambdas stay finite and inside the box. The optimum is not representable in float32 (which
    # the warning says), and the float32 Gram matrix itself is too coarse for it: the dual at the
    # returned lambdas (float64) stays below the optimum (measured 25 and 2e6 below, against
    # optima near 1), but the solver closes all but ~1e-6 of the gap from its start at
    # lambda = 1/2 (about -|K| / (8C)); bar: all but 1e-3. (The feature solver on the
    # eigendecomposition of the same float32 Gram matrix ends further below, 125 at C = 1e-6.)
    x, gz = _problem(7)
    kw = dict(kernel="gaussian", bandwidth=1.0)
    with pytest.warns(dv.PrecisionWarning):
        lam = dv.solve_linear_gan_dual(x.astype(np.float32), gz.astype(np.float32), C=C, **kw)
    flat = np.concatenate(lam)
    assert np.all(np.isfinite(flat)) and np.all((flat > 0) & (flat < 1))
    z = np.concatenate([x, gz])
    opt = _scipy_kernel_primal(_np_gaussian_gram(z, z, 1.0), len(x), C)
    with jax.enable_x64(True):
        lx = np.clip(np.asarray(lam[0], np.float64), 1e-300, 1 - 1e-16)
        lz = np.clip(np.asarray(lam[1], np.float64), 1e-300, 1 - 1e-16)
        value = float(dv.linear_gan_dual(lx, lz, x, gz, C=C, **kw))
        start = float(dv.linear_gan_dual(np.full(len(x), 0.5), np.full(len(gz), 0.5), x, gz, C=C, **kw))
    assert opt - value < 1e-3 * (opt - start)


def test_nan_samples_under_jit_give_nan():
    x, gz = jnp.ones((4, 2)), -jnp.ones((3, 2))
    f = jax.jit(lambda a: dv.solve_linear_gan_dual(a, gz, C=1.0, kernel="gaussian", bandwidth=1.0))
    lam_x, lam_z = f(x.at[0, 0].set(jnp.nan))
    assert bool(jnp.all(jnp.isnan(lam_x))) and bool(jnp.all(jnp.isnan(lam_z)))


XB, GB = np.ones((4, 2)), -np.ones((3, 2))


def test_bad_kernel_and_features_together():
    phi = dv.random_fourier_features(jax.random.key(0), 2, 8)
    with pytest.raises(ValueError, match="^`kernel`"):
        dv.solve_linear_gan_dual(XB, GB, C=1.0, features=phi, kernel="gaussian")


def test_bad_energy_kernel():
    with pytest.raises(ValueError, match="^`kernel`.*positive semi-definite"):
        dv.linear_gan_dual(np.full(4, 0.5), np.full(3, 0.5), XB, GB, C=1.0, kernel="energy")


def test_bad_bandwidth_without_kernel():
    with pytest.raises(ValueError, match="^`bandwidth`"):
        dv.solve_linear_gan_dual(XB, GB, C=1.0, bandwidth=1.0)


def test_bad_bandwidth_value():
    with pytest.raises(ValueError, match="^`bandwidth`"):
        dv.solve_linear_gan_dual(XB, GB, C=1.0, kernel="gaussian", bandwidth=-1.0)


def test_bad_kernel_name():
    with pytest.raises(ValueError, match="^`kernel`"):
        dv.solve_linear_gan_dual(XB, GB, C=1.0, kernel="gausian")


def test_bad_callable_kernel_output():
    with pytest.raises(ValueError, match="^`kernel`"):
        dv.solve_linear_gan_dual(XB, GB, C=1.0, kernel=lambda a, b: jnp.stack([a @ b, a @ b]))


def test_bad_points_dimension():
    with pytest.raises(ValueError, match="^`points`"):
        dv.linear_gan_logits(np.full(4, 0.5), np.full(3, 0.5), XB, GB, np.zeros((2, 3)), C=1.0, kernel="gaussian")


def test_logits_gradient_in_the_points_is_finite_and_exact():
    # d/dp of the discriminator's logit, also at points that coincide with samples (distance 0),
    # against float64 central differences (h = 1e-6: truncation ~1e-12, rounding ~1e-10; bar 1e-6).
    x, gz = _problem(8, n=10, m=8)
    kw = dict(C=0.5, kernel="gaussian", bandwidth=BANDWIDTHS)
    with jax.enable_x64(True):
        lam = dv.solve_linear_gan_dual(x, gz, **kw)
        points = np.concatenate([x[:3], gz[:2], np.random.default_rng(0).normal(size=(3, 2))])

        def total(p):
            return jnp.sum(dv.linear_gan_logits(*lam, x, gz, p, **kw))

        grad = np.asarray(jax.grad(total)(jnp.asarray(points)))
        assert np.all(np.isfinite(grad))
        u = np.random.default_rng(1).normal(size=points.shape)
        fd = (float(total(points + 1e-6 * u)) - float(total(points - 1e-6 * u))) / 2e-6
        np.testing.assert_allclose(np.sum(grad * u), fd, rtol=1e-6)
