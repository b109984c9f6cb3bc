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

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["argsort", "sort", "sort_with_permutation", "searchsorted"]


# --------------------------------------------------------------------------
# Host (NumPy) implementations, used on CPU.


def _np_argsort(x: np.ndarray) -> np.ndarray:
    """Stable argsort along the last axis, int32 (see the module docstring)."""
    x = np.asarray(x)
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


def _np_sort(x: np.ndarray) -> np.ndarray:
    return np.sort(np.asarray(x), axis=-1)


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


def argsort(x: ArrayLike) -> jax.Array:
    """Stable argsort along the last axis, as int32, fast on every platform.

    Equals ``jnp.argsort(x, axis=-1, stable=True)``. Not differentiable (the
    result is an integer array); differentiate through a gather with it.

    Args:
      x: real array of shape ``[..., n]``.

    Returns:
      int32 array of ``x``'s shape.
    """
    x = jax.lax.stop_gradient(jnp.asarray(x))

    def on_cpu(x):
        out = jax.ShapeDtypeStruct(x.shape, jnp.int32)
        return jax.pure_callback(_np_argsort, out, x, vmap_method="expand_dims")

    def elsewhere(x):
        return jnp.argsort(x, axis=-1, stable=True).astype(jnp.int32)

    return jax.lax.platform_dependent(x, cpu=on_cpu, default=elsewhere)


def _sort_values(x: jax.Array) -> jax.Array:
    def on_cpu(x):
        out = jax.ShapeDtypeStruct(x.shape, x.dtype)
        return jax.pure_callback(_np_sort, out, x, vmap_method="expand_dims")

    def elsewhere(x):
        return jnp.sort(x, axis=-1)

    return jax.lax.platform_dependent(x, cpu=on_cpu, default=elsewhere)


@jax.custom_jvp
def _sort(x: jax.Array) -> jax.Array:
    return _sort_values(x)


@_sort.defjvp
def _sort_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    perm = argsort(x)
    return jnp.take_along_axis(x, perm, axis=-1), jnp.take_along_axis(dx, perm, axis=-1)


def sort(x: ArrayLike) -> jax.Array:
    """Sort along the last axis; differentiable, fast on every platform.

    Equals ``jnp.sort(x, axis=-1)``. The derivative routes each tangent to
    the position its value is sorted to (a permutation, as for ``jnp.sort``).

    Args:
      x: real array of shape ``[..., n]``.

    Returns:
      Array of ``x``'s shape and dtype, sorted along the last axis.
    """
    return _sort(jnp.asarray(x))


def sort_with_permutation(x: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """``(sorted x, permutation)`` along the last axis; differentiable in ``x``.

    Use it when other arrays (weights) must follow the samples' order:
    ``jnp.take_along_axis(w, perm, -1)``.
    """
    x = jnp.asarray(x)
    perm = argsort(x)
    return jnp.take_along_axis(x, perm, axis=-1), perm


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
