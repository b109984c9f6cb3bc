"""k-nearest-neighbour KL estimator against the same estimator on scipy's cKDTree.

The estimator (Wang, Kulkarni and Verdu, 2009) with k neighbours:

    KL(P || Q) ~ d/n sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)),

rho_k(i) the distance from x_i to its k-th neighbour among the other x,
nu_k(i) to its k-th neighbour among the y. The peer builds two cKDTrees and
queries them on one thread (O(n log n) in low dimension); it is the
implementation a scipy user would write. Ours finds the neighbours with the
same tree on every core (CPU, d <= ``TREE_MAX_DIM``) or by blocked brute
force (above, and on GPU/TPU), then recomputes the distances in JAX so that
gradients flow. Goal: at least 1.5x the peer at n = 20,000 for d = 2, 5, 10;
at d = 50 ours is the brute force.
"""

from __future__ import annotations

import inspect

import jax
import numpy as np

import divergences as dv
from benchmarks._harness import Case, optional_peer

K = 5


def _scipy_peer(x: np.ndarray, y: np.ndarray, k: int):
    def build():
        from scipy.spatial import cKDTree

        def run():
            n, d = x.shape
            m = y.shape[0]
            rho = cKDTree(x).query(x, k=k + 1, workers=1)[0][:, k]  # the first neighbour is x_i itself
            nu = cKDTree(y).query(x, k=[k], workers=1)[0][:, 0]
            return d * np.mean(np.log(nu / rho)) + np.log(m / (n - 1))

        return run

    return optional_peer(build)


def knn_case(n: int, d: int, k: int = K) -> Case:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (0.5 + 1.2 * rng.standard_normal((n, d))).astype(np.float32)
    xj, yj = jax.device_put(x), jax.device_put(y)
    estimator = dv.knn_kl_divergence
    options = {"k": k} if "k" in inspect.signature(estimator).parameters else {}
    ours = jax.jit(lambda a, b: estimator(a, b, **options))
    return Case(
        name="knn_kl_divergence",
        sizes=f"n=m={n}, d={d}, k={k}",
        ours=lambda: ours(xj, yj),
        peers={"scipy cKDTree (1 thread)": _scipy_peer(x, y, k)},
        n=n,
    )


def cases(quick: bool) -> list[Case]:
    if not hasattr(dv, "knn_kl_divergence"):  # not merged yet: nothing to time
        return []
    if quick:
        return [knn_case(200, 4)]
    # The three low dimensions and one high at n = 20,000; a scaling series at d = 5.
    return [knn_case(n, 5) for n in (1_000, 5_000)] + [knn_case(20_000, d) for d in (2, 5, 10, 50)]
