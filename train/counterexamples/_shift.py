r"""Section 4: learning the shift of the parallel lines.

The generator :math:`G_\theta(z) = (\theta, z)`, :math:`z \sim U[0, 1]`, starts
at :math:`\theta = 5`, far from the data :math:`(0, z)`; it is trained for a
fixed budget with each objective, composed from the library's public
functions:

=========== ====================================================================================
``gan``     discriminator: ``gan_discriminator_loss``; generator: ``gan_generator_loss(saturating=True)``
``nsgan``   the same discriminator; generator: ``gan_generator_loss`` (non-saturating)
``wgan``    critic: ``wasserstein_critic_loss``, RMSProp chained with ``weight_clipping``;
            generator: ``wasserstein_generator_loss``
``wgan-gp`` critic: ``wasserstein_critic_loss + 10 gradient_penalty`` (two-sided, as in the paper), Adam
``sliced``  no critic: the generator descends ``sliced_wasserstein(real, fake, key, p=1)``
``mmd``     no critic: the generator descends ``mmd(real, fake)`` (Gaussian kernel, median bandwidth)
=========== ====================================================================================

Each generator step follows ``n_critic`` critic steps on fresh batches. The
parameter :math:`\theta` uses Adam with a cosine-decayed step; being
scale-free, Adam moves :math:`\theta` at the same speed whatever the size of
a non-zero gradient, so what separates the objectives is whether the
gradient points the right way and whether it is zero.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import divergences as dv
from train.counterexamples._common import Config, critic_model, fmt, lines

OBJECTIVES = ("gan", "nsgan", "wgan", "wgan-gp", "sliced", "mmd")
_CRITIC = {"gan": "gan", "nsgan": "gan", "wgan": "wgan", "wgan-gp": "wgan-gp"}


def _critic_loss(objective: str, apply, params, real, fake, key, cfg: Config):
    critic = functools.partial(apply, params)
    r, f = critic(real), critic(fake)
    if objective in ("gan", "nsgan"):
        return dv.gan_discriminator_loss(r, f)
    loss = dv.wasserstein_critic_loss(r, f)
    if objective == "wgan-gp":
        loss = loss + cfg.gp_weight * dv.gradient_penalty(critic, real, fake, key)
    return loss


def _generator_loss(objective: str, apply, params, real, fake, key, cfg: Config):
    if objective == "sliced":
        return dv.sliced_wasserstein(real, fake, key, n_projections=cfg.n_projections, p=1)
    if objective == "mmd":
        return dv.mmd(real, fake)
    out = apply(params, fake)
    if objective == "gan":
        return dv.gan_generator_loss(out, saturating=True)
    if objective == "nsgan":
        return dv.gan_generator_loss(out)
    return dv.wasserstein_generator_loss(out)


@functools.partial(jax.jit, static_argnames=("objective", "cfg"))
def learn_shift(objective: str, key: jax.Array, *, cfg: Config) -> jax.Array:
    """Train theta from ``cfg.theta0`` with ``objective``, one run per seed (vmapped).

    Returns:
      ``[shift_seeds, shift_steps + 1]``: theta before each generator step and at the end.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {', '.join(map(repr, OBJECTIVES))}; got {objective!r}")
    model = critic_model(cfg)
    has_critic = objective in _CRITIC
    if objective == "wgan":
        critic_opt = optax.chain(optax.rmsprop(cfg.critic_lr), dv.weight_clipping(cfg.clip))
    else:
        critic_opt = optax.adam(cfg.critic_lr, b1=0.5, b2=0.9)
    theta_opt = optax.adam(optax.cosine_decay_schedule(cfg.theta_lr, cfg.shift_steps))
    b = cfg.shift_batch

    def batch(k, theta):
        kr, kf = jax.random.split(k)
        return lines(0.0, jax.random.uniform(kr, (b,))), lines(theta, jax.random.uniform(kf, (b,)))

    def one(key):
        k_init, k_steps = jax.random.split(key)
        theta = jnp.asarray(cfg.theta0, jnp.float32)
        params = model.init(k_init, jnp.zeros((1, 2)))
        if objective == "wgan":  # start inside the clipping box
            params = optax.projections.projection_linf_ball(params, cfg.clip)
        state = (theta, theta_opt.init(theta), params, critic_opt.init(params))

        def critic_step(carry, k):
            theta, params, cstate = carry
            kb, kl = jax.random.split(k)
            real, fake = batch(kb, jax.lax.stop_gradient(theta))
            grads = jax.grad(lambda p: _critic_loss(objective, model.apply, p, real, fake, kl, cfg))(params)
            updates, cstate = critic_opt.update(grads, cstate, params)
            return (theta, optax.apply_updates(params, updates), cstate), None

        def generator_step(state, k):
            theta, tstate, params, cstate = state
            kc, kb, kl = jax.random.split(k, 3)
            if has_critic:
                (_, params, cstate), _ = jax.lax.scan(
                    critic_step, (theta, params, cstate), jax.random.split(kc, cfg.n_critic)
                )

            def loss(t):
                real, fake = batch(kb, t)
                return _generator_loss(objective, model.apply, params, real, fake, kl, cfg)

            grad = jax.grad(loss)(theta)
            updates, tstate = theta_opt.update(grad, tstate, theta)
            new_theta = optax.apply_updates(theta, updates)
            return (new_theta, tstate, params, cstate), theta

        (theta, *_), path = jax.lax.scan(generator_step, state, jax.random.split(k_steps, cfg.shift_steps))
        return jnp.concatenate([path, theta[None]])

    return jax.vmap(one)(jax.random.split(key, cfg.shift_seeds))


def run(cfg: Config, key: jax.Array) -> dict:
    """Every objective of ``cfg.objectives``: the paths of theta and the final |theta| per seed."""
    out = {"theta0": cfg.theta0, "steps": cfg.shift_steps, "seeds": cfg.shift_seeds, "objectives": {}}
    for objective, k in zip(cfg.objectives, jax.random.split(key, len(cfg.objectives))):
        paths = np.asarray(learn_shift(objective, k, cfg=cfg), np.float64)
        final = np.abs(paths[:, -1])
        out["objectives"][objective] = {
            "paths": paths.tolist(),
            "final_abs_theta": final.tolist(),
            "final_abs_theta_mean": float(final.mean()),
            "reached_0.1": bool(np.all(final < 0.1)),
        }
    return out


def markdown(res: dict, cfg: Config) -> str:
    """The table of final |theta| per objective, with what each one did."""
    out = [
        "## 4. Learning the shift",
        "",
        f"G_theta(z) = (theta, z) from theta = {res['theta0']:g}; {res['steps']} generator steps (Adam on theta, "
        f"step {cfg.theta_lr:g} cosine-decayed to 0), {cfg.n_critic} critic steps each, batch {cfg.shift_batch}, "
        f"{res['seeds']} seeds.",
        "",
        "| objective | final abs(theta) per seed | mean | abs(theta) < 0.1 on every seed |",
        "|---|---|---|---|",
    ]
    for name, r in res["objectives"].items():
        per = ", ".join(fmt(x) for x in r["final_abs_theta"])
        out.append(f"| {name} | {per} | {fmt(r['final_abs_theta_mean'])} | {'yes' if r['reached_0.1'] else 'no'} |")
    return "\n".join(out)
