"""One configuration object for a training run: every field's default, help text and
resumability in one place; the command-line flags are generated from it.

A field's ``metadata`` holds ``help`` (the ``--help`` line) and
``resumable`` (whether ``--resume`` may change it). ``None`` fields take the
objective's default from the objective table
(:mod:`divergences.train._objectives`); :func:`resolve_config` fills them and
:func:`validate_config` checks every value, so a bad option is refused before
anything is compiled or written.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from divergences._fgan import FGAN_DIVERGENCES as _FGAN
from divergences.train._objectives import OBJECTIVES, get_objective

__all__ = ["TrainConfig", "OBJECTIVES", "FGAN_DIVERGENCES", "objective_defaults", "resolve_config",
           "validate_config", "config_fields", "flag", "MODELS", "OPTIMIZERS", "ACTIVATIONS"]

# f-GAN divergences accepted after "fgan-" (each is its own entry of the table).
FGAN_DIVERGENCES: tuple[str, ...] = _FGAN
MODELS = ("mlp", "dcgan")
OPTIMIZERS = ("adam", "rmsprop")
LR_DECAYS = ("constant", "cosine")
FGAN_GENERATORS = ("minimax", "alternative")


def _activations() -> tuple[str, ...]:
    from divergences.models import ACTIVATIONS

    return tuple(ACTIVATIONS)


ACTIVATIONS = _activations()


def _f(default: Any, help: str, *, resumable: bool = False) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "resumable": resumable})


PER_OBJECTIVE = "per objective"

# Base channels of both DCGAN networks unless given (Radford et al. 2016).
DCGAN_FEATURES = 64


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs (see each field's ``metadata["help"]``, or ``--help``).

    ``None`` fields take the objective's default (:func:`objective_defaults`);
    :func:`resolve_config` fills them. The object is frozen and hashable: the
    compiled steps take it as a static argument.
    """

    objective: str = _f("wgan-gp", "objective (one of the table below)")
    dataset: str = _f("8gaussians", "built-in data set name or a .npy/.npz path")
    steps: int | None = _f(None, "generator updates in all", resumable=True)
    batch_size: int | None = _f(None, "global batch (split across devices)")
    seed: int = _f(0, "the one seed: every key is fold_in(key(seed), step)")
    z_dim: int | None = _f(None, "noise dimension; default: the data's dimension clipped to [2, 64]")
    model: str = _f("mlp", "mlp, or dcgan for image data")
    width: int | None = _f(None, "generator width (DCGAN: base channels, default 64)")
    depth: int | None = _f(None, "generator hidden layers (MLP)")
    critic_width: int | None = _f(None, "critic width (DCGAN: base channels, default 64)")
    critic_depth: int | None = _f(None, "critic hidden layers (MLP)")
    activation: str = _f("relu", "hidden activation of both MLPs")
    spectral_norm: bool | None = _f(None, "spectral normalisation of the critic (Miyato et al. 2018)")
    layer_norm: bool | None = _f(None, "layer normalisation after each hidden layer of the critic; default per "
                                       "objective: on for wgan's MLP critic, off otherwise")
    n_critic: int | None = _f(None, "critic updates per generator update")
    optimizer: str | None = _f(None, "adam or rmsprop (both networks)")
    lr: float | None = _f(None, "generator learning rate")
    critic_lr: float | None = _f(None, "critic learning rate")
    lr_decay: str | None = _f(None, "learning-rate schedule of both networks: constant, or cosine (from lr "
                                    "to 0 over the run's steps, Loshchilov and Hutter 2017)")
    fgan_generator: str | None = _f(None, "the f-GANs' generator loss: minimax (minimise the bound, whose "
                                          "fake term is -E f*(T)), or alternative (maximise E T on the fakes, "
                                          "Nowozin et al. 2016, Sec. 3.2); default per objective: minimax, "
                                          "alternative for fgan-pearson_chi2")
    beta1: float | None = _f(None, "Adam's beta1")
    beta2: float | None = _f(None, "Adam's beta2")
    clip: float | None = _f(None, "wgan weight clipping bound; default 0.01 x 512 / critic width (MLP), "
                                  "0.01 (DCGAN)")
    gp_weight: float | None = _f(None, "wgan-gp penalty weight lambda; wgan-gp's default: 0.1 for the MLP "
                                       "(Gulrajani et al.'s toy code), 10 for DCGAN (their image experiments)")
    r1_weight: float = _f(0.0, "R1 penalty weight gamma on real data (Mescheder et al. 2018), added as "
                               "gamma/2 * E||grad D(x)||^2 to the critic loss of gan, nsgan, hinge, lsgan "
                               "and rsgan; 0: off")
    n_projections: int = _f(128, "directions of the sliced objective")
    sliced_p: float = _f(2.0, "order p of the sliced objective's W_p")
    mmd_bandwidths: tuple[float, ...] = _f((0.02, 0.05, 0.2, 1.0), "Gaussian bandwidths of the mmd objective "
                                                                  "(a sum of kernels; [] in a --config file: "
                                                                  "the median heuristic)")
    flow_layers: int = _f(8, "coupling layers of the flow objective")
    flow_coupling: str = _f("spline", "the flow's couplings: spline (rational-quadratic, Durkan et al. 2019; "
                                      "data of dimension >= 2) or affine (RealNVP, Dinh et al. 2017)")
    spline_bins: int = _f(16, "bins K of each spline coupling")
    spline_bound: float = _f(4.0, "each spline acts on [-B, B] in the units the model trains in (standardised "
                                  "by default), the identity outside")
    dequantize: float = _f(0.0, "flow and vae: width of the uniform noise added to each training batch and to "
                                "the held-out points, in the units the model trains in (discrete data: the "
                                "spacing of its levels, 0.125 for the digits' pixels with --model dcgan); 0: none")
    kl_warmup_steps: int = _f(0, "vae: the KL term's weight rises linearly from 0 to 1 over these steps "
                                 "(Bowman et al. 2016); 0: the plain ELBO throughout")
    n_features: int = _f(0, "linear-dual: 0, a discriminator on the exact Gaussian kernel (the sum over "
                            "feature_bandwidths: a kernel logistic regression); else that many random Fourier "
                            "features of it")
    feature_bandwidths: tuple[float, ...] = _f((0.02, 0.05, 0.2, 1.0), "linear-dual: the Gaussian kernel's "
                                                                      "bandwidths, in the units the model "
                                                                      "trains in (standardised by default)")
    feature_redraw: bool = _f(False, "linear-dual with random features (n_features >= 1): draw fresh ones every "
                                     "step (from the step's key) instead of once from the seed")
    dual_penalty: float = _f(0.1, "linear-dual L2 penalty per sample and per unit of the kernel's diagonal "
                                  "(the paper's C is this x batch x k(x, x): the number of bandwidths for the "
                                  "exact kernel, 1 for random features)")
    standardize: bool | None = _f(None, "train the MLP on standardised data (mean 0, one scale), samples "
                                        "mapped back to data units; default: on (every objective's defaults are "
                                        "in those units)")
    standardize_std: float | None = _f(None, "standard deviation of the standardised data (mean over the "
                                             "coordinates); default per objective: 1, and 3 for gan, nsgan and "
                                             "the f-GANs, whose spectrally normalised critics are 1-Lipschitz in "
                                             "these units")
    ema_decay: float = _f(0.999, "decay of the generator's parameter average that evaluation samples "
                                 "from (0: the raw parameters)")
    steps_per_call: int | None = _f(None, "generator steps fused per compiled call; default 50 (MLP), 1 (DCGAN)")
    eval_every: int = _f(1000, "steps between evaluations and log lines (0: at the end only)", resumable=True)
    plot_every: int = _f(5000, "steps between sample plots (0: at the end only)", resumable=True)
    checkpoint_every: int = _f(1000, "steps between checkpoints (0: none)", resumable=True)
    eval_samples: int = _f(2500, "generated samples per evaluation", resumable=True)
    out: str = _f("runs/default", "output folder; default runs/<objective>-<dataset>", resumable=True)
    progress: bool = _f(True, "a progress bar on a terminal (elsewhere: one line per evaluation)",
                        resumable=True)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "`config`") -> TrainConfig:
        """Build from a JSON-like mapping, checking every key and the type of every value.

        Raises:
          ValueError: not a mapping, an unknown key, or a value of the wrong type.
        """
        if not isinstance(d, dict):
            raise ValueError(f"{source} must hold a JSON object of TrainConfig fields, got a {type(d).__name__}")
        fields = config_fields()
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"{source} has unknown keys {unknown}; known keys: {sorted(fields)}")
        return cls(**{k: _coerce(fields[k], v, source) for k, v in d.items()})


def config_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def flag(name: str) -> str:
    """The command-line flag of a field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def field_kind(field: dataclasses.Field) -> tuple[str, bool]:
    """``(kind, optional)`` of a field, kind one of int, float, str, bool, floats."""
    ann = str(field.type).replace(" ", "")
    optional = ann.endswith("|None")
    base = ann.removesuffix("|None")
    kind = {"int": "int", "float": "float", "str": "str", "bool": "bool", "tuple[float,...]": "floats"}[base]
    return kind, optional


def _coerce(field: dataclasses.Field, value: Any, source: str) -> Any:
    kind, optional = field_kind(field)
    where = f"{source}: `{field.name}` ({flag(field.name)})"
    if value is None:
        if optional:
            return None
        raise ValueError(f"{where} must not be null")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    # floats
    empty_ok = field.name == "mmd_bandwidths"
    if not isinstance(value, (list, tuple)) or (not value and not empty_ok) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise ValueError(f"{where} must be a {'' if empty_ok else 'non-empty '}list of numbers, got {value!r}")
    return tuple(float(v) for v in value)


def objective_defaults(objective: str, model: str = "mlp") -> dict[str, Any]:
    """The defaults of an objective's ``None`` fields for ``model``, from its table entry."""
    defaults = get_objective(objective).resolved_defaults(model)
    unknown = sorted(set(defaults) - set(config_fields()))
    if unknown:
        raise ValueError(f"`defaults` of the objective {objective!r} name unknown configuration fields {unknown}")
    return defaults


def _bad(name: str, what: str, value: Any) -> ValueError:
    return ValueError(f"`{name}` ({flag(name)}) {what}, got {value!r}")


def validate_config(config: TrainConfig) -> None:
    """Check every field's type and range (``None`` fields are skipped: they are filled later).

    Raises:
      ValueError: a one-line message naming the field and its flag.
    """
    fields = config_fields()
    for name, field in fields.items():
        value = getattr(config, name)
        if value is not None:
            _coerce(field, value, "configuration")
    get_objective(config.objective)
    if config.model not in MODELS:
        raise _bad("model", f"must be one of {', '.join(MODELS)}", config.model)
    if config.optimizer is not None and config.optimizer not in OPTIMIZERS:
        raise _bad("optimizer", f"must be one of {', '.join(OPTIMIZERS)}", config.optimizer)
    if config.lr_decay is not None and config.lr_decay not in LR_DECAYS:
        raise _bad("lr_decay", f"must be one of {', '.join(LR_DECAYS)}", config.lr_decay)
    if config.fgan_generator is not None and config.fgan_generator not in FGAN_GENERATORS:
        raise _bad("fgan_generator", f"must be one of {', '.join(FGAN_GENERATORS)}", config.fgan_generator)
    if config.activation not in ACTIVATIONS:
        raise _bad("activation", f"must be one of {', '.join(ACTIVATIONS)}", config.activation)
    positive_ints = ("steps", "batch_size", "z_dim", "width", "critic_width", "steps_per_call", "eval_samples",
                     "n_projections", "flow_layers")
    if config.flow_coupling not in ("spline", "affine"):
        raise _bad("flow_coupling", "must be spline or affine", config.flow_coupling)
    if config.spline_bins < 2:
        raise _bad("spline_bins", "must be >= 2", config.spline_bins)
    if not (math.isfinite(config.spline_bound) and config.spline_bound > 0):
        raise _bad("spline_bound", "must be a finite number > 0", config.spline_bound)
    for name in positive_ints:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise _bad(name, "must be >= 1", value)
    for name in ("eval_every", "plot_every", "checkpoint_every", "depth", "critic_depth", "seed", "kl_warmup_steps",
                 "n_features"):
        if getattr(config, name) is not None and getattr(config, name) < 0:
            raise _bad(name, "must be >= 0", getattr(config, name))
    for name in ("lr", "critic_lr", "clip", "gp_weight", "dual_penalty", "sliced_p", "standardize_std"):
        value = getattr(config, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            if name == "critic_lr" and value == 0 and not get_objective(config.objective).has_critic:
                continue  # no critic to train
            raise _bad(name, "must be a finite number > 0", value)
    for name in ("mmd_bandwidths", "feature_bandwidths"):
        if not all(math.isfinite(b) and b > 0 for b in getattr(config, name)):
            raise _bad(name, "must be finite numbers > 0", getattr(config, name))
    if config.feature_redraw and config.n_features == 0:
        raise _bad("feature_redraw", "needs random features (n_features >= 1): the exact kernel of n_features 0 "
                                     "has none to redraw", config.feature_redraw)
    for name in ("beta1", "beta2"):
        value = getattr(config, name)
        if value is not None and not 0.0 <= value < 1.0:
            raise _bad(name, "must be in [0, 1)", value)
    if not (math.isfinite(config.dequantize) and config.dequantize >= 0):
        raise _bad("dequantize", "must be a finite number >= 0", config.dequantize)
    if not 0.0 <= config.ema_decay < 1.0:
        raise _bad("ema_decay", "must be in [0, 1)", config.ema_decay)
    if config.n_critic is not None:
        has_critic = get_objective(config.objective).has_critic
        if has_critic and config.n_critic < 1:
            raise _bad("n_critic", f"must be >= 1 for {config.objective!r}, which trains a critic", config.n_critic)
        if not has_critic and config.n_critic != 0:
            raise _bad("n_critic", f"must be 0 for {config.objective!r}, which has no critic", config.n_critic)


def resolve_config(config: TrainConfig, *, data_dim: int | None = None) -> TrainConfig:
    """Check every value and fill the ``None`` fields with the objective's defaults.

    ``z_dim`` is filled only when ``data_dim`` (the flattened sample size) is
    given: ``min(max(data_dim, 2), 64)``.
    """
    validate_config(config)
    if config.z_dim is None and data_dim is not None:
        config = dataclasses.replace(config, z_dim=min(max(int(data_dim), 2), 64))
    if config.steps_per_call is None:
        config = dataclasses.replace(config, steps_per_call=1 if config.model == "dcgan" else 50)
    if config.model == "dcgan":  # the objectives' capacity defaults are for the MLPs
        config = dataclasses.replace(config, **{k: DCGAN_FEATURES for k in ("width", "critic_width")
                                                if getattr(config, k) is None})
    defaults = objective_defaults(config.objective, config.model)
    filled = {k: (v if getattr(config, k) is None else getattr(config, k)) for k, v in defaults.items()}
    config = dataclasses.replace(config, **filled)
    if config.clip is None:
        clip = 0.01 if config.model == "dcgan" else 0.01 * 512 / int(config.critic_width)
        config = dataclasses.replace(config, clip=clip)
    validate_config(config)
    return config


def resumable_fields() -> tuple[str, ...]:
    return tuple(n for n, f in config_fields().items() if f.metadata.get("resumable"))
