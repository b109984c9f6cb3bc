"""The table of training objectives: one entry per objective, read by everything else.

Each :class:`Objective` holds what differs between objectives:

* ``generator_loss(inputs: GeneratorInputs) -> (loss, metrics)``: the loss
  the generator's parameters descend, built from the public functions of
  :mod:`divergences`;
* ``critic_loss(inputs: CriticInputs) -> (loss, metrics)``, or None for an
  objective without a critic network;
* ``defaults``: the values of the configuration's ``None`` fields for this
  objective (optimizer, learning rates, critic steps, spectral norm, ...),
  and ``model_defaults``: those that differ for one model (``"dcgan"``);
* ``description``: the one line that ``--help`` and the README print;
* optional hooks: ``critic_transform`` (an optax transformation chained after
  the critic's optimizer: the WGAN's weight clipping), ``project_critic``
  (the critic's initial parameters moved into its constraint set),
  ``build_models`` (the objective's own modules: a likelihood model with no
  critic), ``sample`` (how the objective's model draws samples),
  ``heldout_log_likelihood`` (a model with a density: the log-density, or a
  lower bound of it, of held-out points, logged as ``heldout_nll``).

The step factory (:mod:`divergences.train._steps`), the configuration
defaults and validation (:mod:`divergences.train._config`), ``--help`` and
the counterexamples' learned-shift experiment read this table; no other
module tests an objective's name. Adding an objective is one call of
:func:`register` (see the README's "Adding an objective").

Conventions: critic outputs are ``[n]`` (a ``[n, 1]`` output is flattened);
a critic loss is *minimised* by the critic and a generator loss by the
generator; metrics are scalars, averaged over steps in the logs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import divergences as dv

if TYPE_CHECKING:  # no import cycle at run time: _config imports this module
    from divergences.train._config import TrainConfig

__all__ = [
    "Objective",
    "CriticInputs",
    "GeneratorInputs",
    "OBJECTIVES",
    "BASE_DEFAULTS",
    "register",
    "get_objective",
    "describe_objectives",
]

Metrics = dict[str, jax.Array]


class CriticInputs(NamedTuple):
    """What a critic loss sees in one critic update.

    Attributes:
      real: ``[B, d]`` data batch.
      fake: ``[B, d]`` generated batch (a constant for the critic).
      o_real, o_fake: ``[B]`` critic outputs on them (differentiable in the
        critic's parameters).
      critic: ``x [n, d] -> [n]``, the critic at the same parameters (for
        penalties such as :func:`divergences.gradient_penalty`).
      key: a key of this update's own.
      config: the resolved :class:`~divergences.train.TrainConfig`.
    """

    real: jax.Array
    fake: jax.Array
    o_real: jax.Array
    o_fake: jax.Array
    critic: Callable[[jax.Array], jax.Array]
    key: jax.Array
    config: TrainConfig


class GeneratorInputs(NamedTuple):
    """What a generator loss sees in one generator update.

    Attributes:
      params: the generator's parameters (the loss is differentiated in them).
      real: ``[B, d]`` data batch.
      fake: ``[B, d]`` samples of the generator at ``params`` (from the
        objective's ``sample``; unused arrays are compiled away).
      o_real: ``[B]`` critic outputs on ``real`` (constant), None without critic.
      o_fake: ``[B]`` critic outputs on ``fake`` (differentiable through
        ``fake``), None without critic.
      key: a key of this update's own (independent of the one behind ``fake``).
      config: the resolved configuration.
      generator: the generator module (a likelihood model applies it to ``real``).
      step: generator updates done before this one, ``int32 []`` (for
        schedules inside a loss, such as the VAE's KL warm-up); None where a
        caller builds the inputs without a state.
    """

    params: Any
    real: jax.Array
    fake: jax.Array
    o_real: jax.Array | None
    o_fake: jax.Array | None
    key: jax.Array
    config: TrainConfig
    generator: Any
    step: jax.Array | None = None


# The fallbacks for the configuration's per-objective fields; an entry's
# ``defaults`` override them (DCGAN-style Adam, Radford et al. 2016).
BASE_DEFAULTS: dict[str, Any] = dict(
    n_critic=1, optimizer="adam", lr=2e-4, critic_lr=2e-4, lr_decay="constant", fgan_generator="minimax",
    beta1=0.5, beta2=0.999, gp_weight=10.0,
    spectral_norm=False, layer_norm=False, standardize=True, standardize_std=1.0, steps=40000, batch_size=128, width=64, depth=2, critic_width=64,
    critic_depth=2,
)


@dataclasses.dataclass(frozen=True, eq=False)
class Objective:
    """One row of the objective table.

    Attributes:
      name: the ``--objective`` value.
      description: one line for ``--help`` (paper and year where there is one).
      generator_loss: ``GeneratorInputs -> (loss [], metrics)``.
      critic_loss: ``CriticInputs -> (loss [], metrics)``; None: no critic
        network (the step trains the generator only, ``n_critic`` is 0).
      defaults: values of the configuration's ``None`` fields (over
        :data:`BASE_DEFAULTS`).
      model_defaults: ``{model: values}`` over ``defaults`` for one model
        (``--model``): an objective tuned on the MLPs can keep other settings
        for DCGAN.
      critic_transform: ``config -> optax.GradientTransformation`` chained
        after the critic's optimizer, or None.
      project_critic: ``(config, params) -> params`` applied to the critic's
        initial parameters, or None.
      build_models: ``(config, data_dim, image_shape) -> (generator, critic)``
        flax modules replacing the default MLP/DCGAN pair, or None.
      sample: ``(generator, params, key, n, config) -> [n, d]``; None: push
        ``N(0, I_{z_dim})`` noise through ``generator.apply``.
      heldout_log_likelihood: ``(generator, params, x [n, d], key, config) ->
        [n]`` log-densities in nats of points in the units the model is
        trained in (a lower bound, such as the IWAE bound, is allowed), or
        None: no density. The command turns them into ``heldout_nll``, nats
        per dimension in the data's own units.
    """

    name: str
    description: str
    generator_loss: Callable[[GeneratorInputs], tuple[jax.Array, Metrics]]
    critic_loss: Callable[[CriticInputs], tuple[jax.Array, Metrics]] | None = None
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model_defaults: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    critic_transform: Callable[[TrainConfig], optax.GradientTransformation] | None = None
    project_critic: Callable[[TrainConfig, Any], Any] | None = None
    build_models: Callable[[TrainConfig, int, tuple | None], tuple[Any, Any]] | None = None
    sample: Callable[[Any, Any, jax.Array, int, TrainConfig], jax.Array] | None = None
    heldout_log_likelihood: Callable[[Any, Any, jax.Array, jax.Array, TrainConfig], jax.Array] | None = None

    @property
    def has_critic(self) -> bool:
        return self.critic_loss is not None

    def resolved_defaults(self, model: str = "mlp") -> dict[str, Any]:
        """:data:`BASE_DEFAULTS` overridden by this entry's ``defaults``, then by its
        ``model_defaults[model]`` (``n_critic`` 0 without critic)."""
        d = {**BASE_DEFAULTS, **self.defaults, **self.model_defaults.get(model, {})}
        if not self.has_critic:
            d["n_critic"] = 0
        return d


OBJECTIVES: dict[str, Objective] = {}


def register(objective: Objective, *, replace: bool = False) -> Objective:
    """Add ``objective`` to the table (under ``objective.name``) and return it.

    Raises:
      ValueError: the name is taken (pass ``replace=True`` to overwrite).
    """
    if not isinstance(objective, Objective):
        raise ValueError(f"`objective` must be an Objective, got {type(objective).__name__}")
    if objective.name in OBJECTIVES and not replace:
        raise ValueError(f"`objective` {objective.name!r} is already in the table; pass replace=True to overwrite it")
    OBJECTIVES[objective.name] = objective
    return objective


def get_objective(name: str) -> Objective:
    """The table entry of ``name``.

    Raises:
      ValueError: unknown name (the message lists the table).
    """
    try:
        return OBJECTIVES[name]
    except (KeyError, TypeError):
        raise ValueError(f"`objective` {name!r} is unknown; choose one of {', '.join(OBJECTIVES)}") from None


def describe_objectives(width: int = 22) -> str:
    """The table as ``--help`` prints it: one line per objective."""
    return "\n".join(f"  {name:<{width}} {o.description}" for name, o in OBJECTIVES.items())


# ---------------------------------------------------------------- the entries


def _d_accuracy(o_real: jax.Array, o_fake: jax.Array) -> jax.Array:
    """Share of the batch a logit discriminator classifies right (real > 0, fake < 0)."""
    return 0.5 * (jnp.mean(o_real > 0) + jnp.mean(o_fake < 0))


def _with_r1(x: CriticInputs, loss: jax.Array, metrics: Metrics):
    """Add the R1 penalty ``gamma/2 * E||grad D(x_real)||^2`` when ``config.r1_weight`` > 0."""
    if not x.config.r1_weight:
        return loss, metrics
    r1 = dv.r1_penalty(x.critic, x.real)
    return loss + 0.5 * x.config.r1_weight * r1, {**metrics, "r1_penalty": r1}


def _classifier_critic(loss_fn: Callable[[jax.Array, jax.Array], jax.Array]):
    """A logit discriminator's loss with its accuracy and the optional R1 penalty."""

    def loss(x: CriticInputs):
        return _with_r1(x, loss_fn(x.o_real, x.o_fake), {"d_accuracy": _d_accuracy(x.o_real, x.o_fake)})

    return loss


_gan_critic = _classifier_critic(dv.gan_discriminator_loss)


def _wasserstein_critic(x: CriticInputs):
    # The critic's estimate of W1 (a lower bound while it is 1-Lipschitz).
    return dv.wasserstein_critic_loss(x.o_real, x.o_fake), {"w_estimate": jnp.mean(x.o_real) - jnp.mean(x.o_fake)}


def _wgan_gp_critic(x: CriticInputs):
    loss, metrics = _wasserstein_critic(x)
    gp = dv.gradient_penalty(x.critic, x.real, x.fake, x.key)
    return loss + x.config.gp_weight * gp, {**metrics, "gradient_penalty": gp}


def _wgan_generator(x: GeneratorInputs):
    return dv.wasserstein_generator_loss(x.o_fake), {}


def _fgan_critic(divergence: str):
    def loss(x: CriticInputs):
        bound = dv.fgan_objective(x.o_real, x.o_fake, divergence)
        # The variational lower bound on D_f(data || model) that the critic ascends.
        return -bound, {"f_bound": bound}

    return loss


def _fgan_generator(divergence: str):
    def loss(x: GeneratorInputs):
        if x.config.fgan_generator == "alternative":
            # Nowozin et al. (2016), Sec. 3.2: maximise the variational function on the fakes. Where the
            # optimal T is finite on empty space (Pearson: T = 2(p/q - 1) = -2 at p = 0, where the minimax
            # gradient f*'(T) = 1 + T/2 vanishes), this still pulls those fakes towards the data.
            return -jnp.mean(dv.fgan_activation(x.o_fake, divergence)), {}
        # Minimax: the generator minimises the critic's bound; only the fake term depends on it.
        return dv.fgan_objective(x.o_real, x.o_fake, divergence), {}

    return loss


def _mmd_generator(x: GeneratorInputs):
    # A fixed multi-scale Gaussian kernel (sum over the bandwidths), as in
    # generative moment matching networks (Li et al. 2015); no bandwidths:
    # the library's median heuristic.
    bw = x.config.mmd_bandwidths
    return dv.mmd(x.fake, x.real, bandwidth=jnp.asarray(bw, jnp.float32) if bw else None), {}


def _sliced_generator(x: GeneratorInputs):
    # Fresh directions every step (Deshpande et al. 2018).
    return dv.sliced_wasserstein(x.fake, x.real, x.key, n_projections=x.config.n_projections,
                                 p=x.config.sliced_p), {}


def linear_dual_features(config: TrainConfig, data_dim: int,
                         key: jax.Array | None = None) -> Callable[[jax.Array], jax.Array]:
    """The random Fourier features of the linear-dual discriminator (``n_features >= 1``).

    Drawn from ``key`` (a step's own, with ``feature_redraw``), else once from
    the seed. Several bandwidths: their features concatenated and divided by
    the square root of their number (the features of the mean of the Gaussian
    kernels, so that ``k(x, x)`` is 1)."""
    fkey = jax.random.fold_in(jax.random.key(config.seed) if key is None else key, 0xFEA7)
    per = max(1, config.n_features // len(config.feature_bandwidths))
    maps = [dv.random_fourier_features(jax.random.fold_in(fkey, i), data_dim, per, bandwidth=bw)
            for i, bw in enumerate(config.feature_bandwidths)]
    if len(maps) == 1:
        return maps[0]
    return lambda v: jnp.concatenate([m(v) for m in maps], -1) / jnp.sqrt(len(maps))


def _linear_dual_generator(x: GeneratorInputs):
    # The discriminator's problem is solved exactly in the dual on this batch
    # (damped Newton); the generator then ascends the dual at those lambdas,
    # which by the envelope theorem is the gradient of the optimal
    # discriminator loss: a joint ascent with no saddle point. By default the
    # discriminator is linear in the Gaussian kernel's implicit features (the
    # exact kernel logistic regression on the 2B samples); with n_features it
    # is linear in that many random Fourier features of the kernel.
    cfg, bsz = x.config, x.real.shape[0]
    if cfg.n_features:
        features = linear_dual_features(cfg, x.real.shape[1], x.key if cfg.feature_redraw else None)
        rep = dict(features=features)
        c = float(cfg.dual_penalty) * bsz
    else:
        rep = dict(kernel="gaussian", bandwidth=jnp.asarray(cfg.feature_bandwidths, x.real.dtype))
        c = float(cfg.dual_penalty) * bsz * len(cfg.feature_bandwidths)  # k(x, x): one per bandwidth
    lam = jax.lax.stop_gradient(
        dv.solve_linear_gan_dual(x.real, jax.lax.stop_gradient(x.fake), C=c, **rep))
    # per-sample scale (the dual is a sum over the 2B samples)
    loss = -dv.linear_gan_dual(*lam, x.real, x.fake, C=c, **rep) / (2 * bsz)
    return loss, {"d_accuracy": 0.5 * (jnp.mean(lam[0] > 0.5) + jnp.mean(lam[1] < 0.5))}


def _clip_box(config: TrainConfig, params: Any) -> Any:
    return optax.projections.projection_linf_ball(params, config.clip)


# A spectrally normalised discriminator for the GANs and the f-GANs (SNGAN,
# Miyato et al. 2018): without it the 8-Gaussian runs collapsed onto 3 modes.
# Not for the WGANs, which have their own Lipschitz constraint. An f-GAN's
# bound holds for every critic, so restricting the class keeps it a bound.
# gan, nsgan and the f-GANs: wider, deeper MLPs, and data standardised to
# std 3. A spectrally normalised critic is 1-Lipschitz in the units it sees,
# so at std 1 the modes of the 25-Gaussian grid (0.71 apart, std 0.018) are
# too close for its logits to separate; in the mode-collapse protocol
# (benchmarks.quality) nsgan collapsed at std 1 with these networks and not
# at std 3 (README, "Mode collapse").
_SN_GAN_DEFAULTS = dict(spectral_norm=True, width=256, depth=3, critic_width=256, critic_depth=3,
                        standardize_std=3.0)
register(Objective(
    "gan", "minimax GAN (Goodfellow et al. 2014): generator minimises log(1 - D(G(z)))",
    generator_loss=lambda x: (dv.gan_generator_loss(x.o_fake, saturating=True), {}),
    critic_loss=_gan_critic, defaults=_SN_GAN_DEFAULTS,
))
# nsgan: gan's defaults with batch 256. In the mode-collapse protocol the grid's samples missed the
# modes on thin bridges between them; a larger batch put fewer there (README, "Mode collapse").
register(Objective(
    "nsgan", "non-saturating GAN: generator maximises log D(G(z)); batch 256",
    generator_loss=lambda x: (dv.gan_generator_loss(x.o_fake, saturating=False), {}),
    critic_loss=_gan_critic, defaults=dict(_SN_GAN_DEFAULTS, batch_size=256),
))
register(Objective(
    "hinge", "hinge GAN (Lim and Ye 2017; Miyato et al. 2018): D minimises E relu(1 - D(x)) + E relu(1 + D(G(z)))",
    generator_loss=lambda x: (dv.hinge_generator_loss(x.o_fake), {}),
    critic_loss=_classifier_critic(dv.hinge_discriminator_loss), defaults=dict(spectral_norm=True),
))
register(Objective(
    "lsgan", "least-squares GAN (Mao et al. 2017), targets a = 0, b = 1, c = 1",
    generator_loss=lambda x: (dv.lsgan_generator_loss(x.o_fake), {}),
    # An output of 0.5 separates the least-squares targets 0 (fake) and 1 (real).
    critic_loss=lambda x: _with_r1(x, dv.lsgan_discriminator_loss(x.o_real, x.o_fake),
                                   {"d_accuracy": _d_accuracy(x.o_real - 0.5, x.o_fake - 0.5)}),
    defaults=dict(spectral_norm=True),
))
register(Objective(
    "rsgan", "relativistic average GAN (Jolicoeur-Martineau 2019), standard form",
    generator_loss=lambda x: (dv.relativistic_generator_loss(x.o_real, x.o_fake), {}),
    critic_loss=lambda x: _with_r1(x, dv.relativistic_discriminator_loss(x.o_real, x.o_fake), {}),
    defaults=dict(spectral_norm=True),
))
# wgan-gp's MLP networks, optimiser and schedule, which wgan's defaults share but for the generator's
# rate (why: at each entry).
_WGAN_MLP = dict(n_critic=2, optimizer="adam", lr=3e-4, critic_lr=3e-4, beta1=0.5, beta2=0.9, lr_decay="cosine",
                 width=128, depth=5, critic_width=128, critic_depth=3)
# wgan on the MLPs: wgan-gp's networks, optimiser and schedule, batch 256, with a LayerNorm after each
# hidden layer of the clipped critic, and the generator's rate doubled. In the mode-collapse protocol
# (benchmarks.quality) the paper's RMSProp setting, with or without the LayerNorm, lost modes and left
# most samples between them, this setting without the LayerNorm collapsed, and with the generator at
# the critic's rate some seeds were still finding the grid's last modes when the rate had decayed;
# a faster critic did worse (README, "Mode collapse").
# DCGAN keeps the paper's optimiser, critic steps and plain critic, and the shared batch.
_WGAN_PAPER = dict(n_critic=5, optimizer="rmsprop", lr=5e-5, critic_lr=5e-5, beta1=0.0, beta2=0.0,
                   lr_decay="constant", layer_norm=False, batch_size=BASE_DEFAULTS["batch_size"])
register(Objective(
    "wgan", "WGAN with weight clipping (Arjovsky et al. 2017): MLP clip 0.01 x 512 / critic width, a LayerNorm "
            "after each hidden layer of the critic, Adam (0.5, 0.9) 6e-4 generator and 3e-4 critic with cosine "
            "decay, 2 critic steps, batch 256; DCGAN the paper's RMSProp 5e-5, 5 critic steps",
    generator_loss=_wgan_generator, critic_loss=_wasserstein_critic,
    defaults=dict(_WGAN_MLP, layer_norm=True, batch_size=256, lr=6e-4),
    model_defaults={"dcgan": _WGAN_PAPER},
    critic_transform=lambda cfg: dv.weight_clipping(cfg.clip), project_critic=_clip_box,
))
# wgan-gp on the MLPs: the generator of mmd's entry (128 x 5) and a 128 x 3 critic, 2 critic steps, Adam
# 3e-4 with a cosine decay, and the toy penalty weight 0.1 of Gulrajani et al.'s own code: with the
# paper's 5 steps at 1e-4 and lambda 10 the grid's samples stayed spread between the modes in the
# mode-collapse protocol (benchmarks.quality; README, "Mode collapse"). DCGAN keeps the paper's image
# settings, which the digits run was measured with.
_WGAN_GP_PAPER = dict(n_critic=5, lr=1e-4, critic_lr=1e-4, lr_decay="constant", gp_weight=10.0)
register(Objective(
    "wgan-gp", "WGAN with gradient penalty (Gulrajani et al. 2017): MLP lambda 0.1, Adam 3e-4 (0.5, 0.9) "
               "with cosine decay, 2 critic steps; DCGAN lambda 10, Adam 1e-4, 5 critic steps",
    generator_loss=_wgan_generator, critic_loss=_wgan_gp_critic,
    defaults=dict(_WGAN_MLP, gp_weight=0.1),
    model_defaults={"dcgan": _WGAN_GP_PAPER},
))
# linear-dual: the discriminator on the exact multi-scale Gaussian kernel (mmd's bandwidths, in
# standardised units) and mmd's generator and budget. On random Fourier features (256 of them, raw
# data, bandwidth 1: its defaults before) the mode-collapse protocol's grid kept 12 of 25 modes, and
# no feature setting tried reached 90% high-quality samples (README, "Mode collapse").
register(Objective(
    "linear-dual", "Dualing GANs (Li et al. 2017): a linear discriminator on a Gaussian kernel's features "
                   "(exact, or random Fourier features), solved in the dual; generator and lambdas ascend "
                   "the dual jointly",
    generator_loss=_linear_dual_generator,
    defaults=dict(lr=1e-3, critic_lr=0.0, beta1=0.5, beta2=0.9, lr_decay="cosine", width=128, depth=5,
                  steps=100000),
))
register(Objective(
    "mmd", "generator trained on a fixed multi-scale Gaussian-kernel MMD (no critic)",
    generator_loss=_mmd_generator,
    # Deeper generator, larger batch, a longer run that ends with a cosine
    # decay: the mode-collapse protocol's (benchmarks.quality) share of
    # high-quality samples rose with each (README, "Mode collapse").
    defaults=dict(lr=1e-3, critic_lr=0.0, beta1=0.5, beta2=0.9, lr_decay="cosine", width=128, depth=5,
                  batch_size=256, steps=100000),
))
register(Objective(
    "sliced", "generator trained on the sliced Wasserstein distance (no critic)",
    generator_loss=_sliced_generator, defaults=dict(lr=1e-3, critic_lr=0.0, beta1=0.5, beta2=0.9),
))
for _div in dv.FGAN_DIVERGENCES:
    register(Objective(
        f"fgan-{_div}", f"f-GAN (Nowozin et al. 2016) for the {_div} divergence",
        generator_loss=_fgan_generator(_div), critic_loss=_fgan_critic(_div),
        defaults=dict(_SN_GAN_DEFAULTS, **({"fgan_generator": "alternative"} if _div == "pearson_chi2" else {})),
    ))
del _div


# The likelihood models (issue 16): no critic; the generator module is the
# model itself, trained on the data batch, sampled by its own ``sample``.
def _likelihood_entry(kind: str, description: str) -> Objective:
    from divergences.train import _likelihood_objectives as lk

    def build(config: TrainConfig, data_dim: int, image_shape: tuple | None):
        lc = lk.LikelihoodConfig(objective=kind, data_dim=data_dim, model=config.model,
                                 image_shape=tuple(image_shape) if image_shape is not None else None,
                                 width=config.width, depth=config.depth, n_layers=config.flow_layers,
                                 latent_dim=config.z_dim, kl_warmup_steps=config.kl_warmup_steps,
                                 dequantize=config.dequantize, coupling=config.flow_coupling,
                                 spline_bins=config.spline_bins, spline_bound=config.spline_bound)
        return lk.LikelihoodGenerator(lc), None

    def generator_loss(x: GeneratorInputs):
        warmup = x.config.kl_warmup_steps
        if kind == "vae" and warmup > 0 and x.step is not None:
            kl_weight = jnp.minimum(1.0, (x.step.astype(jnp.float32) + 1.0) / warmup)
        else:
            kl_weight = 1.0
        return x.generator.apply({"params": x.params}, x.real, x.key, kl_weight, method="loss")

    def sample(generator, params, key, n, config):
        return generator.apply({"params": params}, key, n, method="sample")

    def heldout_log_likelihood(generator, params, x, key, config):
        return generator.apply({"params": params}, x, key, method="heldout_log_likelihood")

    return Objective(kind, description, generator_loss=generator_loss, build_models=build, sample=sample,
                     heldout_log_likelihood=heldout_log_likelihood,
                     defaults=dict(lr=1e-3, critic_lr=0.0, beta1=0.9, beta2=0.999))


register(_likelihood_entry("flow", "normalizing flow (rational-quadratic spline couplings, Durkan et al. 2019, "
                                   "or RealNVP's affine ones): exact maximum likelihood (forward KL)"))
register(_likelihood_entry("vae", "variational auto-encoder (Kingma and Welling 2013): maximum ELBO, Gaussian "
                                  "encoder and decoder"))
