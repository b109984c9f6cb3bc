"""One configuration object for a training run, with every default in one place."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from divergences._fgan import FGAN_DIVERGENCES as _FGAN

__all__ = ["TrainConfig", "OBJECTIVES", "FGAN_DIVERGENCES", "objective_defaults", "resolve_config"]

# Objectives with their one-line descriptions (the `--help` text lists these).
OBJECTIVES: dict[str, str] = {
    "gan": "minimax GAN (Goodfellow et al. 2014): generator minimises log(1 - D(G(z)))",
    "nsgan": "non-saturating GAN: generator maximises log D(G(z))",
    "wgan": "WGAN with weight clipping (Arjovsky et al. 2017): RMSProp lr 5e-5, clip 0.01 at fan-in 512, 5 critic steps",
    "wgan-gp": "WGAN with gradient penalty (Gulrajani et al. 2017): lambda 10, Adam 1e-4 (0.5, 0.9), 5 critic steps",
    "linear-dual": "Dualing GANs (Li et al. 2017): linear discriminator on random features solved in the dual; generator and lambdas ascend the dual jointly",
    "mmd": "generator trained on a fixed multi-scale Gaussian-kernel MMD (no critic)",
    "sliced": "generator trained on the sliced Wasserstein distance (no critic)",
    "fgan-<name>": "f-GAN (Nowozin et al. 2016) for divergence <name>",
}

# f-GAN divergences accepted after "fgan-".
FGAN_DIVERGENCES: tuple[str, ...] = _FGAN


@dataclasses.dataclass
class TrainConfig:
    """Everything a run needs. ``None`` fields take the objective's default (see
    :func:`objective_defaults`); :func:`resolve_config` fills them.

    Attributes:
      objective: a key of :data:`OBJECTIVES`, or ``"fgan-<divergence>"``.
      dataset: a built-in data set name or a ``.npy``/``.npz`` path.
      steps: generator updates.
      batch_size: global batch (split across devices).
      seed: the one seed; every key is ``fold_in(key(seed), step)``.
      z_dim: noise dimension; ``None``: the data's dimension clipped to
        ``[2, 64]`` (2 for the 1-D and 2-D toys, 64 for the 8x8 digits).
      model: ``"mlp"`` or ``"dcgan"`` (image data only).
      width, depth: generator MLP (DCGAN: ``width`` is its base channels).
      critic_width, critic_depth: critic MLP (DCGAN: base channels).
      activation: hidden activation of both MLPs.
      spectral_norm: spectral normalisation of the critic (Miyato et al.
        2018); default on for ``gan`` and ``nsgan``, off otherwise.
      layer_norm: layer normalisation in the critic.
      n_critic: critic updates per generator update.
      optimizer: ``"adam"`` or ``"rmsprop"`` (both networks).
      lr, critic_lr: learning rates of the generator and the critic.
      beta1, beta2: Adam's betas.
      clip: weight clipping bound (wgan); ``None``: for the MLP critic
        ``0.01 * 512 / critic_width``, the paper's 0.01 at the 512-unit toy
        critic of Gulrajani et al. scaled so that clip x fan-in (the bound
        on a hidden layer's gain) stays the same (0.08 at width 64, where
        0.01 left the critic nearly constant); 0.01 for the DCGAN critic.
      gp_weight: gradient penalty coefficient (wgan-gp).
      n_projections: directions of the sliced objective and metric.
      mmd_bandwidths: Gaussian bandwidths of the multi-scale MMD objective.
      n_features: random Fourier features of the linear-dual discriminator.
      feature_bandwidths: Gaussian-kernel bandwidths of those features (the
        features of each are concatenated: a sum of kernels).
      dual_penalty: the linear-dual L2 penalty per sample (the paper's sum-form
        ``C`` is ``dual_penalty * batch_size``).
      standardize: train the MLP on the data centred per coordinate and
        divided by one scale (the root mean variance), so that the defaults
        do not depend on the data's units; samples are mapped back. Default
        on, except for ``linear-dual``, whose random-feature bandwidths are
        in the data's units (standardised, it fell from 8 modes to 6 on
        8 Gaussians).
      ema_decay: decay of the exponential moving average of the generator's
        parameters that evaluation, plots and the summary sample from (0: the
        raw parameters).
      steps_per_call: generator steps fused into one compiled dispatch;
        ``None``: 50 for the MLP, 1 for the DCGAN model (whose loops are
        unrolled, so each fused step adds to the compile time).
      eval_every, plot_every, checkpoint_every: intervals in steps (0: never;
        evaluation and plots also run at the end).
      eval_samples: generated samples used by the evaluation.
      out: output folder.
      progress: show a progress bar.
    """

    objective: str = "wgan-gp"
    dataset: str = "8gaussians"
    steps: int = 40000
    batch_size: int = 128
    seed: int = 0
    z_dim: int | None = None
    model: str = "mlp"
    width: int = 64
    depth: int = 2
    critic_width: int = 64
    critic_depth: int = 2
    activation: str = "relu"
    spectral_norm: bool | None = None
    layer_norm: bool = False
    n_critic: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    critic_lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    clip: float | None = None
    gp_weight: float = 10.0
    n_projections: int = 128
    mmd_bandwidths: tuple[float, ...] = (0.05, 0.2, 1.0, 4.0)
    n_features: int = 256
    feature_bandwidths: tuple[float, ...] = (1.0,)
    dual_penalty: float = 0.01
    standardize: bool | None = None
    ema_decay: float = 0.999
    steps_per_call: int | None = None
    eval_every: int = 1000
    plot_every: int = 5000
    checkpoint_every: int = 1000
    eval_samples: int = 2500
    out: str = "runs/default"
    progress: bool = True

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"`config` has unknown keys {unknown}; known keys: {sorted(names)}")
        d = dict(d)
        for name in ("mmd_bandwidths", "feature_bandwidths"):
            if d.get(name) is not None:
                d[name] = tuple(float(b) for b in d[name])
        return cls(**d)


def objective_defaults(objective: str) -> dict[str, Any]:
    """The paper defaults of an objective (optimizer, learning rates, critic steps, spectral norm)."""
    if objective == "wgan":  # Arjovsky et al. 2017, Algorithm 1
        d = dict(n_critic=5, optimizer="rmsprop", lr=5e-5, critic_lr=5e-5, beta1=0.0, beta2=0.0)
    elif objective == "wgan-gp":  # Gulrajani et al. 2017, Algorithm 1 (toy: betas (0.5, 0.9))
        d = dict(n_critic=5, optimizer="adam", lr=1e-4, critic_lr=1e-4, beta1=0.5, beta2=0.9)
    elif objective in ("mmd", "sliced"):
        d = dict(n_critic=0, optimizer="adam", lr=1e-3, critic_lr=0.0, beta1=0.5, beta2=0.9)
    elif objective == "linear-dual":
        d = dict(n_critic=0, optimizer="adam", lr=1e-3, critic_lr=1e-2, beta1=0.5, beta2=0.9)
    else:  # gan, nsgan, fgan-*: DCGAN-style Adam.
        d = dict(n_critic=1, optimizer="adam", lr=2e-4, critic_lr=2e-4, beta1=0.5, beta2=0.999)
    # A spectrally normalised discriminator for the GANs (SNGAN, Miyato et al.
    # 2018): without it the 8-Gaussian runs collapsed onto 3 modes. Not for the
    # f-GANs, whose bound needs the critic's full range, nor for the WGANs,
    # which have their own Lipschitz constraint.
    d["spectral_norm"] = objective in ("gan", "nsgan")
    d["standardize"] = objective != "linear-dual"  # its feature bandwidths are in data units
    return d


def check_objective(objective: str) -> str:
    if objective in OBJECTIVES and objective != "fgan-<name>":
        return objective
    if objective.startswith("fgan-") and objective[5:] in FGAN_DIVERGENCES:
        return objective
    names = [o for o in OBJECTIVES if o != "fgan-<name>"] + [f"fgan-{d}" for d in FGAN_DIVERGENCES]
    raise ValueError(f"`objective` {objective!r} is unknown; choose one of {', '.join(names)}")


def resolve_config(config: TrainConfig, *, data_dim: int | None = None) -> TrainConfig:
    """Check the names and fill the ``None`` fields with the objective's defaults.

    ``z_dim`` is filled only when ``data_dim`` (the flattened sample size) is
    given: ``min(max(data_dim, 2), 64)``.
    """
    if config.z_dim is None and data_dim is not None:
        config = dataclasses.replace(config, z_dim=min(max(int(data_dim), 2), 64))
    check_objective(config.objective)
    if config.model not in ("mlp", "dcgan"):
        raise ValueError(f"`model` {config.model!r} is unknown; choose mlp or dcgan")
    if config.optimizer is not None and config.optimizer not in ("adam", "rmsprop"):
        raise ValueError(f"`optimizer` {config.optimizer!r} is unknown; choose adam or rmsprop")
    for name in ("steps", "batch_size", "steps_per_call", "eval_samples", "z_dim", "width", "critic_width"):
        if getattr(config, name) is not None and int(getattr(config, name)) < 1:
            raise ValueError(f"`{name}` must be >= 1, got {getattr(config, name)}")
    for name in ("eval_every", "plot_every", "checkpoint_every", "depth", "critic_depth"):
        if int(getattr(config, name)) < 0:
            raise ValueError(f"`{name}` must be >= 0, got {getattr(config, name)}")
    if config.steps_per_call is None:
        config = dataclasses.replace(config, steps_per_call=1 if config.model == "dcgan" else 50)
    if config.clip is None:
        clip = 0.01 if config.model == "dcgan" else 0.01 * 512 / int(config.critic_width)
        config = dataclasses.replace(config, clip=clip)
    if not float(config.clip) > 0:
        raise ValueError(f"`clip` must be > 0, got {config.clip}")
    if not 0.0 <= float(config.ema_decay) < 1.0:
        raise ValueError(f"`ema_decay` must be in [0, 1), got {config.ema_decay}")
    defaults = objective_defaults(config.objective)
    filled = {k: (defaults[k] if getattr(config, k) is None else getattr(config, k)) for k in defaults}
    return dataclasses.replace(config, **filled)
