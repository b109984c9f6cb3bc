"""Benchmark cases: permutation two-sample tests and the bootstrap against their peers.

* ``two_sample_energy_1d``: 1000 permutations of the 1-D energy distance,
  n = m = 1000, against :func:`scipy.stats.permutation_test` with
  :func:`scipy.stats.energy_distance` (and hyppo's ``Energy`` test when it
  is installed).
* ``two_sample_mmd_5d``: 1000 permutations of the unbiased Gaussian-kernel
  MMD with the median-heuristic bandwidth, n = m = 1000 in 5-D, against a
  numpy permutation loop that recomputes the kernel sums for every
  permutation (the bandwidth computed once, like ours).
* ``*_floor``: what the two routes cannot go below on this machine: drawing
  the random numbers of 1000 relabellings (1-D energy) and the one
  ``[1000, N] x [N, N]`` matrix product (MMD).
* ``bootstrap_wasserstein_1d``: 200 bootstrap replicates of the 1-D W1 with
  n = m = 1000, against :func:`scipy.stats.bootstrap` with
  :func:`scipy.stats.wasserstein_distance`.

``--quick`` runs n = m = 200.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import divergences as dv
from divergences import _two_sample
from benchmarks._harness import Case

N_PERMUTATIONS = 1000
N_RESAMPLES = 200


def _numpy_mmd_permutation_test(x: np.ndarray, y: np.ndarray, n_permutations: int, seed: int = 0) -> float:
    """Permutation p-value of the unbiased Gaussian MMD, kernel sums recomputed per permutation."""
    z = np.concatenate([x, y])
    n = len(x)
    sq = np.sum((z[:, None, :] - z[None, :, :]) ** 2, axis=-1)
    h2 = np.median(sq[np.triu_indices(len(z), 1)])  # median heuristic on squared distances, once

    def mmd_u(a, b):
        def ksum(p, q, same):
            d2 = np.sum(p * p, 1)[:, None] + np.sum(q * q, 1)[None, :] - 2 * p @ q.T
            k = np.exp(-d2 / (2 * h2))
            return (k.sum() - np.trace(k)) / (len(p) * (len(p) - 1)) if same else k.mean()

        return ksum(a, a, True) + ksum(b, b, True) - 2 * ksum(a, b, False)

    rng = np.random.default_rng(seed)
    observed = mmd_u(x, y)
    count = 0
    for _ in range(n_permutations):
        perm = rng.permutation(len(z))
        count += mmd_u(z[perm[:n]], z[perm[n:]]) >= observed
    return (1 + count) / (1 + n_permutations)


def cases(quick: bool) -> list[Case]:
    n = 200 if quick else 1000
    rng = np.random.default_rng(0)
    key = jax.random.key(0)

    x1 = rng.normal(size=n)
    y1 = rng.normal(size=n) + 0.1
    x1j, y1j = jnp.asarray(x1, jnp.float32), jnp.asarray(y1, jnp.float32)

    def scipy_energy():
        import scipy.stats as st

        return st.permutation_test(
            (x1, y1),
            lambda a, b: st.energy_distance(a, b),
            n_resamples=N_PERMUTATIONS,
            alternative="greater",
            random_state=0,
        ).pvalue

    def hyppo_energy():
        from hyppo.ksample import Energy

        return Energy().test(x1[:, None], y1[:, None], reps=N_PERMUTATIONS, workers=1)[1]

    x5 = rng.normal(size=(n, 5))
    y5 = rng.normal(size=(n, 5)) + 0.1
    x5j, y5j = jnp.asarray(x5, jnp.float32), jnp.asarray(y5, jnp.float32)

    # The random draws of the relabellings alone, reduced to one number each
    # (as the test reduces them to one statistic), in the test's chunks.
    uniforms = jax.jit(
        lambda k: _two_sample._chunked_map(
            lambda kb: jnp.sum(jax.random.uniform(kb, (2 * n,))), jax.random.split(k, N_PERMUTATIONS), 500
        )
    )
    labels = jnp.asarray(rng.normal(size=(N_PERMUTATIONS, 2 * n)), jnp.float32)
    gram = jnp.asarray(rng.normal(size=(2 * n, 2 * n)), jnp.float32)
    matmul = jax.jit(lambda a, b: jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST))

    def scipy_bootstrap():
        import scipy.stats as st

        return st.bootstrap(
            (x1, y1),
            st.wasserstein_distance,
            n_resamples=N_RESAMPLES,
            vectorized=False,
            paired=False,
            method="percentile",
            random_state=0,
        ).standard_error

    sizes = f"n=m={n}, B={N_PERMUTATIONS}"
    return [
        Case(
            name="two_sample_energy_1d",
            sizes=sizes,
            ours=lambda: dv.two_sample_test(x1j, y1j, key, statistic="energy", n_permutations=N_PERMUTATIONS),
            peers={"scipy": scipy_energy, "hyppo": hyppo_energy},
            n=2 * n,
            note="1-D energy from the sorted pooled sample; O(N) per permutation",
        ),
        Case(
            name="two_sample_energy_1d_floor",
            sizes=sizes,
            ours=lambda: uniforms(key),
            peers={},
            n=2 * n,
            note="floor: drawing one uniform per point and permutation (threefry)",
        ),
        Case(
            name="two_sample_mmd_5d",
            sizes=f"{sizes}, d=5",
            ours=lambda: dv.two_sample_test(x5j, y5j, key, statistic="mmd", n_permutations=N_PERMUTATIONS),
            peers={"numpy loop": lambda: _numpy_mmd_permutation_test(x5, y5, N_PERMUTATIONS)},
            n=2 * n,
            note="pooled Gram matrix once, one [B, N] x [N, N] product",
        ),
        Case(
            name="two_sample_mmd_5d_floor",
            sizes=f"{sizes}, d=5",
            ours=lambda: matmul(labels, gram),
            peers={},
            n=2 * n,
            note="floor: the [B, N] x [N, N] float32 matrix product alone",
        ),
        Case(
            name="bootstrap_wasserstein_1d",
            sizes=f"n=m={n}, B={N_RESAMPLES}",
            ours=lambda: dv.bootstrap(dv.wasserstein_1d, x1j, y1j, key, n_resamples=N_RESAMPLES),
            peers={"scipy": scipy_bootstrap},
            n=2 * n,
            note="resamples vmapped in chunks",
        ),
    ]
