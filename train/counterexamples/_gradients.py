r"""Section 3: the generator's gradient on the parallel lines, and two Gaussians far apart.

On the parallel lines :math:`P_0 = (0, Z)`, :math:`P_\theta = (\theta, Z)`, the
gradient with respect to :math:`\theta` of

(a) the GAN value at the optimal discriminator, :math:`2\,\mathrm{JS} - \log 4`,
    evaluated on samples with :func:`divergences.optimal_discriminator` of the
    two densities (indicators of the segments, with respect to length on them);
(b) the generator losses with a trained discriminator: the non-saturating
    :math:`-\mathbb E \log D(G_\theta(z))` and, beside it, the minimax
    :math:`\mathbb E \log(1 - D(G_\theta(z)))`;
(c) the dual W1, :math:`-\mathbb E f(G_\theta(z))`, with a trained critic.

The discriminators are the f-GAN JS critics of section 2, trained on the same
pairs: their loss is ``gan_discriminator_loss / 2 - log 2``, so they are GAN
discriminators (trained by scale-free Adam, the factor 1/2 changes nothing).
The critics are section 2's WGAN-GP critics. The gradients are taken with the
discriminator or critic held fixed, as a generator step does.

The WGAN paper's Figure 2: a discriminator and a critic trained to separate
:math:`\mathcal N(m_0, s^2)` from :math:`\mathcal N(m_1, s^2)`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

import divergences as dv
from divergences import closed_form
from divergences.train.counterexamples._common import Config, critic_model, fmt, lines

_LOG4 = math.log(4.0)


def _segment_density(x: jax.Array, offset: jax.Array) -> jax.Array:
    """Density of (offset, Z) at ``x`` ``[n, 2]`` with respect to length on the segments: an indicator."""
    on = (x[:, 0] == offset) & (x[:, 1] >= 0) & (x[:, 1] <= 1)
    return on.astype(x.dtype)


def optimal_value(theta: jax.Array, real: jax.Array, z: jax.Array) -> jax.Array:
    """The GAN value E log D*(x) + E log(1 - D*(G_theta(z))) at the optimal discriminator, on samples."""
    fake = lines(theta, z)

    def d_star(x):
        return dv.optimal_discriminator(_segment_density(x, 0.0), _segment_density(x, theta))

    return jnp.mean(jnp.log(d_star(real))) + jnp.mean(jnp.log1p(-d_star(fake)))


@functools.partial(jax.jit, static_argnames=("cfg",))
def _generator_gradients(cfg: Config, w1_critics, discriminators, thetas: jax.Array, z: jax.Array):
    """Per row: d/dtheta of the minimax, non-saturating and W1 generator losses, and the mean D(fake)."""
    apply, apply_disc = critic_model(cfg).apply, critic_model(cfg, "js").apply

    def one(w1, disc, theta, z):
        def losses(t):
            fake = lines(t, z)
            logits = apply_disc(disc, fake)
            return jnp.stack(
                [
                    dv.gan_generator_loss(logits, saturating=True),
                    dv.gan_generator_loss(logits),
                    dv.wasserstein_generator_loss(apply(w1, fake)),
                ]
            )

        grads = jax.jacfwd(losses)(theta)
        return grads, jnp.mean(jax.nn.sigmoid(apply_disc(disc, lines(theta, z))))

    return jax.vmap(one)(w1_critics, discriminators, thetas, z)


def run(cfg: Config, key: jax.Array, lines_data, w1_critics, discriminators, gauss_w1, gauss_disc) -> dict:
    """Gradients against theta (mean and CI over seeds) and the Figure-2 curves.

    ``lines_data``: section 2's samples (``params`` holds each row's theta);
    ``w1_critics``, ``discriminators``: section 2's critics, one per row;
    ``gauss_w1``, ``gauss_disc``: the critic and discriminator of the Gaussians.
    """
    from divergences.train.counterexamples._common import confidence_interval

    g, s = len(cfg.grid), cfg.seeds
    k_z, k_real = jax.random.split(key)
    z = jax.random.uniform(k_z, (g * s, cfg.n_samples))
    grads, d_fake = _generator_gradients(cfg, w1_critics, discriminators, lines_data.params, z)
    grads = np.asarray(grads, np.float64).reshape(g, s, 3)
    d_fake = np.asarray(d_fake, np.float64).reshape(g, s)
    real = lines(0.0, jax.random.uniform(k_real, (cfg.n_samples,)))
    z0 = z[0]
    exact_value = [float(optimal_value(jnp.float32(t), real, z0)) for t in cfg.grid]
    exact_grad = [float(jax.grad(optimal_value)(jnp.float32(t), real, z0)) for t in cfg.grid]
    closed_value = (2 * np.asarray(closed_form.parallel_lines(jnp.asarray(cfg.grid))["js"]) - _LOG4).tolist()
    out = {
        "thetas": list(cfg.grid),
        "optimal_value": exact_value,
        "optimal_value_closed_form": closed_value,
        "grad_optimal": exact_grad,
        "d_fake": {"mean": d_fake.mean(1).tolist(), "per_seed": d_fake.tolist()},
    }
    for i, name in enumerate(("grad_minimax", "grad_nonsaturating", "grad_w1")):
        mean, half = confidence_interval(grads[:, :, i], axis=1)
        out[name] = {"per_seed": grads[:, :, i].tolist(), "mean": mean.tolist(), "ci95": half.tolist()}
        mean, half = confidence_interval(np.abs(grads[:, :, i]), axis=1)
        out[name]["abs_mean"] = mean.tolist()
        out[name]["abs_ci95"] = half.tolist()
    out["gaussians"] = _figure2(cfg, gauss_w1, gauss_disc)
    return out


def _figure2(cfg: Config, w1, disc) -> dict:
    """Discriminator output and critic value on a grid across two far-apart Gaussians."""
    m0, m1 = cfg.gauss_means
    xs = np.linspace(min(m0, m1) - 3, max(m0, m1) + 3, 201).astype(np.float32)
    pts = jnp.stack([jnp.asarray(xs), jnp.zeros_like(jnp.asarray(xs))], -1)
    apply, apply_disc = critic_model(cfg).apply, critic_model(cfg, "js").apply
    d = np.asarray(jax.nn.sigmoid(apply_disc(disc, pts)), np.float64)
    f = np.asarray(apply(w1, pts), np.float64)
    between = (xs >= min(m0, m1)) & (xs <= max(m0, m1))
    slope, intercept = np.polyfit(xs[between], f[between], 1)
    resid = f[between] - (slope * xs[between] + intercept)
    r2 = 1 - resid.var() / f[between].var()

    def grad_at_mode(loss):
        # d/dmu of the generator loss when the fake mode sits at mu = m1 (the samples move with mu).
        u = jnp.linspace(-2.0, 2.0, 81) * cfg.gauss_std

        def total(mu):
            return loss(jnp.stack([mu + u, jnp.zeros_like(u)], -1))

        return float(jax.grad(total)(jnp.float32(m1)))

    return {
        "means": [m0, m1],
        "std": cfg.gauss_std,
        "x": xs.tolist(),
        "discriminator": d.tolist(),
        "critic": f.tolist(),
        "d_at_real_mode": float(np.interp(m0, xs, d)),
        "d_at_fake_mode": float(np.interp(m1, xs, d)),
        "critic_slope": float(slope),
        "critic_r2": float(r2),
        "grad_minimax": grad_at_mode(lambda x: dv.gan_generator_loss(apply_disc(disc, x), saturating=True)),
        "grad_nonsaturating": grad_at_mode(lambda x: dv.gan_generator_loss(apply_disc(disc, x))),
        "grad_w1": grad_at_mode(lambda x: dv.wasserstein_generator_loss(apply(w1, x))),
    }


def markdown(res: dict) -> str:
    """The gradient table and the Figure-2 summary."""
    out = [
        "## 3. Vanishing gradients",
        "",
        "d/dtheta of each generator loss on the parallel lines, discriminator or critic held fixed "
        "(mean ± 95% CI over seeds; trained ones are section 2's). D(fake) is the trained discriminator's "
        "mean output on the generated points.",
        "",
        "| theta | (a) GAN value at D* | d/dtheta (a) | (b) minimax, trained D | (b) non-saturating, trained D | "
        "(c) dual W1, trained critic | D(fake) |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, t in enumerate(res["thetas"]):
        if t == 0:
            continue
        cells = [
            f"{t:g}",
            fmt(res["optimal_value"][i]),
            fmt(res["grad_optimal"][i]),
        ]
        for name in ("grad_minimax", "grad_nonsaturating", "grad_w1"):
            r = res[name]
            cells.append(f"{fmt(r['mean'][i])} ± {fmt(r['ci95'][i])}")
        cells.append(fmt(res["d_fake"]["mean"][i], 4))
        out.append("| " + " | ".join(cells) + " |")
    gs = res["gaussians"]
    out += [
        "",
        f"Figure 2 of the WGAN paper: N({gs['means'][0]:g}, {gs['std']:g}^2) (real) against "
        f"N({gs['means'][1]:g}, {gs['std']:g}^2) (fake). The trained discriminator outputs "
        f"D = {fmt(gs['d_at_real_mode'], 4)} on the real mode and {fmt(gs['d_at_fake_mode'], 4)} on the fake mode "
        f"(saturated); the trained critic is close to linear between the modes (slope {fmt(gs['critic_slope'])}, "
        f"R^2 = {fmt(gs['critic_r2'], 4)}). d/dmu of the generator loss at the fake mode: minimax "
        f"{fmt(gs['grad_minimax'])}, non-saturating {fmt(gs['grad_nonsaturating'])}, W1 {fmt(gs['grad_w1'])}.",
        "",
        "At the optimal discriminator the GAN value is 2 JS - log 4 = 0 for every theta != 0, so its gradient "
        "is exactly 0; a trained discriminator approaches that: the minimax loss's gradient vanishes as D(fake) -> 0. "
        "The non-saturating loss keeps a gradient, but its size is set by how steep the discriminator's logit "
        "happens to be, not by theta. The critic's gradient is the W1 gradient, sign(theta) = 1, at every distance.",
    ]
    return "\n".join(out)
