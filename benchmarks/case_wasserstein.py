"""Exact 1-D and sliced Wasserstein distances against scipy, POT and ott-jax.

* ``wasserstein_1d``: :func:`divergences.wasserstein_1d` (W1) against
  ``scipy.stats.wasserstein_distance`` and POT's ``ot.wasserstein_1d``, for
  n = m from 128 to 1e6 (two Gaussian samples, float32), under ``jax.jit``.
* ``wasserstein_1d_eager``: the same, called eagerly on NumPy arrays as a
  script calls scipy (n = 128, 1,000 and 10,000).
* ``sort_crossover``: our sort (:func:`divergences._sort.sort`, which picks
  the path by size) against each path forced, XLA's sort (as integer keys)
  and the host call, around ``HOST_SORT_MIN_SIZE``.
* ``sliced_wasserstein_eager``: :func:`divergences.sliced_wasserstein`
  called eagerly on NumPy arrays, against POT, at small n (d = 16, L = 50).
* ``sliced_wasserstein_floor``: the two projections ``[n, d] @ [d, L]``
  alone (the floor), with the whole ``sliced_wasserstein`` as its peer: the
  ratio is our time over the floor (goal: at most 1.5).
* ``sliced_wasserstein``: :func:`divergences.sliced_wasserstein` (SW2, random
  directions) against POT's ``ot.sliced_wasserstein_distance`` and ott-jax's
  ``ott.tools.sliced.sliced_wasserstein`` with the same number of directions:
  a scaling series in n at d = 16, and a grid over d and the number of
  directions that includes the MNIST-sized n = 10,000, d = 784, L = 128.

Every implementation draws its own directions (the work is the same, the
Monte-Carlo values differ). ott-jax returns SW2 squared, POT and we the root;
the difference is one square root.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

import divergences as dv
from benchmarks._harness import Case, Skipped, optional_peer


def _pair_1d(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n, dtype=np.float32)
    y = (1.0 + 2.0 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)
    return x, y


def _clouds(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    y = (0.5 + 1.5 * rng.standard_normal((n, d), dtype=np.float32)).astype(np.float32)
    return x, y


# Above this size scipy takes ~30 s a call on the shared 2-core machine
# (6 calls per case); its scaling is measured up to 1e6.
SCIPY_MAX_N = 1_000_000


def _w1d_peers(x: np.ndarray, y: np.ndarray) -> dict:
    """scipy's and POT's W1 of the same NumPy samples."""

    def scipy_peer():
        from scipy import stats

        return lambda: stats.wasserstein_distance(x, y)

    def pot_peer():
        import ot

        return lambda: ot.wasserstein_1d(x, y, p=1)

    n = len(x)
    return {
        "scipy": optional_peer(scipy_peer)
        if n <= SCIPY_MAX_N
        else Skipped(f"about 30 s a call on 2 cores; timed up to n={SCIPY_MAX_N}"),
        "POT": optional_peer(pot_peer),
    }


def wasserstein_1d_case(n: int) -> Case:
    x, y = _pair_1d(n)
    xj, yj = jax.device_put(x), jax.device_put(y)
    ours = jax.jit(dv.wasserstein_1d)
    return Case(name="wasserstein_1d", sizes=f"n={n}", ours=lambda: ours(xj, yj), peers=_w1d_peers(x, y), n=n, note="W1, m = n")


def wasserstein_1d_eager_case(n: int) -> Case:
    """The call as a script writes it: NumPy float32 samples in, no ``jit`` of the caller's."""
    x, y = _pair_1d(n)
    return Case(
        name="wasserstein_1d_eager",
        sizes=f"n={n}",
        ours=lambda: dv.wasserstein_1d(x, y),
        peers=_w1d_peers(x, y),
        n=n,
        note="W1, m = n; an eager call on NumPy arrays (the transfer to the device included)",
    )


def sort_crossover_case(n: int) -> Case:
    from divergences import _sort

    x = jax.device_put(_pair_1d(n)[0])
    ours = jax.jit(_sort.sort)
    xla = jax.jit(lambda a: _sort._xla_sort((a,), -1)[0])
    host_sort = lambda outs, b: _sort._np_sort(outs[0], b, -1)  # noqa: E731
    host = jax.jit(lambda a: _sort.host_call(host_sort, (jax.ShapeDtypeStruct(a.shape, a.dtype),), a, vmap_method="expand_dims")[0])
    if jax.default_backend() == "cpu":
        path = "host" if _sort.use_host_sort(n) else "XLA"
        note = f"float32 values; ours takes the {path} path on CPU (HOST_SORT_MIN_SIZE={_sort.HOST_SORT_MIN_SIZE})"
        host_peer = lambda: host(x)  # noqa: E731
    else:  # the host call is a CPU path: elsewhere ours is XLA's sort at every size
        note = "float32 values; ours is XLA's sort off the CPU"
        host_peer = Skipped("the host call is taken on CPU only")
    return Case(
        name="sort_crossover",
        sizes=f"n={n}",
        ours=lambda: ours(x),
        peers={"XLA sort (integer keys)": lambda: xla(x), "host np.sort": host_peer},
        note=note,
    )


def sliced_floor_case(n: int, d: int, n_projections: int) -> Case:
    x, y = _clouds(n, d)
    xj, yj = jax.device_put(x), jax.device_put(y)
    key = jax.random.key(0)
    theta = jax.random.normal(key, (d, n_projections))
    floor = jax.jit(lambda a, b, t: (t.T @ a.T, t.T @ b.T))
    ours = jax.jit(functools.partial(dv.sliced_wasserstein, n_projections=n_projections, p=2))
    return Case(
        name="sliced_wasserstein_floor",
        sizes=f"n={n}, d={d}, directions={n_projections}",
        ours=lambda: floor(xj, yj, theta),
        peers={"sliced_wasserstein (ours)": lambda: ours(xj, yj, key)},
        note="floor: the two [n, d] @ [d, L] projections alone; the ratio is SW time / floor time",
    )


def _sliced_pot_peer(x: np.ndarray, y: np.ndarray, n_projections: int):
    """POT's SW2 of the same NumPy clouds with as many directions (its own, seeded)."""

    def build():
        import ot

        return lambda: ot.sliced_wasserstein_distance(x, y, n_projections=n_projections, p=2, seed=0)

    return optional_peer(build)


def sliced_wasserstein_case(n: int, d: int, n_projections: int) -> Case:
    x, y = _clouds(n, d)
    xj, yj = jax.device_put(x), jax.device_put(y)
    key = jax.random.key(0)
    ours = jax.jit(functools.partial(dv.sliced_wasserstein, n_projections=n_projections, p=2))

    def ott_peer():
        from ott.tools import sliced

        fn = jax.jit(lambda a, b, k: sliced.sliced_wasserstein(a, b, n_proj=n_projections, rng=k)[0])
        return lambda: fn(xj, yj, key)

    return Case(
        name="sliced_wasserstein",
        sizes=f"n={n}, d={d}, directions={n_projections}",
        ours=lambda: ours(xj, yj, key),
        peers={"POT": _sliced_pot_peer(x, y, n_projections), "ott-jax": optional_peer(ott_peer)},
        n=n,
        note="SW2, m = n",
    )


def sliced_wasserstein_eager_case(n: int, d: int, n_projections: int) -> Case:
    """The call as a script writes it: NumPy float32 clouds in, no ``jit`` of the caller's."""
    x, y = _clouds(n, d)
    key = jax.random.key(0)

    return Case(
        name="sliced_wasserstein_eager",
        sizes=f"n={n}, d={d}, directions={n_projections}",
        ours=lambda: dv.sliced_wasserstein(x, y, key, n_projections=n_projections),
        peers={"POT": _sliced_pot_peer(x, y, n_projections)},
        n=n,
        note="SW2, m = n; an eager call on NumPy arrays (the transfer to the device included)",
    )


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            *(wasserstein_1d_case(n) for n in (100, 1_000, 10_000)),
            wasserstein_1d_eager_case(100),
            sliced_wasserstein_case(500, 8, 16),
            sliced_floor_case(500, 8, 16),
            sort_crossover_case(1_000),
        ]
    out = [wasserstein_1d_case(n) for n in (128, 256, 512, 1_000, 10_000, 100_000, 1_000_000)]
    out += [wasserstein_1d_eager_case(n) for n in (128, 1_000, 10_000)]
    out += [sort_crossover_case(n) for n in (512, 1_024, 2_048, 4_096, 8_192)]
    out += [sliced_floor_case(10_000, 784, 128)]
    out += [sliced_wasserstein_eager_case(n, 16, 50) for n in (100, 1_000)]
    # Scaling in n at fixed d and directions (3 decades).
    out += [sliced_wasserstein_case(n, 16, 8) for n in (100, 1_000, 10_000, 100_000)]
    # The grid over dimension and directions, MNIST-sized included.
    out += [
        sliced_wasserstein_case(10_000, 784, 128),
        sliced_wasserstein_case(10_000, 784, 32),
        sliced_wasserstein_case(1_000, 784, 128),
        sliced_wasserstein_case(10_000, 64, 128),
    ]
    return out
