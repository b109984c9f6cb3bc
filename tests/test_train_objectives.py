"""The objective table drives the step, the configuration, `--help` and the tests: every entry
trains and moves its metrics the right way; a toy objective is added through the table alone."""

import ast
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import divergences as dv
from divergences.train import (
    OBJECTIVES,
    Objective,
    TrainConfig,
    fit,
    load_dataset,
    make_multi_step,
    make_train_step,
    register,
    resolve_config,
)
from divergences.train.__main__ import main, parser
from divergences.train._config import MODELS

SMALL = dict(width=32, depth=2, critic_width=32, critic_depth=2, batch_size=64, z_dim=2, ema_decay=0.0)
TRAIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train")


@pytest.fixture(scope="module")
def ring():
    return load_dataset("8gaussians", n_train=2000, n_test=500)


def _sliced_to_test(ts, state, ds):
    samples = ts.sample(state.gen_params, jax.random.key(7), 500)
    return float(dv.sliced_wasserstein(samples, jnp.asarray(ds.test), jax.random.key(3), n_projections=64))


# Budgets for a few hundred steps: learning rates above the paper defaults so
# that progress shows. The untrained generator sits near the origin, at sliced
# W 1.22 from the ring; `factor` is the share of that the run must get below.
# Measured at these budgets (seed 0, the raw parameters): gan 0.39, nsgan
# 0.37, wgan 0.50, wgan-gp 0.24 (1000 steps), linear-dual 0.24, mmd 0.31,
# sliced 0.25, fgan-js 0.39 (spectral norm); 0.7 leaves room for float32 differences between
# machines (adversarial runs amplify them), not for other seeds.
# lsgan with its spectrally normalised discriminator starts slowly (1000
# steps: 0.25 of the start); hinge and rsgan with spectral norm did not move
# in 400 steps at the test's learning rate (hinge diverged), so their losses
# are checked here without it (hinge 0.45 at 1000 steps, rsgan 0.44 at 400);
# their defaults keep the spectral norm of the literature (SNGAN), untuned on
# these toys.
BUDGET = {"wgan-gp": dict(steps=1000, factor=0.7), "lsgan": dict(steps=1000, factor=0.7),
          "hinge": dict(steps=1000, factor=0.7, spectral_norm=False),
          "rsgan": dict(steps=400, factor=0.7, spectral_norm=False)}
FAST = {"gan", "nsgan", "wgan", "wgan-gp", "linear-dual", "mmd", "sliced", "fgan-js", "flow", "vae", "hinge", "lsgan", "rsgan"}


def _overrides(entry):
    return dict(lr=1e-3, critic_lr=1e-3) if entry.has_critic else dict(lr=3e-3)


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in OBJECTIVES])
def test_every_objective_trains(ring, name):
    entry = OBJECTIVES[name]
    budget = BUDGET.get(name, dict(steps=400, factor=0.7))
    extra = {k: v for k, v in budget.items() if k not in ("steps", "factor")}
    ts = make_train_step(TrainConfig(objective=name, **SMALL, **_overrides(entry), **extra), ring.dim)
    assert (ts.critic is not None) == entry.has_critic and ts.n_slices == max(ts.config.n_critic, 1)
    state = ts.init(jax.random.key(0))
    before = _sliced_to_test(ts, state, ring)
    multi = make_multi_step(ts, 100)
    for _ in range(budget["steps"] // 100):
        state, metrics = multi(state, jnp.asarray(ring.train), jax.random.key(0))
    after = _sliced_to_test(ts, state, ring)
    metrics = jax.device_get(metrics)
    print(f"{name}: sliced W {before:.3f} -> {after:.3f} ({after / before:.2f}x)")
    assert all(np.isfinite(v).all() for v in metrics.values())
    assert int(state.step) == budget["steps"]
    assert after < budget["factor"] * before, (before, after)
    if "w_estimate" in metrics:  # the critic ranks real above fake: a positive estimate
        assert np.mean(metrics["w_estimate"]) > 0
    if "d_accuracy" in metrics:  # a discriminator better than chance on average
        assert np.mean(metrics["d_accuracy"]) > 0.5


def test_every_entry_is_complete():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for name, entry in OBJECTIVES.items():
        assert entry.name == name and entry.description and "\n" not in entry.description
        assert set(entry.defaults) <= fields, name
        cfg = resolve_config(TrainConfig(objective=name), data_dim=2)
        assert cfg.n_critic == (0 if not entry.has_critic else entry.resolved_defaults()["n_critic"])
        for k, v in entry.resolved_defaults().items():
            assert getattr(cfg, k) == v, (name, k)
        for model, values in entry.model_defaults.items():  # a model's own values win over the entry's
            assert model in MODELS and set(values) <= fields, (name, model)
            cfg = resolve_config(TrainConfig(objective=name, model=model), data_dim=64)
            for k, v in values.items():
                assert getattr(cfg, k) == v, (name, model, k)


def test_help_lists_the_table_and_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name, entry in OBJECTIVES.items():
        assert f"  {name} " in text and entry.description[:40] in " ".join(text.split())
    flat = " ".join(text.split())
    assert "--batch-size INT global batch (split across devices) (default: per objective)" in flat
    assert "--lr FLOAT generator learning rate (default: per objective)" in flat


def _string_tests_on_names(path: str) -> list[str]:
    """Comparisons and startswith calls of an objective (a name or attribute called
    ``objective``/``obj...``) against an objective name, in one source file."""
    names = set(OBJECTIVES) | {"fgan-", "fgan"}
    tree = ast.parse(open(path).read())
    found = []

    def strings(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return set().union(*(strings(e) for e in node.elts)) if node.elts else set()
        return set()

    def is_objective(node):
        ident = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
        return ident.startswith("obj")

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            hit = set().union(*(strings(o) for o in operands)) & names
            if hit and any(is_objective(o) for o in operands):
                found.append(f"{os.path.basename(path)}:{node.lineno} compares with {sorted(hit)}")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "startswith":
            if is_objective(node.func.value) and set().union(*(strings(a) for a in node.args)) & names:
                found.append(f"{os.path.basename(path)}:{node.lineno} startswith an objective name")
    return found


def test_the_name_check_finds_what_it_should(tmp_path):
    path = tmp_path / "old.py"
    path.write_text('if cfg.objective in ("wgan", "wgan-gp"):\n    pass\nif obj.startswith("fgan-"):\n    pass\n'
                    'if kind == "gan":\n    pass\n')
    assert len(_string_tests_on_names(str(path))) == 2


def test_no_string_tests_on_objective_names_outside_the_table():
    # The table is the one place that knows objective names: everything else
    # reads its entries (the counterexamples' configuration only lists names).
    found = []
    for root, _, files in os.walk(TRAIN_DIR):
        for f in files:
            # _likelihood_objectives.py implements the two likelihood entries of the table (its own
            # LikelihoodConfig names which model it builds); nothing else may test names.
            if f.endswith(".py") and f not in ("_objectives.py", "_likelihood_objectives.py"):
                found += _string_tests_on_names(os.path.join(root, f))
    assert not found, found


def _lsgan_critic(x):
    # Least squares GAN (Mao et al. 2017), a, b, c = 0, 1, 1: written here,
    # in the test, as a user adding an objective would.
    return 0.5 * jnp.mean((x.o_real - 1) ** 2) + 0.5 * jnp.mean(x.o_fake ** 2), {}


def _lsgan_generator(x):
    return 0.5 * jnp.mean((x.o_fake - 1) ** 2), {"mean_fake_output": jnp.mean(x.o_fake)}


@pytest.fixture
def toy():
    name = "toy-lsgan"
    entry = register(Objective(name, "least squares GAN, added by a test", generator_loss=_lsgan_generator,
                               critic_loss=_lsgan_critic, defaults=dict(lr=1e-3, critic_lr=1e-3, n_critic=2)))
    try:
        yield entry
    finally:
        OBJECTIVES.pop(name)


def test_a_toy_objective_through_the_table_alone(tmp_path, ring, toy, capsys):
    # Its defaults reach the configuration, its losses the step, its metric
    # the logs, its line --help, and the command accepts its name.
    cfg = resolve_config(TrainConfig(objective=toy.name), data_dim=2)
    assert (cfg.lr, cfg.critic_lr, cfg.n_critic, cfg.optimizer) == (1e-3, 1e-3, 2, "adam")
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    assert "toy-lsgan" in capsys.readouterr().out
    out = str(tmp_path / "toy")
    code = main(["--objective", toy.name, "--steps", "400", "--width", "32", "--critic-width", "32",
                 "--batch-size", "64", "--eval-every", "400", "--plot-every", "0", "--checkpoint-every", "0",
                 "--eval-samples", "500", "--ema-decay", "0", "--steps-per-call", "100", "--out", out])
    assert code == 0
    import json

    first = json.loads(open(os.path.join(out, "metrics.jsonl")).readline())
    assert {"d_loss", "g_loss", "mean_fake_output"} <= set(first)
    # From sliced W ~ 1.2 at the origin; 400 steps bring it below 0.85 of that
    # (measured 0.55).
    assert first["sliced_wasserstein"] < 0.85 * 1.2


def test_register_refuses_a_taken_name():
    with pytest.raises(ValueError, match="already in the table"):
        register(Objective("wgan", "again", generator_loss=_lsgan_generator))


def test_a_critic_free_toy_runs_through_fit(tmp_path):
    # No critic: the generator's loss alone (a moment-matching toy).
    def mean_matching(x):
        return jnp.sum((jnp.mean(x.fake, 0) - jnp.mean(x.real, 0)) ** 2), {}

    register(Objective("toy-means", "match the batch means", generator_loss=mean_matching,
                       defaults=dict(lr=1e-2)))
    try:
        data = np.random.default_rng(0).normal(3.0, 0.1, size=(500, 2)).astype(np.float32)
        cfg = TrainConfig(objective="toy-means", steps=200, batch_size=64, eval_every=200, plot_every=0,
                          checkpoint_every=0, steps_per_call=100, eval_samples=200, progress=False, ema_decay=0.0,
                          width=16, depth=1, out=str(tmp_path / "m"))
        summary = fit(cfg, data=data, log=lambda s: None)
        assert summary["state"].critic is None and summary["state"].config.n_critic == 0
        samples = np.load(os.path.join(cfg.out, "samples.npy"))
        # means move from ~0 to within 0.2 of 3 (Adam 1e-2, 200 steps; measured within 0.01)
        assert np.all(np.abs(samples.mean(0) - 3.0) < 0.2), samples.mean(0)
    finally:
        OBJECTIVES.pop("toy-means")


def test_r1_option_adds_the_penalty_by_hand(ring):
    """`r1_weight` adds gamma/2 * E||grad D(x_real)||^2 to the critic loss, the penalty of divergences.r1_penalty."""
    from divergences.train._objectives import CriticInputs

    cfg = TrainConfig(objective="hinge", r1_weight=4.0)
    real = jnp.asarray(ring.train[:64])
    fake = real[::-1] * 0.5

    def critic(v):
        return jnp.sum(jnp.sin(v) * jnp.array([1.0, -2.0]), axis=-1)

    x = CriticInputs(real, fake, critic(real), critic(fake), critic, jax.random.key(0), cfg)
    loss, metrics = OBJECTIVES["hinge"].critic_loss(x)
    grads = jax.vmap(jax.grad(lambda a: critic(a[None])[0]))(real)
    r1 = np.mean(np.sum(np.asarray(grads) ** 2, axis=1))
    np.testing.assert_allclose(float(metrics["r1_penalty"]), r1, rtol=1e-5)
    plain, _ = OBJECTIVES["hinge"].critic_loss(x._replace(config=TrainConfig(objective="hinge")))
    np.testing.assert_allclose(float(loss), float(plain) + 2.0 * r1, rtol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_fgan_alternative_generator_loss_pulls_fakes_where_minimax_saturates(jit):
    """`fgan_generator="alternative"` is -E g_f(V(fake)) (Nowozin et al., Sec. 3.2), by hand. For Pearson at
    T = -2, the optimal critic on empty space, the minimax gradient f*'(T) = 1 + T/2 is 0; the alternative
    gradient is -1/B per fake."""
    from divergences.train._objectives import GeneratorInputs

    entry = OBJECTIVES["fgan-pearson_chi2"]
    assert resolve_config(TrainConfig(objective="fgan-pearson_chi2")).fgan_generator == "alternative"
    assert resolve_config(TrainConfig(objective="fgan-js")).fgan_generator == "minimax"
    o_real = jnp.array([1.0, 3.0, 0.5, 2.0])

    def loss(o_fake, mode):
        cfg = resolve_config(TrainConfig(objective="fgan-pearson_chi2", fgan_generator=mode))
        x = GeneratorInputs(None, None, None, o_real, o_fake, jax.random.key(0), cfg, None)
        return entry.generator_loss(x)[0]

    for mode in ("alternative", "minimax"):
        fn = jax.value_and_grad(lambda o: loss(o, mode))
        value, grad = (jax.jit(fn) if jit else fn)(jnp.full((4,), -2.0))
        if mode == "alternative":
            np.testing.assert_allclose(value, 2.0, rtol=1e-6)
            np.testing.assert_allclose(grad, -0.25, rtol=1e-6)
        else:  # the bound E_P T - E_Q f*(T) itself, which the generator minimises; f*(-2) = -1
            np.testing.assert_allclose(value, float(jnp.mean(o_real)) + 1.0, rtol=1e-6)
            np.testing.assert_allclose(grad, 0.0, atol=1e-7)


@pytest.mark.parametrize("jit", [False, True])
def test_linear_dual_feature_redraw_uses_the_step_key(ring, jit):
    """With `feature_redraw` the random features come from the update's own key (two keys: two feature maps,
    two losses; one key: the same loss), and the loss equals the dual at the solved lambdas built by hand with
    those features. Without it the key is ignored and the features are the seed's."""
    from divergences.train._objectives import GeneratorInputs, linear_dual_features

    real = jnp.asarray(ring.train[:32])
    fake = real[::-1] * 0.5 + 0.1

    def loss(cfg, key):
        x = GeneratorInputs(None, real, fake, None, None, key, cfg, None)
        return OBJECTIVES["linear-dual"].generator_loss(x)[0]

    fn = jax.jit(loss, static_argnums=0) if jit else loss
    k1, k2 = jax.random.key(1), jax.random.key(2)
    redraw = resolve_config(TrainConfig(objective="linear-dual", n_features=256, feature_redraw=True))
    fixed = resolve_config(TrainConfig(objective="linear-dual", n_features=256))
    a, b, a_again = float(fn(redraw, k1)), float(fn(redraw, k2)), float(fn(redraw, k1))
    assert a != b and a == a_again
    assert float(fn(fixed, k1)) == float(fn(fixed, k2))
    # by hand: the dual at its optimum with the key's features, per sample
    feats = linear_dual_features(redraw, 2, k1)
    c = redraw.dual_penalty * 32
    lam = dv.solve_linear_gan_dual(real, fake, C=c, features=feats)
    np.testing.assert_allclose(a, -float(dv.linear_gan_dual(*lam, real, fake, C=c, features=feats)) / 64, rtol=1e-5)
    seed_feats = linear_dual_features(fixed, 2)
    np.testing.assert_array_equal(np.asarray(seed_feats(real)), np.asarray(linear_dual_features(fixed, 2, None)(real)))
    assert not np.allclose(np.asarray(feats(real)), np.asarray(seed_feats(real)))


@pytest.mark.parametrize("jit", [False, True])
def test_linear_dual_default_is_the_exact_kernel_dual(ring, jit):
    """The default linear-dual loss is minus the kernel dual at its solved lambdas, per sample, with C =
    dual_penalty x batch x the number of bandwidths (k(x, x) of the summed kernel), and its gradient in
    the fakes is the envelope gradient: that of the dual at the fixed lambdas."""
    from divergences.train._objectives import GeneratorInputs

    cfg = resolve_config(TrainConfig(objective="linear-dual"))
    assert cfg.n_features == 0
    real = jnp.asarray(ring.train[:32])
    fake = real[::-1] * 0.5 + 0.1

    def loss(f):
        return OBJECTIVES["linear-dual"].generator_loss(GeneratorInputs(None, real, f, None, None,
                                                                        jax.random.key(0), cfg, None))[0]

    fn = jax.jit(jax.value_and_grad(loss)) if jit else jax.value_and_grad(loss)
    value, grad = fn(fake)
    kw = dict(C=cfg.dual_penalty * 32 * len(cfg.feature_bandwidths), kernel="gaussian",
              bandwidth=np.asarray(cfg.feature_bandwidths))
    lam = dv.solve_linear_gan_dual(real, fake, **kw)
    np.testing.assert_allclose(float(value), -float(dv.linear_gan_dual(*lam, real, fake, **kw)) / 64, rtol=1e-5)
    by_hand = jax.grad(lambda f: -dv.linear_gan_dual(*lam, real, f, **kw) / 64)(fake)
    np.testing.assert_allclose(grad, by_hand, rtol=1e-4, atol=1e-6)
