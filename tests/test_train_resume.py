"""Safe resume and faults: nothing lost, ever. Kill and resume bit for bit; finished runs, refused
resumes and new runs into old folders change nothing; --init-from; truncated checkpoints, full
disks and unwritable folders; Ctrl-C during compilation."""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from divergences.train import TrainConfig, fit, run
from divergences.train.__main__ import main

TINY = dict(objective="wgan-gp", dataset="8gaussians", width=16, depth=1, critic_width=16, critic_depth=1,
            batch_size=32, z_dim=2, n_critic=2, steps_per_call=10, eval_samples=200, progress=False)
FLAGS = ["--objective", "wgan-gp", "--width", "16", "--depth", "1", "--critic-width", "16", "--critic-depth", "1",
         "--batch-size", "32", "--z-dim", "2", "--n-critic", "2", "--steps-per-call", "10", "--eval-samples", "200",
         "--eval-every", "10", "--plot-every", "0", "--checkpoint-every", "20", "--no-progress"]
QUIET = dict(log=lambda s: None)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Killed(Exception):
    pass


def _snapshot(folder) -> dict[str, str]:
    """Every file under ``folder`` with the hash of its bytes."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            out[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def _same_trees(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 40-step run made by the command (checkpoints at 20 and 40)."""
    out = str(tmp_path_factory.mktemp("finished") / "run")
    assert main([*FLAGS, "--steps", "40", "--out", out]) == 0
    return out


def test_kill_and_resume_gives_the_same_state(tmp_path):
    cfg = TrainConfig(steps=40, eval_every=10, plot_every=0, checkpoint_every=20, **TINY)
    whole = run(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "whole")}), **QUIET)

    out = str(tmp_path / "killed")
    killed = TrainConfig(**{**cfg.__dict__, "out": out})

    def kill_at_30(step, state):
        if step == 30:  # after the step-20 checkpoint, before the step-40 one
            raise Killed

    with pytest.raises(Killed):
        run(killed, callback=kill_at_30, **QUIET)
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["20"]
    times_before = {r["step"]: r["time_s"] for r in map(json.loads, open(os.path.join(out, "metrics.jsonl")))}
    resumed = run(killed, resume=True, **QUIET)
    # Bit for bit, every leaf of the state (step, parameters, averages, critic
    # statistics, optimizer states): keys and batches are functions of (seed,
    # step), and the resumed run executes the same compiled chunks from step 20.
    assert _same_trees(jax.device_get(whole["state"]), jax.device_get(resumed["state"]))
    assert int(resumed["state"].step) == 40
    # metrics.jsonl: one line per evaluation step, the replayed steps not duplicated
    records = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    assert resumed["modes_covered"] == whole["modes_covered"]
    # Time counters continue from the checkpoint instead of restarting at 0.
    assert records[1]["time_s"] == times_before[20]
    assert records[2]["time_s"] > times_before[20] and records[3]["time_s"] > records[2]["time_s"]
    assert resumed["wall_time_s"] >= records[3]["time_s"] - 0.01


def test_resume_of_a_finished_run_changes_nothing(finished, capsys):
    before = _snapshot(finished)
    code = main([*FLAGS, "--steps", "40", "--out", finished, "--resume"])
    assert code == 0 and "already finished at step 40" in capsys.readouterr().out
    assert _snapshot(finished) == before
    assert json.load(open(os.path.join(finished, "summary.json")))["steps"] == 40


@pytest.mark.parametrize("args, needle", [
    (["--steps", "30", "--resume"], "`steps` (--steps) 30 is below the checkpoint's step 40"),
    (["--steps", "60", "--resume", "--lr", "0.5"], "different --lr"),
    (["--steps", "60"], "`out` (--out)"),  # a new run into the folder of another
])
def test_refused_resume_or_new_run_writes_nothing(finished, capsys, args, needle):
    before = _snapshot(finished)
    code = main([*FLAGS, *args, "--out", finished])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    if "`out`" in needle:
        assert "--resume" in err and "new --out" in err
    assert _snapshot(finished) == before


def test_resume_without_a_run_creates_nothing(tmp_path, capsys):
    out = tmp_path / "empty"
    code = main([*FLAGS, "--steps", "20", "--resume", "--out", str(out)])
    assert code == 2 and "--resume" in capsys.readouterr().err
    assert not out.exists()


def test_default_folder_of_a_repeated_command_is_numbered(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--objective", "sliced", "--steps", "10", "--width", "8", "--depth", "1", "--eval-every", "10",
            "--plot-every", "0", "--checkpoint-every", "10", "--eval-samples", "100", "--no-progress"]
    assert main(args) == 0 and main(args) == 0
    assert "writing to runs/sliced-8gaussians-2" in capsys.readouterr().out
    first, second = (json.load(open(f"runs/{d}/summary.json")) for d in ("sliced-8gaussians", "sliced-8gaussians-2"))
    assert first["steps"] == second["steps"] == 10


def test_init_from_starts_a_new_run_with_a_new_learning_rate(finished, tmp_path):
    # Oracle: the first run's checkpointed parameters (and averages, critic
    # statistics), fresh optimizer states at the new learning rates, trained
    # 20 steps with the public step functions.
    from divergences.train import init_state, make_multi_step
    from divergences.train._checkpoint import Checkpointer
    from divergences.train._run import _INIT_TAG

    out = str(tmp_path / "b")
    cfg = TrainConfig(steps=20, lr=3e-4, critic_lr=2e-4, eval_every=20, plot_every=0, checkpoint_every=0, out=out,
                      **TINY)
    summary = fit(cfg, init_from=finished, **QUIET)
    assert summary["state"].config.lr == 3e-4 and int(summary["state"].step) == 20

    key = jax.random.key(0)
    fresh = init_state(cfg, jax.random.fold_in(key, _INIT_TAG), data_dim=2)
    old_cfg = TrainConfig.from_dict(json.load(open(os.path.join(finished, "config.json"))))
    template = init_state(old_cfg, key, data_dim=2)
    old, _ = Checkpointer(os.path.join(finished, "checkpoints"), create=False).restore(template, 40)
    g, c = fresh.generator, fresh.critic
    state = fresh.replace(
        generator=g.replace(params=old.generator.params, ema=old.generator.ema,
                            opt_state=g.tx.init(old.generator.params)),
        critic=c.replace(params=old.critic.params, stats=old.critic.stats, opt_state=c.tx.init(old.critic.params)))
    from divergences.train import load_dataset

    from divergences.train._quality import fit_standardizer

    train_data = load_dataset("8gaussians", seed=0).train
    # the MLP trains on the standardised data (the `standardize` default)
    data = jax.numpy.asarray(fit_standardizer(train_data, std=summary["state"].config.standardize_std).forward(train_data))
    multi = make_multi_step(None, 10)
    for _ in range(2):
        state, _ = multi(state, data, key)
    assert _same_trees(jax.device_get(state), jax.device_get(summary["state"]))


def _truncate_largest_file(folder):
    files = [os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs]
    biggest = max(files, key=os.path.getsize)
    with open(biggest, "r+b") as f:
        f.truncate(os.path.getsize(biggest) // 2)


def test_truncated_latest_checkpoint_falls_back_to_the_last_intact(tmp_path, capsys):
    out = str(tmp_path / "t")
    assert main([*FLAGS, "--steps", "40", "--out", out]) == 0
    _truncate_largest_file(os.path.join(out, "checkpoints", "40"))
    capsys.readouterr()
    code = main([*FLAGS, "--steps", "60", "--out", out, "--resume"])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "checkpoint 40" in text.out and "cannot be read" in text.out and "resuming from step 20" in text.out
    assert os.listdir(os.path.join(out, "broken_checkpoints"))  # kept aside, not deleted
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["40", "60"]
    assert json.load(open(os.path.join(out, "summary.json")))["steps"] == 60


@pytest.mark.parametrize("code_", [errno.ENOSPC, errno.EACCES])
def test_checkpoint_write_failure_stops_cleanly(tmp_path, capsys, monkeypatch, code_):
    # A full disk (ENOSPC) or a folder made unwritable (EACCES) during the
    # step-40 save, simulated by a writer that leaves a partial temporary
    # folder and fails: one message, exit 4, the step-20 checkpoint kept, the
    # partial one removed, the metrics and summary written, and a later
    # --resume continues from step 20.
    from divergences.train._checkpoint import Checkpointer

    real_write = Checkpointer._write

    def failing_write(self, step, tree, meta):
        if step == 40:
            os.makedirs(os.path.join(self.directory, "40.orbax-checkpoint-tmp-1234", "state"))
            raise OSError(code_, os.strerror(code_))
        return real_write(self, step, tree, meta)

    out = str(tmp_path / "f")
    monkeypatch.setattr(Checkpointer, "_write", failing_write)
    code = main([*FLAGS, "--steps", "60", "--out", out])
    err = capsys.readouterr().err
    assert code == 4 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "step 40 could not be written" in err and os.strerror(code_) in err and "step 20" in err
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["20"]
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["steps"] == 40 and "stopped" in summary
    assert [json.loads(s)["step"] for s in open(os.path.join(out, "metrics.jsonl"))] == [10, 20, 30, 40]

    monkeypatch.setattr(Checkpointer, "_write", real_write)
    assert main([*FLAGS, "--steps", "60", "--out", out, "--resume"]) == 0
    assert "resuming from step 20" in capsys.readouterr().out
    assert [json.loads(s)["step"] for s in open(os.path.join(out, "metrics.jsonl"))] == [10, 20, 30, 40, 50, 60]


def test_ctrl_c_during_compilation_exits_cleanly(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    # Compiled for real: the suite's compilation cache (conftest.py) could hold this program already.
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    for attempt in range(2):
        out = str(tmp_path / f"c{attempt}")
        proc = subprocess.Popen([sys.executable, "-m", "divergences.train", *FLAGS, "--steps", "400", "--out", out],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        for line in proc.stdout:  # the loop announces its first (compiling) call
            if line.startswith("compiling"):
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 130, (proc.returncode, stderr[-2000:])
        assert "interrupt" in stderr and "Traceback" not in stderr and "Segmentation" not in stderr
