"""A fast sort on every platform, differentiable and batchable.

Exact 1-D optimal transport is a sort, so the speed of
:func:`divergences.wasserstein_1d` and :func:`divergences.sliced_wasserstein`
is the speed of the sort. On GPU and TPU, XLA's sort is fast. On CPU it is
not: for a million float32 values ``jax.jit(jnp.sort)`` is an order of
magnitude slower than ``np.sort``, and above a few thousand values the host
sort wins even with its fixed cost (the ``sort_crossover`` case of
``benchmarks/`` measures both side by side). How fast ``np.sort`` is
depends on the SIMD code NumPy dispatches to on the host: on AMD Zen 4 its
AVX-512 sort is several times slower than its AVX2 sort (a microcoded
compress-store; NumPy's ``NPY_DISABLE_CPU_FEATURES``, set before Python
starts, selects the AVX2 code). This module never changes NumPy's
dispatch. It chooses the sort per platform with :func:`jax.lax.platform_dependent`,
and by size:

* **CPU, calls of at least** :data:`HOST_SORT_MIN_SIZE` **values**
  (:data:`HOST_ARGSORT_MIN_SIZE` for a permutation), **where host calls
  are usable** (:func:`host_callbacks_usable`): a host call
  (:func:`host_call`) into NumPy, which writes straight into XLA's output
  buffers where JAX has buffer callbacks. Values only
  (:func:`sort` without differentiation) are copied into the output and
  sorted there in place by NumPy's sort. A permutation
  (:func:`argsort`) packs each float32 key, mapped to an order-preserving
  integer, with its index into one int64 and sorts those with ``np.sort``
  (NumPy's SIMD quicksort): a *stable* argsort several times faster than
  ``np.argsort(kind="stable")``. float64 keys fall back to
  ``np.argsort(kind="stable")``.
* **CPU, smaller calls; GPU, TPU**: XLA's sort (values as order-preserving
  integer keys, which XLA compares faster than floats) and
  ``jnp.argsort(stable=True)``. A host call has a fixed cost that dominates
  a small sort, where XLA's sort is cheap.

Gradients never pass through the host call: the permutation is a constant
of the derivative, and values are gathered with
:func:`jnp.take_along_axis`, whose derivative is a gather (forward mode) or a
scatter-add (reverse mode). :func:`sort` has a custom JVP, so an
undifferentiated call pays only for the values, and a differentiated call
pays for the permutation. :func:`sort_many` and :func:`argsort_many` sort
several arrays (the two samples of a distance) in one host call. Under
:func:`jax.vmap` a ``custom_vmap`` rule makes the choice again with the
batched shapes, so a batch of small problems is one host call when the batch
is large in all (NumPy sorts along the last axis for any leading shape), and
never a loop.

All functions work along the last axis and give the same result as their
``jnp`` counterparts: ties keep their input order (stable), and ``-0.0``
and ``0.0`` compare equal. NaN sorts last (and ``-NaN`` first on CPU);
library functions validate their inputs for NaN before sorting.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["argsort", "argsort_many", "sort", "sort_many", "sort_with_permutation", "searchsorted", "use_host_sort"]


# --------------------------------------------------------------------------
# Host (NumPy) implementations, used on CPU. Each writes its result into
# ``out`` (a NumPy view of the output buffer, see :func:`host_call`). ``axis``
# is negative, so that the leading axes that ``vmap`` adds
# (``vmap_method="expand_dims"``) do not move it.

try:
    from jax.experimental.buffer_callback import buffer_callback as _buffer_callback
except ImportError:  # a JAX without buffer callbacks: host_call falls back to pure_callback
    _buffer_callback = None

# Rows of at least this many values in all are sorted by several threads
# (NumPy's sorts release the GIL).
_PARALLEL_MIN_SIZE = 1 << 18


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def host_callbacks_usable() -> bool:
    """Whether this process may call the host (:func:`host_call`) from a CPU program.

    Always, where JAX has buffer callbacks (the host writes into XLA's own
    buffers). Without them :func:`host_call` is a :func:`jax.pure_callback`,
    and JAX copies its arguments into new CPU arrays on the XLA CPU client's
    thread pool, which has one thread per usable core. With one usable core
    (an affinity mask of one CPU: ``taskset -c 0``, a one-core batch-system
    slot) that thread is the one running the program that waits on the
    callback, and reading the arguments waited forever in our tests (JAX
    0.10). The host paths are then not taken: XLA's sort and the brute-force
    neighbour search give the same values.
    """
    return _buffer_callback is not None or usable_cores() >= 2


def host_call(fn, out_types, *xs, vmap_method: str):
    """``fn(outs, *arrays)`` run on the host from a CPU program; returns the outputs.

    ``fn`` receives NumPy arrays: the outputs (shapes and dtypes of the
    :class:`jax.ShapeDtypeStruct` tuple ``out_types``) to fill in place, and
    the inputs, which it must not write. Where JAX has buffer callbacks
    (:mod:`jax.experimental.buffer_callback`) the arrays are views of XLA's
    own buffers, so nothing is copied in or out (for a large sort those
    copies are a good part of the call's time). Otherwise this is a
    :func:`jax.pure_callback` that allocates the outputs. ``fn`` must not keep
    the arrays after it returns. Not differentiable (callers put it under a
    custom derivative or ``stop_gradient``).
    """
    out_types = tuple(out_types)
    if _buffer_callback is not None:

        def in_place(ctx, outs, *args):
            del ctx
            fn(tuple(np.asarray(o) for o in outs), *(np.asarray(a) for a in args))

        return tuple(_buffer_callback(in_place, out_types, vmap_method=vmap_method)(*xs))

    def returning(*args):
        # Host copies of the arguments are taken here, on the calling thread,
        # not by a pool's threads (see host_callbacks_usable).
        args = tuple(np.asarray(a) for a in args)
        outs = tuple(np.empty(t.shape, t.dtype) for t in out_types)
        fn(outs, *args)
        return outs

    return tuple(jax.pure_callback(returning, out_types, *xs, vmap_method=vmap_method))


def _by_rows(fn, out: np.ndarray, *xs: np.ndarray) -> None:
    """``fn(out_block, *x_blocks)`` over blocks of rows (all but the last axis), in threads when large.

    ``out`` and ``xs`` have the same leading shape; ``out`` is C-contiguous.
    """
    workers = min(usable_cores(), 8)
    outs = out.reshape(math.prod(out.shape[:-1]), out.shape[-1])
    rows = [x.reshape(outs.shape[0], x.shape[-1]) for x in xs]
    if workers < 2 or outs.shape[0] < 2 or out.size < _PARALLEL_MIN_SIZE:
        fn(outs, *rows)
        return
    bounds = np.linspace(0, outs.shape[0], min(workers, outs.shape[0]) + 1).astype(int)

    def work(i):
        block = slice(bounds[i], bounds[i + 1])
        fn(outs[block], *(r[block] for r in rows))

    with concurrent.futures.ThreadPoolExecutor(len(bounds) - 1) as pool:
        list(pool.map(work, range(len(bounds) - 1)))


def _np_argsort(out: np.ndarray, x: np.ndarray, axis: int) -> None:
    """Stable argsort of ``x`` along ``axis``, moved last, as int32 into ``out`` (see the module docstring)."""
    _by_rows(_argsort_rows, out, np.moveaxis(x, axis, -1))


def _argsort_rows(out: np.ndarray, x: np.ndarray) -> None:
    n = x.shape[-1]
    if n == 0:
        return
    if x.dtype == np.float32 and n < 2**31:
        # Adding 0 turns -0.0 into +0.0, so that the two compare equal.
        bits = (x + np.float32(0)).view(np.int32)
        # Order-preserving map of IEEE floats onto signed integers: negative
        # floats have their magnitude bits flipped.
        keys = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))
        packed = keys.astype(np.int64) << np.int64(32)
        packed |= np.arange(n, dtype=np.int64)
        packed.sort(axis=-1)
        np.copyto(out, packed, casting="unsafe")  # keeps the low 32 bits: the index
        return
    out[...] = np.argsort(x + x.dtype.type(0), axis=-1, kind="stable")


def _np_sort(out: np.ndarray, x: np.ndarray, axis: int) -> None:
    """``x`` sorted along ``axis``, moved last, into ``out``: a copy, sorted in place."""
    np.copyto(out, np.moveaxis(x, axis, -1))
    _by_rows(lambda rows: rows.sort(axis=-1), out)


def _np_searchsorted(out: np.ndarray, a: np.ndarray, v: np.ndarray, side: str) -> None:
    batch = out.shape[:-1]
    a = np.broadcast_to(a, batch + a.shape[-1:]).reshape(-1, a.shape[-1])
    v = np.broadcast_to(v, out.shape).reshape(-1, v.shape[-1])
    rows = out.reshape(-1, out.shape[-1])
    for i in range(a.shape[0]):
        rows[i] = np.searchsorted(a[i], v[i], side=side)


# --------------------------------------------------------------------------
# Platform- and size-dependent primitives.

# A host call has a fixed cost (the callback's dispatch) that XLA's own sort
# does not; below these many values in one call (every array and every batch
# row together) XLA's sort is the faster one on CPU too. The crossovers are
# measured by ``python -m benchmarks --only sort_crossover``: values (sorted
# by XLA as integer keys, see ``_xla_sort``) and permutations differ.
HOST_SORT_MIN_SIZE = 2048
HOST_ARGSORT_MIN_SIZE = 1024


def _moved_shape(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    shape = list(shape)
    n = shape.pop(axis)
    return tuple(shape) + (n,)


def _neg_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"`axis` {axis} is out of range for an array of rank {ndim}")
    return axis % ndim - ndim


def _total_size(xs) -> int:
    return sum(math.prod(x.shape) for x in xs)


def use_host_sort(size: int, *, permutation: bool = False) -> bool:
    """Whether a sort of ``size`` values in all goes to the host on CPU (elsewhere XLA always sorts).

    Never where host calls are unusable: one usable core on a JAX without
    buffer callbacks (see :func:`host_callbacks_usable`).
    """
    return size >= (HOST_ARGSORT_MIN_SIZE if permutation else HOST_SORT_MIN_SIZE) and host_callbacks_usable()


def _float_keys(x: jax.Array) -> jax.Array:
    """Order-preserving map of IEEE floats onto signed integers of the same width (an involution)."""
    bits = jax.lax.bitcast_convert_type(x, jnp.dtype(f"int{8 * x.dtype.itemsize}"))
    return bits ^ ((bits >> (8 * x.dtype.itemsize - 1)) & jnp.array(np.iinfo(bits.dtype).max, bits.dtype))


def _xla_argsort(xs, axis):
    return tuple(jnp.moveaxis(jnp.argsort(x, axis=axis, stable=True).astype(jnp.int32), axis, -1) for x in xs)


def _xla_sort_one(x, axis):
    x = jnp.moveaxis(x, axis, -1)
    if x.dtype not in (jnp.float32, jnp.float64):
        return jnp.sort(x, axis=-1)
    # XLA's CPU sort compares integers several times faster than floats (whose
    # comparator orders NaN and signed zeros); the map is its own inverse.
    return jax.lax.bitcast_convert_type(_float_keys(jnp.sort(_float_keys(x), axis=-1)), x.dtype)


def _xla_sort(xs, axis):
    return tuple(_xla_sort_one(x, axis) for x in xs)


def _host_many(fn, axis):
    """``fn(out, x, axis)`` for each pair of outputs and inputs: the arrays side by side when large."""

    def run(outs, *xs):
        if len(xs) > 1 and sum(x.size for x in xs) >= _PARALLEL_MIN_SIZE and usable_cores() > 1:
            # NumPy's sorts release the GIL.
            with concurrent.futures.ThreadPoolExecutor(len(xs)) as pool:
                list(pool.map(lambda pair: fn(*pair, axis), zip(outs, xs)))
        else:
            for out, x in zip(outs, xs):
                fn(out, x, axis)

    return run


def _dispatch(xs, axis, host_fn, xla_fn, out_dtype):
    """``xla_fn(xs, axis)`` or, on CPU for large calls, ``host_fn`` through one host call for all of ``xs``."""
    if not use_host_sort(_total_size(xs), permutation=out_dtype is not None):
        return xla_fn(xs, axis)

    def on_cpu(*xs):
        outs = tuple(jax.ShapeDtypeStruct(_moved_shape(x.shape, axis), out_dtype or x.dtype) for x in xs)
        return host_call(_host_many(host_fn, axis), outs, *xs, vmap_method="expand_dims")

    return jax.lax.platform_dependent(*xs, cpu=on_cpu, default=lambda *xs: xla_fn(xs, axis))


@functools.lru_cache(maxsize=None)
def _batchable(host_fn, xla_fn, out_dtype, axis: int):
    """The sort of a tuple of arrays, re-dispatched by size under ``vmap``.

    A ``custom_vmap`` rule sees the batched shapes, so a ``vmap`` over many
    small problems is one host call when their total size is large (and
    XLA's sort when it is small), not a choice made per problem.
    """

    @jax.custom_batching.custom_vmap
    def fn(xs):
        return _dispatch(xs, axis, host_fn, xla_fn, out_dtype)

    @fn.def_vmap
    def rule(axis_size, in_batched, xs):
        (batched,) = in_batched
        xs = tuple(x if b else jnp.broadcast_to(x, (axis_size, *x.shape)) for x, b in zip(xs, batched))
        # The batch axis is leading, and ``axis`` negative: the same function
        # applies (and, under an outer vmap, its rule again).
        return fn(xs), tuple(True for _ in xs)

    return fn


def argsort_many(xs, axis: int = -1) -> tuple[jax.Array, ...]:
    """Stable argsorts of several arrays along ``axis`` (moved last), as int32, in one call.

    One host call (CPU, large) or XLA's sort (small, or GPU/TPU) for all of
    them: see :func:`argsort`.
    """
    xs = tuple(jax.lax.stop_gradient(jnp.asarray(x)) for x in xs)
    axes = {_neg_axis(axis, x.ndim) for x in xs}
    if len(axes) != 1:
        raise ValueError("`axis` must index the same dimension, counted from the end, of every array")
    return _batchable(_np_argsort, _xla_argsort, jnp.int32, axes.pop())(xs)


def argsort(x: ArrayLike, axis: int = -1) -> jax.Array:
    """Stable argsort along ``axis``, as int32, fast on every platform.

    Equals ``jnp.moveaxis(jnp.argsort(x, axis=axis, stable=True), axis, -1)``:
    the sorted axis comes **last** in the result (for ``axis=-1``, exactly
    ``jnp.argsort``). Not differentiable (an integer array); differentiate
    through a gather with it. On CPU, calls of at least
    :data:`HOST_ARGSORT_MIN_SIZE` values (under ``vmap``: all problems together)
    go to NumPy, smaller ones to XLA's sort.

    Args:
      x: real array.
      axis: the axis to sort along.

    Returns:
      int32 array of ``x``'s shape with ``axis`` moved last.
    """
    return argsort_many((x,), axis)[0]


def _sort_values_many(xs, axis: int):
    return _batchable(_np_sort, _xla_sort, None, axis)(xs)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _sort(xs, axis: int):
    return _sort_values_many(xs, axis)


@_sort.defjvp
def _sort_jvp(axis, primals, tangents):
    (xs,), (dxs,) = primals, tangents
    perms = argsort_many(xs, axis)
    take = lambda a, perm: jnp.take_along_axis(jnp.moveaxis(a, axis, -1), perm, axis=-1)
    return tuple(take(x, q) for x, q in zip(xs, perms)), tuple(take(dx, q) for dx, q in zip(dxs, perms))


def sort_many(xs, axis: int = -1) -> tuple[jax.Array, ...]:
    """Sorts of several arrays along ``axis`` (moved last), in one call; differentiable.

    Sorting the two samples of a distance together pays the host call's
    fixed cost once. Each result equals :func:`sort` of that array.
    """
    xs = tuple(jnp.asarray(x) for x in xs)
    axes = {_neg_axis(axis, x.ndim) for x in xs}
    if len(axes) != 1:
        raise ValueError("`axis` must index the same dimension, counted from the end, of every array")
    return _sort(xs, axes.pop())


def sort(x: ArrayLike, axis: int = -1) -> jax.Array:
    """Sort along ``axis``; differentiable, fast on every platform.

    Equals ``jnp.moveaxis(jnp.sort(x, axis=axis), axis, -1)``: the sorted
    axis comes **last** (for ``axis=-1``, exactly ``jnp.sort``), which saves
    a transpose when sorting the columns of a projection matrix. The
    derivative routes each tangent to the position its value is sorted to
    (a permutation, as for ``jnp.sort``).

    Args:
      x: real array.
      axis: the axis to sort along.

    Returns:
      Array of ``x``'s dtype and shape with ``axis`` moved last, sorted along
      the last axis.
    """
    return sort_many((x,), axis)[0]


def sort_with_permutation(x: ArrayLike, axis: int = -1) -> tuple[jax.Array, jax.Array]:
    """``(sorted x, permutation)``, both with ``axis`` moved last; differentiable in ``x``.

    Use it when other arrays (weights) must follow the samples' order:
    ``jnp.take_along_axis(w, perm, -1)``.
    """
    x = jnp.asarray(x)
    perm = argsort(x, axis)
    return jnp.take_along_axis(jnp.moveaxis(x, axis, -1), perm, axis=-1), perm


def searchsorted(a: ArrayLike, v: ArrayLike, *, side: str = "left") -> jax.Array:
    """Batched ``searchsorted`` along the last axis, as int32 (not differentiable).

    Args:
      a: sorted array of shape ``[..., n]``.
      v: values, shape ``[..., m]`` with the same leading shape as ``a``
        (or broadcastable to it).
      side: ``"left"`` (first suitable position) or ``"right"`` (last).

    Returns:
      int32 array of shape ``[..., m]``: for each value, its insertion index
      into the corresponding row of ``a``.
    """
    a = jax.lax.stop_gradient(jnp.asarray(a))
    v = jax.lax.stop_gradient(jnp.asarray(v))
    batch = jnp.broadcast_shapes(a.shape[:-1], v.shape[:-1])
    a = jnp.broadcast_to(a, batch + a.shape[-1:])
    v = jnp.broadcast_to(v, batch + v.shape[-1:])

    def on_cpu(a, v):
        out = jax.ShapeDtypeStruct(v.shape, jnp.int32)
        fn = lambda outs, a, v: _np_searchsorted(outs[0], a, v, side)  # noqa: E731
        return host_call(fn, (out,), a, v, vmap_method="broadcast_all")[0]

    def elsewhere(a, v):
        fn = lambda a, v: jnp.searchsorted(a, v, side=side, method="sort").astype(jnp.int32)
        for _ in batch:
            fn = jax.vmap(fn)
        return fn(a, v)

    if not use_host_sort(a.size + v.size, permutation=True):
        return elsewhere(a, v)
    return jax.lax.platform_dependent(a, v, cpu=on_cpu, default=elsewhere)
