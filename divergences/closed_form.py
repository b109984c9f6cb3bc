r"""Closed-form divergences between textbook distributions.

Every function is vectorised over its array arguments (they broadcast against
each other, NumPy rules), jit- and grad-compatible, and returns float32 at
least. The interval functions return a ``dict`` with keys ``"kl"``, ``"tv"``,
``"js"`` and ``"w1"``; the Gaussian functions return one array.

Conventions: natural logarithm (nats); ``"kl"`` is KL(P || Q) with P the
first distribution; ``"js"`` uses weights 1/2 (in ``[0, log 2]``); ``"w1"``
is the Wasserstein-1 distance for the cost ``|x - y|`` (Euclidean in 2-D).

These are the reference values of the library's tests and of the
counterexamples behind WGAN (Arjovsky, Chintala and Bottou, "Wasserstein
GAN", ICML 2017, Example 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import erf
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences._numerics import LOG2, psd_sqrt, safe_sqrt

__all__ = [
    "uniform_intervals",
    "uniform_shift",
    "parallel_lines",
    "gaussian_kl",
    "gaussian_w1_1d",
    "gaussian_w2",
]

_LOG2 = LOG2


def _scalars(**named: ArrayLike) -> list[jax.Array]:
    arrays = {k: v.as_float_array(k, x) for k, x in named.items()}
    dtype = v.float_dtype(*arrays.values())
    shape = v.broadcast_shapes({k: a.shape for k, a in arrays.items()})
    out = []
    for k, a in arrays.items():
        v.require(k, ~jnp.isnan(a), "contains NaN")
        out.append(jnp.broadcast_to(a.astype(dtype), shape))
    return out


def _abs_linear_integral(alpha: jax.Array, beta: jax.Array) -> jax.Array:
    r"""``\int_0^1 |alpha + beta u| du``, exact, for broadcast arrays."""
    end = alpha + beta
    same_sign = alpha * end >= 0
    no_cross = jnp.abs(alpha + 0.5 * beta)
    safe_beta = jnp.where(same_sign, 1.0, beta)
    cross = (alpha**2 + end**2) / (2 * jnp.abs(safe_beta))
    return jnp.where(same_sign, no_cross, cross)


def uniform_intervals(a1: ArrayLike, b1: ArrayLike, a2: ArrayLike, b2: ArrayLike) -> dict[str, jax.Array]:
    r"""Divergences between P = U[a1, b1] and Q = U[a2, b2] on the line.

    With lengths :math:`L_1 = b_1 - a_1`, :math:`L_2 = b_2 - a_2`, densities
    :math:`1/L_1`, :math:`1/L_2`, and overlap length
    :math:`o = \max(0, \min(b_1, b_2) - \max(a_1, a_2))`:

    .. math::
        \mathrm{KL}(P\|Q) &= \log(L_2 / L_1) \text{ if } [a_1, b_1] \subseteq [a_2, b_2], \text{ else } +\infty, \\
        \mathrm{TV} &= 1 - \int \min(p, q) = 1 - \frac{o}{\max(L_1, L_2)}, \\
        \mathrm{JS} &= \frac{\log 2}{2}\Big(\frac{L_1 - o}{L_1} + \frac{L_2 - o}{L_2}\Big)
              + \frac{o}{2}\Big(\frac{1}{L_1}\log\frac{2 L_2}{L_1 + L_2} + \frac{1}{L_2}\log\frac{2 L_1}{L_1 + L_2}\Big), \\
        W_1 &= \int_0^1 |F_P^{-1}(u) - F_Q^{-1}(u)|\,du = \int_0^1 |(a_1 - a_2) + (L_1 - L_2) u|\,du.

    JS splits the line into the part only P charges (where the mixture has
    density p/2, so P's mass there contributes ``log 2`` per unit to
    KL(P||M)), the part only Q charges, and the overlap. W1 uses the quantile
    functions :math:`F^{-1}(u) = a + L u`, whose difference is linear in u.

    Args:
      a1, b1: P's interval, ``a1 < b1``; arrays broadcast together.
      a2, b2: Q's interval, ``a2 < b2``.

    Returns:
      ``{"kl", "tv", "js", "w1"}``, each of the broadcast shape. Eagerly,
      ``ValueError`` for an empty or reversed interval or an infinite
      endpoint; under ``jit``, NaN there.

    References:
      Cover and Thomas, *Elements of Information Theory* (2006), ch. 8;
      Villani, *Optimal Transport* (2009), Remark 2.19 (quantile coupling).
    """
    a1, b1, a2, b2 = _scalars(a1=a1, b1=b1, a2=a2, b2=b2)
    finite = jnp.ones(a1.shape, bool)
    for name, x in (("a1", a1), ("b1", b1), ("a2", a2), ("b2", b2)):
        v.require(name, jnp.isfinite(x), "must be finite (a uniform distribution needs a bounded interval)")
        finite &= jnp.isfinite(x)
    ok = v.require("b1", b1 > a1, "must be greater than `a1` (a non-empty interval)")
    ok &= v.require("b2", b2 > a2, "must be greater than `a2` (a non-empty interval)")
    l1, l2 = b1 - a1, b2 - a2
    valid = (l1 > 0) & (l2 > 0) & finite
    l1 = jnp.where(valid, l1, 1.0)
    l2 = jnp.where(valid, l2, 1.0)
    overlap = jnp.maximum(0.0, jnp.minimum(b1, b2) - jnp.maximum(a1, a2))
    contained = (a1 >= a2) & (b1 <= b2)
    kl = jnp.where(contained, jnp.log(l2) - jnp.log(l1), jnp.inf)
    tv = 1.0 - overlap / jnp.maximum(l1, l2)
    js = 0.5 * _LOG2 * ((l1 - overlap) / l1 + (l2 - overlap) / l2) + 0.5 * overlap * (
        jnp.log(2 * l2 / (l1 + l2)) / l1 + jnp.log(2 * l1 / (l1 + l2)) / l2
    )
    w1 = _abs_linear_integral(a1 - a2, l1 - l2)
    out = {"kl": kl, "tv": jnp.clip(tv, 0.0, 1.0), "js": jnp.clip(js, 0.0, _LOG2), "w1": w1}
    return {k: jnp.where(valid, x, jnp.nan) for k, x in out.items()}


def uniform_shift(eps: ArrayLike) -> dict[str, jax.Array]:
    r"""Divergences between P = U[0, 1] and P_eps = U[eps, 1 + eps].

    .. math::
        \mathrm{KL} = \begin{cases} 0 & \epsilon = 0 \\ +\infty & \epsilon \ne 0 \end{cases},\quad
        \mathrm{TV} = \min(|\epsilon|, 1),\quad
        \mathrm{JS} = \min(|\epsilon|, 1)\log 2,\quad
        W_1 = |\epsilon|.

    Derivation (the special case of :func:`uniform_intervals` with
    :math:`L_1 = L_2 = 1`): both densities equal 1 on their interval, and the
    intervals overlap on a length :math:`o = \max(0, 1 - |\epsilon|)`.

    * KL: for :math:`\epsilon \ne 0`, P charges :math:`[0, \epsilon)` (or
      :math:`(1 + \epsilon, 1]`), where P_eps has density 0, so
      :math:`\int p \log(p/q) = +\infty`.
    * TV: :math:`\tfrac12\int|p - q| = \tfrac12(2 \cdot (1 - o)) = 1 - o = \min(|\epsilon|, 1)`.
      TV is 1 only once the supports are disjoint, :math:`|\epsilon| \ge 1`;
      the claim "TV = 1 for every eps != 0" holds only for the parallel lines
      of :func:`parallel_lines`, whose supports never overlap.
    * JS: with M = (P + P_eps)/2, on the overlap p = q = m and the log-ratio
      is 0; where only P charges, p/m = 2, on a set of P-mass :math:`1 - o`.
      So :math:`\mathrm{KL}(P\|M) = (1 - o)\log 2`, likewise for P_eps, and
      :math:`\mathrm{JS} = \min(|\epsilon|, 1)\log 2`.
    * W1: the quantile functions are :math:`u` and :math:`u + \epsilon`, so
      :math:`W_1 = \int_0^1 |\epsilon|\,du = |\epsilon|`, growing without bound
      while TV and JS saturate at :math:`|\epsilon| = 1`.

    Args:
      eps: the shift, any real array.

    Returns:
      ``{"kl", "tv", "js", "w1"}``, each of ``eps``'s shape.

    Example:
      >>> import divergences as dv
      >>> {k: round(float(x), 4) for k, x in dv.closed_form.uniform_shift(0.25).items()}
      {'kl': inf, 'tv': 0.25, 'js': 0.1733, 'w1': 0.25}

    References:
      Arjovsky, Chintala and Bottou, "Wasserstein GAN", ICML 2017, sec. 2.
    """
    (eps,) = _scalars(eps=eps)
    a = jnp.abs(eps)
    sat = jnp.minimum(a, 1.0)
    return {
        "kl": jnp.where(eps == 0, 0.0, jnp.inf).astype(eps.dtype),
        "tv": sat,
        "js": sat * _LOG2,
        "w1": a,
    }


def parallel_lines(theta: ArrayLike) -> dict[str, jax.Array]:
    r"""The WGAN paper's Example 1: P_0 = (0, Z) against P_theta = (theta, Z), Z ~ U[0, 1].

    .. math::
        \mathrm{KL} = \begin{cases} 0 & \theta = 0 \\ +\infty & \theta \ne 0 \end{cases},\quad
        \mathrm{TV} = \mathbb{1}[\theta \ne 0],\quad
        \mathrm{JS} = \mathbb{1}[\theta \ne 0]\log 2,\quad
        W_1 = |\theta|.

    For :math:`\theta \ne 0` the two segments are disjoint, so TV and JS take
    their maxima and KL is infinite whatever :math:`|\theta|`; the optimal
    coupling moves each point :math:`(0, z)` to :math:`(\theta, z)`, a
    distance :math:`|\theta|`. Only W1 is continuous in :math:`\theta`.

    Args:
      theta: the horizontal offset, any real array.

    Returns:
      ``{"kl", "tv", "js", "w1"}``, each of ``theta``'s shape.

    References:
      Arjovsky, Chintala and Bottou, "Wasserstein GAN", ICML 2017, Example 1.
    """
    (theta,) = _scalars(theta=theta)
    apart = (theta != 0).astype(theta.dtype)
    return {
        "kl": jnp.where(theta == 0, 0.0, jnp.inf).astype(theta.dtype),
        "tv": apart,
        "js": apart * _LOG2,
        "w1": jnp.abs(theta),
    }


def _gaussian_args(mean1, cov1, mean2, cov2, *, semidefinite=False):
    m1 = v.as_float_array("mean1", mean1, min_ndim=1)
    m2 = v.as_float_array("mean2", mean2, min_ndim=1)
    c1 = v.as_float_array("cov1", cov1, min_ndim=2)
    c2 = v.as_float_array("cov2", cov2, min_ndim=2)
    d = m1.shape[-1]
    for name, m in (("mean2", m2),):
        if m.shape[-1] != d:
            raise v.fail(name, f"has dimension {m.shape[-1]} but `mean1` has {d}")
    for name, c in (("cov1", c1), ("cov2", c2)):
        if c.shape[-2:] != (d, d):
            raise v.fail(name, f"must have trailing shape ({d}, {d}) to match the means; got {c.shape}")
    dtype = v.float_dtype(m1, m2, c1, c2)
    batch = v.broadcast_shapes(
        {"mean1": m1.shape[:-1], "cov1": c1.shape[:-2], "mean2": m2.shape[:-1], "cov2": c2.shape[:-2]}
    )
    m1 = jnp.broadcast_to(m1.astype(dtype), batch + (d,))
    m2 = jnp.broadcast_to(m2.astype(dtype), batch + (d,))
    c1 = jnp.broadcast_to(c1.astype(dtype), batch + (d, d))
    c2 = jnp.broadcast_to(c2.astype(dtype), batch + (d, d))
    for name, m in (("mean1", m1), ("mean2", m2)):
        v.check_finite(name, m)
    chols = []
    for name, c in (("cov1", c1), ("cov2", c2)):
        v.check_finite(name, c)
        v.require(name, jnp.abs(c - jnp.swapaxes(c, -1, -2)) <= 1e-5 * (1 + jnp.abs(c)), "must be symmetric")
        if semidefinite:
            w = jnp.linalg.eigvalsh(c)
            scale = jnp.max(jnp.abs(w), axis=-1, keepdims=True)
            tol = 100 * d * jnp.finfo(c.dtype).eps * scale  # rounding of an exactly singular matrix
            v.require(name, w >= -tol, "must be positive semi-definite (it has a negative eigenvalue)")
            chols.append(None)
            continue
        chol = jnp.linalg.cholesky(c)
        v.require(name, jnp.all(jnp.isfinite(chol)), "must be positive definite (its Cholesky factorisation failed)")
        chols.append(chol)
    return m1, c1, chols[0], m2, c2, chols[1]


def gaussian_kl(mean1: ArrayLike, cov1: ArrayLike, mean2: ArrayLike, cov2: ArrayLike) -> jax.Array:
    r"""KL(N(mean1, cov1) || N(mean2, cov2)) between multivariate Gaussians.

    .. math::
        \mathrm{KL} = \tfrac12\Big[\operatorname{tr}(\Sigma_2^{-1}\Sigma_1)
          + (\mu_2 - \mu_1)^\top \Sigma_2^{-1} (\mu_2 - \mu_1) - d
          + \log\det\Sigma_2 - \log\det\Sigma_1\Big].

    Computed through Cholesky factors (triangular solves, log-determinants as
    sums of log-diagonals), batchwise over leading dimensions.

    Args:
      mean1, mean2: shape ``[..., d]``.
      cov1, cov2: symmetric positive definite, shape ``[..., d, d]``.

    Returns:
      Array of the broadcast batch shape, in nats.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> float(dv.closed_form.gaussian_kl(jnp.zeros(1), jnp.eye(1), jnp.ones(1), jnp.eye(1)))
      0.5

    References:
      Duchi, "Derivations for linear algebra and optimization" (2007), sec. 9;
      the distrax ``_kl_divergence_mvn_mvn`` form.
    """
    m1, _, l1, m2, _, l2 = _gaussian_args(mean1, cov1, mean2, cov2)
    d = m1.shape[-1]
    solve = jax.scipy.linalg.solve_triangular
    # tr(S2^-1 S1) = ||L2^-1 L1||_F^2 ; Mahalanobis term ||L2^-1 (m2 - m1)||^2.
    a = solve(l2, l1, lower=True)
    b = solve(l2, (m2 - m1)[..., None], lower=True)[..., 0]
    logdet1 = 2 * jnp.sum(jnp.log(jnp.diagonal(l1, axis1=-2, axis2=-1)), -1)
    logdet2 = 2 * jnp.sum(jnp.log(jnp.diagonal(l2, axis1=-2, axis2=-1)), -1)
    kl = 0.5 * (jnp.sum(a**2, (-2, -1)) + jnp.sum(b**2, -1) - d + logdet2 - logdet1)
    return jnp.where(kl < 0, jnp.zeros_like(kl), kl)


def gaussian_w1_1d(m1: ArrayLike, s1: ArrayLike, m2: ArrayLike, s2: ArrayLike) -> jax.Array:
    r"""Exact W1 between N(m1, s1^2) and N(m2, s2^2) on the line.

    The quantile coupling sends :math:`m_1 + s_1 z` to :math:`m_2 + s_2 z`, so
    :math:`W_1 = \mathbb{E}|\mu + \sigma Z|` with :math:`\mu = m_1 - m_2`,
    :math:`\sigma = |s_1 - s_2|`, Z standard normal: the mean of a folded
    normal,

    .. math::
        W_1 = \sigma\sqrt{2/\pi}\; e^{-\mu^2 / (2\sigma^2)} + \mu\,\operatorname{erf}\!\big(\mu / (\sigma\sqrt2)\big),

    and :math:`|\mu|` when :math:`\sigma = 0`.

    Args:
      m1, s1, m2, s2: means and standard deviations (``s >= 0``); arrays
        broadcast together.

    Returns:
      Array of the broadcast shape.

    Example:
      >>> import divergences as dv
      >>> round(float(dv.closed_form.gaussian_w1_1d(0.0, 1.0, 0.0, 2.0)), 5)  # sqrt(2/pi)
      0.79788

    References:
      Leone, Nelson and Nottingham, "The Folded Normal Distribution",
      Technometrics 3 (1961); Villani, *Optimal Transport* (2009), Remark 2.19.
    """
    m1, s1, m2, s2 = _scalars(m1=m1, s1=s1, m2=m2, s2=s2)
    v.require("s1", s1 >= 0, "must be >= 0 (a standard deviation)")
    v.require("s2", s2 >= 0, "must be >= 0 (a standard deviation)")
    mu = m1 - m2
    sigma = jnp.abs(s1 - s2)
    pos = sigma > 0
    safe_sigma = jnp.where(pos, sigma, 1.0)
    folded = safe_sigma * jnp.sqrt(2 / jnp.pi) * jnp.exp(-(mu**2) / (2 * safe_sigma**2)) + mu * erf(
        mu / (safe_sigma * jnp.sqrt(2.0))
    )
    return jnp.where(pos, folded, jnp.abs(mu))


def gaussian_w2(mean1: ArrayLike, cov1: ArrayLike, mean2: ArrayLike, cov2: ArrayLike) -> jax.Array:
    r"""Exact W2 between multivariate Gaussians (the Bures-Wasserstein formula).

    .. math::
        W_2^2 = \|\mu_1 - \mu_2\|^2 + \operatorname{tr}\Big(\Sigma_1 + \Sigma_2
          - 2\big(\Sigma_2^{1/2}\Sigma_1\Sigma_2^{1/2}\big)^{1/2}\Big).

    Returns W2 itself (the root), like POT and unlike ott-jax's squared cost.

    Both square roots are symmetric eigen-decompositions with the negative
    rounding of the eigenvalues clipped to 0 (:func:`divergences._numerics.psd_sqrt`),
    whose derivative is the Sylvester-equation solution in the eigenbasis, so
    gradients with respect to the means and covariances are finite for
    repeated eigenvalues (isotropic covariances) and singular covariances, and
    at equality, where W2 = 0 is not differentiable, the root's gradient is
    the zero subgradient.

    Args:
      mean1, mean2: shape ``[..., d]``.
      cov1, cov2: symmetric positive semi-definite, shape ``[..., d, d]``
        (singular covariances, such as a degenerate Gaussian on a line, are
        accepted; a negative eigenvalue beyond rounding is refused).

    Returns:
      Array of the broadcast batch shape.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> float(dv.closed_form.gaussian_w2(jnp.zeros(2), jnp.eye(2), jnp.array([3.0, 4.0]), jnp.eye(2)))
      5.0

    References:
      Dowson and Landau, "The Frechet distance between multivariate normal
      distributions", J. Multivariate Anal. 12 (1982); Givens and Shortt (1984).
    """
    m1, c1, _, m2, c2, _ = _gaussian_args(mean1, cov1, mean2, cov2, semidefinite=True)
    r2 = psd_sqrt(c2)
    cross = psd_sqrt(r2 @ c1 @ r2)
    trace = jnp.trace(c1 + c2 - 2 * cross, axis1=-2, axis2=-1)
    sq = jnp.sum((m1 - m2) ** 2, -1) + trace
    return safe_sqrt(sq)


def __dir__() -> list[str]:
    # The module's public surface is its functions: the imports (jax, jnp,
    # erf, ArrayLike, annotations) stay out of dir() and tab completion.
    return sorted(__all__)
