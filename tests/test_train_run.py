"""The training command: outputs, exact resume after a kill, NaN stop, one-line errors."""

import json
import os

import jax
import numpy as np
import pytest

from divergences.train import TrainConfig, run
from divergences.train.__main__ import main

TINY = dict(objective="wgan-gp", dataset="8gaussians", width=16, depth=1, critic_width=16, critic_depth=1,
            batch_size=32, z_dim=2, n_critic=2, steps_per_call=10, eval_samples=200, progress=False)


class Killed(Exception):
    pass


def _params(summary):
    return jax.device_get(summary["state"])


def test_kill_and_resume_gives_the_same_parameters(tmp_path):
    cfg = TrainConfig(steps=40, eval_every=10, plot_every=0, checkpoint_every=20, **TINY)
    whole = run(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "whole")}), log=lambda s: None)

    out = str(tmp_path / "killed")
    killed = TrainConfig(**{**cfg.__dict__, "out": out})

    def kill_at_30(step, state):
        if step == 30:  # after the step-20 checkpoint, before the step-40 one
            raise Killed

    with pytest.raises(Killed):
        run(killed, callback=kill_at_30, log=lambda s: None)
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["20"]
    resumed = run(killed, resume=True, log=lambda s: None)

    a, b = _params(whole), _params(resumed)
    # Bit for bit: keys and batches are functions of (seed, step), and the
    # resumed run executes the same compiled chunks from step 20 on.
    for name in ("gen_params", "critic_params", "gen_opt_state", "critic_opt_state"):
        same = jax.tree.map(lambda x, y: np.array_equal(x, y), getattr(a, name), getattr(b, name))
        assert all(jax.tree.leaves(same)), name
    assert int(b.step) == 40
    # metrics.jsonl: one line per evaluation step, the replayed steps not duplicated
    steps = [json.loads(line)["step"] for line in open(os.path.join(out, "metrics.jsonl"))]
    assert steps == [10, 20, 30, 40]
    assert resumed["modes_covered"] == whole["modes_covered"]


def test_outputs_of_a_run(tmp_path):
    out = str(tmp_path / "r")
    cfg = TrainConfig(steps=20, eval_every=10, plot_every=20, checkpoint_every=0, out=out, **TINY)
    summary = run(cfg, log=lambda s: None)
    files = set(os.listdir(out))
    assert {"config.json", "metrics.jsonl", "summary.json", "samples_0000020.png", "curves.png"} <= files
    written = json.load(open(os.path.join(out, "summary.json")))
    for key in ("sliced_wasserstein", "mmd", "modes_covered", "high_quality", "final_w_estimate"):
        assert key in written and key in summary
    record = json.loads(open(os.path.join(out, "metrics.jsonl")).readline())
    assert {"step", "d_loss", "g_loss", "w_estimate", "g_grad_norm", "gradient_penalty", "sliced_wasserstein",
            "mmd", "modes_covered", "high_quality"} <= set(record)


def test_nan_loss_stops_with_step_and_quantity(tmp_path, capsys):
    # A huge learning rate blows the parameters up within a few steps: the run
    # must stop, name the step and the quantity, keep the last good
    # checkpoint and exit non-zero.
    out = str(tmp_path / "nan")
    code = main(["--objective", "nsgan", "--steps", "50", "--lr", "1e30", "--critic-lr", "1e30", "--width", "8",
                 "--depth", "1", "--critic-width", "8", "--critic-depth", "1", "--batch-size", "16",
                 "--steps-per-call", "1", "--checkpoint-every", "1", "--eval-every", "0", "--plot-every", "0",
                 "--no-progress", "--out", out])
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert err.startswith("error: step ") and ("is nan" in err or "is inf" in err), err
    assert "`" in err and "Traceback" not in err and len(err.splitlines()) == 1
    kept = os.listdir(os.path.join(out, "checkpoints"))
    assert kept and all(int(k) < int(err.split()[2].rstrip(":")) for k in kept)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--objective", "wgan-xx"], "`objective` 'wgan-xx' is unknown"),
        (["--dataset", "9gaussians"], "`dataset` '9gaussians' is unknown"),
        (["--model", "resnet"], "`model`"),
        (["--steps", "0"], "`steps`"),
    ],
)
def test_bad_names_give_one_line_errors(tmp_path, capsys, args, needle):
    code = main(args + ["--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "array, needle",
    [
        (np.ones((100, 2, 2, 2, 2)), "shape"),
        (np.array([[0.0, 1.0], [np.nan, 2.0]] * 10), "NaN"),
        (np.ones((3, 2)), "at least 10"),
    ],
)
def test_bad_data_files(tmp_path, capsys, array, needle):
    path = str(tmp_path / "data.npy")
    np.save(path, array)
    code = main(["--dataset", path, "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "`dataset`" in err and needle in err and len(err.strip().splitlines()) == 1


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["--out", str(blocker / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "`out`" in err and "--out" in err and len(err.strip().splitlines()) == 1


def test_resume_without_checkpoint(tmp_path, capsys):
    code = main(["--resume", "--out", str(tmp_path / "empty"), "--no-progress"])
    assert code == 2 and "no complete checkpoint" in capsys.readouterr().err


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
