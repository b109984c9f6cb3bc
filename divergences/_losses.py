r"""More GAN losses: hinge, least squares, relativistic average, and the R1/R2 penalties.

The conventions of :mod:`divergences._gan` hold here too:

* every loss is **for minimisation** (the discriminator's and the
  generator's are separate functions);
* the first axis of an output array is the sample axis; real and fake batches
  may differ in size but not in the shape of one sample's output;
* "logits" or "outputs" are the raw, unbounded outputs of the discriminator
  (no sigmoid applied); where a loss needs :math:`\log\sigma`, it is written
  with ``softplus`` so that it is finite, with finite gradients, for every
  finite output;
* every loss takes optional per-sample weights (``real_weights [n]``,
  ``fake_weights [m]``, ``>= 0`` with a positive total): each expectation
  :math:`\mathbb{E}[\ell]` becomes the weighted mean
  :math:`\sum_i w_i \ell_i / \sum_i w_i` (weights are normalised, so scaling
  them changes nothing; TF-GAN divides by the number of non-zero weights
  instead, which agrees for 0/1 weights).

Penalties (:func:`r1_penalty`, :func:`r2_penalty`) take the critic as a
function and differentiate it with **one** reverse-mode pass over the batch,
as :func:`divergences.gradient_penalty` does.

Bad input follows the library's contract (:mod:`divergences._validation`):
shape and option errors raise ``ValueError`` naming the argument, eagerly and
at trace time; NaN outputs raise eagerly and propagate under ``jit``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from divergences import _validation as v
from divergences._gan import _outputs, _paired_outputs, _sample_average, _sample_mean, _squared_grad_norms

__all__ = [
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "relativistic_discriminator_loss",
    "relativistic_generator_loss",
    "r1_penalty",
    "r2_penalty",
    "RELATIVISTIC_FORMS",
]

RELATIVISTIC_FORMS = ("standard", "hinge")


# --- hinge ------------------------------------------------------------------------------------


def hinge_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    real_weights: ArrayLike | None = None,
    fake_weights: ArrayLike | None = None,
) -> jax.Array:
    r"""The hinge loss of the discriminator (geometric GAN, SNGAN, BigGAN).

    .. math::
        \mathcal{L}_D = \mathbb{E}_x[\max(0, 1 - D(x))] + \mathbb{E}_z[\max(0, 1 + D(G(z)))],

    with :math:`D` the raw output. Outputs beyond the margins (``D(x) >= 1``
    on real, ``D(G(z)) <= -1`` on fake samples) contribute nothing, so the
    discriminator stops pushing on samples it already separates. Pair it with
    :func:`hinge_generator_loss`.

    Args:
      real_logits: discriminator outputs on real samples, ``[n, ...]``.
      fake_logits: outputs on generated samples, ``[m, ...]``, the same
        trailing axes.
      real_weights: optional per-sample weights ``[n]``.
      fake_weights: optional per-sample weights ``[m]``.

    Returns:
      Scalar loss, ``>= 0`` (0 when every sample is beyond its margin).

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> float(dv.hinge_discriminator_loss(jnp.array([2.0, 0.5]), jnp.array([-0.5, -3.0])))
      0.5

    References:
      Lim and Ye, "Geometric GAN", arXiv:1705.02894 (2017), eq. 14. Miyato,
      Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative
      Adversarial Networks", ICLR 2018, eq. 17.
    """
    r, f = _paired_outputs("real_logits", real_logits, "fake_logits", fake_logits)
    return _sample_mean(jax.nn.relu(1 - r), real_weights, "real_weights", "real_logits") + _sample_mean(
        jax.nn.relu(1 + f), fake_weights, "fake_weights", "fake_logits"
    )


def hinge_generator_loss(fake_logits: ArrayLike, *, fake_weights: ArrayLike | None = None) -> jax.Array:
    r"""The generator's side of the hinge GAN: :math:`-\mathbb{E}_z[D(G(z))]`.

    The generator raises the discriminator's raw output on its samples, with
    no margin (the form of Lim and Ye 2017 and Miyato et al. 2018; it equals
    :func:`divergences.wasserstein_generator_loss`).

    Args:
      fake_logits: discriminator outputs on generated samples, ``[m, ...]``.
      fake_weights: optional per-sample weights ``[m]``.

    Returns:
      Scalar loss.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> float(dv.hinge_generator_loss(jnp.array([-0.5, 1.5])))
      -0.5

    References:
      Lim and Ye, "Geometric GAN", arXiv:1705.02894 (2017). Miyato et al.,
      ICLR 2018, eq. 17.
    """
    f = _outputs("fake_logits", fake_logits)
    return -_sample_mean(f, fake_weights, "fake_weights", "fake_logits")


# --- least squares ----------------------------------------------------------------------------


def lsgan_discriminator_loss(
    real_outputs: ArrayLike,
    fake_outputs: ArrayLike,
    *,
    a: float = 0.0,
    b: float = 1.0,
    real_weights: ArrayLike | None = None,
    fake_weights: ArrayLike | None = None,
) -> jax.Array:
    r"""The least-squares GAN discriminator loss, with fake target ``a`` and real target ``b``.

    .. math::
        \mathcal{L}_D = \tfrac12\,\mathbb{E}_x\big[(D(x) - b)^2\big] + \tfrac12\,\mathbb{E}_z\big[(D(G(z)) - a)^2\big],

    on the raw output :math:`D` (no sigmoid). The defaults ``a = 0``,
    ``b = 1`` (with the generator's ``c = 1``) are the 0-1 coding of Mao et
    al. and TF-GAN's ``least_squares_discriminator_loss``. For fixed
    :math:`G` the optimal discriminator is
    :math:`D^* = (b\,p_\text{data} + a\,p_G) / (p_\text{data} + p_G)`.

    **Pearson** :math:`\chi^2` **link** (Mao et al., Theorem 1): when
    :math:`b - c = 1` and :math:`b - a = 2` (for example ``a=-1, b=1, c=0``),
    the generator's objective at :math:`D^*` is
    :math:`\tfrac12\chi^2_\text{Pearson}(p_\text{data} + p_G \,\|\, 2p_G)`, so
    the generator minimises a Pearson chi-square divergence. The 0-1 coding
    does not satisfy the condition; it is the one used in practice.

    Args:
      real_outputs: discriminator outputs on real samples, ``[n, ...]``.
      fake_outputs: outputs on generated samples, ``[m, ...]``.
      a: the target for generated samples.
      b: the target for real samples.
      real_weights: optional per-sample weights ``[n]``.
      fake_weights: optional per-sample weights ``[m]``.

    Returns:
      Scalar loss, ``>= 0``.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> float(dv.lsgan_discriminator_loss(jnp.array([1.0, 0.0]), jnp.array([1.0])))
      0.75

    References:
      Mao, Li, Xie, Lau, Wang and Smolley, "Least Squares Generative
      Adversarial Networks", ICCV 2017, eqs. 2, 8 and 9, Theorem 1.
    """
    r, f = _paired_outputs("real_outputs", real_outputs, "fake_outputs", fake_outputs)
    a = jnp.asarray(v.check_scalar("a", a), r.dtype)
    b = jnp.asarray(v.check_scalar("b", b), r.dtype)
    return 0.5 * _sample_mean((r - b) ** 2, real_weights, "real_weights", "real_outputs") + 0.5 * _sample_mean(
        (f - a) ** 2, fake_weights, "fake_weights", "fake_outputs"
    )


def lsgan_generator_loss(fake_outputs: ArrayLike, *, c: float = 1.0, fake_weights: ArrayLike | None = None) -> jax.Array:
    r"""The least-squares GAN generator loss, with target ``c``.

    .. math::
        \mathcal{L}_G = \tfrac12\,\mathbb{E}_z\big[(D(G(z)) - c)^2\big],

    the value the generator wants the discriminator to believe for its
    samples (``c = 1``, the real target of the 0-1 coding, by default). Mao
    et al.'s generator objective also has :math:`\tfrac12\mathbb{E}_x[(D(x) - c)^2]`,
    which does not depend on the generator and is left out. See
    :func:`lsgan_discriminator_loss` for the Pearson :math:`\chi^2` choice of
    ``a, b, c``.

    Args:
      fake_outputs: discriminator outputs on generated samples, ``[m, ...]``.
      c: the generator's target.
      fake_weights: optional per-sample weights ``[m]``.

    Returns:
      Scalar loss, ``>= 0``.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> float(dv.lsgan_generator_loss(jnp.array([0.0, 1.0])))
      0.25

    References:
      Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017, eq. 2.
    """
    f = _outputs("fake_outputs", fake_outputs)
    c = jnp.asarray(v.check_scalar("c", c), f.dtype)
    return 0.5 * _sample_mean((f - c) ** 2, fake_weights, "fake_weights", "fake_outputs")


# --- relativistic average ---------------------------------------------------------------------


def _relativistic_terms(real_logits, fake_logits, real_weights, fake_weights, form):
    """The relativistic logits ``C(x_r) - E C(x_f)`` and ``C(x_f) - E C(x_r)``."""
    form = v.check_choice("form", form, RELATIVISTIC_FORMS)
    r, f = _paired_outputs("real_logits", real_logits, "fake_logits", fake_logits)
    mean_r = _sample_average(r, real_weights, "real_weights", "real_logits")
    mean_f = _sample_average(f, fake_weights, "fake_weights", "fake_logits")
    return form, r - mean_f, f - mean_r


def _relativistic_loss(wins, loses, form, real_weights, fake_weights, wins_is_real):
    """``E_wins[-log sigma(.)] + E_loses[-log(1 - sigma(.))]``, or the hinge form."""
    if form == "standard":
        l_win, l_lose = jax.nn.softplus(-wins), jax.nn.softplus(loses)
    else:
        l_win, l_lose = jax.nn.relu(1 - wins), jax.nn.relu(1 + loses)
    w_win, w_lose = (real_weights, fake_weights) if wins_is_real else (fake_weights, real_weights)
    n_win, n_lose = ("real", "fake") if wins_is_real else ("fake", "real")
    return _sample_mean(l_win, w_win, f"{n_win}_weights", f"{n_win}_logits") + _sample_mean(
        l_lose, w_lose, f"{n_lose}_weights", f"{n_lose}_logits"
    )


def relativistic_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    form: str = "standard",
    real_weights: ArrayLike | None = None,
    fake_weights: ArrayLike | None = None,
) -> jax.Array:
    r"""The relativistic average discriminator loss (RaGAN, RaHingeGAN).

    With :math:`C` the raw critic output, the relativistic logits are
    :math:`\tilde C(x_r) = C(x_r) - \mathbb{E}_{x_f} C(x_f)` and
    :math:`\tilde C(x_f) = C(x_f) - \mathbb{E}_{x_r} C(x_r)`: how much more
    real a sample looks than the average sample of the other batch. The
    discriminator loss is

    .. math::
        \text{standard:}\quad \mathbb{E}_{x_r}[\operatorname{softplus}(-\tilde C(x_r))]
        + \mathbb{E}_{x_f}[\operatorname{softplus}(\tilde C(x_f))],
        \qquad
        \text{hinge:}\quad \mathbb{E}_{x_r}[\max(0, 1 - \tilde C(x_r))] + \mathbb{E}_{x_f}[\max(0, 1 + \tilde C(x_f))],

    the GAN (binary cross-entropy) and hinge losses applied to the
    relativistic logits; ``softplus(-t) = -log sigmoid(t)``. The batch means
    are part of the loss and are differentiated through, as in the paper.
    With weights, the batch means are weighted means too. Trailing output
    axes are averaged entrywise (the batch mean is taken per entry).

    Args:
      real_logits: critic outputs on real samples, ``[n, ...]``.
      fake_logits: outputs on generated samples, ``[m, ...]``.
      form: ``"standard"`` (RaSGAN) or ``"hinge"`` (RaHingeGAN).
      real_weights: optional per-sample weights ``[n]``.
      fake_weights: optional per-sample weights ``[m]``.

    Returns:
      Scalar loss, ``>= 0``.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> round(float(dv.relativistic_discriminator_loss(jnp.zeros(3), jnp.zeros(2))), 4)  # 2 log 2
      1.3863

    References:
      Jolicoeur-Martineau, "The relativistic discriminator: a key element
      missing from standard GAN", ICLR 2019, eqs. 11-12 (RaSGAN) and
      Appendix A (RaHingeGAN).
    """
    form, rel_r, rel_f = _relativistic_terms(real_logits, fake_logits, real_weights, fake_weights, form)
    return _relativistic_loss(rel_r, rel_f, form, real_weights, fake_weights, wins_is_real=True)


def relativistic_generator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    form: str = "standard",
    real_weights: ArrayLike | None = None,
    fake_weights: ArrayLike | None = None,
) -> jax.Array:
    r"""The relativistic average generator loss: the discriminator's with the roles swapped.

    .. math::
        \text{standard:}\quad \mathbb{E}_{x_f}[\operatorname{softplus}(-\tilde C(x_f))]
        + \mathbb{E}_{x_r}[\operatorname{softplus}(\tilde C(x_r))],
        \qquad
        \text{hinge:}\quad \mathbb{E}_{x_f}[\max(0, 1 - \tilde C(x_f))] + \mathbb{E}_{x_r}[\max(0, 1 + \tilde C(x_r))],

    with the relativistic logits of :func:`relativistic_discriminator_loss`.
    Unlike the standard GAN, the generator's loss depends on the real batch
    (through :math:`\tilde C(x_r) = C(x_r) - \mathbb{E} C(x_f)`), so it needs
    the critic's outputs on both batches.

    Args:
      real_logits: critic outputs on real samples, ``[n, ...]``.
      fake_logits: outputs on generated samples, ``[m, ...]``.
      form: ``"standard"`` or ``"hinge"``.
      real_weights: optional per-sample weights ``[n]``.
      fake_weights: optional per-sample weights ``[m]``.

    Returns:
      Scalar loss, ``>= 0``.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> float(dv.relativistic_generator_loss(jnp.ones(2), jnp.zeros(2), form="hinge"))
      4.0

    References:
      Jolicoeur-Martineau, ICLR 2019, eqs. 11-12 and Appendix A.
    """
    form, rel_r, rel_f = _relativistic_terms(real_logits, fake_logits, real_weights, fake_weights, form)
    return _relativistic_loss(rel_f, rel_r, form, real_weights, fake_weights, wins_is_real=False)


# --- R1 / R2 ----------------------------------------------------------------------------------


_PENALTY_DOC = r"""

    .. math::
        R(\psi) = \mathbb{E}_{x \sim P}\big[\|\nabla_x D_\psi(x)\|_2^2\big],

    returned unscaled: Mescheder et al. regularise the discriminator loss
    with :math:`\tfrac{\gamma}{2} R`, so the loss is
    ``d_loss + gamma / 2 * penalty`` (``gamma = 10`` is common; StyleGAN uses
    0.1 to 10 depending on the resolution).

    **Which penalty when.** R1 (on real data) is the choice for
    non-saturating, hinge or relativistic GANs: it makes the training locally
    convergent at an equilibrium where the generator matches the data
    (Mescheder et al., Theorem 4.1) and does not need interpolates. R2 (on
    generated samples) has the same guarantee and is sometimes added to R1.
    For a Wasserstein critic, whose gradient norm must be 1 rather than 0,
    use :func:`divergences.gradient_penalty` (``target=1``); its
    ``target=0`` form is the zero-centred penalty at interpolates, and with
    ``real`` passed as ``fake`` it equals R1.

    All per-sample gradients come from **one** reverse-mode pass of the
    summed output over the batch, which is exact when each sample's output
    depends on that sample alone: MLPs, convolutions, layer norm, and
    spectral norm (its :math:`\sigma` depends on the weights, not the batch;
    call the critic with its power-iteration statistics frozen), but not
    batch norm in training mode. The penalty is a smooth function of the
    parameters (no square root), so its own gradient is finite everywhere.

    Args:
      critic_fn: ``[n, ...] -> [n]``, the discriminator with its parameters
        closed over (logits or raw outputs), one value per sample.
"""


def r1_penalty(
    critic_fn: Callable[[jax.Array], jax.Array],
    real: ArrayLike,
    *,
    weights: ArrayLike | None = None,
) -> jax.Array:
    return _sample_mean(_squared_grad_norms(critic_fn, "real", real), weights, "weights", "real")


def r2_penalty(
    critic_fn: Callable[[jax.Array], jax.Array],
    fake: ArrayLike,
    *,
    weights: ArrayLike | None = None,
) -> jax.Array:
    return _sample_mean(_squared_grad_norms(critic_fn, "fake", fake), weights, "weights", "fake")


r1_penalty.__doc__ = (
    r"""The R1 penalty: the squared gradient norm of the discriminator on real samples."""
    + _PENALTY_DOC
    + r"""      real: real samples, ``[n, ...]``.
      weights: optional per-sample weights ``[n]``.

    Returns:
      Scalar penalty, ``>= 0``.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> critic = lambda x: jnp.sum(x**2, axis=1)      # gradient 2x
      >>> float(dv.r1_penalty(critic, jnp.array([[1.0, 0.0], [0.0, 2.0]])))
      10.0

    References:
      Mescheder, Geiger and Nowozin, "Which Training Methods for GANs do
      actually Converge?", ICML 2018, eq. 9. Karras, Laine and Aila, "A
      Style-Based Generator Architecture for GANs", CVPR 2019 (R1, gamma = 10).
    """
)

r2_penalty.__doc__ = (
    r"""The R2 penalty: the squared gradient norm of the discriminator on generated samples."""
    + _PENALTY_DOC
    + r"""      fake: generated samples, ``[m, ...]`` (pass them through
        ``jax.lax.stop_gradient`` unless the generator should feel the penalty).
      weights: optional per-sample weights ``[m]``.

    Returns:
      Scalar penalty, ``>= 0``.

    Example:
      >>> import jax.numpy as jnp, divergences as dv
      >>> critic = lambda x: 3.0 * x[:, 0]
      >>> float(dv.r2_penalty(critic, jnp.zeros((4, 2))))
      9.0

    References:
      Mescheder, Geiger and Nowozin, "Which Training Methods for GANs do
      actually Converge?", ICML 2018, eq. 10.
    """
)
