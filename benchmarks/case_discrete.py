"""Exact discrete KL divergence on a batch of histograms, against scipy.stats.entropy."""

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
        )
    ]
