"""Train the likelihood models (``flow``, ``vae``) on the toy data sets and score them.

``python -m benchmarks.likelihood_runs [--quick] [--datasets 8gaussians,...] [--objectives flow,flow-affine,vae]
[--steps N] [--set KEY=VALUE ...] [--merge] [--out benchmarks/results] [--tag TAG]``

The objectives are the keys of :data:`CONFIGS`: ``flow`` (rational-quadratic
spline couplings, Durkan et al. 2019), ``flow-affine`` (RealNVP, affine
couplings, the ``flow`` of earlier runs) and ``vae``; the tables name a
flow's rows by its coupling, ``flow (spline)`` or ``flow (affine)``.
``--set`` overrides a :class:`LikelihoodConfig` field of every run
(``--set spline_bins=8 --set n_layers=10``); ``--merge`` keeps the rows of an
existing output file that this run does not redo (same objective, coupling
and data set).

For each (objective, data set): train with
:func:`divergences.train._likelihood_objectives.fit` (seed 0), then report

* the held-out NLL in nats per dimension (exact for the flow, the IWAE bound
  with K = 100 for the VAE) on the data set's 5,000 held-out points;
* the data's true entropy per dimension, ``-int p log p``, by quadrature on a
  grid (the mixtures' densities in closed form; the swiss roll's density
  itself a quadrature over the roll's parameter), and the true NLL of the
  same held-out points, ``-mean log p(x)``: the held-out NLL minus it
  estimates ``KL(p_data || p_model) / d``;
* the sample metrics of the training command on 2,500 samples (sliced
  Wasserstein and MMD to held-out data, modes covered and high-quality share
  for the mixtures, from ``divergences.train._metrics.evaluate``);
* the wall time of training (compilation included) on this machine.

Writes ``likelihood{_TAG}.json`` and ``likelihood{_TAG}.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import typing

import jax
import jax.numpy as jnp
import numpy as np

from divergences.train import load_dataset
from divergences.train import _data as data_mod
from divergences.train import _likelihood_objectives as lo
from divergences.train._metrics import evaluate

# Per objective: the configuration used for every data set (the README's table).
CONFIGS = {
    "flow": dict(objective="flow", coupling="spline", spline_bins=16, spline_bound=4.0, width=64, depth=2,
                 n_layers=8, rotations=True, learning_rate=5e-4, ema_decay=0.999),
    "flow-affine": dict(objective="flow", coupling="affine", width=64, depth=2, n_layers=16, rotations=True,
                        learning_rate=5e-4, ema_decay=0.999),
    "vae": dict(objective="vae", width=128, depth=2, latent_dim=2, learning_rate=1e-3, ema_decay=0.999, kl_warmup_steps=5000),
}


# ------------------------------------------------------------------ true densities

def _mixture_log_density(x: jax.Array, modes: np.ndarray, std: float) -> jax.Array:
    d2 = jnp.sum((x[:, None, :] - jnp.asarray(modes)[None]) ** 2, -1)
    d = x.shape[1]
    return jax.nn.logsumexp(-0.5 * d2 / std**2, axis=1) - math.log(len(modes)) - d * math.log(std) - 0.5 * d * math.log(2 * math.pi)


_T = jnp.asarray(np.linspace(1.5 * np.pi, 4.5 * np.pi, 6001))  # the roll's parameter, uniform on [1.5 pi, 4.5 pi]


def _swissroll_log_density(x: jax.Array) -> jax.Array:
    # p(x) = int U(t) N(x; c(t), 0.05^2 I) dt, c(t) = (t cos t, t sin t) / 5, trapezoid rule in t
    # (spacing 0.0016: c moves at most 0.0045 per step, a tenth of the noise's std)
    c = jnp.stack([_T * jnp.cos(_T), _T * jnp.sin(_T)], 1) / 5.0
    sd = 0.05
    d2 = jnp.sum((x[:, None, :] - c[None]) ** 2, -1)
    w = jnp.full(_T.shape, 1.0).at[0].set(0.5).at[-1].set(0.5) / (len(_T) - 1)  # trapezoid weights, sum 1
    return jax.nn.logsumexp(-0.5 * d2 / sd**2, axis=1, b=w) - 2 * math.log(sd) - math.log(2 * math.pi)


def true_log_density(name: str):
    if name == "8gaussians":
        return lambda x: _mixture_log_density(x, data_mod.RING_MODES, data_mod.RING_STD)
    if name == "25gaussians":
        return lambda x: _mixture_log_density(x, data_mod.GRID_MODES, data_mod.GRID_STD)
    if name == "swissroll":
        return _swissroll_log_density
    return None


def entropy_by_quadrature(log_density, lo_, hi, spacing: float, chunk: int = 20000) -> tuple[float, float]:
    """``-int p log p`` and ``int p`` on the square ``[lo_, hi]^2`` with the given spacing (midpoint rule)."""
    g = np.arange(lo_ + spacing / 2, hi, spacing)
    f = jax.jit(lambda pts: (lambda lp: (jnp.sum(jnp.exp(lp) * lp), jnp.sum(jnp.exp(lp))))(log_density(pts)))
    h = mass = 0.0
    xx = np.repeat(g, len(g))
    yy = np.tile(g, len(g))
    pts = np.stack([xx, yy], 1).astype(np.float32)
    pad = (-len(pts)) % chunk
    pts = np.concatenate([pts, np.full((pad, 2), 1e3, np.float32)])  # padding far away: density 0
    for i in range(0, len(pts), chunk):
        a, b = f(jnp.asarray(pts[i : i + chunk]))
        h += float(a)
        mass += float(b)
    area = spacing**2
    return -h * area, mass * area


QUADRATURE = {  # square and spacing: a tenth of the components' std (a fifth of the roll's noise)
    "8gaussians": (-2.2, 2.2, 0.002),
    "25gaussians": (-4.4, 4.4, 0.005),
    "swissroll": (-3.0, 3.0, 0.01),
}


# ------------------------------------------------------------------ runs

def parse_overrides(items: list[str]) -> dict:
    """``["KEY=VALUE", ...]`` -> ``{KEY: VALUE}``, each value cast to the type of that :class:`LikelihoodConfig` field."""
    hints = typing.get_type_hints(lo.LikelihoodConfig)
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in hints:
            raise ValueError(f"`--set` takes KEY=VALUE with KEY a LikelihoodConfig field; got {item!r}")
        kind = hints[key]
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"`--set {key}` takes true or false; got {value!r}")
            out[key] = value.lower() in ("true", "1")
        elif kind in (int, float, str):
            out[key] = kind(value)
        else:
            raise ValueError(f"`--set` cannot set {key!r} (type {kind})")
    return out


def run_one(objective: str, name: str, steps: int, batch_size: int, seed: int = 0, overrides: dict | None = None,
            progress: bool = False) -> dict:
    ds = load_dataset(name)
    cfg = lo.LikelihoodConfig(data_dim=ds.dim, decay_steps=steps, **{**CONFIGS[objective], **(overrides or {})})
    key = jax.random.key(seed)

    def report(row):
        if progress and (row["step"] % 2500 == 0 or row["step"] == steps):
            print(f"  step {row['step']}: loss {row['loss']:.4f}, grad norm {row['grad_norm']:.2f}, "
                  f"{row['seconds']:.0f} s", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    params, history = lo.fit(cfg, ds.train, key, steps=steps, batch_size=batch_size, steps_per_call=500,
                             callback=report)
    jax.block_until_ready(params)
    seconds = time.perf_counter() - t0
    k_eval, k_sample, k_metrics = jax.random.split(jax.random.fold_in(key, 10**6), 3)
    ll = np.asarray(lo.heldout_log_likelihoods(params, ds.test, k_eval, cfg=cfg), np.float64) / ds.dim
    nll = float(-ll.mean())
    samples = lo.sample(params, k_sample, 2500, cfg=cfg)
    metrics = evaluate(samples, ds, k_metrics)
    row = {"objective": objective, "dataset": name, "steps": steps, "batch_size": batch_size, "seed": seed,
           "heldout_nll": nll, "heldout_nll_quantiles_10_50_90_99_max": np.quantile(-ll, [0.1, 0.5, 0.9, 0.99, 1.0]).tolist(),
           "train_seconds": seconds, "final_loss": history[-1]["loss"],
           "config": dataclasses.asdict(cfg), **metrics}
    logp = true_log_density(name)
    if logp is not None:
        lp = np.asarray(jax.jit(logp)(jnp.asarray(ds.test)), np.float64)
        row["true_nll_of_heldout"] = float(-lp.mean() / ds.dim)
        row["true_nll_se"] = float(lp.std() / np.sqrt(len(lp)) / ds.dim)
        row["true_nll_quantiles_10_50_90_99_max"] = np.quantile(-lp / ds.dim, [0.1, 0.5, 0.9, 0.99, 1.0]).tolist()
    return row


def label(row: dict) -> str:
    """A row's name in the tables: a flow's by its coupling (rows written before the spline flow are affine)."""
    if row["config"]["objective"] == "flow":
        return f"flow ({row['config'].get('coupling', 'affine')})"
    return row["objective"]


def markdown(rows: list[dict], entropies: dict) -> str:
    lines = ["| objective | data | held-out NLL (nats/dim) | true entropy (nats/dim) | NLL - true NLL of the same points | modes | HQ | SW | MMD | train time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ent = entropies.get(r["dataset"])
        gap = r["heldout_nll"] - r["true_nll_of_heldout"] if "true_nll_of_heldout" in r else float("nan")
        modes = f"{r['modes_covered']}/{r['n_modes']}" if "modes_covered" in r else "-"
        hq = f"{100 * r['high_quality']:.1f}%" if "high_quality" in r else "-"
        lines.append(f"| {label(r)} | {r['dataset']} | {r['heldout_nll']:.3f} | "
                     f"{ent:.3f} | {gap:+.3f} | {modes} | {hq} | {r['sliced_wasserstein']:.3f} | "
                     f"{r['mmd']:.2e} | {r['train_seconds']:.0f} s ({r['steps']} steps) |")
    return "\n".join(lines) + "\n"


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` rows that ``new`` does not redo (same :func:`label` and data set), then ``new``, grouped by data set.

    The data sets keep the order in which they first appear in ``old + new``;
    within one, the kept old rows come first.
    """
    redone = {(label(r), r["dataset"]) for r in new}
    kept = [r for r in old if (label(r), r["dataset"]) not in redone]
    order: dict[str, int] = {}
    for r in old + new:
        order.setdefault(r["dataset"], len(order))
    return sorted(kept + new, key=lambda r: order[r["dataset"]])  # sorted is stable


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="8gaussians,25gaussians,swissroll")
    p.add_argument("--objectives", default="flow,vae")
    p.add_argument("--steps", type=int, default=15000)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--quick", action="store_true", help="200 steps, coarse quadrature (a smoke run)")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--tag", default="", help="suffix of the output files (runs split over processes)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a LikelihoodConfig field in every run (repeatable)")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows of an existing output file that this run does not redo")
    p.add_argument("--seed", type=int, default=0, help="seeds the initialisation, the batches and the evaluation")
    p.add_argument("--progress", action="store_true", help="the training loss every 2,500 steps, on stderr")
    a = p.parse_args(argv)
    overrides = parse_overrides(a.set)
    unknown = [o for o in a.objectives.split(",") if o not in CONFIGS]
    if unknown:
        p.error(f"unknown objective(s) {unknown}; choose from {', '.join(CONFIGS)}")
    steps = 200 if a.quick else a.steps
    names = a.datasets.split(",")
    entropies = {}
    for name in names:
        if name in QUADRATURE:
            lo_, hi, h = QUADRATURE[name]
            ent, mass = entropy_by_quadrature(true_log_density(name), lo_, hi, h * (5 if a.quick else 1))
            entropies[name] = ent / 2
            print(f"{name}: entropy {ent / 2:.4f} nats/dim by quadrature (mass on the grid {mass:.6f})", flush=True)
    rows = []
    for name in names:
        for obj in a.objectives.split(","):
            row = run_one(obj, name, steps, a.batch_size, seed=a.seed, overrides=overrides, progress=a.progress)
            row["true_entropy"] = entropies.get(name)
            rows.append(row)
            print({k: v for k, v in row.items() if k != "config"}, flush=True)
    os.makedirs(a.out, exist_ok=True)
    suffix = ("_quick" if a.quick else "") + ("" if a.tag == "" else f"_{a.tag}")
    path = os.path.join(a.out, f"likelihood{suffix}.json")
    if a.merge and os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        rows = merge_rows(old["rows"], rows)
        entropies = {**old.get("entropy_nats_per_dim", {}), **entropies}
    with open(path, "w") as f:
        json.dump({"rows": rows, "entropy_nats_per_dim": entropies, "cpu_count": os.cpu_count()}, f, indent=1)
    table = markdown(rows, entropies)
    with open(os.path.join(a.out, f"likelihood{suffix}.md"), "w") as f:
        f.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
