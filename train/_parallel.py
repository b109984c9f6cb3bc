"""Data parallelism: a one-axis device mesh and the multi-host start-up.

How this maps to ``jax.pmap``: a pmap train step runs one copy per device on
that device's slice of the batch and averages gradients with
``lax.pmean(grads, "batch")``. Here the step is compiled once with
:func:`jax.jit` over a mesh with one axis, ``"data"``: the parameters and
optimizer states are *replicated* (``NamedSharding(mesh, P())``), the
per-sample arrays are *split* along ``"data"``
(``with_sharding_constraint(x, NamedSharding(mesh, P("data")))``), and the
means over the batch in the losses become a local sum plus an all-reduce that
XLA inserts: the same collective as pmap's ``pmean`` of the gradients, with
no per-device leading axis to manage. (In the installed JAX, ``pmap`` itself
is a wrapper over ``jit(shard_map)``.)

Multi-host: every process calls :func:`initialize_distributed` before
anything else touches JAX, then builds the same mesh over
``jax.devices()`` (all devices of all hosts); each host holds a full copy of
the (small) data set and the step draws the global batch from it, so the
program is identical on every host. :func:`put_replicated` places the state,
data and key on such a mesh, and :func:`gather` brings split results (the
evaluation samples) back to every host.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["DATA_AXIS", "make_mesh", "replicated", "split", "shard", "initialize_distributed", "put_replicated",
           "gather"]

DATA_AXIS = "data"


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of parameters and optimizer states: a full copy on every device of ``mesh``."""
    return NamedSharding(mesh, P())


def split(mesh: Mesh, ndim: int, axis: int = 0) -> NamedSharding:
    """The sharding of a per-sample array of rank ``ndim``: ``axis`` split along ``"data"``."""
    spec = [None] * ndim
    spec[axis] = DATA_AXIS
    return NamedSharding(mesh, P(*spec))


def shard(x: jax.Array, mesh: Mesh | None, axis: int = 0) -> jax.Array:
    """Inside a traced step: constrain ``x`` to be split along ``"data"`` (identity without a mesh)."""
    if mesh is None:
        return x
    return jax.lax.with_sharding_constraint(x, split(mesh, x.ndim, axis))


def make_mesh(devices: Sequence[jax.Device] | int | None = None) -> Mesh:
    """A one-axis mesh named ``"data"`` over ``devices``.

    Args:
      devices: a list of devices, a count (the first ``n`` of
        ``jax.devices()``), or None for every device (all hosts).
    """
    if devices is None:
        devices = jax.devices()
    elif isinstance(devices, int):
        all_devices = jax.devices()
        if not 1 <= devices <= len(all_devices):
            raise ValueError(f"`devices` must be in [1, {len(all_devices)}], got {devices}")
        devices = all_devices[:devices]
    return Mesh(np.asarray(list(devices)), (DATA_AXIS,))


def initialize_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Join a multi-host run (a thin wrapper over :func:`jax.distributed.initialize`).

    With all three arguments None, nothing happens (single host). On a
    cluster where JAX detects them (SLURM, TPU pods), pass only
    ``coordinator=""`` to let JAX fill them in.
    """
    if coordinator is None and num_processes is None and process_id is None:
        return
    if coordinator == "":
        jax.distributed.initialize()
        return
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)


def put_replicated(tree, mesh: Mesh):
    """Place a pytree of host or single-device arrays, the same on every
    process, replicated over ``mesh`` (which may span several hosts).

    One process: :func:`jax.device_put`. Several: ``jax.device_put`` refuses a
    sharding over devices of other processes, so each leaf is built with
    :func:`jax.make_array_from_callback` from this process's copy (PRNG key
    arrays through their raw key data).
    """
    sharding = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)


def gather(x: jax.Array) -> np.ndarray:
    """The whole of ``x`` on the host of every process (an all-gather across
    processes when ``x`` is split over devices of several hosts)."""
    if x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
