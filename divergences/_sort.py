"""A fast sort on every platform, differentiable and batchable.

Exact 1-D optimal transport is a sort, so the speed of
:func:`divergences.wasserstein_1d` and :func:`divergences.sliced_wasserstein`
is the speed of the sort. On GPU and TPU, XLA's sort is fast. On CPU it is
not: for 1,000,000 float32 values, ``jax.jit(jnp.sort)`` takes about 450 ms
on our 2-core test machine where ``np.sort`` takes about 11 ms. This module
therefore chooses the sort per platform with :func:`jax.lax.platform_dependent`:

* **CPU**: a host call (:func:`jax.pure_callback`) into NumPy. Values only
  (:func:`sort` without differentiation) use ``np.sort``. A permutation
  (:func:`argsort`) packs each float32 key, mapped to an order-preserving
  integer, with its index into one int64 and sorts those with ``np.sort``
  (NumPy's SIMD quicksort): a *stable* argsort about 5 times faster than
  ``np.argsort(kind="stable")`` (35 ms against 166 ms for 1,000,000 values).
  float64 keys fall back to ``np.argsort(kind="stable")``.
* **GPU, TPU**: ``jnp.sort`` and ``jnp.argsort(stable=True)``.

Gradients never pass through the host call: the permutation is a constant
of the derivative, and values are gathered with
:func:`jnp.take_along_axis`, whose derivative is a gather (forward mode) or a
scatter-add (reverse mode). :func:`sort` has a custom JVP, so an
undifferentiated call pays only for the values, and a differentiated call
pays for the permutation. The callbacks batch under :func:`jax.vmap` (NumPy
sorts along the last axis for any leading shape), so ``vmap`` over a batch
is one host call, not a loop.

All functions work along the last axis and give the same result as their
``jnp`` counterparts: ties keep their input order (stable), and ``-0.0``
and ``0.0`` compare equal. NaN sorts last (and ``-NaN`` first on CPU);
library functions validate their inputs for NaN before sorting.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["argsort", "sort", "sort_with_permutation", "searchsorted"]


# --------------------------------------------------------------------------
# Host (NumPy) implementations, used on CPU. ``axis`` is negative, so that the
# leading axes that ``vmap`` adds (``vmap_method="expand_dims"``) do not move it.


def _last(x: np.ndarray, axis: int) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(np.asarray(x), axis, -1))


# Rows of at least this many values in all are sorted by several threads
# (NumPy's sorts release the GIL).
_PARALLEL_MIN_SIZE = 1 << 18


def _by_rows(fn, x: np.ndarray, out_dtype, *, in_place: bool = False) -> np.ndarray:
    """``fn`` applied to blocks of rows of ``x`` (along the last axis), in threads when large.

    With ``in_place``, ``fn`` sorts its block in place and ``x`` is returned.
    """
    workers = min(os.cpu_count() or 1, 8)
    rows = x.reshape(-1, x.shape[-1])
    if workers < 2 or rows.shape[0] < 2 or x.size < _PARALLEL_MIN_SIZE:
        return fn(x)
    out = rows if in_place else np.empty(rows.shape, out_dtype)
    bounds = np.linspace(0, rows.shape[0], min(workers, rows.shape[0]) + 1).astype(int)

    def work(i):
        block = rows[bounds[i] : bounds[i + 1]]
        if in_place:
            fn(block)
        else:
            out[bounds[i] : bounds[i + 1]] = fn(block)

    with concurrent.futures.ThreadPoolExecutor(len(bounds) - 1) as pool:
        list(pool.map(work, range(len(bounds) - 1)))
    return out.reshape(x.shape)


def _np_argsort(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable argsort along ``axis``, moved last, as int32 (see the module docstring)."""
    x = _last(x, axis)
    return _by_rows(_np_argsort_last, x, np.int32)


def _np_argsort_last(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    if n == 0:
        return np.zeros(x.shape, np.int32)
    if x.dtype == np.float32 and n < 2**31:
        # Adding 0 turns -0.0 into +0.0, so that the two compare equal.
        bits = (x + np.float32(0)).view(np.int32)
        # Order-preserving map of IEEE floats onto signed integers: negative
        # floats have their magnitude bits flipped.
        keys = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))
        packed = keys.astype(np.int64) << np.int64(32)
        packed |= np.arange(n, dtype=np.int64)
        packed.sort(axis=-1)
        return packed.astype(np.int32)  # keeps the low 32 bits: the index
    return np.argsort(x + x.dtype.type(0), axis=-1, kind="stable").astype(np.int32)


def _np_sort(x: np.ndarray, axis: int = -1) -> np.ndarray:
    y = _last(x, axis)
    if y is x or not y.flags.writeable or not y.flags.owndata:
        return _by_rows(lambda r: np.sort(r, axis=-1), y, y.dtype)

    def in_place(r):
        r.sort(axis=-1)
        return r

    return _by_rows(in_place, y, y.dtype, in_place=True)  # on the transposed copy


def _np_searchsorted(a: np.ndarray, v: np.ndarray, side: str) -> np.ndarray:
    a = np.asarray(a)
    v = np.asarray(v)
    batch = np.broadcast_shapes(a.shape[:-1], v.shape[:-1])
    a = np.broadcast_to(a, batch + a.shape[-1:]).reshape(-1, a.shape[-1])
    v2 = np.broadcast_to(v, batch + v.shape[-1:]).reshape(-1, v.shape[-1])
    out = np.empty(v2.shape, np.int32)
    for i in range(a.shape[0]):
        out[i] = np.searchsorted(a[i], v2[i], side=side)
    return out.reshape(batch + v.shape[-1:])


# --------------------------------------------------------------------------
# Platform-dependent primitives.


def _moved_shape(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    shape = list(shape)
    n = shape.pop(axis)
    return tuple(shape) + (n,)


def _neg_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"`axis` {axis} is out of range for an array of rank {ndim}")
    return axis % ndim - ndim


def argsort(x: ArrayLike, axis: int = -1) -> jax.Array:
    """Stable argsort along ``axis``, as int32, fast on every platform.

    Equals ``jnp.moveaxis(jnp.argsort(x, axis=axis, stable=True), axis, -1)``:
    the sorted axis comes **last** in the result (for ``axis=-1``, exactly
    ``jnp.argsort``). Not differentiable (an integer array); differentiate
    through a gather with it.

    Args:
      x: real array.
      axis: the axis to sort along.

    Returns:
      int32 array of ``x``'s shape with ``axis`` moved last.
    """
    x = jax.lax.stop_gradient(jnp.asarray(x))
    axis = _neg_axis(axis, x.ndim)

    def on_cpu(x):
        out = jax.ShapeDtypeStruct(_moved_shape(x.shape, axis), jnp.int32)
        return jax.pure_callback(functools.partial(_np_argsort, axis=axis), out, x, vmap_method="expand_dims")

    def elsewhere(x):
        return jnp.moveaxis(jnp.argsort(x, axis=axis, stable=True).astype(jnp.int32), axis, -1)

    return jax.lax.platform_dependent(x, cpu=on_cpu, default=elsewhere)


def _sort_values(x: jax.Array, axis: int) -> jax.Array:
    def on_cpu(x):
        out = jax.ShapeDtypeStruct(_moved_shape(x.shape, axis), x.dtype)
        return jax.pure_callback(functools.partial(_np_sort, axis=axis), out, x, vmap_method="expand_dims")

    def elsewhere(x):
        return jnp.moveaxis(jnp.sort(x, axis=axis), axis, -1)

    return jax.lax.platform_dependent(x, cpu=on_cpu, default=elsewhere)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _sort(x: jax.Array, axis: int) -> jax.Array:
    return _sort_values(x, axis)


@_sort.defjvp
def _sort_jvp(axis, primals, tangents):
    (x,), (dx,) = primals, tangents
    perm = argsort(x, axis)
    take = lambda a: jnp.take_along_axis(jnp.moveaxis(a, axis, -1), perm, axis=-1)
    return take(x), take(dx)


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
    x = jnp.asarray(x)
    return _sort(x, _neg_axis(axis, x.ndim))


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
        return jax.pure_callback(lambda a, v: _np_searchsorted(a, v, side), out, a, v, vmap_method="broadcast_all")

    def elsewhere(a, v):
        fn = lambda a, v: jnp.searchsorted(a, v, side=side, method="sort").astype(jnp.int32)
        for _ in batch:
            fn = jax.vmap(fn)
        return fn(a, v)

    return jax.lax.platform_dependent(a, v, cpu=on_cpu, default=elsewhere)
