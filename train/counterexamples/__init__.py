"""The counterexamples behind WGAN, with numbers and pictures: ``python -m divergences.train.counterexamples``.

Why the Wasserstein distance is the better training signal when supports do
not overlap, in five sections:

1. the uniform shift U[0, 1] against U[eps, 1 + eps]: KL, TV, JS and W1 in
   closed form beside the library's sample estimates (binned plug-in, kNN KL,
   exact 1-D W1, the dual critic W1, the f-GAN JS), with confidence intervals;
2. the parallel lines of the WGAN paper's Example 1, the same table;
3. vanishing gradients: d/dtheta of the GAN value at the optimal
   discriminator, of the generator losses with a trained discriminator and of
   the dual W1 with a trained critic; and the WGAN paper's Figure 2;
4. learning the shift of the parallel lines from theta = 5 with the gan,
   nsgan, wgan, wgan-gp, sliced and mmd objectives;
5. the likelihood view: the noise-smoothed log-likelihood, its gradient and
   gradient ascent on it, against sigma.

Everything is jitted, and vmapped over seeds and grid values: all the critics
of sections 1-3 train in one compiled call per critic kind. Importing this
package needs no matplotlib; only :func:`write_plots` does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import jax
import jax.numpy as jnp

from divergences.train.counterexamples import _divergences, _gradients, _likelihood, _shift
from divergences.train.counterexamples._common import Config, gaussian_samples, train_critics

__all__ = ["Config", "run", "markdown", "write_outputs", "write_plots", "main"]


def _slice(tree, start: int, stop: int):
    return jax.tree.map(lambda a: a[start:stop], tree)


def run(cfg: Config, *, log=print) -> dict:
    """Run every section; returns the results as plain Python data (what results.json holds)."""
    t0 = time.perf_counter()
    timings = {}
    keys = dict(zip(("shift", "lines", "gauss", "w1", "js", "est", "grad", "learn", "lik"), jax.random.split(
        jax.random.key(cfg.seed), 9)))
    shift, lines = _divergences.problems(cfg)
    data = {
        "uniform_shift": _divergences.sample(shift, cfg, keys["shift"]),
        "parallel_lines": _divergences.sample(lines, cfg, keys["lines"]),
    }
    gx, gy = gaussian_samples(keys["gauss"], cfg.gauss_means, cfg.gauss_std, cfg.n_samples)
    x = jnp.concatenate([data["uniform_shift"].x, data["parallel_lines"].x, gx[None]])
    y = jnp.concatenate([data["uniform_shift"].y, data["parallel_lines"].y, gy[None]])
    rows = len(cfg.grid) * cfg.seeds
    log(f"training {x.shape[0]} WGAN-GP critics and {x.shape[0]} f-GAN (JS) discriminators at once ...")
    w1 = jax.block_until_ready(train_critics("w1", x, y, keys["w1"], cfg=cfg, steps=cfg.critic_steps))
    js = jax.block_until_ready(train_critics("js", x, y, keys["js"], cfg=cfg, steps=cfg.critic_steps))
    timings["critics"] = time.perf_counter() - t0

    t = time.perf_counter()
    results = {"config": dataclasses.asdict(cfg), "divergences": {}}
    for i, (problem, k) in enumerate(zip((shift, lines), jax.random.split(keys["est"], 2))):
        part = slice(i * rows, (i + 1) * rows)
        results["divergences"][problem.name] = _divergences.estimate(
            problem, cfg, data[problem.name], _slice(w1, part.start, part.stop), _slice(js, part.start, part.stop), k
        )
    timings["estimates"] = time.perf_counter() - t
    log("sections 1-2 done")

    t = time.perf_counter()
    results["gradients"] = _gradients.run(
        cfg,
        keys["grad"],
        data["parallel_lines"],
        _slice(w1, rows, 2 * rows),
        _slice(js, rows, 2 * rows),
        jax.tree.map(lambda a: a[2 * rows], w1),
        jax.tree.map(lambda a: a[2 * rows], js),
    )
    timings["gradients"] = time.perf_counter() - t
    log("section 3 done")

    t = time.perf_counter()
    results["learned_shift"] = _shift.run(cfg, keys["learn"])
    timings["learned_shift"] = time.perf_counter() - t
    log("section 4 done")

    t = time.perf_counter()
    results["likelihood"] = _likelihood.run(cfg, keys["lik"])
    timings["likelihood"] = time.perf_counter() - t
    log("section 5 done")
    timings["total"] = time.perf_counter() - t0
    results["timings_s"] = timings
    results["device"] = str(jax.devices()[0].platform)
    return results


def markdown(results: dict) -> str:
    """The whole report as markdown (what table.md holds)."""
    cfg = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in results["config"].items()})
    parts = [
        "# Counterexamples: why W1 is the better training signal when supports do not overlap",
        "",
        _divergences.markdown(results["divergences"], cfg),
        "",
        _gradients.markdown(results["gradients"]),
        "",
        _shift.markdown(results["learned_shift"], cfg),
        "",
        _likelihood.markdown(results["likelihood"]),
    ]
    return "\n".join(parts) + "\n"


def write_outputs(results: dict, out: str) -> list[str]:
    """Write ``table.md`` and ``results.json`` into ``out``; returns their paths."""
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, "table.md"), os.path.join(out, "results.json")]
    with open(paths[0], "w") as f:
        f.write(markdown(results))
    with open(paths[1], "w") as f:
        json.dump(_finite(results), f, indent=1)
    return paths


def _finite(obj):
    """Strict JSON: non-finite floats become the strings "inf", "-inf" and "nan"."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_plots(results: dict, out: str) -> list[str]:
    """Write the PNG figures into ``out`` (needs matplotlib); returns their paths."""
    from divergences.train.counterexamples import _plots

    return _plots.write_all(results, out)


def main(argv: list[str] | None = None) -> None:
    """The command line: ``python -m divergences.train.counterexamples [--out DIR] [--quick] [--no-plots]``."""
    from divergences.train.counterexamples.__main__ import main as _main

    _main(argv)
