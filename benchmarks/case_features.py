"""Feature-space metrics: Fréchet distance, KID and precision/recall on Inception-sized features.

Peers, each the implementation a user would otherwise run:

* Fréchet distance: the pytorch-fid / TTUR formula, ``numpy.cov`` and
  ``scipy.linalg.sqrtm`` in float64. Ours in float32 (the default) and in
  float64 (``jax.enable_x64``); the note gives each one's difference from
  scipy's value.
* KID: clean-fid's NumPy loop (``kernel_distance``: subsets drawn with
  ``np.random.choice(..., replace=False)``, the cubic kernel, the unbiased
  MMD^2), in float32 like ours.
* precision/recall: the ``prdc`` package, which computes precision, recall,
  density and coverage from three full distance matrices (sklearn); ours
  computes precision and recall in three blocked passes (two of them the k-NN
  radii).

The features are synthetic and Inception-like: non-negative (ReLU'd),
correlated through a rank-64 factor, 2,048-dimensional.

Sizes: 50,000 x 2,048 for the Fréchet distance and KID (100 subsets of
1,000, the torchmetrics and clean-fid default), 10,000 x 2,048 for
precision/recall against ``prdc``; precision/recall at 50,000 x 50,000 in
2,048-d is compiled for its XLA memory, not run (``prdc`` would hold three
50,000-square float64 distance matrices, 60 GB).
"""

from __future__ import annotations

import contextlib
import io

import jax
import numpy as np

import divergences as dv
from benchmarks._harness import Case, optional_peer

D = 2_048


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n, 64), dtype=np.float32) @ rng.standard_normal((64, d), dtype=np.float32) / 8
    x = factors + 0.5 * rng.standard_normal((n, d), dtype=np.float32) + shift
    return np.maximum(x, 0)


def _fid_scipy(x: np.ndarray, y: np.ndarray) -> float:
    import scipy.linalg

    x, y = x.astype(np.float64), y.astype(np.float64)
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def frechet_case(n: int, d: int = D) -> list[Case]:
    x, y = _features(n, d, 0), _features(n, d, 1, shift=0.05)
    xj, yj = jax.device_put(x), jax.device_put(y)
    ours32 = jax.jit(dv.frechet_distance)
    with jax.enable_x64(True):
        x64, y64 = jax.device_put(x.astype(np.float64)), jax.device_put(y.astype(np.float64))
        ours64 = jax.jit(dv.frechet_distance)

    def run64():
        with jax.enable_x64(True):
            return ours64(x64, y64)

    ref = _fid_scipy(x, y)
    err32 = abs(float(ours32(xj, yj)) - ref) / ref
    err64 = abs(float(run64()) - ref) / ref
    scipy_peer = optional_peer(lambda: (lambda: _fid_scipy(x, y)))
    return [
        Case(
            name="frechet_distance",
            sizes=f"n=m={n}, d={d}, float32",
            ours=lambda: ours32(xj, yj),
            peers={},
            note=f"relative difference from scipy's float64 value {err32:.1e}",
        ),
        Case(
            name="frechet_distance",
            sizes=f"n=m={n}, d={d}, float64 (x64)",
            ours=run64,
            peers={"scipy sqrtm (float64)": scipy_peer},
            note=f"relative difference from scipy's value {err64:.1e}",
        ),
    ]


def _kid_numpy(x: np.ndarray, y: np.ndarray, n_subsets: int, subset_size: int, seed: int = 0):
    # clean-fid's kernel_distance, returning the per-subset values' mean and std as torchmetrics does.
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    m = subset_size
    values = []
    for _ in range(n_subsets):
        a = y[rng.choice(y.shape[0], m, replace=False)]
        b = x[rng.choice(x.shape[0], m, replace=False)]
        kk = (a @ a.T / d + 1) ** 3 + (b @ b.T / d + 1) ** 3
        kab = (a @ b.T / d + 1) ** 3
        values.append(((kk.sum() - np.diag(kk).sum()) / (m - 1) - kab.sum() * 2 / m) / m)
    return float(np.mean(values)), float(np.std(values))


def kid_case(n: int, n_subsets: int, subset_size: int, d: int = D) -> Case:
    x, y = _features(n, d, 2), _features(n, d, 3, shift=0.05)
    xj, yj = jax.device_put(x), jax.device_put(y)
    key = jax.random.key(0)
    ours = jax.jit(lambda a, b, k: dv.kernel_inception_distance(a, b, key=k, n_subsets=n_subsets, subset_size=subset_size))
    return Case(
        name="kernel_inception_distance",
        sizes=f"n=m={n}, d={d}, {n_subsets} subsets of {subset_size}",
        ours=lambda: ours(xj, yj, key),
        peers={"numpy (clean-fid loop)": optional_peer(lambda: (lambda: _kid_numpy(x, y, n_subsets, subset_size)))},
        note="float32",
    )


def _prdc_peer(real: np.ndarray, fake: np.ndarray, k: int):
    def build():
        import prdc

        def run():
            with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
                return prdc.compute_prdc(real, fake, nearest_k=k)

        return run

    return optional_peer(build)


def prdc_case(n: int, d: int = D, k: int = 3, timed: bool = True) -> Case:
    if timed:
        real, fake = _features(n, d, 4), _features(n, d, 5, shift=0.05)
    else:  # compiled for its memory only: the values do not matter
        real = fake = np.zeros((n, d), np.float32)
    rj, fj = jax.device_put(real), jax.device_put(fake)
    ours = jax.jit(lambda a, b: dv.precision_recall(a, b, k=k))
    peers = {"prdc (all four metrics)": _prdc_peer(real, fake, k)} if timed else {}
    return Case(
        name="precision_recall",
        sizes=f"n=m={n}, d={d}, k={k}, block_size=512",
        ours=lambda: ours(rj, fj),
        peers=peers,
        note="float32; three blocked passes" + ("" if timed else "; memory only (one call takes minutes on 2 cores)"),
        timed=timed,
    )


def cases(quick: bool) -> list[Case]:
    if not hasattr(dv, "frechet_distance"):
        return []
    if quick:
        return [*frechet_case(300, 64), kid_case(300, 5, 100, 64), prdc_case(300, 64)]
    return [*frechet_case(50_000), kid_case(50_000, 100, 1_000), prdc_case(10_000), prdc_case(50_000, timed=False)]
