"""The train-step factory: short runs move the metrics the right way; fusion and seeds.

Small models (width 32, depth 2), batch 64, a few hundred steps: enough to
see each objective pull the generated cloud towards the data, short enough
to compile and run in seconds. Full-length quality figures are in the README.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import divergences as dv
from divergences.train import TrainConfig, load_dataset, make_multi_step, make_train_step

SMALL = dict(width=32, depth=2, critic_width=32, critic_depth=2, batch_size=64, z_dim=2)


@pytest.fixture(scope="module")
def ring():
    return load_dataset("8gaussians", n_train=2000, n_test=500)


def _sliced_to_test(ts, state, ds):
    samples = ts.sample(state.gen_params, jax.random.key(7), 500)
    return float(dv.sliced_wasserstein(samples, jnp.asarray(ds.test), jax.random.key(3), n_projections=64))


def _train(ts, ds, steps, chunk=100, seed=0):
    state = ts.init(jax.random.key(seed))
    multi = make_multi_step(ts, chunk)
    metrics = None
    for _ in range(steps // chunk):
        state, metrics = multi(state, jnp.asarray(ds.train), jax.random.key(seed))
    return state, jax.device_get(metrics)


def test_train_step_is_its_pieces_composed(ring):
    # Oracle: the module-level pieces called by hand with the keys the step
    # derives (fold in the step; split in 3: critic keys, generator sample,
    # generator loss) give the same state, bit for bit (the same loop
    # structure, so the same compiled operations).
    from divergences.train import critic_update, init_state, train_step
    from divergences.train._steps import _generator_update

    cfg = TrainConfig(objective="wgan-gp", **SMALL, n_critic=3)
    state = init_state(cfg, jax.random.key(0), data_dim=2)
    batch = jnp.asarray(ring.train[: 3 * 64]).reshape(3, 64, 2)
    key = jax.random.key(1)
    want, _ = jax.jit(train_step)(state, batch, key)

    def by_hand(state, batch, key):
        k_critic, k_gen, k_loss = jax.random.split(jax.random.fold_in(key, state.step), 3)
        # the critic loop as the step runs it for an MLP: a scan over critic_update
        state, _ = jax.lax.scan(lambda s, xs: critic_update(s, *xs), state, (batch, jax.random.split(k_critic, 3)))
        state, _ = _generator_update(state, batch[-1], k_gen, k_loss)
        return state.replace(step=state.step + 1)

    got = jax.jit(by_hand)(state, batch, key)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True))
    assert int(got.step) == 1 and got.critic is not None


def test_wgan_clipping_keeps_critic_in_box(ring):
    cfg = TrainConfig(objective="wgan", **SMALL, clip=0.02)
    ts = make_train_step(cfg, ring.dim)
    assert ts.config.optimizer == "adam" and ts.config.critic_lr == 3e-4 and ts.config.n_critic == 2
    assert ts.config.layer_norm  # the LayerNorm's scales and offsets are clipped too
    state, metrics = _train(ts, ring, 100)
    leaves = jax.tree.leaves(state.critic_params)
    assert max(float(jnp.max(jnp.abs(p))) for p in leaves) <= 0.02 + 1e-7
    assert all(np.isfinite(v).all() for v in metrics.values())


def test_public_step_signature_and_fusion(ring):
    # The pure step (state, batch [k, B, d], key) -> (state, metrics) under jit,
    # and the fused driver: 2 calls of 5 fused steps equal 10 calls of 1 step
    # (same seeds and batches; the compiled loops differ, so allow float32
    # rounding: rtol 1e-5).
    ts = make_train_step(TrainConfig(objective="wgan-gp", **SMALL), ring.dim)
    step = jax.jit(ts.step)
    batch = jnp.asarray(ring.train[: ts.n_slices * 64]).reshape(ts.n_slices, 64, 2)
    state, metrics = step(ts.init(jax.random.key(0)), batch, jax.random.key(1))
    assert int(state.step) == 1
    assert set(metrics) >= {"d_loss", "g_loss", "w_estimate", "gradient_penalty", "g_grad_norm"}

    data = jnp.asarray(ring.train)
    one, five = make_multi_step(ts, 1), make_multi_step(ts, 5)
    a = ts.init(jax.random.key(0))
    for _ in range(10):
        a, _ = one(a, data, jax.random.key(2))
    b = ts.init(jax.random.key(0))
    for _ in range(2):
        b, _ = five(b, data, jax.random.key(2))
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a.gen_params, b.gen_params)


def test_same_seed_same_parameters_bit_for_bit(ring):
    ts = make_train_step(TrainConfig(objective="nsgan", **SMALL), ring.dim)
    multi = make_multi_step(ts, 20)
    data = jnp.asarray(ring.train)

    def go(seed):
        state = ts.init(jax.random.key(seed))
        for _ in range(2):
            state, _ = multi(state, data, jax.random.key(seed))
        return jax.device_get(state.gen_params)

    a, b, c = go(0), go(0), go(1)
    assert all(jax.tree.leaves(jax.tree.map(lambda x, y: np.array_equal(x, y), a, b)))
    assert not all(jax.tree.leaves(jax.tree.map(lambda x, y: np.array_equal(x, y), a, c)))


@pytest.mark.slow  # compiling the convolutional step takes ~30 s of CPU
def test_dcgan_step_on_digits():
    digits = load_dataset("digits")
    cfg = TrainConfig(objective="wgan-gp", dataset="digits", model="dcgan", width=8, critic_width=8,
                      batch_size=16, z_dim=8, n_critic=2)
    ts = make_train_step(cfg, digits.dim, image_shape=digits.image_shape)
    state, metrics = _train(ts, digits, 4, chunk=2)
    assert ts.sample(state.gen_params, jax.random.key(0), 3).shape == (3, 64)
    assert all(np.isfinite(v).all() for v in metrics.values())


def test_unknown_objective():
    with pytest.raises(ValueError, match="`objective`"):
        make_train_step(TrainConfig(objective="wgan-xx"), 2)


def test_dcgan_needs_images():
    with pytest.raises(ValueError, match="`model`"):
        make_train_step(TrainConfig(model="dcgan"), 2)


def test_generator_average_follows_its_recursion(ring):
    # Oracle: the average recomputed on the host from the raw parameters after
    # each step, ema_t+1 = d_t ema_t + (1 - d_t) params_t+1 with the warm-up
    # d_t = min(decay, (1 + t) / (10 + t)). The device computes the same float32
    # operations in a fused program, so allow rounding: rtol 1e-5.
    decay = 0.9
    ts = make_train_step(TrainConfig(objective="sliced", **SMALL, lr=3e-3, ema_decay=decay), ring.dim)
    step = jax.jit(ts.step)
    state = ts.init(jax.random.key(0))
    ema = jax.device_get(state.gen_params)
    for t in range(30):  # 30 distinct batches of the 2000 training points
        batch = jnp.asarray(ring.train[64 * t: 64 * (t + 1)])[None]
        state, _ = step(state, batch, jax.random.key(1))
        d = min(decay, (1 + t) / (10 + t))
        ema = jax.tree.map(lambda e, p: d * e + (1 - d) * np.asarray(p), ema, jax.device_get(state.gen_params))
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), state.gen_ema, ema)
    # The average lags the raw parameters while they move.
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, state.gen_ema, state.gen_params)))

    off = make_train_step(TrainConfig(objective="sliced", **SMALL, lr=3e-3, ema_decay=0.0), ring.dim)
    s = jax.jit(off.step)(off.init(jax.random.key(0)), jnp.asarray(ring.train[:64])[None], jax.random.key(1))[0]
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, s.gen_ema, s.gen_params)))


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_cosine_lr_decay_scales_each_update_by_the_schedule(optimizer):
    # Oracle: optax's cosine schedule, lr_t = lr (1 + cos(pi t / T)) / 2 over
    # T = steps x updates per step. The same gradients through the constant
    # and the decaying optimizer differ exactly by that factor at every update
    # (both keep the same moment statistics); float32 rounding: rtol 1e-5.
    from divergences.train._steps import build_optimizer

    cfg = TrainConfig(objective="wgan-gp", steps=6, optimizer=optimizer, lr=1e-2, critic_lr=1e-2, beta1=0.5, beta2=0.9)
    const = build_optimizer(dataclasses.replace(cfg, lr_decay="constant"), 1e-2, updates_per_step=2)
    cosine = build_optimizer(dataclasses.replace(cfg, lr_decay="cosine"), 1e-2, updates_per_step=2)
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    sc, sd = const.init(params), cosine.init(params)
    for t in range(12):
        g = {"w": jnp.array([0.5, -1.0, 2.0]) * (t + 1)}
        uc, sc = const.update(g, sc, params)
        ud, sd = cosine.update(g, sd, params)
        factor = 0.5 * (1 + np.cos(np.pi * t / 12))
        np.testing.assert_allclose(ud["w"], factor * uc["w"], rtol=1e-5, atol=1e-9)


def test_cosine_lr_decay_runs_and_ends_with_small_updates(ring):
    ts = make_train_step(TrainConfig(objective="sliced", **SMALL, steps=20, lr=3e-3, lr_decay="cosine"), ring.dim)
    assert ts.config.lr_decay == "cosine"
    step = jax.jit(ts.step)
    state = ts.init(jax.random.key(0))
    moves = []
    for t in range(20):
        before = state.gen_params
        state, _ = step(state, jnp.asarray(ring.train[64 * t: 64 * (t + 1)])[None], jax.random.key(t))
        moves.append(float(optax.tree.norm(jax.tree.map(lambda a, b: a - b, state.gen_params, before))))
    assert np.all(np.isfinite(moves))
    # The last update's rate is lr (1 + cos(19 pi / 20)) / 2 = 0.006 lr.
    assert moves[-1] < 0.05 * moves[0]


@pytest.mark.parametrize("fields, needle", [(dict(ema_decay=1.0), "`ema_decay`"), (dict(ema_decay=-0.1), "`ema_decay`"),
                                            (dict(objective="wgan", clip=0.0), "`clip`")])
def test_bad_config_values(fields, needle):
    with pytest.raises(ValueError, match=needle):
        make_train_step(TrainConfig(**fields), 2)


@pytest.mark.parametrize("with_xs", [True, False])
@pytest.mark.parametrize("length", [1, 3])
def test_unrolled_loop_equals_scan(with_xs, length):
    # The unrolled loop of the convolutional models must be lax.scan written
    # out: same carry, same stacked outputs (exactly: the same operations).
    from divergences.train._steps import _scan

    def f(c, x):
        x = jnp.float32(1.0) if x is None else x
        return c * 1.5 + x, {"c": c, "x2": x * 2}

    xs = jnp.arange(length, dtype=jnp.float32) if with_xs else None
    want = jax.lax.scan(f, jnp.float32(0.5), xs, length=length)
    got = _scan(f, jnp.float32(0.5), xs, length, True)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    assert got[1]["c"].shape == (length,)
