"""The training loop and its open API: outputs, `fit` with the user's modules, optimizers and
arrays, `load_generator`, the logs, the data checks, the NaN stop."""

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from divergences.train import TrainConfig, evaluation_key, fit, load_generator, make_multi_step, run
from divergences.train.__main__ import main

TINY = dict(objective="wgan-gp", dataset="8gaussians", width=16, depth=1, critic_width=16, critic_depth=1,
            batch_size=32, z_dim=2, n_critic=2, steps_per_call=10, eval_samples=200, progress=False)
QUIET = dict(log=lambda s: None)


def test_outputs_of_a_run(tmp_path):
    out = str(tmp_path / "r")
    cfg = TrainConfig(steps=20, eval_every=10, plot_every=20, checkpoint_every=0, out=out, **TINY)
    summary = run(cfg, **QUIET)
    files = set(os.listdir(out))
    assert {"config.json", "run.json", "metrics.jsonl", "summary.json", "samples_0000020.png", "curves.png",
            "samples.npy", "generator.msgpack"} <= files
    written = json.load(open(os.path.join(out, "summary.json")))
    for key in ("sliced_wasserstein", "mmd", "modes_covered", "high_quality", "final_w_estimate"):
        assert key in written and key in summary
    record = json.loads(open(os.path.join(out, "metrics.jsonl")).readline())
    assert {"step", "time_s", "d_loss", "g_loss", "w_estimate", "g_grad_norm", "gradient_penalty",
            "sliced_wasserstein", "mmd", "modes_covered", "high_quality"} <= set(record)
    assert np.load(os.path.join(out, "samples.npy")).shape == (200, 2)


@pytest.mark.parametrize("objective, present, absent", [
    ("nsgan", {"d_accuracy"}, {"w_estimate", "f_bound"}),
    ("fgan-js", {"f_bound"}, {"w_estimate", "d_accuracy"}),
    ("sliced", set(), {"w_estimate", "d_loss", "d_accuracy"}),
])
def test_metric_names_say_what_they_are(tmp_path, objective, present, absent):
    # The Wasserstein estimate only for the Wasserstein objectives; a logit
    # discriminator reports its accuracy, an f-GAN critic its bound.
    fields = {**TINY, "objective": objective, "n_critic": None}
    cfg = TrainConfig(steps=10, eval_every=10, plot_every=0, checkpoint_every=0, out=str(tmp_path / "r"), **fields)
    run(cfg, **QUIET)
    record = json.loads(open(os.path.join(cfg.out, "metrics.jsonl")).readline())
    assert present <= set(record) and not absent & set(record), sorted(record)
    if "d_accuracy" in present:
        assert 0.0 <= record["d_accuracy"] <= 1.0


def test_load_generator_reproduces_samples_bit_for_bit(tmp_path):
    out = str(tmp_path / "r")
    cfg = TrainConfig(steps=20, eval_every=20, plot_every=0, checkpoint_every=0, out=out, **TINY)
    run(cfg, **QUIET)
    sample, loaded = load_generator(out)
    assert loaded.steps == 20 and loaded.objective == "wgan-gp"
    again = np.asarray(sample(evaluation_key(loaded, loaded.steps), loaded.eval_samples))
    np.testing.assert_array_equal(again, np.load(os.path.join(out, "samples.npy")))
    assert sample(jax.random.key(5), 7).shape == (7, 2)


class LinenGenerator(nn.Module):
    """A user's generator: tanh MLP, noise [n, z] -> [n, 3]."""

    @nn.compact
    def __call__(self, z):
        return nn.Dense(3)(nn.tanh(nn.Dense(16)(z)))


class LinenCritic(nn.Module):
    """A user's critic with a [n, 1] output (flattened by the step)."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))


def _blob(n=400, d=3, seed=0):
    return np.random.default_rng(seed).normal(2.0, 0.3, size=(n, d)).astype(np.float32)


def test_fit_with_linen_modules_custom_chain_and_an_array(tmp_path):
    data = _blob()
    cfg = TrainConfig(objective="wgan-gp", steps=60, batch_size=32, z_dim=2, n_critic=1, steps_per_call=30,
                      eval_every=60, plot_every=0, checkpoint_every=0, eval_samples=200, progress=False,
                      out=str(tmp_path / "r"))
    chain = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(3e-3))
    summary = fit(cfg, data=jnp.asarray(data), generator=LinenGenerator(), critic=LinenCritic(), optimizer=chain,
                  critic_optimizer=optax.sgd(1e-2), **QUIET)
    state = summary["state"]
    assert summary["steps"] == 60 and summary["dataset"] == "array"
    # The user's modules and transformations are the ones trained.
    assert state.generator.module == LinenGenerator() and state.generator.tx is chain
    assert set(state.generator.params) == {"Dense_0", "Dense_1"}
    assert np.load(os.path.join(cfg.out, "samples.npy")).shape == (200, 3)
    # A run with a user's generator needs that module to load it back.
    with pytest.raises(ValueError, match="`generator`"):
        load_generator(cfg.out)
    sample, _ = load_generator(cfg.out, generator=LinenGenerator())
    np.testing.assert_array_equal(np.asarray(sample(evaluation_key(cfg, 60), 200)),
                                  np.load(os.path.join(cfg.out, "samples.npy")))


def test_fit_with_nnx_modules_moves_towards_the_data(tmp_path):
    from flax import nnx

    class Gen(nnx.Module):
        def __init__(self, rngs):
            self.a, self.b = nnx.Linear(2, 16, rngs=rngs), nnx.Linear(16, 3, rngs=rngs)

        def __call__(self, z):
            return self.b(nnx.relu(self.a(z)))

    data = _blob()
    cfg = TrainConfig(objective="sliced", steps=200, batch_size=64, z_dim=2, lr=1e-2, steps_per_call=100,
                      eval_every=200, plot_every=0, checkpoint_every=0, eval_samples=200, progress=False,
                      out=str(tmp_path / "r"), ema_decay=0.0)
    gen = Gen(nnx.Rngs(0))
    summary = fit(cfg, data=data, generator=gen, **QUIET)
    samples = np.load(os.path.join(cfg.out, "samples.npy"))
    # The NNX generator starts near 0; the data's mean is 2 in every coordinate.
    # 200 sliced-W steps at lr 1e-2 bring the sample mean within 0.3 of it
    # (a loose bound; the initial gap is ~2 per coordinate).
    assert np.all(np.abs(samples.mean(0) - data.mean(0)) < 0.3), samples.mean(0)
    assert summary["sliced_wasserstein"] < 0.3


def test_module_that_does_not_fit_the_data(tmp_path, capsys):
    cfg = TrainConfig(objective="sliced", steps=10, out=str(tmp_path / "r"), progress=False)
    with pytest.raises(ValueError, match="`generator` maps .* to shape \\[2, 3\\].*\\[n, 2\\]"):
        fit(cfg, data="8gaussians", generator=LinenGenerator(), **QUIET)
    with pytest.raises(ValueError, match="`critic`"):
        fit(TrainConfig(objective="wgan-gp", steps=10, out=str(tmp_path / "r"), progress=False),
            data=_blob(d=2), critic=nn.Dense(4), **QUIET)
    assert not os.path.exists(tmp_path / "r")


def test_log_lines_on_a_file_and_averaged_losses(tmp_path):
    # Not a terminal: one plain line per evaluation, no carriage return; the
    # logged losses are the mean over every step since the previous line,
    # here two fused chunks of 10 steps, recomputed by hand from the steps.
    lines = []
    out = str(tmp_path / "r")
    cfg = TrainConfig(steps=40, eval_every=20, plot_every=0, checkpoint_every=0, out=out,
                      **{**TINY, "progress": True})
    summary = fit(cfg, log=lines.append)
    evals = [s for s in lines if s.startswith("step ")]
    assert len(evals) == 2 and evals[0].startswith("step 20/40") and "steps/s" in evals[0]
    assert not any("\r" in s for s in lines)

    from divergences.train._run import _INIT_TAG
    from divergences.train._steps import init_state

    state = init_state(summary["state"].config, jax.random.fold_in(jax.random.key(0), _INIT_TAG), data_dim=2)
    from divergences.train import load_dataset

    from divergences.train._quality import fit_standardizer

    train_data = load_dataset("8gaussians", seed=0).train
    # the MLP trains on the standardised data (the `standardize` default)
    data, key = jnp.asarray(fit_standardizer(train_data, std=summary["state"].config.standardize_std).forward(train_data)), jax.random.key(0)
    multi = make_multi_step(None, 10)
    per_step = []
    for _ in range(2):
        state, m = multi(state, data, key)
        per_step.append(jax.device_get(m))
    record = json.loads(open(os.path.join(out, "metrics.jsonl")).readline())
    for name in ("d_loss", "g_loss", "w_estimate", "gradient_penalty"):
        by_hand = float(np.mean(np.concatenate([np.asarray(m[name], np.float64) for m in per_step])))
        # the same float32 steps; the mean in float64 on both sides
        assert record[name] == pytest.approx(by_hand, rel=1e-6, abs=1e-7), name
    assert float(per_step[-1]["d_loss"][-1]) != pytest.approx(record["d_loss"])  # not the last step's value


def test_command_output_to_a_file_has_no_carriage_returns(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "divergences.train", "--objective", "sliced", "--steps", "60",
                               "--eval-every", "20", "--plot-every", "0", "--checkpoint-every", "0", "--width", "8",
                               "--depth", "1", "--steps-per-call", "20", "--eval-samples", "100",
                               "--out", str(tmp_path / "r")], stdout=f, stderr=subprocess.STDOUT, cwd=root,
                              timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    text = log.read_text()
    assert proc.returncode == 0, text[-2000:]
    assert "\r" not in text
    assert [s.split()[1] for s in text.splitlines() if s.startswith("step ")] == ["20/60", "40/60", "60/60"]


def test_nan_loss_stops_with_step_and_quantity(tmp_path, capsys):
    # A huge learning rate blows the parameters up within a few steps: the run
    # must stop, name the step and the quantity, keep the last good
    # checkpoint, point at --init-from and exit 3.
    out = str(tmp_path / "nan")
    code = main(["--objective", "nsgan", "--steps", "50", "--lr", "1e30", "--critic-lr", "1e30", "--width", "8",
                 "--depth", "1", "--critic-width", "8", "--critic-depth", "1", "--batch-size", "16",
                 "--steps-per-call", "1", "--checkpoint-every", "1", "--eval-every", "0", "--plot-every", "0",
                 "--no-progress", "--out", out])
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert err.startswith("error: step ") and ("is nan" in err or "is inf" in err), err
    assert "--init-from" in err and "Traceback" not in err and len(err.splitlines()) == 1
    kept = os.listdir(os.path.join(out, "checkpoints"))
    assert kept and all(int(k) < int(err.split()[2].rstrip(":")) for k in kept)


@pytest.mark.parametrize(
    "array, needle",
    [
        (np.ones((100, 2, 2, 2, 2)), "shape"),
        (np.array([[0.0, 1.0], [np.nan, 2.0]] * 10), "NaN"),
        (np.ones((3, 2)), "at least 10"),
        (np.ones((20, 0)), "dimension 0"),
        (np.ones((0, 2)), "0 samples"),
        (np.ones((20, 2)) * (1 + 2j), "complex"),
        (np.full((20, 4, 4), 300.0), "[0, 255]"),
    ],
)
def test_bad_data_files(tmp_path, capsys, array, needle):
    path = str(tmp_path / "data.npy")
    np.save(path, array)
    code = main(["--dataset", path, "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "`dataset`" in err and path in err and needle in err, err
    assert len(err.strip().splitlines()) == 1 and not os.path.exists(tmp_path / "o")


def test_text_data_file_gets_a_conversion_hint(tmp_path, capsys):
    path = tmp_path / "points.csv"
    path.write_text("0,1\n1,2\n")
    code = main(["--dataset", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "text file" in err and "np.loadtxt" in err and len(err.strip().splitlines()) == 1


def test_byte_images_are_rescaled(tmp_path):
    from divergences.train import load_dataset

    pixels = np.random.default_rng(0).integers(0, 256, size=(50, 4, 4), dtype=np.uint8)
    path = str(tmp_path / "img.npy")
    np.save(path, pixels)
    ds = load_dataset(path)
    both = np.concatenate([ds.train, ds.test])
    assert ds.image_shape == (4, 4, 1) and both.min() >= -1 and both.max() <= 1
    # x / 127.5 - 1: the multiset of values is the pixels' rescaled, up to
    # float32 rounding of values in [-1, 1] (half an ulp at 1 is 6e-8)
    np.testing.assert_allclose(np.sort(both.ravel()), np.sort(pixels.ravel() / 127.5 - 1), rtol=0, atol=1e-7)


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["--out", str(blocker / "run"), "--no-progress", "--steps", "10"])
    err = capsys.readouterr().err
    assert code == 2 and "`out`" in err and "--out" in err and len(err.strip().splitlines()) == 1


def test_user_array_loads(tmp_path):
    from divergences.train import load_dataset

    path = str(tmp_path / "x.npz")
    np.savez(path, x=np.random.default_rng(0).normal(size=(50, 3)))
    ds = load_dataset(path, holdout=0.2)
    assert ds.train.shape == (40, 3) and ds.test.shape == (10, 3) and ds.train.dtype == np.float32


@pytest.mark.parametrize("name, dim", [("8gaussians", 2), ("25gaussians", 2), ("swissroll", 2),
                                       ("uniform_shift", 1), ("parallel_lines", 2), ("digits", 64)])
def test_builtin_datasets(name, dim):
    from divergences.train import load_dataset

    ds = load_dataset(name, n_train=500, n_test=100)
    assert ds.train.shape[1] == dim and np.isfinite(ds.train).all() and len(ds.test) > 0
    if ds.modes is not None:
        # toy mixtures: every training point lies within 5 std of a mode
        d = np.sqrt(((ds.train[:, None] - ds.modes[None]) ** 2).sum(-1)).min(1)
        assert d.max() < 5 * ds.mode_std


def test_progress_bar_on_a_terminal_starts_after_compilation():
    # A stream that says it is a terminal: the bar appears only once the first
    # (compiling) call has returned, starting at that step, so its rate and
    # ETA count no compilation; later calls advance it.
    import io

    from divergences.train._run import _Log

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    log = _Log(TrainConfig(steps=100), print, enabled=True, stream=stream)
    assert log.tty and log.bar is None
    log.add({"d_loss": np.ones(10), "g_loss": np.zeros(10)})
    log.chunk_done(10, 10, first=True)
    assert log.bar is not None and log.bar.n == 10 and log.bar.initial == 10
    log.add({"d_loss": np.full(10, 3.0), "g_loss": np.zeros(10)})
    log.chunk_done(20, 10, first=False)
    assert log.bar.n == 20 and log.averages()["d_loss"] == pytest.approx(2.0)
    log.line(20, log.averages(), {})  # on a terminal the bar replaces the lines
    log.close()
    assert "\r" in stream.getvalue() and "step 20/100" not in stream.getvalue()


def test_digits_judge_is_named_for_what_it_is():
    # The judge classifier's accuracy on held-out real digits, and the classes
    # it finds among real held-out digits (all 10: the oracle is the data).
    from divergences.train import load_dataset
    from divergences.train._metrics import DigitClassifier, evaluate

    digits = load_dataset("digits")
    judge = DigitClassifier(digits)
    out = evaluate(digits.test[:350], digits, jax.random.key(0), classifier=judge)
    assert "classifier_test_accuracy" not in out and 0.9 < out["judge_accuracy"] <= 1.0
    assert out["classes_covered"] == 10


def test_digits_fid_and_kid_in_the_judges_features():
    # FID and KID of generated digits are computed in the judge's hidden layer (as FID
    # uses Inception's pool features): real training digits are about as far from the
    # held-out ones as the floor says, uniform noise far further, on both metrics.
    import divergences as dv
    from divergences.train import load_dataset
    from divergences.train._metrics import DigitClassifier, evaluate

    digits = load_dataset("digits")
    judge = DigitClassifier(digits)
    real = evaluate(digits.train[:1000], digits, jax.random.key(0), classifier=judge)
    noise = np.random.default_rng(0).uniform(-1, 1, (1000, digits.train.shape[1])).astype(np.float32)
    fake = evaluate(noise, digits, jax.random.key(0), classifier=judge)
    assert real["fid"] == pytest.approx(float(dv.frechet_distance(judge.features(digits.train[:1000]),
                                                                  judge.test_features)), rel=1e-5)
    assert 0 < judge.fid_floor == real["fid_floor"] and real["fid"] < 2 * judge.fid_floor
    assert fake["fid"] > 20 * real["fid"] and fake["kid"] > 20 * max(real["kid"], real["kid_std"])
    assert real["kid_std"] > 0 and judge.features(noise).shape == (1000, 64)


def test_toy_evaluation_has_the_pacgan_and_feature_space_metrics():
    """On a toy set the evaluation adds the reverse KL of the mode histogram and precision/recall/density/coverage,
    as dv.precision_recall and dv.density_coverage give them against the held-out data."""
    import divergences as dv
    from divergences.train import load_dataset
    from divergences.train._metrics import evaluate

    ds = load_dataset("8gaussians", seed=0)
    samples = jnp.asarray(ds.test[500:1000])
    out = evaluate(samples, ds, jax.random.key(0))
    held = jnp.asarray(ds.test[:500], jnp.float32)
    pr, dc = dv.precision_recall(held, samples, k=3), dv.density_coverage(held, samples, k=5)
    assert out["modes_covered"] == 8 and out["reverse_kl"] < 0.05
    np.testing.assert_allclose([out["precision"], out["recall"], out["density"], out["coverage"]],
                               [pr.precision, pr.recall, dc.density, dc.coverage], rtol=1e-6)
    assert out["precision"] > 0.8 and out["recall"] > 0.8  # real against real
