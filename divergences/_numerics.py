"""Small numerical helpers shared by the estimators: one definition of each.

* :data:`LOG2`: ``log 2`` as a Python float (the upper end of JS, the GAN's
  constant).
* :func:`safe_sqrt`: ``sqrt`` with a zero gradient (not ``inf`` or NaN) at 0,
  for norms and distances whose minimum is an exact zero (identical points).
* :func:`safe_norm`: the Euclidean norm along an axis through :func:`safe_sqrt`.
* :func:`soft_clip`: the identity on ``[-c, c]``, saturating smoothly just
  beyond, so that ``exp`` or a square of the result cannot overflow while the
  gradient stays finite (and continuous) everywhere.
* :func:`psd_sqrt`: the square root of a symmetric positive semi-definite
  matrix through its eigen-decomposition, negative rounding clipped to 0, with
  finite gradients at repeated and zero eigenvalues.
* :func:`matrix_sum`: the sum of a (kernel) matrix's entries as a product with
  a vector of ones, which keeps XLA's CPU client from fusing the matrix
  product that made it, the kernel and the sum into one slow call.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["LOG2", "safe_sqrt", "safe_norm", "soft_clip", "psd_sqrt", "matrix_sum"]

LOG2 = math.log(2.0)


def safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(max(x, 0))`` whose derivative is 0 where ``x <= 0`` (the subgradient at a minimum)."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1)), 0)


def safe_norm(x: jax.Array, axis: int = -1) -> jax.Array:
    """Euclidean norm along ``axis`` with a zero (not NaN) gradient at the zero vector."""
    return safe_sqrt(jnp.sum(x * x, axis=axis))


def soft_clip(x: jax.Array, c: float) -> jax.Array:
    r"""The identity on :math:`[-c, c]`, :math:`\pm(c + \tanh(|x| - c))` outside.

    Continuous with a continuous first derivative (1 at :math:`\pm c`), bounded
    by :math:`c + 1`, and its derivative decays to 0 (never NaN) for huge
    :math:`|x|`, infinities included.
    """
    c = jnp.asarray(c, x.dtype)
    inside = jnp.abs(x) <= c
    excess = jnp.where(inside, 0, jnp.abs(x) - c)
    return jnp.where(inside, x, jnp.sign(x) * (c + jnp.tanh(excess)))


def _psd_sqrt_eigh(a: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    w, u = jnp.linalg.eigh(0.5 * (a + jnp.swapaxes(a, -1, -2)))
    s = jnp.sqrt(jnp.maximum(w, 0))
    return (u * s[..., None, :]) @ jnp.swapaxes(u, -1, -2), s, u


@jax.custom_jvp
def psd_sqrt(a: jax.Array) -> jax.Array:
    r"""The symmetric square root :math:`A^{1/2}` of a positive semi-definite ``[..., d, d]`` matrix.

    ``A`` is symmetrised and decomposed, :math:`A = U \operatorname{diag}(w) U^\top`,
    and :math:`A^{1/2} = U \operatorname{diag}(\sqrt{\max(w, 0)}) U^\top`. Its JVP
    solves the Sylvester equation :math:`S\,\dot S + \dot S\,S = \dot A` in the
    eigenbasis, :math:`\dot S_{ij} = \dot A_{ij} / (s_i + s_j)`, with the
    divisor set to 1 where :math:`s_i + s_j = 0` (the square root is not
    differentiable at a singular matrix; this picks the finite one-sided
    value), so repeated eigenvalues (isotropic covariances) and zero ones give
    finite gradients.
    """
    return _psd_sqrt_eigh(a)[0]


@psd_sqrt.defjvp
def _psd_sqrt_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    out, s, u = _psd_sqrt_eigh(a)
    ut = jnp.swapaxes(u, -1, -2)
    da = 0.5 * (da + jnp.swapaxes(da, -1, -2))
    db = ut @ da @ u
    denom = s[..., :, None] + s[..., None, :]
    denom = jnp.where(denom > 0, denom, 1)
    return out, u @ (db / denom) @ ut


def matrix_sum(k: jax.Array) -> jax.Array:
    """The sum of all entries of ``k [..., n, m]`` (a scalar), through the product ``k @ ones(m)``.

    Same value as ``jnp.sum(k)`` (row sums first, then their total). The
    product matters on CPU in float32: there XLA fuses a matrix product, the
    elementwise kernel applied to it and a full reduction into one YNNPACK
    call, which ran at about half the speed of the matrix product alone; a
    matrix-vector product as the reduction keeps the big product on its own
    (``python -m benchmarks --only kernel_inception_distance``). The product
    runs at full precision (``Precision.HIGHEST``), so a GPU's TF32 or a TPU's
    bfloat16 passes do not round the entries before they are added.
    """
    return jnp.sum(jnp.matmul(k, jnp.ones(k.shape[-1], k.dtype), precision=jax.lax.Precision.HIGHEST))
