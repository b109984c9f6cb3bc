"""PacGAN's mode-collapse protocol (Lin et al. 2018, Table 1) for every objective, with the training defaults.

``python -m benchmarks.quality [--quick] [--objectives a,b] [--datasets ring,grid] [--seeds N] [--set k=v]``

For each objective and data set it trains with the defaults of
:class:`divergences.train.TrainConfig` (overridable with ``--set``), one
compiled program for all seeds (the train step :func:`jax.vmap`-ed over the
seeds' states, keys and data), draws 2,500 samples from each seed's averaged
(EMA) generator, maps them back from the standardised training units, and
computes with :func:`divergences.train._quality.mode_statistics` the modes
covered (>= 20 high-quality samples), the share of high-quality samples
(within 3 std of the nearest mode) and the reverse KL of the mode histogram to
the uniform distribution; then the mean and standard error over the seeds.

Data sets, as in PacGAN:

* ``ring``: 8 Gaussians on a circle of radius 1, std 0.01 (the library's
  ``8gaussians``, radius 2 and std 0.02, halved: the same problem up to
  scale, and with standardised training the same run);
* ``grid``: 25 Gaussians on ``{-4, -2, 0, 2, 4}^2``, std 0.05 (``25gaussians``).

Seed ``s`` draws its data and keys exactly as ``python -m divergences.train
--seed s`` does, so a row can be checked run by run.

Results go to ``<out>/quality.json`` and ``<out>/quality.md`` (default
``benchmarks/results``; ``--quick``: a tiny configuration for the tests).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import pathlib
import platform
import sys
import time
from typing import Any

import numpy as np

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent

DATASETS = {
    "ring": "2D-ring: 8 Gaussians, radius 1, std 0.01 (PacGAN's scale)",
    "grid": "2D-grid: 25 Gaussians, spacing 2, std 0.05",
}

ADVERSARIAL = ("gan", "nsgan", "wgan", "wgan-gp", "linear-dual", "fgan-kl", "fgan-reverse_kl",
               "fgan-pearson_chi2", "fgan-squared_hellinger", "fgan-js", "fgan-gan")
OBJECTIVES = ("nsgan", "wgan-gp", "mmd") + tuple(o for o in ADVERSARIAL if o not in ("nsgan", "wgan-gp")) + ("sliced",)

# PacGAN, Table 1 (10 trials, mean +- standard error): modes, high-quality share, reverse KL.
PACGAN = {
    "grid": [("GAN", (17.3, 0.8), (0.948, 0.007), (0.70, 0.07)),
             ("PacGAN4", (24.8, 0.2), (0.936, 0.006), (0.04, 0.01))],
    "ring": [("GAN", (6.3, 0.5), (0.982, 0.002), (0.45, 0.09)),
             ("PacGAN2", (7.9, 0.1), (0.956, 0.020), (0.07, 0.03))],
}

_INIT_TAG = 0x1A17  # as in divergences.train._run
_EVAL_TAG = 0xE7A1


def load(name: str, seed: int, *, n_train: int = 20000):
    """The data set ``name`` ("ring" or "grid") as seed ``seed`` of the training command draws it."""
    from divergences.train import Dataset, load_dataset

    if name == "grid":
        return load_dataset("25gaussians", seed=seed, n_train=n_train, n_test=100)
    if name == "ring":
        ds = load_dataset("8gaussians", seed=seed, n_train=n_train, n_test=100)
        return Dataset("ring", ds.train * 0.5, ds.test * 0.5, modes=ds.modes * 0.5, mode_std=ds.mode_std * 0.5)
    raise ValueError(f"`dataset` {name!r} is unknown; choose one of {', '.join(DATASETS)}")


def train_seeds(config, dataset: str, seeds: list[int], *, n_samples: int = 2500,
                n_train: int = 20000) -> dict[str, Any]:
    """Train ``config`` on ``dataset`` for every seed in one compiled program; evaluate each.

    Returns ``{"per_seed": [metrics...], "train_s": wall seconds of training
    (all seeds, compilation included), "samples": [S, n, 2] in data units}``.
    """
    import jax
    import jax.numpy as jnp

    from divergences.train import make_multi_step, make_train_step
    from divergences.train._blas import single_blas_thread
    from divergences.train._quality import mode_statistics
    from divergences.train._run import _standardizer

    dss = [load(dataset, s, n_train=n_train) for s in seeds]
    ts = make_train_step(dataclasses.replace(config, dataset=dataset), dss[0].dim)
    cfg = ts.config
    stds = [_standardizer(cfg, ds) for ds in dss]  # the training command's own rule
    data = jnp.stack([jnp.asarray(ds.train if s is None else s.forward(ds.train)) for ds, s in zip(dss, stds)])
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))

    spc = int(cfg.steps_per_call)
    with single_blas_thread():
        t0 = time.perf_counter()
        state = jax.jit(jax.vmap(lambda k: ts.init(jax.random.fold_in(k, _INIT_TAG))))(keys)
        chunks = {}
        done = 0
        while done < cfg.steps:
            n = min(spc, cfg.steps - done)
            if n not in chunks:
                # make_multi_step's function is jitted; vmapping it batches the seeds.
                chunks[n] = jax.jit(jax.vmap(make_multi_step(ts, n)), donate_argnums=0)
            state, metrics = chunks[n](state, data, keys)
            done += n
        jax.block_until_ready(state)
        train_s = time.perf_counter() - t0

    finite = {k: bool(np.all(np.isfinite(np.asarray(v)[:, -1]))) for k, v in metrics.items()}
    ekeys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, _EVAL_TAG), cfg.steps))(keys)
    z = np.asarray(jax.jit(jax.vmap(lambda p, k: ts.sample(p, k, n_samples)))(state.gen_ema, ekeys))
    per_seed, samples = [], []
    for i, (ds, s) in enumerate(zip(dss, stds)):
        x = z[i] if s is None else s.inverse(z[i])
        samples.append(x)
        if np.all(np.isfinite(x)):
            m = mode_statistics(x, ds.modes, ds.mode_std)
        else:
            m = {"modes_covered": 0, "n_modes": len(ds.modes), "high_quality": 0.0, "reverse_kl": float("nan")}
        per_seed.append({"seed": seeds[i], **m})
    return {"per_seed": per_seed, "train_s": train_s, "finite_losses": all(finite.values()),
            "samples": np.stack(samples), "config": dataclasses.asdict(cfg)}


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))


def summarise(per_seed: list[dict]) -> dict[str, list[float]]:
    return {k: list(_mean_se([r[k] for r in per_seed])) for k in ("modes_covered", "high_quality", "reverse_kl")}


def _pm(mean: float, se: float, fmt: str) -> str:
    if math.isnan(mean):
        return "nan"
    return fmt.format(mean) + ("" if math.isnan(se) else " ± " + fmt.format(se))


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Mode collapse, PacGAN Table 1 protocol ({results['platform']}, {results['date']})", "",
             f"Command: `{results['command']}`. Overrides: {results['overrides'] or 'none (the defaults)'}.", "",
             "Modes covered (>= 20 of 2,500 samples high-quality and nearest), high-quality share (within 3 std of "
             "the nearest mode), reverse KL of the mode histogram to uniform (nats); mean ± standard error over "
             "the seeds. Training time: wall seconds for all seeds of a row in one vmapped program (compilation "
             "included), and that divided by the seeds; load: the machine's 1-minute load average when the row "
             "ended (the 2 cores were shared).", ""]
    for ds in results["datasets"]:
        n_modes = 25 if ds == "grid" else 8
        lines += [f"## {DATASETS[ds]}", "",
                  f"| objective | seeds | modes (of {n_modes}) | high quality | reverse KL | train s (all seeds) | per seed | load |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, m, q, kl in PACGAN[ds]:
            lines.append(f"| PacGAN paper: {name} | 10 | {_pm(*m, '{:.1f}')} | {_pm(q[0] * 100, q[1] * 100, '{:.1f}')} % "
                         f"| {_pm(*kl, '{:.2f}')} | GPU, 400k steps | | |")
        for obj, row in results["rows"].get(ds, {}).items():
            s = row["summary"]
            m, q, kl = s["modes_covered"], s["high_quality"], s["reverse_kl"]
            lines.append(f"| {obj} | {len(row['per_seed'])} | {_pm(*m, '{:.1f}')} | {_pm(q[0] * 100, q[1] * 100, '{:.1f}')} % "
                         f"| {_pm(*kl, '{:.3f}')} | {row['train_s']:.0f} | {row['train_s'] / len(row['per_seed']):.0f} | {row.get('load_avg_1min', '-')} |")
        lines.append("")
    return "\n".join(lines)


def _parse_set(items: list[str]) -> dict[str, Any]:
    from divergences.train import TrainConfig

    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in types or not _:
            raise ValueError(f"`--set` {item!r} must be FIELD=VALUE with a TrainConfig field; known: {sorted(types)}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare string: relu, rmsprop
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny configuration (200 steps, 2 seeds, 2 objectives): for the tests")
    p.add_argument("--objectives", help=f"comma-separated (default: all: {','.join(OBJECTIVES)})")
    p.add_argument("--datasets", default="grid,ring", help="comma-separated of: " + ", ".join(DATASETS))
    p.add_argument("--seeds", type=int, help="seeds per row (default 10 for nsgan, wgan-gp and mmd, 3 for the others)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a TrainConfig default for every row, e.g. --set steps=20000 (JSON values)")
    p.add_argument("--out", default=str(PACKAGE_DIR / "results"), help="folder for quality.json and quality.md")
    p.add_argument("--name", default="quality", help="file stem of the outputs (default quality)")
    p.add_argument("--merge", action="store_true",
                   help="add the rows to those already in the output JSON (re-read before every write, so that "
                        "several invocations can fill one table)")
    args = p.parse_args(argv)

    from divergences.train import TrainConfig

    try:
        overrides = _parse_set(args.set)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    objectives = args.objectives.split(",") if args.objectives else list(OBJECTIVES)
    datasets = args.datasets.split(",")
    for ds in datasets:
        if ds not in DATASETS:
            print(f"error: `datasets` {ds!r} is unknown; choose of {', '.join(DATASETS)}", file=sys.stderr)
            return 2
    if args.quick:
        objectives = args.objectives.split(",") if args.objectives else ["nsgan", "mmd"]
        overrides = {"steps": 200, "steps_per_call": 50, **overrides}

    import jax

    results: dict[str, Any] = {
        "command": "python -m benchmarks.quality " + " ".join(argv if argv is not None else sys.argv[1:]),
        "platform": f"{jax.default_backend()}, {os.cpu_count()} CPU cores, {platform.machine()}",
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "overrides": overrides, "datasets": datasets, "rows": {},
    }
    os.makedirs(args.out, exist_ok=True)
    for ds in datasets:
        for obj in objectives:
            n_seeds = args.seeds or (2 if args.quick else 10 if obj in ("nsgan", "wgan-gp", "mmd") else 3)
            cfg = TrainConfig(objective=obj, progress=False, **overrides)
            r = train_seeds(cfg, ds, list(range(n_seeds)))
            row = {"per_seed": r["per_seed"], "summary": summarise(r["per_seed"]), "train_s": round(r["train_s"], 2),
                   "finite_losses": r["finite_losses"], "load_avg_1min": round(os.getloadavg()[0], 1),
                   "config": r["config"]}
            results["rows"].setdefault(ds, {})[obj] = row
            path = os.path.join(args.out, f"{args.name}.json")
            if args.merge and os.path.exists(path):
                with open(path) as f:
                    old = json.load(f)
                rows = old.get("rows", {})
                for d, new in results["rows"].items():
                    rows.setdefault(d, {}).update(new)
                results["rows"] = rows
                # keep what else the file holds (the superseded rows, notes)
                results = {**old, **results}
                results["datasets"] = [d for d in DATASETS if d in rows]
                results["command"] = "python -m benchmarks.quality (several invocations, --merge; see each row's config)"
            s = row["summary"]
            print(f"{ds:5s} {obj:24s} seeds {n_seeds:2d}  modes {s['modes_covered'][0]:5.2f}  "
                  f"HQ {100 * s['high_quality'][0]:5.1f}%  rKL {s['reverse_kl'][0]:.3f}  {r['train_s']:.0f} s", flush=True)
            with open(path, "w") as f:
                json.dump(results, f, indent=1)
            with open(os.path.join(args.out, f"{args.name}.md"), "w") as f:
                f.write(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
