"""The training loop behind ``python -m divergences.train`` and :func:`fit`: compiled chunks,
evaluation, logs, plots, checkpoints, safe resume.

Everything a run is given is checked before anything is compiled or written:
the configuration, the data, the modules' output shapes, the output folder
(a new run never writes into a folder that holds another run) and, for a
resume, the checkpoint and the saved configuration.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from divergences.train._blas import single_blas_thread
from divergences.train._quality import Standardizer, fit_standardizer
from divergences.train._config import TrainConfig, flag, resolve_config, resumable_fields
from divergences.train._data import Dataset, dataset_from_array, load_dataset
from divergences.train._parallel import gather, put_replicated
from divergences.train._steps import (
    TrainState,
    build_models,
    init_state,
    jit_multi_step,
    sample_generator,
)

__all__ = ["fit", "run", "load_generator", "evaluation_key", "TrainingDiverged", "RunStopped", "chunk_ends"]

_INIT_TAG = 0x1A17
_EVAL_TAG = 0xE7A1
# Files of a run folder; a new run refuses a folder that holds any of them.
_RUN_FILES = ("config.json", "metrics.jsonl", "summary.json", "checkpoints")


class TrainingDiverged(RuntimeError):
    """A loss or metric became NaN or infinite; the message names the step and quantity."""


class RunStopped(RuntimeError):
    """The run stopped early (a checkpoint could not be written, or Ctrl-C); one-line message.

    Attributes:
      interrupted: True for Ctrl-C.
    """

    def __init__(self, message: str, *, interrupted: bool = False):
        super().__init__(message)
        self.interrupted = interrupted


def evaluation_key(config: TrainConfig, step: int) -> jax.Array:
    """The key the evaluation at ``step`` samples with (``samples.npy`` is ``sample(evaluation_key(cfg, steps), eval_samples)``)."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), _EVAL_TAG), step)


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


# ---------------------------------------------------------------- logs


class _Log:
    """Progress: a tqdm bar on a terminal, else one plain line per evaluation.

    The bar starts after the first compiled call returns, so its rate and ETA
    leave out the compilation. Logged losses are averages over the steps
    since the previous log line (every step of every fused chunk).
    """

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None], enabled: bool, stream=None):
        self.cfg, self.log, self.enabled = cfg, log, enabled
        stream = sys.stderr if stream is None else stream
        self.tty = enabled and cfg.progress and getattr(stream, "isatty", lambda: False)()
        self.stream, self.bar = stream, None
        self.sums: dict[str, float] = {}
        self.count = 0
        self.window_t, self.window_steps = time.perf_counter(), 0

    def add(self, metrics: dict[str, np.ndarray]) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(np.sum(np.asarray(v, np.float64)))
        n = len(next(iter(metrics.values()))) if metrics else 0
        self.count += n
        self.window_steps += n

    def averages(self) -> dict[str, float]:
        return {k: v / self.count for k, v in self.sums.items()} if self.count else {}

    def reset(self) -> None:
        self.sums, self.count = {}, 0

    def chunk_done(self, step: int, n: int, first: bool) -> None:
        if not self.tty:
            return
        if self.bar is None:
            if first:  # the first call included compilation: the bar starts after it
                from tqdm import tqdm

                self.bar = tqdm(total=self.cfg.steps, initial=step, unit="step", dynamic_ncols=True,
                                desc=self.cfg.objective, file=self.stream)
            return
        self.bar.update(n)
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in self.averages().items() if k in ("d_loss", "g_loss")})

    def line(self, step: int, losses: dict[str, float], evals: dict[str, Any]) -> None:
        rate = self.window_steps / max(time.perf_counter() - self.window_t, 1e-9)
        self.window_t, self.window_steps = time.perf_counter(), 0
        if self.tty or not self.enabled:
            return
        parts = [f"step {step}/{self.cfg.steps}"]
        parts += [f"{k} {_fmt(v)}" for k, v in {**losses, **evals}.items()]
        parts.append(f"{rate:.1f} steps/s")
        self.log("  ".join(parts))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# ---------------------------------------------------------------- Ctrl-C


class _SigintGuard:
    """In the main thread: the first Ctrl-C asks the loop to stop after the compiled call in
    flight (a KeyboardInterrupt raised inside XLA's compilation could crash the process);
    a second one exits at once with status 130."""

    def __init__(self, enabled: bool, log: Callable[[str], None]):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.log, self.requested, self._old = log, False, None

    def __enter__(self):
        if self.enabled:
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:
            sys.stderr.write("interrupted again: exiting now\n")
            sys.stderr.flush()
            os._exit(130)
        self.requested = True
        sys.stderr.write("interrupt: stopping after the current compiled call (Ctrl-C again to quit now)\n")
        sys.stderr.flush()

    def __exit__(self, *exc):
        if self.enabled and self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


# ---------------------------------------------------------------- the run


def fit(config: TrainConfig | None = None, *, data: Any = None, generator: Any = None, critic: Any = None,
        optimizer: Any = None, critic_optimizer: Any = None, resume: bool = False, init_from: str | None = None,
        mesh=None, callback: Callable[[int, TrainState], None] | None = None,
        log: Callable[[str], None] = print, catch_sigint: bool = False) -> dict[str, Any]:
    """Train, evaluate, plot and checkpoint as ``config`` says; return the summary.

    Args:
      config: a :class:`~divergences.train.TrainConfig` (default: the defaults).
      data: a ``[n, d]`` (or ``[n, H, W(, C)]``) NumPy or JAX array, a
        built-in data set name or a ``.npy``/``.npz`` path, or a
        :class:`~divergences.train.Dataset`; default: ``config.dataset``.
      generator, critic: flax modules (linen, or NNX instances), see
        :func:`~divergences.train.init_state`; default: the configured ones.
      optimizer, critic_optimizer: optax transformations; default: the configured ones.
      resume: continue from the newest intact checkpoint in ``config.out``.
      init_from: a run folder whose newest checkpoint initialises the
        parameters of this new run (new learning rates, steps, ...; the
        optimizer states start afresh).
      mesh: a ``"data"`` device mesh for data parallelism (None: one device).
      callback: called as ``callback(step, state)`` after every compiled
        chunk (and after its checkpoint); an exception raised there stops the
        run as a kill would.
      log: where the start-up lines, the log lines and the summary go.
      catch_sigint: let Ctrl-C stop the run cleanly after the call in flight
        (the command line does).

    Returns:
      The summary dictionary (also written to ``out/summary.json``), with the
      final state under the key ``"state"`` (not written).

    Raises:
      ValueError: bad configuration, data, module, output folder or resume
        (one-line message naming the option); nothing has been written.
      TrainingDiverged: a NaN or infinite loss (the last good checkpoint stays).
      RunStopped: a checkpoint could not be written, or Ctrl-C.
    """
    with single_blas_thread():  # scoped: the linear dual GAN's CPU Cholesky, see _blas
        return _fit(config if config is not None else TrainConfig(), data=data, generator=generator,
                    critic=critic, optimizer=optimizer, critic_optimizer=critic_optimizer, resume=resume,
                    init_from=init_from, mesh=mesh, callback=callback, log=log, catch_sigint=catch_sigint)


def run(config: TrainConfig, *, resume: bool = False, mesh=None,
        callback: Callable[[int, TrainState], None] | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """:func:`fit` on ``config.dataset`` with the configured models and optimizers."""
    return fit(config, resume=resume, mesh=mesh, callback=callback, log=log)


def _dataset(cfg: TrainConfig, data: Any) -> tuple[TrainConfig, Dataset]:
    if data is None:
        return cfg, load_dataset(cfg.dataset, seed=cfg.seed)
    if isinstance(data, str):
        return dataclasses.replace(cfg, dataset=data), load_dataset(data, seed=cfg.seed)
    if isinstance(data, Dataset):
        return dataclasses.replace(cfg, dataset=data.name), data
    ds = dataset_from_array(np.asarray(data), seed=cfg.seed, name="array")
    return dataclasses.replace(cfg, dataset="array"), ds


def _holds_run(out: str) -> bool:
    return any(os.path.exists(os.path.join(out, f)) for f in _RUN_FILES)


def _check_resumable(cfg: TrainConfig, out: str) -> None:
    saved = os.path.join(out, "config.json")
    if not os.path.exists(saved):
        return
    try:
        old = json.load(open(saved))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"`resume` (--resume): {saved} cannot be read ({e}); choose a new --out") from None
    new = json.loads(json.dumps(dataclasses.asdict(cfg)))
    resumable = set(resumable_fields())
    diff = [k for k in new if k not in resumable and new[k] != old.get(k)]
    if diff:
        flags = ", ".join(flag(k) for k in diff)
        raise ValueError(f"`resume` (--resume): the run in {out!r} was made with different {flags}; resume with "
                         "the same settings, or start a new run from it with --init-from and a new --out")


def _load_init(init_from: str, state: TrainState, generator, critic, log, data_dim: int) -> TrainState:
    """``state`` with the parameters (and averages, critic statistics) of ``init_from``'s newest checkpoint."""
    from divergences.train._checkpoint import CheckpointError, Checkpointer

    where = f"`init_from` (--init-from) {init_from!r}"
    cfg_path, info_path = os.path.join(init_from, "config.json"), os.path.join(init_from, "run.json")
    if not (os.path.exists(cfg_path) and os.path.isdir(os.path.join(init_from, "checkpoints"))):
        raise ValueError(f"{where} is not a run folder with checkpoints (no config.json or checkpoints/)")
    try:
        other = TrainConfig.from_dict(json.load(open(cfg_path)), source=cfg_path)
        info = json.load(open(info_path)) if os.path.exists(info_path) else {}
        template = init_state(other, jax.random.key(0), data_dim=int(info.get("data_dim", data_dim)),
                              image_shape=_shape(info.get("image_shape")), generator=generator, critic=critic)
        ckpt = Checkpointer(os.path.join(init_from, "checkpoints"), create=False)
        try:
            restored, _, step, _ = ckpt.restore_latest(template, log=log)
        finally:
            ckpt.close()
    except CheckpointError as e:
        raise ValueError(f"{where}: {e}") from None
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    gen = state.generator
    if not _same_shapes(gen.params, restored.generator.params):
        raise ValueError(f"{where}: its generator's parameters differ in shape from this run's; use the same "
                         "model, widths and noise dimension")
    state = state.replace(generator=gen.replace(params=restored.generator.params, ema=restored.generator.ema))
    if state.critic is not None and restored.critic is not None:
        if _same_shapes(state.critic.params, restored.critic.params) and _same_shapes(state.critic.stats,
                                                                                      restored.critic.stats):
            state = state.replace(critic=state.critic.replace(params=restored.critic.params,
                                                              stats=restored.critic.stats))
            state = state.replace(critic=state.critic.replace(opt_state=state.critic.tx.init(state.critic.params)))
    state = state.replace(generator=state.generator.replace(
        opt_state=state.generator.tx.init(state.generator.params)))
    log(f"initialised from step {step} of {init_from} (parameters; optimizer states start afresh)")
    return state


def _shape(s):
    return None if s is None else tuple(int(v) for v in s)


def _same_shapes(a, b) -> bool:
    sa = jax.tree.map(lambda x: (np.shape(x), np.asarray(x).dtype.str), a)
    sb = jax.tree.map(lambda x: (np.shape(x), np.asarray(x).dtype.str), b)
    return jax.tree.structure(a) == jax.tree.structure(b) and jax.tree.leaves(sa) == jax.tree.leaves(sb)


def _write_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def _fit(cfg, *, data, generator, critic, optimizer, critic_optimizer, resume, init_from, mesh, callback, log,
         catch_sigint):
    if resume and init_from:
        raise ValueError("`init_from` (--init-from) starts a new run; it cannot be combined with --resume")
    resolve_config(cfg)  # every option checked before the data is loaded
    cfg, dataset = _dataset(cfg, data)
    cfg = resolve_config(cfg, data_dim=dataset.dim)
    if cfg.model == "dcgan" and dataset.image_shape is None and generator is None:
        raise ValueError("`model` dcgan (--model) needs image data (digits, or an [n, H, W] file); use --model mlp")
    n_dev = 1 if mesh is None else mesh.size
    if cfg.batch_size % n_dev:
        raise ValueError(f"`batch_size` (--batch-size) {cfg.batch_size} must be a multiple of the {n_dev} devices")
    primary = jax.process_index() == 0
    out = cfg.out
    ckpt_dir = os.path.join(out, "checkpoints")
    metrics_path = os.path.join(out, "metrics.jsonl")
    summary_path = os.path.join(out, "summary.json")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"`out` (--out) {out!r} is a file, not a folder; choose another --out")
    if not resume and _holds_run(out):
        raise ValueError(f"`out` (--out) {out!r} already holds a run; continue it with --resume, or choose a "
                         "new --out")

    key = jax.random.key(cfg.seed)
    # Builds (and checks) the modules and optimizers; nothing is compiled yet.
    state = init_state(cfg, jax.random.fold_in(key, _INIT_TAG), data_dim=dataset.dim,
                       image_shape=dataset.image_shape, generator=generator, critic=critic, optimizer=optimizer,
                       critic_optimizer=critic_optimizer, mesh=mesh)
    if init_from:
        state = _load_init(init_from, state, generator, critic, log, dataset.dim)

    from divergences.train._checkpoint import CheckpointError, Checkpointer

    records: list[dict] = []
    time_offset = 0.0
    ckpt = None
    broken: list[int] = []
    if resume:
        if not os.path.isdir(ckpt_dir):
            raise ValueError(f"`resume` (--resume): no checkpoint folder {ckpt_dir}; run again without --resume")
        _check_resumable(cfg, out)
        ckpt = Checkpointer(ckpt_dir, create=False)
        try:
            state, meta, latest, broken = ckpt.restore_latest(state, log=log)
        except CheckpointError as e:
            ckpt.close()
            raise ValueError(f"`resume` (--resume): {e}; run again without --resume into a new --out") from None
        if latest > cfg.steps:
            ckpt.close()
            raise ValueError(f"`steps` (--steps) {cfg.steps} is below the checkpoint's step {latest} in {out!r}; "
                             f"give --steps {latest} or more")
        if latest == cfg.steps and os.path.exists(summary_path) and not broken:
            ckpt.close()
            log(f"the run in {out!r} already finished at step {latest}; nothing to do (raise --steps to continue)")
            summary = json.load(open(summary_path))
            summary["state"] = state
            return summary
        time_offset = float(meta.get("time_s", 0.0))
        if os.path.exists(metrics_path):
            with open(metrics_path) as f:
                records = [r for r in map(json.loads, filter(str.strip, f)) if r["step"] <= latest]
        log(f"resuming from step {latest} ({ckpt_dir})")

    # -- everything is checked: from here on the run writes. With several
    # processes, none writes before all have checked the folder.
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("divergences.train: checked")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write_test"):  # a name of its own per process
            pass
    except OSError as e:
        raise ValueError(f"`out` (--out) folder {out!r} cannot be written ({e.strerror or e}); choose another "
                         "--out") from None
    if broken:  # one process moves the unreadable checkpoints aside; every process then rereads the folder
        if primary:
            ckpt.quarantine(broken, os.path.join(out, "broken_checkpoints"), log=log)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("divergences.train: quarantined")
            ckpt.reopen()
    if ckpt is None and cfg.checkpoint_every > 0:
        ckpt = Checkpointer(ckpt_dir)

    standardizer = _standardizer(cfg, dataset)
    log(f"config ({out}/config.json): {json.dumps(dataclasses.asdict(cfg))}")
    if primary:
        with open(os.path.join(out, "config.json"), "w") as f:
            f.write(cfg.to_json())
        _write_json(os.path.join(out, "run.json"), {
            "data_dim": dataset.dim, "image_shape": dataset.image_shape,
            "standardizer": None if standardizer is None else {
                "shift": np.asarray(standardizer.shift).tolist(), "scale": float(standardizer.scale)},
            "generator": "default" if generator is None else type(generator).__name__,
            "critic": "default" if critic is None else type(critic).__name__,
        })
        with open(metrics_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)

    data_arr = jnp.asarray(dataset.train if standardizer is None else standardizer.forward(dataset.train))
    if mesh is not None:
        data_arr, state, key = put_replicated((data_arr, state, key), mesh)
    gen_module = state.generator.module
    sample_fn = jax.jit(lambda p, k, n: _to_data(standardizer, sample_generator(gen_module, cfg, p, k, n)),
                        static_argnums=2)
    heldout_nll = _heldout_nll_fn(cfg, gen_module, standardizer, dataset)
    classifier = None
    if dataset.labels_train is not None:
        from divergences.train._metrics import DigitClassifier

        classifier = DigitClassifier(dataset)

    compiled: dict[int, Callable] = {}
    start = int(state.step)
    last_good = start if resume else None
    logger = _Log(cfg, log, enabled=primary)
    t0 = time.perf_counter()
    step = start
    last_losses: dict[str, float] = {}
    last_eval: dict[str, Any] = {}
    samples = None
    stopped: str | None = None
    interrupted = False
    first = True
    with _SigintGuard(catch_sigint, log) as guard:
        try:
            for end in chunk_ends(start, cfg):
                n = end - step
                if n not in compiled:
                    compiled[n] = jit_multi_step(n, mesh)
                if first and primary:
                    log(f"compiling and running the first {n} steps ...")
                state, metrics = compiled[n](state, data_arr, key)
                metrics = jax.device_get(metrics)
                bad = _first_bad(metrics, step)
                if bad is not None:
                    where = (f"the last good checkpoint is step {last_good} in {ckpt_dir}" if last_good is not None
                             else "no checkpoint was written yet")
                    raise TrainingDiverged(
                        f"step {bad[0]}: `{bad[1]}` is {bad[2]}; training stopped ({where}). Try smaller learning "
                        f"rates in a new run from it: --init-from {out} --lr ... --critic-lr ... --out NEW_FOLDER")
                step = end
                logger.add(metrics)
                logger.chunk_done(step, n, first)
                first = False
                evaluate_now = _due(step, cfg.eval_every, cfg.steps)
                if evaluate_now or _due(step, cfg.plot_every, cfg.steps):
                    samples = gather(sample_fn(state.generator.ema, evaluation_key(cfg, step), cfg.eval_samples))
                    if evaluate_now:
                        from divergences.train._metrics import evaluate

                        last_eval = evaluate(samples, dataset, jax.random.fold_in(evaluation_key(cfg, step), 1),
                                             classifier=classifier)
                        if heldout_nll is not None:
                            last_eval["heldout_nll"] = heldout_nll(state.generator.ema,
                                                                   jax.random.fold_in(evaluation_key(cfg, step), 2))
                        last_losses = logger.averages()
                        logger.reset()
                        elapsed = time_offset + time.perf_counter() - t0
                        rec = {"step": step, "time_s": round(elapsed, 3), **last_losses, **last_eval}
                        records.append(rec)
                        logger.line(step, last_losses, last_eval)
                        if primary:
                            with open(metrics_path, "a") as f:
                                f.write(json.dumps(rec) + "\n")
                    if primary and _due(step, cfg.plot_every, cfg.steps):
                        from divergences.train._plots import save_samples

                        save_samples(os.path.join(out, f"samples_{step:07d}.png"), np.asarray(samples), dataset,
                                     title=f"{cfg.objective} on {os.path.basename(cfg.dataset)}, step {step}")
                if ckpt is not None and _due(step, cfg.checkpoint_every, cfg.steps):
                    ckpt.save(step, state, {"time_s": time_offset + time.perf_counter() - t0})
                    last_good = step
                if callback is not None:
                    callback(step, state)
                if guard.requested:
                    raise KeyboardInterrupt
        except CheckpointError as e:
            where = f"the last good checkpoint is step {last_good}" if last_good is not None else "no checkpoint kept"
            stopped = f"{e}; training stopped at step {step} ({where}; continue with --resume once it can be written)"
        except KeyboardInterrupt:
            where = (f"the last complete checkpoint, step {last_good}, stays in {ckpt_dir} (continue with --resume)"
                     if last_good is not None else "no checkpoint was written")
            stopped = f"interrupted at step {step}; {where}"
            interrupted = True
        finally:
            logger.close()
            if ckpt is not None:
                ckpt.close()

    session = time.perf_counter() - t0
    summary = {
        "objective": cfg.objective, "dataset": cfg.dataset, "steps": step, "seed": cfg.seed,
        "devices": n_dev, "wall_time_s": round(time_offset + session, 2),
        "steps_per_s": round((step - start) / session, 2) if session > 0 else None,
        **{f"final_{k}": v for k, v in last_losses.items()}, **last_eval,
    }
    if stopped is not None:
        summary["stopped"] = stopped
    if primary:
        _write_outputs(out, summary, records, samples if step == cfg.steps else None,
                       state if step == cfg.steps else None, log)
        if stopped is None:
            log(_format_summary(summary, out))
    if stopped is not None:
        raise RunStopped(stopped, interrupted=interrupted)
    summary["state"] = state
    return summary


def _write_outputs(out, summary, records, samples, state, log) -> None:
    """The summary, curves, final samples and generator; what cannot be written is reported, not fatal."""
    from flax import serialization

    def attempt(what, fn):
        try:
            fn()
        except OSError as e:
            log(f"warning: {what} could not be written ({e.strerror or e})")

    attempt("summary.json", lambda: _write_json(os.path.join(out, "summary.json"), summary))
    if samples is not None:
        attempt("samples.npy", lambda: np.save(os.path.join(out, "samples.npy"), np.asarray(samples)))
    if state is not None:
        def write_gen():
            with open(os.path.join(out, "generator.msgpack"), "wb") as f:
                f.write(serialization.to_bytes(jax.device_get(state.generator.ema)))

        attempt("generator.msgpack", write_gen)
    if records:
        from divergences.train._plots import save_curves

        attempt("curves.png", lambda: save_curves(os.path.join(out, "curves.png"), records))


def load_generator(run_dir: str, *, generator: Any = None) -> tuple[Callable[[jax.Array, int], jax.Array],
                                                                     TrainConfig]:
    """The averaged (EMA) generator of a finished run, as a sampling function.

    Args:
      run_dir: a run folder (``config.json``, ``run.json``, ``generator.msgpack``).
      generator: the module the run trained, if it was not the default one.

    Returns:
      ``(sample, config)``: ``sample(key, n) -> [n, d]`` (compiled; with
      ``evaluation_key(config, config.steps)`` and ``config.eval_samples`` it
      reproduces ``samples.npy`` bit for bit on the same machine), and the
      run's configuration.

    Raises:
      ValueError: not a finished run folder.
    """
    from flax import serialization

    from divergences.train._steps import nnx_module

    paths = {n: os.path.join(run_dir, n) for n in ("config.json", "run.json", "generator.msgpack")}
    missing = [n for n, p in paths.items() if not os.path.exists(p)]
    if missing:
        raise ValueError(f"`run_dir` {run_dir!r} holds no finished run (missing {', '.join(missing)})")
    cfg = TrainConfig.from_dict(json.load(open(paths["config.json"])), source=paths["config.json"])
    info = json.load(open(paths["run.json"]))
    if generator is None:
        if info.get("generator", "default") != "default":
            raise ValueError(f"`generator`: the run in {run_dir!r} trained its own {info['generator']}; pass that "
                             "module as generator=")
        module = build_models(cfg, int(info["data_dim"]), _shape(info.get("image_shape")))[0]
    else:
        module = nnx_module(generator)
    template = module.init(jax.random.key(0), jnp.zeros((1, cfg.z_dim), jnp.float32))["params"]
    with open(paths["generator.msgpack"], "rb") as f:
        params = serialization.from_bytes(template, f.read())
    params = jax.tree.map(jnp.asarray, params)
    st = info.get("standardizer")
    standardizer = None if st is None else Standardizer(np.asarray(st["shift"], np.float32),
                                                        np.asarray(st["scale"], np.float32))
    sample_fn = jax.jit(lambda p, k, n: _to_data(standardizer, sample_generator(module, cfg, p, k, n)),
                        static_argnums=2)
    return (lambda key, n: sample_fn(params, key, int(n))), cfg


def _standardizer(cfg: TrainConfig, dataset) -> Standardizer | None:
    """The standardisation the MLP trains in (``cfg.standardize``), fitted to the training data; None: raw data."""
    if not cfg.standardize or cfg.model != "mlp" or dataset.image_shape is not None:
        return None
    return fit_standardizer(np.asarray(dataset.train), std=cfg.standardize_std)


def _heldout_nll_fn(cfg: TrainConfig, module: Any, standardizer: Standardizer | None,
                    dataset: Dataset) -> Callable[[Any, jax.Array], float] | None:
    """``(params, key) -> heldout_nll``: nats per dimension of ``dataset.test`` in data units, or None.

    For an objective with a density (its ``heldout_log_likelihood`` hook). The
    model sees the held-out points in its training units; the standardisation
    ``z = (x - shift) / scale`` adds ``log(scale)`` per dimension to the NLL
    (the log-determinant of the change of units), so the figure is comparable
    with the data's own entropy.
    """
    from divergences.train._objectives import get_objective

    hook = get_objective(cfg.objective).heldout_log_likelihood
    if hook is None or len(dataset.test) == 0:
        return None
    held = np.asarray(dataset.test, np.float32)
    held = held.reshape(len(held), -1)
    log_scale = 0.0
    if standardizer is not None:
        held = standardizer.forward(held)
        log_scale = float(np.log(standardizer.scale))
    held = jnp.asarray(held)

    def nll(params, key):
        ll = np.asarray(hook(module, params, held, key, cfg), np.float64)
        return float(-ll.mean() / held.shape[1] + log_scale)

    return nll


def _to_data(standardizer: Standardizer | None, samples: jax.Array) -> jax.Array:
    return samples if standardizer is None else standardizer.inverse(samples)


def _format_summary(summary: dict[str, Any], out: str) -> str:
    lines = [f"summary ({out}/summary.json):"]
    for k, v in summary.items():
        if isinstance(v, float) and math.isfinite(v):
            v = f"{v:.4g}"
        lines.append(f"  {k:>26}: {v}")
    return "\n".join(lines)

