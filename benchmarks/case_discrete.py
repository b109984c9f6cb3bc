"""Exact discrete divergences against scipy.

* ``kl_divergence``: a batch of histograms under ``jax.jit``, against
  ``scipy.stats.entropy``.
* ``kl_divergence_eager``, ``js_divergence_eager``: one histogram of 100
  bins, called eagerly on NumPy arrays as a script calls scipy, against
  ``scipy.stats.entropy`` and ``scipy.spatial.distance.jensenshannon``
  (squared: scipy returns the root).
"""

from __future__ import annotations

import jax
import numpy as np

import divergences as dv
from benchmarks._harness import Case


def cases(quick: bool) -> list[Case]:
    batch, support = (64, 100) if quick else (1000, 1000)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(support), size=batch).astype(np.float32)
    q = rng.dirichlet(np.ones(support), size=batch).astype(np.float32)
    p_jax, q_jax = jax.device_put(p), jax.device_put(q)
    kl = jax.jit(dv.kl_divergence)

    def scipy_kl():
        from scipy import stats

        return stats.entropy(p, q, axis=-1)

    return [
        Case(
            name="kl_divergence",
            sizes=f"batch={batch}, support={support}",
            ours=lambda: kl(p_jax, q_jax),
            peers={"scipy": scipy_kl},
            note="exact KL of histograms",
        ),
        *_eager_cases(),
    ]


def _eager_cases() -> list[Case]:
    from scipy import spatial, stats

    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.ones(100), size=2).astype(np.float32)
    note = "one histogram; an eager call on NumPy arrays (the transfer to the device included)"
    return [
        Case(
            name="kl_divergence_eager",
            sizes="support=100",
            ours=lambda: dv.kl_divergence(p, q),
            peers={"scipy": lambda: stats.entropy(p, q)},
            note=note,
        ),
        Case(
            name="js_divergence_eager",
            sizes="support=100",
            ours=lambda: dv.js_divergence(p, q),
            peers={"scipy": lambda: spatial.distance.jensenshannon(p, q) ** 2},
            note=note,
        ),
    ]
