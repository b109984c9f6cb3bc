"""Shared pieces of the counterexamples: configuration, samplers, confidence intervals, critics."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

import divergences as dv
from divergences.models import MLP


@dataclasses.dataclass(frozen=True)
class Config:
    """Every knob of ``python -m divergences.train.counterexamples``, with its default in one place.

    The defaults fit the whole run in under 3 minutes on 2 CPU cores; ``quick()``
    shrinks every budget for the tests.
    """

    seed: int = 0
    # Sections 1-2: the divergence tables.
    grid: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
    seeds: int = 5  # independent sample sets per grid point (confidence intervals)
    n_samples: int = 500  # samples per distribution and per seed
    bins: int = 20  # equal-width histogram bins over the pooled range (binned plug-in)
    knn_k: int = 1  # neighbours of the kNN KL estimator
    critic_width: int = 32
    critic_depth: int = 2
    critic_activation: str = "relu"
    # The f-GAN JS critics (also section 3's GAN discriminators) need sharp steps at the support
    # edges; leaky ReLU and a larger step get closer to the bound in the same budget.
    disc_activation: str = "leaky_relu"
    disc_lr: float = 1e-2
    critic_steps: int = 300  # full-batch Adam steps per critic (dual W1, f-GAN JS)
    critic_lr: float = 3e-3
    gp_weight: float = 10.0  # WGAN-GP penalty weight of the learned-shift critic (the paper's)
    # Penalty weight of the estimating critics: a soft penalty lets the slope reach 1 + W1 / (2 * weight),
    # so 10 would overestimate W1 = 3 by 15%; 100 keeps the overshoot at 1.5%.
    dual_gp_weight: float = 100.0
    n_projections: int = 64  # directions of the sliced distances
    # Section 3: gradients against theta on the parallel lines reuse section 2's critics; two far Gaussians.
    gauss_means: tuple[float, float] = (0.0, 5.0)  # real N(m0, s^2) and fake N(m1, s^2)
    gauss_std: float = 0.5
    # Section 4: the learned shift.
    objectives: tuple[str, ...] = ("gan", "nsgan", "wgan", "wgan-gp", "sliced", "mmd")
    theta0: float = 5.0
    shift_steps: int = 400  # generator steps
    n_critic: int = 5  # critic steps per generator step
    shift_batch: int = 128
    shift_seeds: int = 3
    theta_lr: float = 0.05  # Adam on theta, cosine-decayed to 0 over the budget
    clip: float = 0.05  # weight clipping of the original WGAN critic
    # Section 5: the likelihood view.
    sigmas: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1, 0.05)
    lik_lr: float = 0.015  # plain gradient ascent on the mean log-likelihood
    lik_steps: int = 300
    lik_samples: int = 1000

    def quick(self) -> Config:
        """A much smaller run with the same structure (for tests and smoke runs)."""
        return dataclasses.replace(
            self,
            grid=(0.0, 0.25, 0.5, 2.0),
            seeds=3,
            n_samples=200,
            critic_steps=150,
            shift_steps=60,
            n_critic=2,
            shift_batch=64,
            shift_seeds=2,
            theta_lr=0.1,
            lik_steps=50,
            lik_samples=200,
        )


def confidence_interval(values: np.ndarray, axis: int = -1, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width ``t_{(1+level)/2, s-1} * std / sqrt(s)`` over ``s`` seeds along ``axis``.

    The Student-t interval for the mean of ``s`` independent estimates (std with
    ``ddof=1``). Infinite entries give an infinite mean and a NaN half-width.
    """
    from scipy import stats  # a dependency of jax itself

    values = np.asarray(values, dtype=np.float64)
    s = values.shape[axis]
    with np.errstate(invalid="ignore"):
        mean = values.mean(axis)
        if s < 2:
            return mean, np.full_like(mean, np.nan)
        half = stats.t.ppf(0.5 + level / 2, s - 1) * values.std(axis, ddof=1) / math.sqrt(s)
    return mean, half


def uniform_shift_samples(key: jax.Array, eps: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """``n`` samples of U[0, 1] and of U[eps, 1 + eps], each ``[n, 2]`` with a zero second coordinate.

    The line is embedded in the plane so that one compiled critic trainer
    serves every problem; a critic of ``(u, 0)`` is a critic of ``u``.
    """
    kx, ky = jax.random.split(key)
    x = jax.random.uniform(kx, (n,))
    y = eps + jax.random.uniform(ky, (n,))
    return _embed(x), _embed(y)


def gaussian_samples(key: jax.Array, means: tuple[float, float], std: float, n: int) -> tuple[jax.Array, jax.Array]:
    """``n`` samples of N(means[0], std^2) and of N(means[1], std^2), embedded as ``[n, 2]``."""
    kx, ky = jax.random.split(key)
    x = means[0] + std * jax.random.normal(kx, (n,))
    y = means[1] + std * jax.random.normal(ky, (n,))
    return _embed(x), _embed(y)


def _embed(u: jax.Array) -> jax.Array:
    return jnp.stack([u, jnp.zeros_like(u)], axis=-1)


def lines(theta: jax.Array, z: jax.Array) -> jax.Array:
    """The generator of the parallel lines, ``G_theta(z) = (theta, z)``, ``[n] -> [n, 2]``."""
    return jnp.stack([jnp.broadcast_to(theta, z.shape).astype(z.dtype), z], axis=-1)


def parallel_lines_samples(key: jax.Array, theta: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """``n`` samples of P_0 = (0, Z) and of P_theta = (theta, Z), Z ~ U[0, 1], each ``[n, 2]``."""
    kx, ky = jax.random.split(key)
    return lines(0.0, jax.random.uniform(kx, (n,))), lines(theta, jax.random.uniform(ky, (n,)))


def critic_model(cfg: Config, kind: str = "w1") -> MLP:
    """The small critic (``kind="w1"``) or f-GAN discriminator (``"js"``): one output per sample."""
    activation = cfg.disc_activation if kind == "js" else cfg.critic_activation
    return MLP(width=cfg.critic_width, depth=cfg.critic_depth, activation=activation)


def critic_loss(kind: str, apply, params, real: jax.Array, fake: jax.Array, key: jax.Array, gp_weight: float):
    """The loss a critic of ``kind`` minimises, composed from the library's objectives.

    ``"w1"``: ``wasserstein_critic_loss + gp_weight * gradient_penalty`` with
    the one-sided penalty (Petzka et al. 2018), which bounds the slope by 1
    without pulling it up to 1: with the two-sided penalty a critic on the
    line cannot turn its slope from +1 to -1 without paying ``gp_weight`` at
    slope 0, and gets stuck with the wrong sign.
    ``"js"``: the negated f-GAN bound for Jensen-Shannon, which equals
    ``gan_discriminator_loss / 2 - log 2``: its critic is a GAN discriminator
    (logit ``V``, ``D = sigmoid(V)``), optimal at ``V = log(p / q)``.
    ``"gan"``: the GAN discriminator's cross-entropy itself.
    """
    critic = functools.partial(apply, params)
    r, f = critic(real), critic(fake)
    if kind == "w1":
        penalty = dv.gradient_penalty(critic, real, fake, key, one_sided=True)
        return dv.wasserstein_critic_loss(r, f) + gp_weight * penalty
    if kind == "js":
        return -dv.fgan_objective(r, f, "js")
    if kind == "gan":
        return dv.gan_discriminator_loss(r, f)
    raise ValueError(f"`kind` must be one of 'w1', 'js', 'gan'; got {kind!r}")


@functools.partial(jax.jit, static_argnames=("kind", "cfg", "steps"))
def train_critics(kind: str, real: jax.Array, fake: jax.Array, key: jax.Array, *, cfg: Config, steps: int):
    """Train one critic per problem, all at once: ``real``, ``fake`` are ``[B, n, d]``.

    Full-batch Adam (``b1 = 0.5``, ``b2 = 0.9``, the WGAN-GP settings) for
    ``steps`` steps, vmapped over the ``B`` problems. Returns the stacked
    parameters (leading axis ``B``).
    """
    model = critic_model(cfg, kind)
    opt = optax.adam(cfg.disc_lr if kind == "js" else cfg.critic_lr, b1=0.5, b2=0.9)

    def one(real, fake, key):
        k_init, k_steps = jax.random.split(key)
        params = model.init(k_init, real[:1])

        def step(carry, k):
            params, state = carry
            grads = jax.grad(lambda p: critic_loss(kind, model.apply, p, real, fake, k, cfg.dual_gp_weight))(params)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), jax.random.split(k_steps, steps))
        return params

    return jax.vmap(one)(real, fake, jax.random.split(key, real.shape[0]))


def stacked_apply(cfg: Config, params, x: jax.Array, kind: str = "w1") -> jax.Array:
    """Apply ``B`` stacked critics of ``kind`` to ``[B, n, d]`` inputs: ``[B, n]``."""
    return jax.vmap(critic_model(cfg, kind).apply)(params, x)


def fmt(x: float, digits: int = 3) -> str:
    """A number for the tables: ``inf``, ``nan`` or ``digits`` significant-ish decimals."""
    if x is None:
        return "nan"
    x = float(x)  # also reads the "inf" / "nan" strings of results.json
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if x != 0 and (abs(x) < 10 ** (-digits) or abs(x) >= 1e5):
        return f"{x:.2e}"
    return f"{x:.{digits}f}"


def fmt_ci(mean: float, half: float, digits: int = 3) -> str:
    """``mean ± half`` (or just the mean when the half-width is not finite)."""
    mean, half = float(mean), float(half)
    if not np.isfinite(mean) or not np.isfinite(half):
        return fmt(float(mean), digits)
    return f"{fmt(float(mean), digits)} ± {fmt(float(half), digits)}"
