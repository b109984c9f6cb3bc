"""Pure, module-level train steps for every objective of the table, and the fused multi-step driver.

In the style of the flax examples, a :class:`TrainState` holds a
:class:`GeneratorState` and a :class:`CriticState` (parameters, optimizer
state, and as static fields the module and its optax transformation), the
resolved configuration and the device mesh (static as well), and the steps are
plain functions of it:

* :func:`init_state` ``(config, key, *, data_dim, ...) -> TrainState``;
* :func:`critic_update` ``(state, real [B, d], key) -> (state, metrics)``;
* :func:`generator_update` ``(state, real [B, d], key) -> (state, metrics)``;
* :func:`train_step` ``(state, batch [k, B, d], key) -> (state, metrics)``:
  ``n_critic`` critic updates (a :func:`jax.lax.scan`), one per slice of the
  batch, then one generator update on the last slice. The step folds
  ``state.step`` into ``key``, so the same seed gives the same randomness at
  the same step whether or not the run was interrupted;
* :func:`multi_step` ``(state, data [N, d], key, *, n_steps)``: ``n_steps``
  steps with their batches drawn on device, one compiled dispatch.

What differs between objectives (losses, defaults, constraints) comes from
the objective table (:mod:`divergences.train._objectives`); the losses are the
public functions of :mod:`divergences`. :func:`make_train_step` and
:func:`make_multi_step` bundle these for the README's and the benchmarks'
callers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from divergences import models
from divergences.train._config import TrainConfig, resolve_config
from divergences.train._objectives import CriticInputs, GeneratorInputs, get_objective
from divergences.train._parallel import DATA_AXIS, replicated, shard

__all__ = ["GeneratorState", "CriticState", "TrainState", "TrainStep", "init_state", "critic_update",
           "generator_update", "train_step", "multi_step", "generate", "sample_generator", "critic_values", "build_models",
           "build_optimizer", "make_train_step", "make_multi_step", "n_slices", "DATA_AXIS", "nnx_module"]

_DATA_TAG = 0x5EED  # folded into the base key for the sampling of data batches


class GeneratorState(struct.PyTreeNode):
    """The generator's part of the state.

    Attributes:
      params: parameters.
      ema: exponential moving average of ``params`` (what evaluation samples
        from; equal to ``params`` when ``ema_decay`` is 0).
      opt_state: the optax state.
      module: the flax module (static).
      tx: its optax transformation (static).
    """

    params: Any
    ema: Any
    opt_state: Any
    module: Any = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)


class CriticState(struct.PyTreeNode):
    """The critic's part of the state.

    Attributes:
      params: parameters.
      stats: the ``"batch_stats"`` collection (spectral-norm power iteration), ``{}`` if none.
      opt_state: the optax state.
      module, tx: the flax module and its optax transformation (static).
    """

    params: Any
    stats: Any
    opt_state: Any
    module: Any = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)


class TrainState(struct.PyTreeNode):
    """Everything that changes during training (a pytree; checkpointed whole), with its static setup.

    Attributes:
      step: generator updates done, ``int32 []``.
      generator: a :class:`GeneratorState`.
      critic: a :class:`CriticState`, None for objectives without a critic.
      config: the resolved configuration (static).
      mesh: the device mesh of a data-parallel run, else None (static).
    """

    step: jax.Array
    generator: GeneratorState
    critic: CriticState | None
    config: TrainConfig = struct.field(pytree_node=False)
    mesh: Mesh | None = struct.field(pytree_node=False, default=None)

    @property
    def gen_params(self) -> Any:
        return self.generator.params

    @property
    def gen_ema(self) -> Any:
        return self.generator.ema

    @property
    def critic_params(self) -> Any:
        return {} if self.critic is None else self.critic.params


# ---------------------------------------------------------------- building


@dataclasses.dataclass(frozen=True, eq=False)
class _NNXModule:
    """A Flax NNX module seen through linen's ``init``/``apply`` (its parameters as a plain dict)."""

    graphdef: Any
    params: Any  # nnx.State of the nnx.Param variables (the template)
    rest: Any  # every other variable, held constant

    def init(self, key, *args, **kwargs):
        from flax import nnx

        return {"params": nnx.to_pure_dict(self.params)}

    def apply(self, variables, *args, **kwargs):
        from flax import nnx

        kwargs.pop("update_stats", None)
        params = jax.tree.map(lambda v: v, self.params)
        nnx.replace_by_pure_dict(params, variables["params"])
        return nnx.merge(self.graphdef, params, self.rest)(*args)


def nnx_module(module: Any) -> Any:
    """``module`` with linen's ``init``/``apply``: NNX modules are split into graph and parameters."""
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover
        return module
    if isinstance(module, nnx.Module):
        graphdef, params, rest = nnx.split(module, nnx.Param, ...)
        return _NNXModule(graphdef, params, rest)
    return module


def build_models(config: TrainConfig, data_dim: int, image_shape: tuple[int, int, int] | None = None):
    """The default ``(generator, critic)`` modules of ``config`` (critic None without one)."""
    obj = get_objective(config.objective)
    if obj.build_models is not None:
        return obj.build_models(config, data_dim, image_shape)
    if config.model == "dcgan":
        if image_shape is None:
            raise ValueError("`model` 'dcgan' (--model) needs image data (digits or an [n, H, W(, C)] file); "
                             "use --model mlp")
        gen = models.DCGANGenerator(image_shape=tuple(image_shape), features=config.width, layer_norm=False)
        critic = models.DCGANCritic(image_shape=tuple(image_shape), features=config.critic_width,
                                    spectral_norm=config.spectral_norm, layer_norm=config.layer_norm)
    else:
        gen = models.MLP(width=config.width, depth=config.depth, out_features=data_dim,
                         activation=config.activation, squeeze=False)
        critic = models.MLP(width=config.critic_width, depth=config.critic_depth, out_features=1,
                            activation=config.activation, spectral_norm=config.spectral_norm,
                            layer_norm=config.layer_norm)
    return gen, (critic if obj.has_critic else None)


def build_optimizer(config: TrainConfig, lr: float, *, updates_per_step: int = 1) -> optax.GradientTransformation:
    """The configured optimizer (``adam`` with ``beta1``/``beta2``, or ``rmsprop``) at ``lr``.

    With ``lr_decay="cosine"`` the rate follows optax's cosine decay from
    ``lr`` to 0 over ``config.steps * updates_per_step`` updates (the critic
    takes ``n_critic`` updates a step). The same settings give the same
    object (cached), so states built from equal configurations share one
    static setup and one compiled step."""
    decay_updates = int(config.steps) * int(updates_per_step) if config.lr_decay == "cosine" else 0
    return _optimizer(config.optimizer, float(lr), config.beta1, config.beta2, decay_updates)


@functools.lru_cache(maxsize=64)
def _optimizer(name: str, lr: float, beta1: float, beta2: float, decay_updates: int = 0) -> optax.GradientTransformation:
    rate = optax.cosine_decay_schedule(lr, decay_updates) if decay_updates > 0 else lr
    if name == "rmsprop":
        return optax.rmsprop(rate)
    return optax.adam(rate, b1=beta1, b2=beta2)


@functools.lru_cache(maxsize=64)
def _critic_optimizer(config: TrainConfig, given: optax.GradientTransformation | None):
    tx = given if given is not None else build_optimizer(config, config.critic_lr,
                                                         updates_per_step=max(int(config.n_critic), 1))
    transform = get_objective(config.objective).critic_transform
    return tx if transform is None else optax.chain(tx, transform(config))


def n_slices(config: TrainConfig) -> int:
    """Leading size of a step's batch: one slice per critic update (at least one)."""
    return max(int(config.n_critic), 1)


def init_state(config: TrainConfig, key: jax.Array, *, data_dim: int,
               image_shape: tuple[int, int, int] | None = None, generator: Any = None, critic: Any = None,
               optimizer: optax.GradientTransformation | None = None,
               critic_optimizer: optax.GradientTransformation | None = None,
               mesh: Mesh | None = None) -> TrainState:
    """A fresh :class:`TrainState`.

    Args:
      config: a :class:`~divergences.train.TrainConfig` (resolved here).
      key: the initialisation key.
      data_dim: ``d``, the flattened sample size.
      image_shape: ``(H, W, C)`` for the DCGAN model.
      generator: a flax module (linen, or an NNX instance) mapping noise
        ``[n, z_dim]`` to ``[n, d]`` samples (or ``[n, H, W, C]``, flattened);
        default: the configured MLP or DCGAN generator.
      critic: a flax module mapping ``[n, d]`` to ``[n]`` (or ``[n, 1]``)
        outputs; one with a ``"batch_stats"`` collection must accept
        ``update_stats=True``. Default: the configured critic (None for
        objectives without one).
      optimizer, critic_optimizer: optax transformations; default: the
        configured Adam or RMSProp at ``lr`` / ``critic_lr``. The objective's
        ``critic_transform`` (WGAN clipping) is chained after the critic's.
      mesh: a ``"data"`` mesh: per-sample arrays are split along it.

    Raises:
      ValueError: a module whose output shape does not fit the data.
    """
    cfg = resolve_config(config, data_dim=data_dim)
    obj = get_objective(cfg.objective)
    default_gen, default_critic = (None, None)
    if generator is None or (critic is None and obj.has_critic):
        default_gen, default_critic = build_models(cfg, data_dim, image_shape)
    gen = nnx_module(generator) if generator is not None else default_gen
    crit = None
    if obj.has_critic:
        crit = nnx_module(critic) if critic is not None else default_critic
    gen_tx = optimizer if optimizer is not None else build_optimizer(cfg, cfg.lr)
    k_gen, k_critic = jax.random.split(key)
    z = jnp.zeros((1, cfg.z_dim), jnp.float32)
    gen_params = gen.init(k_gen, z)["params"]
    _check_output("generator", jax.eval_shape(lambda p: gen.apply({"params": p}, jnp.zeros((2, cfg.z_dim))),
                                              gen_params), (2, data_dim), f"[n, z_dim={cfg.z_dim}] noise")
    gen_state = GeneratorState(
        params=gen_params, ema=jax.tree.map(lambda p: jnp.array(p, copy=True), gen_params),  # own buffers
        opt_state=gen_tx.init(gen_params), module=gen, tx=gen_tx)
    critic_state = None
    if crit is not None:
        tx = _critic_optimizer(cfg, critic_optimizer)
        cvars = crit.init(k_critic, jnp.zeros((1, data_dim), jnp.float32))
        params, stats = cvars["params"], cvars.get("batch_stats", {})
        if obj.project_critic is not None:  # start inside the constraint set
            params = obj.project_critic(cfg, params)
        _check_output("critic", jax.eval_shape(lambda p: crit.apply({"params": p, **_stats(stats)},
                                                                    jnp.zeros((2, data_dim))), params),
                      (2,), f"[n, d={data_dim}] samples")
        critic_state = CriticState(params=params, stats=stats, opt_state=tx.init(params), module=crit, tx=tx)
    return TrainState(step=jnp.zeros((), jnp.int32), generator=gen_state, critic=critic_state, config=cfg,
                      mesh=mesh)


def _stats(stats: Any) -> dict:
    return {"batch_stats": stats} if stats else {}


def _check_output(name: str, out: Any, want: tuple[int, ...], given: str) -> None:
    shape = tuple(getattr(out, "shape", ()))
    n = want[0]
    flat = (n, math.prod(shape[1:])) if len(shape) > 1 else shape
    ok = flat == want if name == "generator" else shape in ((n,), (n, 1))
    if not ok:
        wanted = f"[n, {want[1]}]" if name == "generator" else "[n] (or [n, 1])"
        raise ValueError(f"`{name}` maps {given} to shape {list(shape)} for n = {n}; it must give {wanted} "
                         f"to fit the data")


# ---------------------------------------------------------------- applying


def sample_generator(module: Any, config: TrainConfig, params: Any, key: jax.Array, n: int, *,
                     mesh: Mesh | None = None) -> jax.Array:
    """``[n, d]`` samples of ``module`` at ``params``: the objective's ``sample``, or
    ``N(0, I_{z_dim})`` noise through ``module.apply`` (flattened)."""
    obj = get_objective(config.objective)
    if obj.sample is not None:
        return shard(obj.sample(module, params, key, n, config), mesh)
    z = shard(jax.random.normal(key, (n, config.z_dim), jnp.float32), mesh)
    out = module.apply({"params": params}, z)
    return shard(out.reshape(n, -1), mesh)


def generate(state: TrainState, params: Any, key: jax.Array, n: int) -> jax.Array:
    """``[n, d]`` samples of the state's generator at ``params`` (its ``ema`` or ``params``)."""
    return sample_generator(state.generator.module, state.config, params, key, n, mesh=state.mesh)


def _critic_apply(critic: CriticState, params: Any, stats: Any, x: jax.Array, update: bool):
    variables = {"params": params, **_stats(stats)}
    if stats and update:
        out, mutated = critic.module.apply(variables, x, update_stats=True, mutable=["batch_stats"])
        return out.reshape(x.shape[0]), mutated["batch_stats"]
    return critic.module.apply(variables, x).reshape(x.shape[0]), stats


def critic_values(state: TrainState, x: jax.Array) -> jax.Array:
    """The critic's outputs ``[n]`` on ``x [n, d]`` (no statistics update)."""
    c = state.critic
    return _critic_apply(c, c.params, c.stats, x, False)[0]


# ---------------------------------------------------------------- the steps


def critic_update(state: TrainState, real: jax.Array, key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
    """One critic update on the data batch ``real [B, d]`` against fresh fakes."""
    cfg, c = state.config, state.critic
    obj = get_objective(cfg.objective)
    bsz = real.shape[0]
    k_fake, k_loss = jax.random.split(key)
    real = shard(real, state.mesh)
    fake = jax.lax.stop_gradient(generate(state, state.generator.params, k_fake, bsz))

    def loss_fn(params):
        out, new_stats = _critic_apply(c, params, c.stats, jnp.concatenate([real, fake]), True)
        critic = lambda x: _critic_apply(c, params, new_stats, x, False)[0]  # noqa: E731
        loss, metrics = obj.critic_loss(CriticInputs(real, fake, out[:bsz], out[bsz:], critic, k_loss, cfg))
        return loss, ({"d_loss": loss, **metrics}, new_stats)

    grads, (metrics, stats) = jax.grad(loss_fn, has_aux=True)(c.params)
    updates, opt_state = c.tx.update(grads, c.opt_state, c.params)
    critic = c.replace(params=optax.apply_updates(c.params, updates), stats=stats, opt_state=opt_state)
    return state.replace(critic=critic), metrics


def generator_update(state: TrainState, real: jax.Array, key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
    """One generator update on ``real [B, d]``, and the generator's average (EMA)."""
    return _generator_update(state, real, *jax.random.split(key))


def _generator_update(state: TrainState, real: jax.Array, k_gen: jax.Array, k_loss: jax.Array):
    cfg, g, c = state.config, state.generator, state.critic
    obj = get_objective(cfg.objective)
    bsz = real.shape[0]
    real = shard(real, state.mesh)
    # The critic on real data is a constant here (compiled away where unused).
    o_real = None if c is None else jax.lax.stop_gradient(critic_values(state, real))

    def loss_fn(params):
        fake = generate(state, params, k_gen, bsz)
        o_fake = None if c is None else critic_values(state, fake)
        loss, metrics = obj.generator_loss(GeneratorInputs(params, real, fake, o_real, o_fake, k_loss, cfg,
                                                           g.module, state.step))
        return loss, metrics

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
    metrics = {"g_loss": loss, "g_grad_norm": optax.tree.norm(grads), **metrics}
    updates, opt_state = g.tx.update(grads, g.opt_state, g.params)
    params = optax.apply_updates(g.params, updates)
    # Polyak/EMA averaging of the generator (Yazici et al. 2019), with the
    # warm-up min(decay, (1 + t) / (10 + t)) so that short runs are not
    # dominated by the initial parameters.
    t = state.step.astype(jnp.float32)
    decay = jnp.minimum(jnp.float32(cfg.ema_decay), (1 + t) / (10 + t))
    ema = optax.incremental_update(params, g.ema, 1 - decay)
    return state.replace(generator=g.replace(params=params, ema=ema, opt_state=opt_state)), metrics


def train_step(state: TrainState, batch: jax.Array, key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
    """One training step: ``n_critic`` critic updates, one generator update.

    Args:
      state: a :class:`TrainState`.
      batch: ``[k, B, d]`` real samples, ``k = max(n_critic, 1)``: slice ``i``
        for critic update ``i``, the last slice for the generator.
      key: the run's base key (``state.step`` is folded in here).

    Returns:
      ``(state, metrics)``, the metrics scalars of this step.
    """
    cfg = state.config
    key = jax.random.fold_in(key, state.step)
    k_critic, k_gen, k_loss = jax.random.split(key, 3)
    metrics: dict[str, jax.Array] = {}
    if state.critic is not None:
        n = int(cfg.n_critic)
        state, aux = _scan(lambda s, xs: critic_update(s, *xs), state,
                           (batch[:n], jax.random.split(k_critic, n)), n, _unrolled(cfg))
        metrics.update({k: v[-1] for k, v in aux.items()})
    state, gen_metrics = _generator_update(state, batch[-1], k_gen, k_loss)
    metrics.update(gen_metrics)
    return state.replace(step=state.step + 1), metrics


def multi_step(state: TrainState, data: jax.Array, key: jax.Array, *, n_steps: int):
    """``n_steps`` train steps with their batches drawn from ``data [N, d]``.

    Each step's batch ``[k, B, d]`` has uniform indices from
    ``fold_in(fold_in(key, tag), step)``, so batches depend only on the seed
    and the step. Returns ``(state, metrics)`` with the metrics stacked ``[n_steps]``.
    """
    cfg = state.config
    k, bsz = n_slices(cfg), int(cfg.batch_size)
    data_key = jax.random.fold_in(key, _DATA_TAG)

    def body(st, _):
        idx = jax.random.randint(jax.random.fold_in(data_key, st.step), (k, bsz), 0, data.shape[0])
        return train_step(st, data[idx], key)

    return _scan(body, state, None, n_steps, _unrolled(cfg))


def _unrolled(cfg: TrainConfig) -> bool:
    """Whether the step's loops are written out instead of scanned.

    XLA's CPU backend runs convolutions inside a while loop about 3x slower
    than the same convolutions outside one, so the loops of a convolutional
    model are unrolled; the MLP's matmuls lose nothing in a loop, and a
    rolled loop compiles once whatever its length.
    """
    return cfg.model == "dcgan"


def _scan(f, carry, xs, length: int, unroll: bool):
    """:func:`jax.lax.scan`, or with ``unroll`` the same loop written out in
    the traced program (no while loop at all, even for ``length`` 1, which
    ``lax.scan(..., unroll=True)`` still wraps in one)."""
    if not unroll:
        return jax.lax.scan(f, carry, xs, length=length)
    ys = []
    for i in range(length):
        carry, y = f(carry, None if xs is None else jax.tree.map(lambda a: a[i], xs))
        ys.append(y)
    return carry, jax.tree.map(lambda *a: jnp.stack(a), *ys)


def jit_multi_step(n_steps: int, mesh: Mesh | None = None) -> Callable:
    """:func:`multi_step` compiled with the state donated (replicated over ``mesh`` if given)."""
    fn = functools.partial(multi_step, n_steps=n_steps)
    if mesh is None:
        return jax.jit(fn, donate_argnums=0)
    rep = replicated(mesh)
    return jax.jit(fn, donate_argnums=0, in_shardings=(rep, rep, rep), out_shardings=(rep, rep))


# ---------------------------------------------------------------- the bundle


class TrainStep(NamedTuple):
    """What :func:`make_train_step` returns (a bundle over the module-level functions).

    Attributes:
      init: ``key -> TrainState``.
      step: :func:`train_step`, ``(state, batch [k, B, d], key) -> (state, metrics)``.
      sample: ``(gen_params, key, n) -> [n, d]`` generated samples.
      critic_values: ``(state, x [n, d]) -> [n]`` critic outputs, or None.
      n_slices: ``k``, the leading size of ``batch``.
      config: the resolved configuration.
      generator, critic: the flax modules (critic None when unused).
    """

    init: Callable[[jax.Array], TrainState]
    step: Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, dict[str, jax.Array]]]
    sample: Callable[[Any, jax.Array, int], jax.Array]
    critic_values: Callable[[TrainState, jax.Array], jax.Array] | None
    n_slices: int
    config: TrainConfig
    generator: Any
    critic: Any


def make_train_step(config: TrainConfig, data_dim: int, *, image_shape: tuple[int, int, int] | None = None,
                    mesh: Mesh | None = None, generator: Any = None, critic: Any = None,
                    optimizer: optax.GradientTransformation | None = None,
                    critic_optimizer: optax.GradientTransformation | None = None) -> TrainStep:
    """Bundle :func:`init_state`, :func:`train_step` and sampling for ``config``.

    Args: as :func:`init_state` (``mesh``: split the per-sample arrays along
    its ``"data"`` axis; the parameters stay replicated and XLA averages the
    gradients across devices, the ``pmean`` of a pmap step).
    """
    cfg = resolve_config(config, data_dim=data_dim)
    kwargs = dict(data_dim=data_dim, image_shape=image_shape, generator=generator, critic=critic,
                  optimizer=optimizer, critic_optimizer=critic_optimizer, mesh=mesh)
    template = jax.eval_shape(lambda k: init_state(cfg, k, **kwargs), jax.random.key(0))
    gen, crit = template.generator.module, None if template.critic is None else template.critic.module
    # The template's modules reused: every state shares one static setup (an
    # NNX module is split once).
    kwargs.update(generator=gen, critic=crit)

    def init(key: jax.Array) -> TrainState:
        return init_state(cfg, key, **kwargs)

    def sample(gen_params: Any, key: jax.Array, n: int) -> jax.Array:
        return generate(template, gen_params, key, n)

    return TrainStep(init=init, step=train_step, sample=sample,
                     critic_values=critic_values if crit is not None else None, n_slices=n_slices(cfg),
                     config=cfg, generator=gen, critic=crit)


def make_multi_step(train_step: TrainStep | None, steps_per_call: int, *, mesh: Mesh | None = None) -> Callable:
    """Fuse ``steps_per_call`` train steps into one compiled call.

    The returned function ``(state, data [N, d], key) -> (state, metrics)`` is
    :func:`multi_step` under :func:`jax.jit` with ``state`` donated; with a
    ``mesh``, ``state``, ``data`` and ``key`` are replicated over it and each
    batch is split along its ``"data"`` axis. (``train_step`` is accepted for
    the callers of the bundle; the state carries its own setup.)
    """
    del train_step
    return jit_multi_step(int(steps_per_call), mesh)
