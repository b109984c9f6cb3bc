"""PacGAN's mode-collapse metrics, the training standardisation, and the protocol command."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from divergences.train import TrainConfig, run
from divergences.train._quality import fit_standardizer, min_count, mode_statistics

GRID = np.array([(x, y) for x in (-4.0, -2.0, 0.0, 2.0, 4.0) for y in (-4.0, -2.0, 0.0, 2.0, 4.0)])


def _hand_built(counts, n_bad, std, rng):
    """Samples with ``counts[k]`` points within 2 std of mode k and ``n_bad`` points 4-5 std from every mode."""
    parts = []
    for k, c in enumerate(counts):
        r = 2.0 * std * np.sqrt(rng.random(c))  # inside radius 2 std: high quality
        a = 2 * np.pi * rng.random(c)
        parts.append(GRID[k] + np.stack([r * np.cos(a), r * np.sin(a)], 1))
    # between two horizontal neighbours: 1 unit from both, i.e. 20 std at std 0.05
    bad = GRID[rng.integers(0, 20, n_bad)] + np.array([1.0, 0.0]) + 0.01 * rng.standard_normal((n_bad, 2))
    parts.append(bad)
    return rng.permutation(np.concatenate(parts))


def test_hand_built_sample_set_has_the_known_statistics():
    rng = np.random.default_rng(0)
    std = 0.05
    # 2500 samples: 10 modes with 100, 5 with 20 (covered: exactly the threshold), 5 with 19 (not),
    # 5 with 0, and the rest between modes.
    counts = [100] * 10 + [20] * 5 + [19] * 5 + [0] * 5
    n_bad = 2500 - sum(counts)
    x = _hand_built(counts, n_bad, std, rng)
    s = mode_statistics(x, GRID, std)
    assert min_count(2500) == 20
    assert s["n_modes"] == 25
    assert s["modes_covered"] == 15
    assert s["high_quality"] == pytest.approx(sum(counts) / 2500, abs=0)
    # oracle: scipy's relative entropy of the histogram of the good samples to uniform
    p = np.array(counts) / sum(counts)
    assert s["reverse_kl"] == pytest.approx(scipy.stats.entropy(p, np.full(25, 1 / 25)), rel=1e-12)


def test_reverse_kl_limits():
    std = 0.05
    uniform = np.repeat(GRID, 100, axis=0)  # exactly on the modes
    s = mode_statistics(uniform, GRID, std)
    assert (s["modes_covered"], s["high_quality"], s["reverse_kl"]) == (25, 1.0, 0.0)
    one = np.repeat(GRID[:1], 2500, axis=0)
    s = mode_statistics(one, GRID, std)
    assert s["modes_covered"] == 1 and s["reverse_kl"] == pytest.approx(np.log(25), rel=1e-12)
    # nothing of high quality: counted as total collapse, log K
    s = mode_statistics(GRID[:20] + np.array([1.0, 0.0]), GRID, std)
    assert s["high_quality"] == 0.0 and s["modes_covered"] == 0 and s["reverse_kl"] == pytest.approx(np.log(25))


def test_three_std_rule_and_explicit_threshold():
    modes = np.zeros((1, 2))
    x = np.array([[0.0, 2.9], [0.0, 3.1], [2.0, 2.0], [0.0, -2.99]])  # std 1: radii 2.9, 3.1, 2.83, 2.99
    s = mode_statistics(x, modes, 1.0, threshold=3)
    assert s["high_quality"] == 0.75 and s["modes_covered"] == 1
    assert mode_statistics(x, modes, 1.0, threshold=4)["modes_covered"] == 0


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="^`samples`"):
        mode_statistics(np.zeros((3, 3)), GRID, 0.05)
    with pytest.raises(ValueError, match="^`std`"):
        mode_statistics(np.zeros((3, 2)), GRID, 0.0)
    with pytest.raises(ValueError, match="^`x`"):
        fit_standardizer(np.zeros((0, 2)))
    for std in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="^`std`"):
            fit_standardizer(np.ones((4, 2)), std=std)


@pytest.mark.parametrize("jit", [False, True])
def test_standardizer_moments_and_round_trip(jit):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((500, 3)) * np.array([1.0, 5.0, 0.0]) + np.array([3.0, -7.0, 2.0])).astype(np.float32)
    s = fit_standardizer(x)
    fwd = jax.jit(s.forward) if jit else s.forward
    inv = jax.jit(s.inverse) if jit else s.inverse
    z = np.asarray(fwd(jnp.asarray(x)))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-5)
    assert np.mean(z.var(0)) == pytest.approx(1.0, rel=1e-5)  # one scale: mean variance 1
    assert z[:, 2].std() == 0.0  # the constant coordinate stays constant (no division by its zero std)
    np.testing.assert_allclose(np.asarray(inv(jnp.asarray(z))), x, rtol=1e-5, atol=1e-5)
    assert float(fit_standardizer(np.ones((4, 2))).scale) == 1.0
    # another target standard deviation: the same shift, the scale divided by it
    s3 = fit_standardizer(x, std=3.0)
    z3 = np.asarray(s3.forward(jnp.asarray(x)))
    np.testing.assert_allclose(s3.shift, s.shift)
    assert np.mean(z3.var(0)) == pytest.approx(9.0, rel=1e-5)
    np.testing.assert_allclose(np.asarray(s3.inverse(jnp.asarray(z3))), x, rtol=1e-5, atol=1e-5)


def test_standardisation_is_undone_in_the_samples(tmp_path):
    """The same data in other units (x -> 7 x + 300) trains the same run, in those units.

    The training command evaluates the sliced Wasserstein distance of its samples
    to held-out data; SW is translation invariant and scales with the data, so
    with the standardisation undone the second run's SW is 7 times the first's,
    up to the float32 rounding of the two standardised arrays, which 100
    adversarial steps amplify: rel 1e-2 (1.3e-3 was seen with one usable core,
    where XLA's reductions run on one thread and round differently). Without the
    inverse map the second run's samples would sit near 0, about 300 away: an
    SW in the hundreds, not 7 times the first run's.
    """
    rng = np.random.default_rng(2)
    modes = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    x = (modes[rng.integers(0, 4, 2000)] + 0.05 * rng.standard_normal((2000, 2))).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "b.npy", 7.0 * x + 300.0)
    out = {}
    for name in ("a", "b"):
        cfg = TrainConfig(objective="nsgan", dataset=str(tmp_path / f"{name}.npy"), steps=100, steps_per_call=50,
                          eval_every=0, plot_every=0, checkpoint_every=0, eval_samples=500, progress=False,
                          out=str(tmp_path / f"run-{name}"))
        out[name] = run(cfg, log=lambda s: None)
    sw_a, sw_b = out["a"]["sliced_wasserstein"], out["b"]["sliced_wasserstein"]
    assert sw_a < 2.0
    assert sw_b == pytest.approx(7.0 * sw_a, rel=1e-2)


def test_protocol_command_end_to_end(tmp_path):
    from benchmarks import quality

    assert quality.main(["--quick", "--objectives", "nsgan", "--datasets", "grid,ring", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "quality.json").read_text())
    md = (tmp_path / "quality.md").read_text()
    for ds, k in (("grid", 25), ("ring", 8)):
        row = res["rows"][ds]["nsgan"]
        assert len(row["per_seed"]) == 2 and row["config"]["steps"] == 200
        for r in row["per_seed"]:
            assert r["n_modes"] == k and 0 <= r["modes_covered"] <= k and 0 <= r["high_quality"] <= 1
            assert 0 <= r["reverse_kl"] <= np.log(k) + 1e-9
        for key in ("modes_covered", "high_quality", "reverse_kl"):
            v = [r[key] for r in row["per_seed"]]
            mean, se = row["summary"][key]
            assert mean == pytest.approx(np.mean(v)) and se == pytest.approx(np.std(v, ddof=1) / np.sqrt(2))
    assert "PacGAN paper: PacGAN4 | 10 | 24.8 ± 0.2" in md and "| nsgan | 2 |" in md
    # --merge adds rows and keeps the file's other rows and keys (the superseded rows, notes)
    res["superseded_rows"] = {"note": "kept"}
    (tmp_path / "quality.json").write_text(json.dumps(res))
    assert quality.main(["--quick", "--merge", "--objectives", "mmd", "--datasets", "ring", "--seeds", "1",
                         "--out", str(tmp_path)]) == 0
    merged = json.loads((tmp_path / "quality.json").read_text())
    assert merged["superseded_rows"] == {"note": "kept"}
    assert merged["rows"]["grid"]["nsgan"] == res["rows"]["grid"]["nsgan"]
    assert set(merged["rows"]["ring"]) == {"nsgan", "mmd"}
    assert "| mmd | 1 |" in (tmp_path / "quality.md").read_text()


def test_protocol_seed_is_the_training_command_seed(tmp_path):
    """Seed s of the vmapped protocol trains what ``python -m divergences.train --seed s`` trains."""
    from benchmarks import quality

    cfg = TrainConfig(objective="mmd", dataset="25gaussians", steps=20, steps_per_call=10, eval_every=0,
                      plot_every=0, checkpoint_every=0, progress=False, out=str(tmp_path / "run"))
    r = quality.train_seeds(cfg, "grid", [0, 3], n_samples=300)
    summary = run(TrainConfig(**{**cfg.__dict__, "seed": 3}), log=lambda s: None)
    from divergences.train import load_dataset, make_train_step

    ds = load_dataset("25gaussians", seed=3)
    ts = make_train_step(cfg, 2)
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(3), quality._EVAL_TAG), 20)
    x = fit_standardizer(ds.train, std=summary["state"].config.standardize_std).inverse(np.asarray(ts.sample(summary["state"].gen_ema, key, 300)))
    # float32 sums reassociated under vmap, amplified by the Adam steps (few: over hundreds of steps of
    # mmd's deep generator the two trajectories drift apart like any chaotic system's): on average within
    # 1e-3 (a fiftieth of a mode's std), every point within 1e-2; another seed's samples are O(1) away.
    gap = np.abs(r["samples"][1] - x)
    assert gap.mean() < 1e-3 and gap.max() < 1e-2, (gap.mean(), gap.max())
    assert np.abs(r["samples"][0] - x).mean() > 0.5


def test_standardisation_is_on_by_default_for_every_objective():
    from divergences.train import OBJECTIVES, resolve_config

    for name in OBJECTIVES:
        assert resolve_config(TrainConfig(objective=name)).standardize is True, name
    assert resolve_config(TrainConfig(objective="nsgan", standardize=False)).standardize is False
