"""MMD with ``block_size`` against the dense jnp MMD a user would write.

Both compute the unbiased MMD^2 with a Gaussian kernel of fixed bandwidth on
n = m samples in d = 16. The dense version materialises the three Gram
matrices (n^2 floats each), so it runs only where that fits comfortably
(n <= 10,000: 400 MB per matrix); beyond, it is reported as skipped. Ours
sums the Gram matrices ``block_size`` rows at a time, so its memory is
O(block_size * n): the peak-memory column is the point of this case.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import divergences as dv
from benchmarks._harness import Case, Skipped

D = 16
BANDWIDTH = 4.0
BLOCK_SIZE = 512
DENSE_MAX_N = 10_000


@jax.jit
def dense_mmd(x: jax.Array, y: jax.Array) -> jax.Array:
    """Unbiased MMD^2 with whole Gram matrices (the textbook jnp version)."""

    def gram(a, b):
        d2 = jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2 * a @ b.T
        return jnp.exp(-jnp.maximum(d2, 0) / (2 * BANDWIDTH**2))

    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = gram(x, x), gram(y, y), gram(x, y)
    return (
        (jnp.sum(kxx) - jnp.trace(kxx)) / (n * (n - 1))
        + (jnp.sum(kyy) - jnp.trace(kyy)) / (m * (m - 1))
        - 2 * jnp.mean(kxy)
    )


def mmd_case(n: int, block_size: int = BLOCK_SIZE, *, timed: bool = True) -> Case:
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.standard_normal((n, D), dtype=np.float32))
    y = jax.device_put((0.25 + rng.standard_normal((n, D), dtype=np.float32)).astype(np.float32))
    ours = jax.jit(functools.partial(dv.mmd, bandwidth=BANDWIDTH, block_size=block_size))
    if n <= DENSE_MAX_N:
        dense = lambda: dense_mmd(x, y)  # noqa: E731
    else:
        gib = 3 * n * n * 4 / 2**30
        dense = Skipped(f"needs three {n}x{n} float32 Gram matrices ({gib:.0f} GiB)")
    return Case(
        name="mmd",
        sizes=f"n=m={n}, d={D}, block_size={block_size}",
        ours=lambda: ours(x, y),
        peers={"dense jnp": dense},
        n=n if timed else None,
        note="unbiased, Gaussian kernel" + ("" if timed else "; memory only: one call takes minutes on 2 cores"),
        timed=timed,
    )


def cases(quick: bool) -> list[Case]:
    if quick:
        return [mmd_case(300, block_size=128), mmd_case(2_000, block_size=128, timed=False)]
    # Timed over 3 decades; at n = m = 100,000 (3e10 kernel values) only the
    # memory of the compiled code is reported.
    return [*(mmd_case(n) for n in (10, 100, 1_000, 10_000)), mmd_case(100_000, timed=False)]
