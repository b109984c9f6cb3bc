"""The WGAN-GP train step against a plain PyTorch eager implementation of the same toy.

Both sides: generator and critic MLPs ``2 -> H -> H -> H -> out`` (ReLU),
batch 256, 5 critic steps with the gradient penalty (lambda 10), Adam
(1e-4, betas 0.5/0.9), data drawn from the 8 Gaussians, noise dimension 2.
One timed call runs ``K = 10`` generator steps (50 critic steps): ours is one
compiled dispatch of :func:`train.make_multi_step`; the peer loops in Python.

``python -m benchmarks --only train_step`` runs it in the harness;
``python -m benchmarks.case_train_step`` prints the side-by-side steps per
second, the ratio, and at H = 512 the achieved share of the machine's
measured float32 matmul throughput (matmul FLOPs of one step counted from
the step's jaxpr, scan bodies times their length).
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import block

K = 10  # generator steps per timed call
BATCH = 256
N_CRITIC = 5


def _ours(width: int, steps: int = K):
    from divergences.train import TrainConfig, load_dataset, make_train_step

    ds = load_dataset("8gaussians", n_train=20000, n_test=100)
    cfg = TrainConfig(objective="wgan-gp", width=width, depth=3, critic_width=width, critic_depth=3,
                      batch_size=BATCH, z_dim=2, n_critic=N_CRITIC,
                      # the same update as the PyTorch loop below (wgan-gp's own defaults differ since)
                      lr=1e-4, critic_lr=1e-4, lr_decay="constant", gp_weight=10.0)
    ts = make_train_step(cfg, 2)
    data = jnp.asarray(ds.train)
    return multi_step_thunk(ts, data, steps), ts, data


def multi_step_thunk(ts, data: jax.Array, steps: int):
    """A timed call of ``steps`` fused generator steps of ``ts`` on ``data``; the state carries over between calls."""
    from divergences.train import make_multi_step

    multi = make_multi_step(ts, steps)
    key = jax.random.key(1)
    holder = {"state": ts.init(jax.random.key(0))}

    def run() -> Any:
        state, metrics = multi(holder["state"], data, key)
        if not isinstance(state.step, jax.core.Tracer):  # the harness also traces thunks (memory analysis)
            holder["state"] = state
        return metrics["g_loss"]  # not donated by the next call, unlike the state

    return run


def torch_device() -> str:
    """Where the PyTorch peer runs: on the GPU when JAX runs on one and PyTorch sees one, else on the CPU.

    The same GPU for both (one per machine where these benchmarks run).
    """
    import torch

    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def _torch(width: int, steps: int = K):
    import torch  # optional peer
    from torch import nn

    from divergences.train import load_dataset

    torch.manual_seed(0)
    device = torch.device(torch_device())

    def mlp(out: int) -> nn.Module:
        return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                             nn.Linear(width, width), nn.ReLU(), nn.Linear(width, out)).to(device)

    gen, critic = mlp(2), mlp(1)
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9))
    data = torch.from_numpy(load_dataset("8gaussians", n_train=20000, n_test=100).train).to(device)

    def step() -> Any:
        for _ in range(N_CRITIC):
            real = data[torch.randint(0, len(data), (BATCH,), device=device)]
            with torch.no_grad():
                fake = gen(torch.randn(BATCH, 2, device=device))
            eps = torch.rand(BATCH, 1, device=device)
            x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
            gp = ((grad.norm(dim=1) - 1) ** 2).mean()
            out = critic(torch.cat([real, fake]))
            loss = out[BATCH:].mean() - out[:BATCH].mean() + 10.0 * gp
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
        g_loss = -critic(gen(torch.randn(BATCH, 2, device=device))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return g_loss.detach()

    def run() -> Any:
        for _ in range(steps):
            g_loss = step()
        return g_loss  # on a GPU, waiting for it (benchmarks._harness.block) waits for the whole call

    return run


def cases(quick: bool) -> list:
    from benchmarks._harness import Case

    def optional_peer(build):
        # torch is optional: a missing install becomes a thunk that raises
        # ImportError, which the harness reports as "not installed".
        try:
            return build()
        except ImportError as exc:
            error = exc

            def missing():
                raise error

            return missing

    try:
        where = "; PyTorch on the same GPU" if torch_device() == "cuda" else ""
    except ImportError:
        where = ""
    out = []
    for width in (128,) if quick else (128, 512):
        ours, _, _ = _ours(width)
        out.append(Case(
            name="train_step",
            sizes=f"wgan-gp H={width}, batch={BATCH}, n_critic={N_CRITIC}, {K} steps/call",
            ours=ours,
            peers={"torch eager": optional_peer(lambda w=width: _torch(w))},
            note="one call = 10 generator + 50 critic updates" + where,
        ))
    return out


# ---------------------------------------------------------------------------
# Standalone: side-by-side steps per second and the matmul-throughput share.


def matmul_flops(closed_jaxpr) -> float:
    """Matmul FLOPs of a jaxpr: 2 x output size x contracted size per dot, scans x length."""

    def walk(jaxpr) -> float:
        total = 0.0
        for eqn in jaxpr.eqns:
            name = eqn.primitive.name
            if name == "dot_general":
                (lhs_c, _), _ = eqn.params["dimension_numbers"]
                lhs = eqn.invars[0].aval.shape
                contracted = math.prod(lhs[i] for i in lhs_c)
                total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * contracted
            mult = eqn.params.get("length", 1) if name == "scan" else 1
            for p in eqn.params.values():
                for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                    inner = getattr(sub, "jaxpr", None)
                    if inner is not None and hasattr(sub, "consts"):  # ClosedJaxpr
                        total += mult * walk(inner)
                    elif hasattr(sub, "eqns"):  # Jaxpr
                        total += mult * walk(sub)
        return total

    return walk(closed_jaxpr.jaxpr)


def peak_matmul_flops(n: int = 1024, repeats: int = 10) -> float:
    """Measured float32 matmul throughput of the default device (FLOP/s), best of ``repeats``."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def torch_threads(n: int | None = None) -> int:
    import torch

    if n is not None:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def main(repeats: int = 7) -> None:
    print(f"WGAN-GP toy, batch {BATCH}, {N_CRITIC} critic steps, {K} generator steps per call; "
          f"device {jax.devices()[0].device_kind}")
    peak = peak_matmul_flops()
    print(f"measured float32 matmul throughput (1024x1024): {peak / 1e9:.1f} GFLOP/s")
    print("| H | ours steps/s | torch eager steps/s | ratio | ours matmul GFLOP/s | share of measured peak |")
    print("|---|---|---|---|---|---|")
    for width in (128, 512):
        ours, ts, data = _ours(width)
        jax.block_until_ready(ours())  # compile
        try:
            peer = _torch(width)
            peer()
        except ImportError:
            peer = None
        # Interleaved so that the load of a shared machine hits both alike.
        # torch runs with its default threads and with one thread (OpenMP
        # threads that spin on an oversubscribed machine can be far slower);
        # the faster of the two is the peer figure, a conservative ratio.
        t_ours, t_peer = [], {}
        threads = sorted({torch_threads(), 1}) if peer is not None else []
        for _ in range(repeats):
            t_ours.append(_median_time(ours, 1))
            for n in threads:
                torch_threads(n)
                t_peer.setdefault(n, []).append(_median_time(peer, 1))
        if threads:
            torch_threads(max(threads))
        so = K / float(np.median(t_ours))
        sp = max((K / float(np.median(t)) for t in t_peer.values()), default=float("nan"))
        state = ts.init(jax.random.key(0))
        batch = jnp.zeros((ts.n_slices, BATCH, 2), jnp.float32)
        flops = matmul_flops(jax.make_jaxpr(ts.step)(state, batch, jax.random.key(0)))
        achieved = flops * so
        print(f"| {width} | {so:.1f} | {sp:.1f} | {so / sp:.2f}x | {achieved / 1e9:.1f} | {achieved / peak:.0%} |", flush=True)


if __name__ == "__main__":
    main()
