"""The training loop behind ``python -m divergences.train``: compiled chunks, evaluation, plots, checkpoints."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from divergences.train._blas import single_blas_thread
from divergences.train._config import TrainConfig, resolve_config
from divergences.train._data import load_dataset
from divergences.train._parallel import gather, put_replicated
from divergences.train._quality import fit_standardizer
from divergences.train._steps import TrainState, make_multi_step, make_train_step

__all__ = ["run", "TrainingDiverged", "chunk_ends"]

_INIT_TAG = 0x1A17
_EVAL_TAG = 0xE7A1
# Fields that may change between a run and its resumption.
_RESUMABLE = ("steps", "out", "progress", "eval_every", "plot_every", "checkpoint_every", "eval_samples")


class TrainingDiverged(RuntimeError):
    """A loss or metric became NaN or infinite; the message names the step and quantity."""


def chunk_ends(start: int, cfg: TrainConfig) -> list[int]:
    """Where the compiled chunks end: every multiple of ``steps_per_call`` and of
    the evaluation, plot and checkpoint intervals, and the last step.

    The boundaries are absolute step numbers, so a resumed run (which starts
    at a checkpoint, itself a boundary) runs exactly the chunks the
    uninterrupted run would have run from there: the same compiled programs on
    the same inputs, hence bit-identical parameters.
    """
    ends = set()
    for every in (cfg.steps_per_call, cfg.eval_every, cfg.plot_every, cfg.checkpoint_every):
        if every > 0:
            ends.update(range(every, cfg.steps, every))
    ends.add(cfg.steps)
    return sorted(e for e in ends if e > start)


def _due(step: int, every: int, last: int) -> bool:
    return step == last or (every > 0 and step % every == 0)


def _first_bad(metrics: dict[str, np.ndarray], start: int) -> tuple[int, str, float] | None:
    for name, values in metrics.items():
        values = np.asarray(values)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            return start + i + 1, name, float(values[i])
    return None


def run(config: TrainConfig, *, resume: bool = False, mesh=None,
        callback: Callable[[int, TrainState], None] | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, evaluate, plot and checkpoint as ``config`` says; return the summary.

    Args:
      config: the run's :class:`~train.TrainConfig`.
      resume: continue from the last complete checkpoint in ``config.out``.
      mesh: a ``"data"`` device mesh for data parallelism (None: one device).
      callback: called as ``callback(step, state)`` after every compiled chunk
        (and after its checkpoint); an exception raised there stops the run
        as a kill would.
      log: where the start-up lines and the summary go.

    Returns:
      The summary dictionary (also written to ``out/summary.json``), with the
      final state under the key ``"state"`` (not written).

    Raises:
      ValueError: bad configuration, data or output folder (one-line message).
      TrainingDiverged: a NaN or infinite loss (the last good checkpoint stays).
    """
    with single_blas_thread():  # scoped: the linear dual GAN's CPU Cholesky, see _blas
        return _run(config, resume=resume, mesh=mesh, callback=callback, log=log)


def _run(config, *, resume, mesh, callback, log):
    cfg = resolve_config(config)
    dataset = load_dataset(cfg.dataset, seed=cfg.seed)
    cfg = resolve_config(cfg, data_dim=dataset.dim)
    if cfg.model == "dcgan" and dataset.image_shape is None:
        raise ValueError("`model` dcgan needs image data (digits, or an [n, H, W] file); use --model mlp")
    n_dev = 1 if mesh is None else mesh.size
    if cfg.batch_size % n_dev:
        raise ValueError(f"`batch_size` {cfg.batch_size} must be a multiple of the {n_dev} devices")
    primary = jax.process_index() == 0
    out = cfg.out
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write_test"):  # a name of its own per process
            pass
    except OSError as e:
        raise ValueError(f"`out` folder {out!r} cannot be written ({e.strerror or e}); choose another --out") from None

    log(f"config ({out}/config.json): {json.dumps(dataclasses.asdict(cfg))}")
    ts = make_train_step(cfg, dataset.dim, image_shape=dataset.image_shape, mesh=mesh)
    key = jax.random.key(cfg.seed)
    state = ts.init(jax.random.fold_in(key, _INIT_TAG))

    ckpt = None
    # One folder for all processes, as orbax expects: every process calls save
    # and restore, process 0 writes the (replicated) state; with several hosts
    # --out must be on a file system that all of them see.
    ckpt_dir = os.path.join(out, "checkpoints")
    metrics_path = os.path.join(out, "metrics.jsonl")
    records: list[dict] = []
    if cfg.checkpoint_every > 0 or resume:
        from divergences.train._checkpoint import Checkpointer

        ckpt = Checkpointer(ckpt_dir)
    if resume:
        latest = ckpt.latest_step()
        if latest is None:
            raise ValueError(f"`resume`: no complete checkpoint in {ckpt_dir}; run again without --resume")
        saved = os.path.join(out, "config.json")
        if os.path.exists(saved):
            old = json.load(open(saved))
            new = dataclasses.asdict(cfg)
            diff = [k for k in new if k not in _RESUMABLE and json.loads(json.dumps(new[k])) != old.get(k)]
            if diff:
                raise ValueError(f"`resume`: the run in {out!r} was made with different {', '.join(diff)}; "
                                 "resume with the same settings or choose a new --out")
        state = ckpt.restore(state, latest)
        if os.path.exists(metrics_path):
            with open(metrics_path) as f:
                records = [r for r in map(json.loads, filter(str.strip, f)) if r["step"] <= latest]
        log(f"resuming from step {latest} ({ckpt_dir})")
    if primary:
        with open(os.path.join(out, "config.json"), "w") as f:
            f.write(cfg.to_json())
        with open(metrics_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)

    # The MLP trains on standardised data (scale-free defaults); samples are mapped back.
    standardizer = fit_standardizer(dataset.train) if cfg.model == "mlp" and cfg.standardize else None
    data = jnp.asarray(dataset.train if standardizer is None else standardizer.forward(dataset.train))
    eval_key = jax.random.fold_in(key, _EVAL_TAG)  # stays on this process (the evaluation runs on the host copy)
    if mesh is not None:
        data, state, key = put_replicated((data, state, key), mesh)
    sample_fn = jax.jit(ts.sample, static_argnums=2)
    classifier = None
    if dataset.labels_train is not None:
        from divergences.train._metrics import DigitClassifier

        classifier = DigitClassifier(dataset)

    compiled: dict[int, Callable] = {}
    start = int(state.step)
    last_good = start if resume else None
    bar = None
    if cfg.progress and primary:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, unit="step", dynamic_ncols=True, desc=cfg.objective)
    t0 = time.perf_counter()
    step = start
    last_metrics: dict[str, float] = {}
    last_eval: dict[str, Any] = {}
    try:
        for end in chunk_ends(start, cfg):
            n = end - step
            if n not in compiled:
                compiled[n] = make_multi_step(ts, n, mesh=mesh)
            state, metrics = compiled[n](state, data, key)
            metrics = jax.device_get(metrics)
            bad = _first_bad(metrics, step)
            if bad is not None:
                where = (f"the last good checkpoint is step {last_good} in {ckpt_dir}" if last_good is not None
                         else "no checkpoint was written yet")
                raise TrainingDiverged(
                    f"step {bad[0]}: `{bad[1]}` is {bad[2]}; training stopped ({where}). "
                    "Try a smaller --lr/--critic-lr, or resume with --resume after changing nothing to retry.")
            step = end
            last_metrics = {k: float(v[-1]) for k, v in metrics.items()}
            if bar is not None:
                bar.update(n)
                bar.set_postfix({k: f"{v:.3g}" for k, v in last_metrics.items() if k in ("d_loss", "g_loss", "w_estimate")})
            if _due(step, cfg.eval_every, cfg.steps) or _due(step, cfg.plot_every, cfg.steps):
                ekey = jax.random.fold_in(eval_key, step)
                samples = gather(sample_fn(state.gen_ema, ekey, cfg.eval_samples))
                if standardizer is not None:
                    samples = standardizer.inverse(samples)
                if _due(step, cfg.eval_every, cfg.steps):
                    from divergences.train._metrics import evaluate

                    last_eval = evaluate(samples, dataset, jax.random.fold_in(ekey, 1), classifier=classifier)
                    rec = {"step": step, "time_s": round(time.perf_counter() - t0, 3), **last_metrics, **last_eval}
                    records.append(rec)
                    if primary:
                        with open(metrics_path, "a") as f:
                            f.write(json.dumps(rec) + "\n")
                if primary and _due(step, cfg.plot_every, cfg.steps):
                    from divergences.train._plots import save_samples

                    save_samples(os.path.join(out, f"samples_{step:07d}.png"), np.asarray(samples), dataset,
                                 title=f"{cfg.objective} on {os.path.basename(cfg.dataset)}, step {step}")
            if ckpt is not None and _due(step, cfg.checkpoint_every, cfg.steps):
                ckpt.save(step, state)
                last_good = step
            if callback is not None:
                callback(step, state)
    finally:
        if bar is not None:
            bar.close()
        if ckpt is not None:
            ckpt.close()

    elapsed = time.perf_counter() - t0
    summary = {
        "objective": cfg.objective, "dataset": cfg.dataset, "steps": step, "seed": cfg.seed,
        "devices": n_dev, "wall_time_s": round(elapsed, 2),
        "steps_per_s": round((step - start) / elapsed, 2) if elapsed > 0 else None,
        **{f"final_{k}": v for k, v in last_metrics.items()}, **last_eval,
    }
    if primary:
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        if records:
            from divergences.train._plots import save_curves

            save_curves(os.path.join(out, "curves.png"), records)
        log(_format_summary(summary, out))
    summary["state"] = state
    return summary


def _format_summary(summary: dict[str, Any], out: str) -> str:
    lines = [f"summary ({out}/summary.json):"]
    for k, v in summary.items():
        if isinstance(v, float) and math.isfinite(v):
            v = f"{v:.4g}"
        lines.append(f"  {k:>26}: {v}")
    return "\n".join(lines)
