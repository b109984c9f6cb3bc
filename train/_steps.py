"""One train-step factory for every objective, and the fused multi-step driver.

:func:`make_train_step` builds, from a :class:`~train.TrainConfig`, the
generator and critic modules, their optax optimizers and a *pure* step

    ``step(state, batch, key) -> (state, metrics)``

where ``batch`` holds real samples ``[k, batch_size, d]``, one slice per
critic update (``k = max(n_critic, 1)``; the generator update uses the last
slice), and ``key`` is the run's base key: the step folds ``state.step`` into
it, so the same seed gives the same randomness at the same step whether or
not the run was interrupted. The critic's inner loop is a :func:`jax.lax.scan`
inside the step. The losses are the public functions of :mod:`divergences`;
nothing here re-derives them.

:func:`make_multi_step` fuses ``steps_per_call`` steps (and the sampling of
their batches from an on-device copy of the data set) into one compiled
dispatch with the state donated, optionally data-parallel over a device mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import divergences as dv
from divergences import models
from divergences.train._config import TrainConfig, resolve_config

__all__ = ["TrainState", "TrainStep", "make_train_step", "make_multi_step", "DATA_AXIS"]

DATA_AXIS = "data"
_DATA_TAG = 0x5EED  # folded into the base key for the sampling of data batches


class TrainState(struct.PyTreeNode):
    """Everything that changes during training (a pytree; checkpointed whole).

    Attributes:
      step: number of generator updates done, ``int32 []``.
      gen_params: generator parameters.
      gen_ema: exponential moving average of ``gen_params`` (the generator
        that the evaluation samples from; equal to ``gen_params`` when
        ``ema_decay`` is 0).
      critic_params: critic parameters (``{}`` for critic-free objectives).
      critic_stats: the critic's ``"batch_stats"`` (spectral-norm power
        iteration), ``{}`` without spectral norm.
      gen_opt_state, critic_opt_state: optax states.
    """

    step: jax.Array
    gen_params: Any
    gen_ema: Any
    critic_params: Any
    critic_stats: Any
    gen_opt_state: Any
    critic_opt_state: Any


class TrainStep(NamedTuple):
    """What :func:`make_train_step` returns.

    Attributes:
      init: ``key -> TrainState``.
      step: the pure step ``(state, batch [k, B, d], key) -> (state, metrics)``.
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
    generator: nn.Module
    critic: nn.Module | None


CRITIC_FREE = ("mmd", "sliced", "linear-dual")


def _modules(cfg: TrainConfig, data_dim: int, image_shape) -> tuple[nn.Module, nn.Module | None]:
    if cfg.model == "dcgan":
        if image_shape is None:
            raise ValueError("`model` 'dcgan' needs image data (digits or an [n, H, W(, C)] file); use --model mlp")
        gen = models.DCGANGenerator(image_shape=tuple(image_shape), features=cfg.width, layer_norm=False)
        critic = models.DCGANCritic(image_shape=tuple(image_shape), features=cfg.critic_width,
                                    spectral_norm=cfg.spectral_norm, layer_norm=cfg.layer_norm)
    else:
        gen = models.MLP(width=cfg.width, depth=cfg.depth, out_features=data_dim, activation=cfg.activation,
                         squeeze=False)
        critic = models.MLP(width=cfg.critic_width, depth=cfg.critic_depth, out_features=1,
                            activation=cfg.activation, spectral_norm=cfg.spectral_norm, layer_norm=cfg.layer_norm)
    if cfg.objective in CRITIC_FREE:
        critic = None
    return gen, critic


def _optimizer(cfg: TrainConfig, lr: float) -> optax.GradientTransformation:
    if cfg.optimizer == "rmsprop":
        return optax.rmsprop(lr)
    return optax.adam(lr, b1=cfg.beta1, b2=cfg.beta2)


def _critic_loss(cfg: TrainConfig, o_real: jax.Array, o_fake: jax.Array) -> jax.Array:
    obj = cfg.objective
    if obj in ("wgan", "wgan-gp"):
        return dv.wasserstein_critic_loss(o_real, o_fake)
    if obj in ("gan", "nsgan"):
        return dv.gan_discriminator_loss(o_real, o_fake)
    if obj.startswith("fgan-"):
        return -dv.fgan_objective(o_real, o_fake, obj[5:])
    raise AssertionError(obj)


def _generator_loss(cfg: TrainConfig, o_real: jax.Array | None, o_fake: jax.Array) -> jax.Array:
    obj = cfg.objective
    if obj in ("wgan", "wgan-gp"):
        return dv.wasserstein_generator_loss(o_fake)
    if obj == "gan":
        return dv.gan_generator_loss(o_fake, saturating=True)
    if obj == "nsgan":
        return dv.gan_generator_loss(o_fake, saturating=False)
    if obj.startswith("fgan-"):
        # The generator minimises the critic's lower bound; only the fake term depends on it.
        return dv.fgan_objective(o_real, o_fake, obj[5:])
    raise AssertionError(obj)


def make_train_step(config: TrainConfig, data_dim: int, *, image_shape: tuple[int, int, int] | None = None,
                    mesh: Mesh | None = None) -> TrainStep:
    """Build the pure train step of ``config.objective``.

    Args:
      config: a :class:`~train.TrainConfig` (``None`` fields take the
        objective's paper defaults).
      data_dim: dimension ``d`` of the (flattened) samples.
      image_shape: ``(H, W, C)`` for the DCGAN model.
      mesh: a device mesh with a ``"data"`` axis: the step then constrains
        its per-sample arrays (real batch, noise, fakes) to be split along
        that axis; the parameters stay replicated, and XLA averages the
        gradients across devices (the ``pmean`` of a pmap step).

    Returns:
      A :class:`TrainStep`.
    """
    cfg = resolve_config(config, data_dim=data_dim)
    gen, critic = _modules(cfg, data_dim, image_shape)
    obj = cfg.objective
    n_critic = int(cfg.n_critic) if critic is not None else 0
    n_slices = max(n_critic, 1)
    bsz = int(cfg.batch_size)
    has_stats = critic is not None and cfg.spectral_norm
    unroll = _unrolled(cfg)

    gen_tx = _optimizer(cfg, cfg.lr)
    critic_tx = None
    if critic is not None:
        critic_tx = _optimizer(cfg, cfg.critic_lr)
        if obj == "wgan":
            critic_tx = optax.chain(critic_tx, dv.weight_clipping(cfg.clip))

    features, dual_C = None, None
    if obj == "linear-dual":
        # Fixed random Fourier features of a Gaussian kernel, drawn from the seed.
        # Several bandwidths concatenated: the features of a sum of Gaussian kernels.
        fkey = jax.random.fold_in(jax.random.key(cfg.seed), 0xFEA7)
        maps = [dv.random_fourier_features(jax.random.fold_in(fkey, i), data_dim,
                                           max(1, cfg.n_features // len(cfg.feature_bandwidths)), bandwidth=bw)
                for i, bw in enumerate(cfg.feature_bandwidths)]
        features = maps[0] if len(maps) == 1 else (lambda x: jnp.concatenate([m(x) for m in maps], -1)
                                                   / jnp.sqrt(len(maps)))
        dual_C = float(cfg.dual_penalty) * bsz

    def shard(x: jax.Array, axis: int = 0) -> jax.Array:
        if mesh is None:
            return x
        spec = [None] * x.ndim
        spec[axis] = DATA_AXIS
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(*spec)))

    def sample(gen_params: Any, key: jax.Array, n: int) -> jax.Array:
        z = shard(jax.random.normal(key, (n, cfg.z_dim), jnp.float32))
        return shard(gen.apply({"params": gen_params}, z))

    def critic_apply(params, stats, x, update):
        variables = {"params": params}
        if has_stats:
            variables["batch_stats"] = stats
            if update:
                out, mut = critic.apply(variables, x, update_stats=True, mutable=["batch_stats"])
                return out, mut["batch_stats"]
        return critic.apply(variables, x), stats

    def critic_values(state: TrainState, x: jax.Array) -> jax.Array:
        return critic_apply(state.critic_params, state.critic_stats, x, False)[0]

    def init(key: jax.Array) -> TrainState:
        k_gen, k_critic = jax.random.split(key)
        gen_params = gen.init(k_gen, jnp.zeros((1, cfg.z_dim), jnp.float32))["params"]
        critic_params, critic_stats, critic_opt = {}, {}, {}
        if critic is not None:
            cvars = critic.init(k_critic, jnp.zeros((1, data_dim), jnp.float32))
            critic_params = cvars["params"]
            critic_stats = cvars.get("batch_stats", {}) if has_stats else {}
            if obj == "wgan":  # start inside the clipping box
                critic_params = jax.tree.map(lambda p: jnp.clip(p, -cfg.clip, cfg.clip), critic_params)
            critic_opt = critic_tx.init(critic_params)
        return TrainState(
            step=jnp.zeros((), jnp.int32), gen_params=gen_params, critic_params=critic_params,
            gen_ema=jax.tree.map(lambda p: jnp.array(p, copy=True), gen_params),  # own buffers (donation)
            critic_stats=critic_stats, gen_opt_state=gen_tx.init(gen_params), critic_opt_state=critic_opt,
        )

    def critic_update(carry, inputs):
        gen_params, params, stats, opt_state = carry
        real, key = inputs
        k_fake, k_gp = jax.random.split(key)
        real = shard(real)
        fake = jax.lax.stop_gradient(sample(gen_params, k_fake, bsz))

        def loss_fn(p):
            out, new_stats = critic_apply(p, stats, jnp.concatenate([real, fake]), True)
            o_real, o_fake = out[:bsz], out[bsz:]
            loss = _critic_loss(cfg, o_real, o_fake)
            aux = {"w_estimate": jnp.mean(o_real) - jnp.mean(o_fake)}
            if obj == "wgan-gp":
                gp = dv.gradient_penalty(lambda x: critic_apply(p, new_stats, x, False)[0], real, fake, k_gp)
                aux["gradient_penalty"] = gp
                loss = loss + cfg.gp_weight * gp
            aux["d_loss"] = loss
            return loss, (aux, new_stats)

        grads, (aux, new_stats) = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = critic_tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (gen_params, params, new_stats, opt_state), aux

    def step(state: TrainState, batch: jax.Array, key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        key = jax.random.fold_in(key, state.step)
        k_critic, k_gen, k_obj = jax.random.split(key, 3)
        metrics: dict[str, jax.Array] = {}
        critic_params, critic_stats, critic_opt = state.critic_params, state.critic_stats, state.critic_opt_state
        if critic is not None:
            carry = (state.gen_params, critic_params, critic_stats, critic_opt)
            carry, aux = _scan(critic_update, carry, (batch[:n_critic], jax.random.split(k_critic, n_critic)),
                               n_critic, unroll)
            _, critic_params, critic_stats, critic_opt = carry
            metrics.update({k: v[-1] for k, v in aux.items()})
        real = shard(batch[-1])

        if obj == "linear-dual":
            # The discriminator's problem is solved exactly in the dual on this
            # batch (damped Newton); the generator then ascends the dual at those
            # lambdas, which by the envelope theorem is the gradient of the
            # optimal discriminator loss: a joint ascent with no saddle point.
            fake0 = jax.lax.stop_gradient(sample(state.gen_params, k_gen, bsz))
            lambdas = dv.solve_linear_gan_dual(real, fake0, C=dual_C, features=features)

        # Only the f-GAN bound needs the critic on real data in the generator
        # step (a constant there); the other objectives evaluate fakes only.
        o_real = None
        if critic is not None and obj.startswith("fgan-"):
            o_real = jax.lax.stop_gradient(critic_apply(critic_params, critic_stats, real, False)[0])

        def gen_loss_fn(gen_params):
            fake = sample(gen_params, k_gen, bsz)
            if critic is not None:
                return _generator_loss(cfg, o_real, critic_apply(critic_params, critic_stats, fake, False)[0])
            if obj == "linear-dual":
                # per-sample scale (the dual is a sum over the 2B samples)
                return -dv.linear_gan_dual(*lambdas, real, fake, C=dual_C, features=features) / (2 * bsz)
            return _critic_free_loss(cfg, fake, real, k_obj)

        g_loss, grads = jax.value_and_grad(gen_loss_fn)(state.gen_params)
        metrics["g_loss"] = g_loss
        metrics["g_grad_norm"] = optax.tree.norm(grads)
        if obj == "linear-dual":
            metrics["d_accuracy"] = 0.5 * (jnp.mean(lambdas[0] > 0.5) + jnp.mean(lambdas[1] < 0.5))
        updates, gen_opt = gen_tx.update(grads, state.gen_opt_state, state.gen_params)
        gen_params = optax.apply_updates(state.gen_params, updates)
        # Polyak/EMA averaging of the generator (Yazici et al. 2019), with the
        # warm-up min(decay, (1 + t) / (10 + t)) so that short runs are not
        # dominated by the initial parameters.
        t = state.step.astype(jnp.float32)
        decay = jnp.minimum(jnp.float32(cfg.ema_decay), (1 + t) / (10 + t))
        gen_ema = optax.incremental_update(gen_params, state.gen_ema, 1 - decay)
        new_state = TrainState(
            step=state.step + 1, gen_params=gen_params, gen_ema=gen_ema, critic_params=critic_params,
            critic_stats=critic_stats,
            gen_opt_state=gen_opt, critic_opt_state=critic_opt,
        )
        return new_state, metrics

    return TrainStep(init=init, step=step, sample=sample, critic_values=critic_values if critic else None,
                     n_slices=n_slices, config=cfg, generator=gen, critic=critic)


def _critic_free_loss(cfg: TrainConfig, fake: jax.Array, real: jax.Array, key: jax.Array) -> jax.Array:
    if cfg.objective == "mmd":
        # A fixed multi-scale Gaussian kernel (sum over the bandwidths), as in
        # generative moment matching networks (Li et al. 2015).
        return dv.mmd(fake, real, bandwidth=jnp.asarray(cfg.mmd_bandwidths, jnp.float32))
    if cfg.objective == "sliced":
        # Fresh directions every step (Deshpande et al. 2018).
        return dv.sliced_wasserstein(fake, real, key, n_projections=cfg.n_projections)
    raise NotImplementedError(cfg.objective)


def _unrolled(cfg: TrainConfig) -> bool:
    """Whether the step's loops are written out instead of scanned.

    XLA's CPU backend runs convolutions inside a while loop about 3x slower
    than the same convolutions outside one (measured: a DCGAN step on the
    digits took 135 ms alone, 445 ms as a scan of length 1), so the loops of
    a convolutional model are unrolled; the MLP's matmuls lose nothing in a
    loop, and a rolled loop compiles once whatever its length.
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


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def make_multi_step(train_step: TrainStep, steps_per_call: int, *, mesh: Mesh | None = None) -> Callable:
    """Fuse ``steps_per_call`` train steps into one compiled call.

    The returned function ``(state, data [N, d], key) -> (state, metrics)``
    draws each step's real batch ``[k, B, d]`` from ``data`` (uniform indices
    from ``fold_in(fold_in(key, tag), step)``, so that batches depend only on
    the seed and the step), runs the steps in a :func:`jax.lax.scan`, and
    returns the metrics stacked ``[steps_per_call]``. ``state`` is donated.
    With a ``mesh``, ``state``, ``data`` and ``key`` are replicated over it and
    each batch is split along its ``"data"`` axis.
    """
    k, bsz = train_step.n_slices, int(train_step.config.batch_size)

    def multi(state: TrainState, data: jax.Array, key: jax.Array):
        data_key = jax.random.fold_in(key, _DATA_TAG)

        def body(st, _):
            idx = jax.random.randint(jax.random.fold_in(data_key, st.step), (k, bsz), 0, data.shape[0])
            return train_step.step(st, data[idx], key)

        return _scan(body, state, None, steps_per_call, _unrolled(train_step.config))

    if mesh is None:
        return jax.jit(multi, donate_argnums=0)
    rep = replicated(mesh)
    return jax.jit(multi, donate_argnums=0, in_shardings=(rep, rep, rep), out_shardings=(rep, rep))
