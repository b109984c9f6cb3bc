"""The likelihood-based objectives ``vae`` and ``flow``: init, loss, sampling, held-out NLL, a small fit loop.

Self-contained, so that the training command's objective table can plug it
in: it imports :mod:`divergences`, :mod:`divergences.models` and optax, and
no other module of :mod:`divergences.train`. Every function is pure; the
configuration is a frozen, hashable :class:`LikelihoodConfig`, passed as a
static keyword argument (``jax.jit(loss, static_argnames="cfg")``).

* ``flow``: a coupling flow trained by exact maximum likelihood, with affine
  couplings (RealNVP, :class:`divergences.models.RealNVP`, the default) or
  rational-quadratic spline couplings (``coupling="spline"``,
  :class:`divergences.models.NeuralSplineFlow`), loss ``-mean log p(x) / d`` with
  ``log p(x) = log N(f(x); 0, I) + log|det df/dx|``
  (:func:`divergences.flow_log_prob`);
* ``vae``: a Gaussian encoder and decoder (MLP, or the DCGAN-style conv pair
  for images), standard-normal prior, loss ``-mean ELBO / d``
  (:func:`divergences.gaussian_elbo`, reparameterised samples, closed-form
  KL, scales through :func:`divergences.softplus_scale`).

Both losses are the forward KL ``KL(p_data || p_model)`` up to the data's
entropy (an upper bound of it for the VAE). Losses and NLLs are in **nats
per dimension**. The held-out NLL is exact for the flow and the IWAE bound
(:func:`divergences.iwae_bound`, K = ``cfg.iwae_samples`` = 100) for the VAE,
an upper bound of its true NLL.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import optax

import divergences as dv
from divergences import models

__all__ = [
    "LIKELIHOOD_OBJECTIVES",
    "LikelihoodConfig",
    "init",
    "loss",
    "sample",
    "flow_log_prob",
    "log_likelihood",
    "heldout_log_likelihoods",
    "heldout_nll_nats_per_dim",
    "make_optimizer",
    "train_step",
    "fit",
    "LikelihoodGenerator",
]

LIKELIHOOD_OBJECTIVES: dict[str, str] = {
    "flow": "normalizing flow (RealNVP affine or rational-quadratic spline couplings), exact maximum likelihood",
    "vae": "variational auto-encoder (Gaussian encoder and decoder), maximum ELBO",
}


@dataclasses.dataclass(frozen=True)
class LikelihoodConfig:
    """Every setting of the two objectives, with its default, in one place.

    Attributes:
      objective: ``"flow"`` or ``"vae"``.
      data_dim: the data dimension ``d``.
      model: ``"mlp"``, or ``"dcgan"`` (vae on images: the conv pair).
      image_shape: ``(H, W, C)`` for ``model="dcgan"``.
      width, depth: hidden width and depth of every MLP (the flow's
        conditioners, the VAE's encoder and decoder); the conv pair's channels.
      n_layers: the flow's coupling layers.
      coupling: the flow's coupling layers, ``"affine"`` (RealNVP) or
        ``"spline"`` (rational-quadratic splines, Durkan et al. 2019).
      spline_bins: each spline's bins ``K``.
      spline_bound: each spline acts on ``[-B, B]`` with ``B`` =
        ``spline_bound``, the identity outside; in the data's units (the
        flow's first layer, a learned elementwise affine map, starts as the
        identity, and ``fit`` does not standardise the data).
      rotations: fixed random rotations between the flow's couplings.
      max_log_scale: the soft clamp of each affine coupling's log-scale.
      latent_dim: the VAE's latent size.
      min_scale: the floor of the VAE's encoder and decoder scales
        (:func:`divergences.softplus_scale`).
      elbo_samples: reparameterised samples per data point in the ELBO.
      iwae_samples: K of the held-out IWAE bound (100, Burda et al. 2016).
      learning_rate, grad_clip: Adam's step and a global-norm clip (0: none).
      decay_steps: cosine decay of the step to 1% over this many steps
        (0: constant).
      kl_warmup_steps: the VAE's KL term is weighted by
        ``min(1, step / kl_warmup_steps)`` during training (the warm-up of
        Bowman et al. 2016 and Sonderby et al. 2016, against the decoder
        settling on a blurred fit before the code is used); 0: weight 1
        throughout. Evaluation always uses the full ELBO.
      ema_decay: :func:`fit` returns an exponential moving average of the
        parameters with this decay (0: the raw parameters), as the GAN runs
        evaluate an averaged generator.
      dequantize: width of uniform noise added to every batch (discrete
        data such as the digits, whose pixel levels are 0.125 apart); 0 for
        continuous data.
    """

    objective: str = "flow"
    data_dim: int = 2
    model: str = "mlp"
    image_shape: tuple[int, int, int] | None = None
    width: int = 128
    depth: int = 2
    n_layers: int = 8
    coupling: str = "affine"
    spline_bins: int = 8
    spline_bound: float = 4.0
    rotations: bool = False
    max_log_scale: float = 3.0
    latent_dim: int = 2
    min_scale: float = 1e-3
    elbo_samples: int = 1
    iwae_samples: int = 100
    learning_rate: float = 1e-3
    grad_clip: float = 10.0
    decay_steps: int = 0
    kl_warmup_steps: int = 0
    ema_decay: float = 0.0
    dequantize: float = 0.0

    def __post_init__(self):
        if self.objective not in LIKELIHOOD_OBJECTIVES:
            raise ValueError(f"`objective` must be one of {', '.join(map(repr, LIKELIHOOD_OBJECTIVES))}; got {self.objective!r}")
        if self.model not in ("mlp", "dcgan"):
            raise ValueError(f"`model` must be 'mlp' or 'dcgan'; got {self.model!r}")
        if self.model == "dcgan" and (self.objective != "vae" or self.image_shape is None):
            raise ValueError("`model` 'dcgan' needs objective 'vae' and an `image_shape` (H, W, C)")
        for name in ("data_dim", "width", "n_layers", "latent_dim", "elbo_samples", "iwae_samples"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"`{name}` must be >= 1; got {getattr(self, name)}")
        if self.coupling not in ("affine", "spline"):
            raise ValueError(f"`coupling` must be 'affine' or 'spline'; got {self.coupling!r}")
        if int(self.spline_bins) < 2:
            raise ValueError(f"`spline_bins` must be >= 2; got {self.spline_bins}")
        if not float(self.spline_bound) > 0:
            raise ValueError(f"`spline_bound` must be > 0; got {self.spline_bound}")
        if self.objective == "flow" and self.coupling == "spline" and self.data_dim < 2:
            raise ValueError(f"`coupling` 'spline' needs `data_dim` >= 2 (a coordinate to condition on); got {self.data_dim}")


def _flow(cfg: LikelihoodConfig) -> models.RealNVP | models.NeuralSplineFlow:
    if cfg.coupling == "spline":
        return models.NeuralSplineFlow(dim=cfg.data_dim, n_layers=cfg.n_layers, bins=cfg.spline_bins,
                                       bound=cfg.spline_bound, width=cfg.width, depth=cfg.depth,
                                       rotations=cfg.rotations)
    return models.RealNVP(dim=cfg.data_dim, n_layers=cfg.n_layers, width=cfg.width, depth=cfg.depth,
                          max_log_scale=cfg.max_log_scale, rotations=cfg.rotations)


def _vae(cfg: LikelihoodConfig):
    if cfg.model == "dcgan":
        return (models.ConvGaussianEncoder(image_shape=cfg.image_shape, latent_dim=cfg.latent_dim, features=cfg.width),
                models.ConvGaussianDecoder(image_shape=cfg.image_shape, features=cfg.width))
    return (models.GaussianEncoder(latent_dim=cfg.latent_dim, width=cfg.width, depth=cfg.depth),
            models.GaussianDecoder(out_features=cfg.data_dim, width=cfg.width, depth=cfg.depth))


def init(key: jax.Array, cfg: LikelihoodConfig) -> dict[str, Any]:
    """Parameters of the objective's model(s): ``{"flow": ...}`` or ``{"encoder": ..., "decoder": ...}``."""
    x = jnp.zeros((1, cfg.data_dim), jnp.float32)
    if cfg.objective == "flow":
        return {"flow": _flow(cfg).init(key, x)}
    enc, dec = _vae(cfg)
    k1, k2 = jax.random.split(key)
    return {"encoder": enc.init(k1, x), "decoder": dec.init(k2, jnp.zeros((1, cfg.latent_dim), jnp.float32))}


def _dequantize(batch: jax.Array, key: jax.Array, cfg: LikelihoodConfig) -> jax.Array:
    if cfg.dequantize == 0:
        return batch
    return batch + cfg.dequantize * (jax.random.uniform(key, batch.shape, batch.dtype) - 0.5)


def flow_log_prob(params: dict[str, Any], x: jax.Array, *, cfg: LikelihoodConfig) -> jax.Array:
    """Exact ``log p(x)`` of the flow, ``[n, d] -> [n]`` nats."""
    z, log_det = _flow(cfg).apply(params["flow"], x)
    return dv.flow_log_prob(dv.diag_gaussian_log_prob(z), log_det)


def _encode(params, x, cfg):
    enc, _ = _vae(cfg)
    mean, raw = enc.apply(params["encoder"], x)
    return mean, dv.softplus_scale(raw, min_scale=cfg.min_scale)


def _decode(params, z, cfg):
    _, dec = _vae(cfg)
    mean, raw = dec.apply(params["decoder"], z)
    return mean, dv.softplus_scale(raw, min_scale=cfg.min_scale)


def loss(params: dict[str, Any], batch: jax.Array, key: jax.Array, *, cfg: LikelihoodConfig,
         kl_weight: Any = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The training loss in nats per dimension and its metrics.

    Args:
      params: from :func:`init`.
      batch: ``[B, d]`` data.
      key: for the dequantisation noise and the VAE's reparameterised samples.
      cfg: static configuration.
      kl_weight: the VAE's weight of the KL term (1: the ELBO; below 1
        during a warm-up, see ``cfg.kl_warmup_steps``); ignored by the flow.

    Returns:
      ``(loss, metrics)``: flow ``-mean log p(x) / d``, metrics ``{"nll"}``;
      vae ``(reconstruction + kl_weight * kl) / d``, metrics
      ``{"neg_elbo", "kl", "reconstruction"}`` (all per dimension; ``neg_elbo``
      always with weight 1).
    """
    k_deq, k_z = jax.random.split(key)
    x = _dequantize(batch, k_deq, cfg)
    d = cfg.data_dim
    if cfg.objective == "flow":
        nll = -jnp.mean(flow_log_prob(params, x, cfg=cfg)) / d
        return nll, {"nll": nll}
    mean, scale = _encode(params, x, cfg)
    eps = jax.random.normal(k_z, (cfg.elbo_samples,) + mean.shape, mean.dtype)
    z = mean + scale * eps
    x_mean, x_scale = _decode(params, z, cfg)
    recon = jnp.mean(dv.diag_gaussian_log_prob(x, x_mean, x_scale), axis=0)
    elbo = dv.gaussian_elbo(recon, mean, scale)
    neg = -jnp.mean(elbo) / d
    kl = jnp.mean(dv.diag_gaussian_kl_standard(mean, scale)) / d
    rec = -jnp.mean(recon) / d
    return rec + kl_weight * kl, {"neg_elbo": neg, "kl": kl, "reconstruction": rec}


def sample(params: dict[str, Any], key: jax.Array, n: int, *, cfg: LikelihoodConfig) -> jax.Array:
    """``n`` samples ``[n, d]`` of the model's distribution.

    Flow: ``f^{-1}(z)``, ``z ~ N(0, I)``. VAE: ``x ~ N(mean(z), scale(z)^2)``
    with ``z ~ N(0, I)``, the decoder's noise included (that is the density
    whose likelihood is measured).
    """
    k1, k2 = jax.random.split(key)
    if cfg.objective == "flow":
        z = jax.random.normal(k1, (n, cfg.data_dim))
        return _flow(cfg).apply(params["flow"], z, method="inverse")[0]
    z = jax.random.normal(k1, (n, cfg.latent_dim))
    x_mean, x_scale = _decode(params, z, cfg)
    return x_mean + x_scale * jax.random.normal(k2, x_mean.shape)


def _iwae_log_likelihood(params, x, key, cfg):
    """IWAE bound of ``log p(x)`` per sample, ``[n, d] -> [n]``, K = ``cfg.iwae_samples``."""
    mean, scale = _encode(params, x, cfg)
    eps = jax.random.normal(key, (cfg.iwae_samples,) + mean.shape, mean.dtype)
    z = mean + scale * eps
    x_mean, x_scale = _decode(params, z, cfg)
    log_w = (dv.diag_gaussian_log_prob(x, x_mean, x_scale) + dv.diag_gaussian_log_prob(z)
             - dv.diag_gaussian_log_prob(z, mean, scale))
    return dv.iwae_bound(log_w, axis=0)


def log_likelihood(params: dict[str, Any], x: jax.Array, key: jax.Array, *, cfg: LikelihoodConfig) -> jax.Array:
    """``log p(x)`` per sample ``[n]``: exact for the flow, the IWAE bound for the VAE."""
    if cfg.objective == "flow":
        return flow_log_prob(params, x, cfg=cfg)
    return _iwae_log_likelihood(params, x, key, cfg)


def heldout_log_likelihoods(params: dict[str, Any], data: Any, key: jax.Array, *, cfg: LikelihoodConfig,
                            chunk: int = 500) -> jax.Array:
    """``log p(x)`` of every point of ``data [n, d]``, ``[n]`` nats, in chunks of ``chunk`` points.

    Exact for the flow; the IWAE bound with K = ``cfg.iwae_samples`` for the
    VAE. Dequantised data get fixed noise from ``key``.
    """
    x = jnp.asarray(data, jnp.float32)
    n = x.shape[0]
    pad = (-n) % chunk
    xs = jnp.concatenate([x, jnp.zeros((pad, x.shape[1]), x.dtype)]).reshape(-1, chunk, x.shape[1])
    keys = jax.random.split(key, xs.shape[0])
    return _chunked_ll(params, xs, keys, cfg).reshape(-1)[:n]


def heldout_nll_nats_per_dim(params: dict[str, Any], data: Any, key: jax.Array, *, cfg: LikelihoodConfig,
                             chunk: int = 500) -> float:
    """Mean negative log-likelihood of ``data [n, d]`` in nats per dimension.

    Exact for the flow; for the VAE the IWAE bound with K = ``cfg.iwae_samples``
    importance samples per point (an upper bound of the VAE's NLL). Computed
    in chunks of ``chunk`` points (one compiled program per chunk size).
    Dequantised data get fixed noise from ``key``.
    """
    ll = heldout_log_likelihoods(params, data, key, cfg=cfg, chunk=chunk)
    return float(-jnp.mean(ll) / cfg.data_dim)


@functools.partial(jax.jit, static_argnames="cfg")
def _chunked_ll(params, xs, keys, cfg):
    def one(args):
        xc, k = args
        k1, k2 = jax.random.split(k)
        return log_likelihood(params, _dequantize(xc, k1, cfg), k2, cfg=cfg)
    return jax.lax.map(one, (xs, keys))


def make_optimizer(cfg: LikelihoodConfig) -> optax.GradientTransformation:
    """Adam at ``cfg.learning_rate`` (cosine-decayed over ``cfg.decay_steps``), after a global-norm clip."""
    lr = cfg.learning_rate
    if cfg.decay_steps > 0:
        lr = optax.cosine_decay_schedule(cfg.learning_rate, cfg.decay_steps, alpha=0.01)
    adam = optax.adam(lr)
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), adam) if cfg.grad_clip > 0 else adam


def train_step(params, opt_state, batch, key, step=None, *, cfg: LikelihoodConfig):
    """One Adam step on :func:`loss`: ``(params, opt_state, batch [B, d], key, step) -> (params, opt_state, metrics)``.

    ``step`` (an integer, traced or not) sets the KL warm-up weight; ``None``: weight 1.
    """
    kl_weight = 1.0
    if step is not None and cfg.kl_warmup_steps > 0:
        kl_weight = jnp.minimum(1.0, (step + 1) / cfg.kl_warmup_steps)
    (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params, batch, key, cfg=cfg, kl_weight=kl_weight)
    updates, opt_state = make_optimizer(cfg).update(grads, opt_state, params)
    metrics = dict(metrics, loss=value, grad_norm=optax.tree.norm(grads))
    return optax.apply_updates(params, updates), opt_state, metrics


def _chunk_fn(cfg: LikelihoodConfig, n_steps: int, batch_size: int):
    @jax.jit
    def run(params, opt_state, ema, data, key, start):
        def body(carry, step):
            p, o, e = carry
            k = jax.random.fold_in(key, step)
            k_batch, k_loss = jax.random.split(k)
            idx = jax.random.randint(k_batch, (batch_size,), 0, data.shape[0])
            p, o, m = train_step(p, o, data[idx], k_loss, step, cfg=cfg)
            e = optax.incremental_update(p, e, 1.0 - cfg.ema_decay) if cfg.ema_decay > 0 else p
            return (p, o, e), m
        (params, opt_state, ema), metrics = jax.lax.scan(body, (params, opt_state, ema), start + jnp.arange(n_steps))
        return params, opt_state, ema, jax.tree.map(jnp.mean, metrics)
    return run


def fit(cfg: LikelihoodConfig, data: Any, key: jax.Array, *, steps: int = 10000, batch_size: int = 256,
        steps_per_call: int = 500, heldout: Any = None, eval_every: int = 0,
        callback: Any = None) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Train from scratch for ``steps`` Adam steps on minibatches of ``data [n, d]``.

    Every step's key is ``fold_in(key, step)`` (batch indices and the loss's
    noise drawn from it), so a run is deterministic; ``steps_per_call`` steps
    are fused into one compiled ``lax.scan``. With ``heldout`` and
    ``eval_every > 0``, the held-out NLL (nats per dimension) is logged every
    ``eval_every`` steps (rounded up to whole calls).

    Returns:
      ``(params, history)``: the parameters (their moving average when
      ``cfg.ema_decay > 0``; the held-out NLL is also measured on those) and
      one dict per call (``step``, the chunk's mean metrics, ``seconds``
      since the start, ``heldout_nll`` where evaluated).
    """
    k_init, k_train, k_eval = jax.random.split(key, 3)
    params = init(k_init, cfg)
    opt_state = make_optimizer(cfg).init(params)
    ema = params
    data = jnp.asarray(data, jnp.float32)
    steps_per_call = max(1, min(steps_per_call, steps))
    run = _chunk_fn(cfg, steps_per_call, batch_size)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    step = 0
    while step < steps:
        n = min(steps_per_call, steps - step)
        if n < steps_per_call:
            run = _chunk_fn(cfg, n, batch_size)
        params, opt_state, ema, metrics = run(params, opt_state, ema, data, k_train, jnp.asarray(step))
        step += n
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        if heldout is not None and eval_every > 0 and (step % eval_every < steps_per_call or step == steps):
            row["heldout_nll"] = heldout_nll_nats_per_dim(ema, heldout, k_eval, cfg=cfg)
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if callback is not None:
            callback(row)
    return ema, history


@dataclasses.dataclass(frozen=True)
class LikelihoodGenerator:
    """The ``vae`` or ``flow`` model as the training command's generator module.

    It has the two methods of a linen module that the command uses:
    ``init(key, z) -> {"params": ...}`` (the pytree of :func:`init`, so the
    command's EMA, checkpoints and resume treat it like any generator's) and
    ``apply({"params": p}, *args, method=None)``. ``__call__`` (the default
    method) maps noise ``[n, z_dim]`` to data ``[n, d]`` deterministically: the
    flow's inverse on the first ``d`` noise coordinates, or the VAE decoder's
    mean (``z_dim`` is its latent size); ``method="loss"`` is
    ``loss(x, key[, kl_weight])`` (:func:`loss`), ``method="sample"`` is
    ``sample(key, n)`` (:func:`sample`) and
    ``method="heldout_log_likelihood"`` is ``(x, key) -> [n]``
    (:func:`heldout_log_likelihoods`).
    """

    cfg: LikelihoodConfig

    def init(self, key: jax.Array, z: jax.Array) -> dict[str, Any]:
        params = init(key, self.cfg)
        self.apply({"params": params}, z)  # the noise must fit (shape errors at trace time)
        return {"params": params}

    def apply(self, variables: dict[str, Any], *args: Any, method: str | None = None) -> Any:
        params = variables["params"]
        if method == "loss":
            x, key, *weight = args
            return loss(params, x, key, cfg=self.cfg, kl_weight=weight[0] if weight else 1.0)
        if method == "heldout_log_likelihood":
            x, key = args
            return heldout_log_likelihoods(params, x, key, cfg=self.cfg)
        if method == "sample":
            key, n = args
            return sample(params, key, n, cfg=self.cfg)
        (z,) = args
        if self.cfg.objective == "flow":
            d = self.cfg.data_dim
            if z.shape[-1] < d:
                raise ValueError(f"`z_dim` {z.shape[-1]} must be at least the data dimension {d} for the flow")
            return _flow(self.cfg).apply(params["flow"], z[..., :d], method="inverse")[0]
        return _decode(params, z, self.cfg)[0]
