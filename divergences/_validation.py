"""The one validation contract of the library.

Every public function of :mod:`divergences` checks its arguments through the
helpers of this module, so that bad input fails the same way everywhere:

* **Static checks** (shapes, dtypes, ranks, names of options, Python scalars)
  raise :class:`ValueError` at once, eagerly and at trace time under
  :func:`jax.jit`. The message starts with the argument's name in backticks:
  ``"`q` has shape (3,) that does not broadcast with `p` of shape (4,)"``.
* **Value checks** (NaN, negative probabilities, weights summing to 0, ...)
  need the numbers. On concrete arrays (an eager call) they raise
  :class:`ValueError` naming the argument. Under a transformation (``jit``,
  ``vmap``, ``grad``) the values are unknown while tracing, so nothing is
  raised: each function documents what it returns then (NaN for the
  affected outputs, never a silently wrong finite number where it is cheap to
  avoid). Users who want errors from compiled code wrap the call in
  :func:`checked`, which runs it under :func:`jax.experimental.checkify` and
  raises the same message at run time.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import operator
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

__all__ = [
    "checked",
    "is_concrete",
    "fail",
    "check_choice",
    "check_int",
    "check_scalar",
    "as_float_array",
    "check_axis",
    "broadcast_shapes",
    "check_nonempty",
    "require",
    "check_finite",
    "check_probabilities",
    "check_weights",
    "check_samples",
    "check_same_dim",
    "float_dtype",
    "check_key",
    "check_static",
    "resolve_alias",
    "as_samples",
]

T = TypeVar("T")

# True only while `checked` traces a function: value checks then become
# checkify checks instead of being skipped. A trace-time switch, not state
# that survives the call.
_CHECKIFY_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "divergences_checkify_active", default=False
)


def checked(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn the library's value checks inside ``fn`` into errors, compiled.

    Under :func:`jax.jit` the values of the arguments are not known while
    tracing, so the library cannot raise on NaN samples or negative
    probabilities there (those calls return NaN instead). ``checked(fn)``
    compiles ``fn`` with the value checks switched on, through
    :func:`jax.experimental.checkify.checkify`, and raises
    :class:`ValueError` with the message an eager call would give.

    ``fn`` may be a plain or a ``jax.jit``-wrapped function (the wrapper is
    looked through, so that a trace cached without checks is not reused).
    Array arguments (positional or keyword, also inside pytrees) are traced;
    every other argument (``axis=0``, ``p=2``, ``k=5``, ``bins=10``,
    ``n_projections=8``, a kernel name, a Python float) is a static argument,
    and each new combination of them compiles once.
    Apply ``checked`` outermost: it returns a Python-level function that
    raises, so it cannot itself be called inside ``jit``.

    Args:
      fn: a function that calls functions of this library.

    Returns:
      A compiled function with the signature of ``fn`` that raises
      ``ValueError`` when a value check fails.

    Raises:
      ValueError: naming ``fn`` when it is not callable.

    Example:
      >>> import jax.numpy as jnp
      >>> import divergences as dv
      >>> safe_kl = dv.checked(dv.kl_divergence)
      >>> round(float(safe_kl(jnp.array([0.5, 0.5]), jnp.array([0.25, 0.75]))), 4)
      0.1438
      >>> safe_kl(jnp.array([1.5, -0.5]), jnp.array([0.25, 0.75]))
      Traceback (most recent call last):
      ...
      ValueError: `p` has negative entries; probabilities must be >= 0
      >>> round(float(safe_kl(jnp.array([[0.5], [0.5]]), jnp.array([[0.25], [0.75]]), axis=0)[0]), 4)
      0.1438
    """
    if not callable(fn):
        raise fail("fn", f"must be a callable (a function of this library or your own); got {type(fn).__name__}")
    inner = getattr(fn, "__wrapped__", fn)

    def traced(*args, **kwargs):
        token = _CHECKIFY_ACTIVE.set(True)
        try:
            return inner(*args, **kwargs)
        finally:
            _CHECKIFY_ACTIVE.reset(token)

    # One compiled function per structure of the call: arrays are traced,
    # every other leaf (an `axis`, `p`, `k`, `bins`, `n_projections`, a kernel
    # name, a Python float) is static, as the library's own jit boundaries need.
    cache: dict[Any, Callable] = {}

    def compile_for(treedef, dynamic_mask, static_leaves):
        def body(dynamic_leaves):
            it = iter(dynamic_leaves)
            leaves = [next(it) if dyn else leaf for dyn, leaf in zip(dynamic_mask, static_leaves)]
            args, kwargs = jax.tree_util.tree_unflatten(treedef, leaves)
            return traced(*args, **kwargs)

        return jax.jit(checkify.checkify(body, errors=checkify.user_checks))

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        dynamic_mask = tuple(_is_array(leaf) for leaf in leaves)
        static_leaves = tuple(None if dyn else leaf for dyn, leaf in zip(dynamic_mask, leaves))
        # Types too: 1, 1.0 and True are equal and hash alike, but are different options.
        signature = (treedef, dynamic_mask, static_leaves, tuple(type(leaf) for leaf in static_leaves))
        try:
            compiled = cache.get(signature)
        except TypeError:
            bad = next(leaf for dyn, leaf in zip(dynamic_mask, leaves) if not dyn and not _hashable(leaf))
            raise fail(
                "fn", f"was called with an argument that is neither an array nor hashable ({type(bad).__name__}); pass arrays or Python values"
            ) from None
        if compiled is None:
            compiled = cache[signature] = compile_for(treedef, dynamic_mask, static_leaves)
        err, out = compiled([leaf for dyn, leaf in zip(dynamic_mask, leaves) if dyn])
        message = err.get()
        if message is not None:
            raise ValueError(message.split(" (`check` failed)")[0].strip())
        return out

    return wrapper


# Top-level arguments that an eager fast path passes as static values.
_STATIC_TYPES = (bool, int, float, str, np.generic)
_EAGER_CACHE_SIZE = 64


def compiled_when_eager(fn: Callable[..., T] | None = None, *, traced: tuple[str, ...] = ()) -> Callable[..., T]:
    """Run an eager call of the estimator ``fn`` as one compiled program.

    An eager call otherwise dispatches each conversion and check op by op, a
    cost that dwarfs the arithmetic of a small problem. When every top-level
    argument is a concrete array (traced), ``None`` or a Python / NumPy
    scalar or string (static), the call runs ``jax.jit(fn)``, compiled once
    per combination of static values (and, inside ``jit``, of shapes and
    dtypes). Under ``jit`` the library's value checks cannot raise and poison
    the result with NaN instead, so a result holding NaN is recomputed by the
    eager ``fn``, whose checks raise the error an eager call promises (or
    return the same NaN); so is a call whose compilation fails (a shape
    error, an option given as an array), so that its error is the eager
    one. Any other call (a list, a pytree, a tracer from an enclosing
    transformation) goes straight to ``fn``.

    ``traced`` names keyword arguments whose Python numbers are passed as
    traced values instead (a bandwidth: each new value would otherwise
    compile a new program).

    Only for functions whose every value check poisons the result with NaN
    under ``jit`` and that warn on nothing at run time.
    """
    if fn is None:
        return functools.partial(compiled_when_eager, traced=traced)
    cache: collections.OrderedDict[Any, Callable] = collections.OrderedDict()
    lock = threading.Lock()

    def compile_for(n_args, keys, mask, statics):
        def body(dynamic):
            it = iter(dynamic)
            values = [next(it) if dyn else value for dyn, value in zip(mask, statics)]
            return fn(*values[:n_args], **dict(zip(keys, values[n_args:])))

        return jax.jit(body)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        values = (*args, *kwargs.values())
        mask = []
        for key, value in zip((*(None,) * len(args), *kwargs), values):
            if isinstance(value, jax.core.Tracer) or not (value is None or isinstance(value, _STATIC_TYPES) or _is_array(value)):
                return fn(*args, **kwargs)
            number = isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
            mask.append(_is_array(value) or (key in traced and number))
        statics = tuple(None if dyn else value for dyn, value in zip(mask, values))
        # Types too: 1, 1.0 and True are equal and hash alike, but are different options.
        signature = (len(args), tuple(kwargs), tuple(mask), statics, tuple(map(type, statics)))
        with lock:  # callers on several threads share the cache
            compiled = cache.get(signature)
            if compiled is None:
                compiled = cache[signature] = compile_for(len(args), tuple(kwargs), mask, statics)
                if len(cache) > _EAGER_CACHE_SIZE:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(signature)
        try:
            out = compiled([value for dyn, value in zip(mask, values) if dyn])
        except Exception:  # noqa: BLE001 - the eager call gives its own error (or accepts a concrete option)
            return fn(*args, **kwargs)
        leaves = (out,) if isinstance(out, jax.Array) else jax.tree_util.tree_leaves(out)
        if any(_holds_nan(leaf) for leaf in leaves):
            return fn(*args, **kwargs)  # the eager checks name the bad argument
        return out

    return wrapper


def _holds_nan(x: Any) -> bool:
    return _inexact(x.dtype) and bool(np.isnan(np.asarray(x)).any())


@functools.lru_cache(maxsize=64)
def _inexact(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.inexact))


def _is_array(x: Any) -> bool:
    """Arrays travel through ``jit`` as traced arguments; anything else is static."""
    return isinstance(x, (jax.Array, np.ndarray))


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def is_concrete(*xs: Any) -> bool:
    """True when none of ``xs`` is a tracer (the call is eager)."""
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))


def fail(name: str, problem: str) -> ValueError:
    """The library's error: ``ValueError("`name` problem")``."""
    return ValueError(f"`{name}` {problem}")


def check_static(name: str, value: Any) -> Any:
    """A structural option (an axis, an order, a count, a name) must not be traced.

    Under :func:`jax.jit`, an option that fixes the shapes or the algorithm
    of the computation cannot be an abstract value: it must be marked static.
    """
    if isinstance(value, jax.core.Tracer):
        raise fail(
            name,
            f"is a traced value, but it fixes the structure of the computation and must be a concrete "
            f"Python value: under jax.jit, mark it static, e.g. jax.jit(fn, static_argnames=({name!r},))",
        )
    return value


def resolve_alias(value: Any, aliases: dict[str, str] | None) -> Any:
    """The canonical spelling of a name: ``aliases.get(value, value)`` for strings."""
    if aliases and isinstance(value, str):
        return aliases.get(value, value)
    return value


def check_choice(name: str, value: Any, choices: Sequence[str], aliases: dict[str, str] | None = None) -> str:
    """``value`` must be one of ``choices`` (strings) or an alias of one; returns the canonical name."""
    check_static(name, value)
    value = resolve_alias(value, aliases)
    if not isinstance(value, str) or value not in choices:
        if aliases:
            listed = ", ".join(repr(c) for c in choices)
            also = ", ".join(f"{a!r} for {c!r}" for a, c in aliases.items() if c in choices)
            if also:
                raise fail(name, f"must be one of {listed} (aliases: {also}); got {value!r}")
        listed = ", ".join(repr(c) for c in choices)
        raise fail(name, f"must be one of {listed}; got {value!r}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` must be a Python (or numpy) integer within [minimum, maximum]."""
    check_static(name, value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise fail(name, f"must be an integer; got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise fail(name, f"must be >= {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise fail(name, f"must be <= {maximum}; got {value}")
    return value


def check_scalar(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> Any:
    """A real scalar hyperparameter within bounds.

    A Python number is checked at once. A traced scalar (a hyperparameter that
    a user passes through ``jit``) is left to :func:`require`, so it is
    checked eagerly and under :func:`checked` only.
    """
    if isinstance(value, (bool, complex)) or isinstance(value, str):
        raise fail(name, f"must be a real number; got {value!r}")
    xp = _namespace(value)  # numpy for a Python number or a concrete array: no device dispatch
    arr = xp.asarray(value)
    if (xp is np and not (jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == np.bool_)) or jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise fail(name, f"must be a real number; got {value!r}")
    if arr.ndim != 0:
        raise fail(name, f"must be a scalar; got shape {arr.shape}")
    ok = xp.isfinite(arr) if (low is not None or high is not None) else ~xp.isnan(arr)
    desc = []
    if low is not None:
        ok = ok & ((arr >= low) if low_inclusive else (arr > low))
        desc.append(f"{'>=' if low_inclusive else '>'} {low}")
    if high is not None:
        ok = ok & ((arr <= high) if high_inclusive else (arr < high))
        desc.append(f"{'<=' if high_inclusive else '<'} {high}")
    problem = "must be " + (" and ".join(desc) if desc else "a number, not NaN")
    if is_concrete(arr):
        if not bool(ok):
            raise fail(name, f"{problem}; got {value!r}")
    else:
        require(name, ok, problem)
    return value


def float_dtype(*arrays: Any) -> jnp.dtype:
    """The dtype the library computes in: at least float32 (bf16/f16 accumulate in f32)."""
    if all(isinstance(a, (jax.Array, np.ndarray)) and not getattr(a, "weak_type", False) for a in arrays):
        # Arrays of committed dtypes: the promotion depends on the dtypes (and the x64 flag) alone.
        return _float_dtype_of(tuple(a.dtype for a in arrays), bool(jax.config.jax_enable_x64))
    return _float_dtype_uncached(*arrays)


def _float_dtype_uncached(*arrays: Any) -> jnp.dtype:
    dtype = jnp.result_type(*arrays, jnp.float32) if arrays else jnp.dtype(jnp.float32)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.dtype(jnp.float32)
    return jnp.promote_types(dtype, jnp.float32)


@functools.lru_cache(maxsize=256)
def _float_dtype_of(dtypes: tuple, x64: bool) -> jnp.dtype:
    del x64  # part of the cache key: float64 promotes differently without it
    return _float_dtype_uncached(*dtypes)


def as_float_array(name: str, x: Any, *, dtype: Any = None, min_ndim: int = 0, ndim: int | None = None) -> jax.Array:
    """Convert to a floating array (at least float32) and check its rank.

    Complex and non-numeric input is refused. Integer and boolean input is
    converted to the default float type.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise fail(name, f"must be an array of real numbers; got {type(x).__name__}")
    try:
        arr = jnp.asarray(x)
    except (TypeError, ValueError) as e:
        raise fail(name, f"must be an array of real numbers ({e})") from None
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise fail(name, f"must be real; got dtype {arr.dtype}")
    if not (jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == jnp.bool_):
        raise fail(name, f"must be numeric; got dtype {arr.dtype}")
    target = dtype if dtype is not None else float_dtype(arr)
    if arr.dtype != target or getattr(arr, "weak_type", False):
        arr = arr.astype(target)
    if ndim is not None and arr.ndim != ndim:
        raise fail(name, f"must have {ndim} dimension(s); got shape {arr.shape}")
    if arr.ndim < min_ndim:
        raise fail(name, f"must have at least {min_ndim} dimension(s); got shape {arr.shape}")
    return arr


def check_axis(name: str, axis: Any, ndim: int) -> int:
    """Normalise an ``axis`` argument against an array of rank ``ndim``."""
    check_static(name, axis)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise fail(name, f"must be an integer; got {axis!r}")
    if not -ndim <= axis < ndim:
        raise fail(name, f"is {axis}, out of range for an array of rank {ndim}")
    return operator.index(axis) % ndim


def broadcast_shapes(named_shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """Broadcast shapes, naming the arguments when they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(*named_shapes.values()))
    except ValueError:
        items = list(named_shapes.items())
        (n0, s0), rest = items[0], items[1:]
        for n1, s1 in rest:
            try:
                np.broadcast_shapes(s0, s1)
            except ValueError:
                raise fail(n1, f"has shape {s1} that does not broadcast with `{n0}` of shape {s0}") from None
        names = ", ".join(f"`{n}` {s}" for n, s in items)
        raise ValueError(f"shapes do not broadcast: {names}") from None


def check_nonempty(name: str, x: jax.Array, axis: int | None = None) -> None:
    """``x`` must have at least one element (along ``axis`` when given)."""
    size = x.size if axis is None else x.shape[axis]
    if size == 0:
        where = "" if axis is None else f" along axis {axis}"
        raise fail(name, f"is empty{where} (shape {x.shape})")


def require(name: str, ok: Any, problem: str) -> jax.Array:
    """A value check: ``ok`` (a boolean array) must hold everywhere.

    Eagerly, raise ``ValueError("`name` problem")`` if it does not. Under
    :func:`checked`, emit a checkify check with the same message. Otherwise
    (under ``jit``/``vmap``/``grad`` with no checking requested) do nothing.

    Returns:
      ``all(ok)`` for callers that poison their output with NaN when the
      check fails under a transformation: a traced boolean scalar there, the
      Python ``True`` in an eager call that did not raise.
    """
    if isinstance(ok, (np.ndarray, np.bool_, bool)) or is_concrete(ok):
        # Eager: one host-side reduction (a view for CPU arrays), no device dispatch.
        if not np.all(np.asarray(ok)):
            raise fail(name, problem)
        return True
    ok_all = jnp.all(ok)
    if _CHECKIFY_ACTIVE.get():
        checkify.check(ok_all, f"`{name}` {problem}")
    return ok_all


def _namespace(x: Any):
    """numpy for concrete arrays (fast eager checks, no device dispatch), jnp for tracers."""
    return np if is_concrete(x) else jnp


def check_finite(name: str, x: jax.Array) -> jax.Array:
    """Value check: no NaN or infinity in ``x``. Returns the all-finite flag."""
    xp = _namespace(x)
    if xp is np:
        x = np.asarray(x)
    return require(name, xp.isfinite(x), "contains NaN or infinite values")


def _sum_tolerance(dtype: Any, n: int) -> float:
    """How far from 1 a sum of ``n`` probabilities may be: 4 n eps, at least 1e-6 for f32."""
    eps = float(jnp.finfo(dtype).eps)
    return min(max(4.0 * max(n, 8) * eps, 1e-6 if eps > 1e-10 else 0.0), 1e-2)


def check_probabilities(name: str, p: jax.Array, *, axis: int, tol_dtype: Any = None) -> jax.Array:
    """Value check: ``p`` holds probability vectors along ``axis``.

    No NaN or infinity, no negative entry, and every vector sums to 1 within
    ``4 * n * eps(dtype)`` (at least 1e-6, at most 1e-2), ``n`` the vector
    length: the rounding error of a sum of ``n`` normalised terms. ``tol_dtype``
    (default ``p.dtype``) is the precision the probabilities were computed in:
    float16 or bfloat16 input promoted to float32 keeps its own tolerance.

    Returns:
      A boolean scalar, True when all checks hold (for NaN-poisoning under jit).
    """
    xp = _namespace(p)
    if xp is np:
        p = np.asarray(p)
    ok = require(name, ~xp.isnan(p), "contains NaN")
    ok &= require(name, xp.isfinite(p), "contains infinite values")
    ok &= require(name, p >= 0, "has negative entries; probabilities must be >= 0")
    tol = _sum_tolerance(p.dtype if tol_dtype is None else tol_dtype, p.shape[axis])
    total = xp.sum(p, axis=axis)
    ok &= require(
        name,
        xp.abs(total - 1) <= tol,
        f"does not sum to 1 along axis {axis} (tolerance {tol:.1e}); normalise it first",
    )
    return ok


def check_samples(name: str, x: Any, *, ndim: int | None = None, min_ndim: int = 1, min_samples: int = 1, sample_axis: int = 0) -> jax.Array:
    """Convert and check a sample array: rank, at least ``min_samples`` samples, finite values.

    Returns the converted array (float, at least float32). The finiteness check
    is a value check (see :func:`require`).
    """
    x = as_float_array(name, x, ndim=ndim, min_ndim=min_ndim)
    n = x.shape[sample_axis]
    if n < min_samples:
        raise fail(name, f"must hold at least {min_samples} sample(s) along axis {sample_axis}; got shape {x.shape}")
    check_finite(name, x)
    return x


def check_same_dim(name_x: str, x: jax.Array, name_y: str, y: jax.Array, *, axis: int = -1) -> None:
    """Two sample arrays must agree on their feature dimension."""
    if x.shape[axis] != y.shape[axis]:
        raise fail(
            name_y,
            f"has feature dimension {y.shape[axis]} (shape {y.shape}) but `{name_x}` has {x.shape[axis]} (shape {x.shape})",
        )


def check_weights(name: str, w: Any, *, shape: tuple[int, ...], samples_name: str) -> jax.Array:
    """Sample weights: the shape of the samples, non-negative, finite, positive total.

    The weights are returned normalised to sum to 1 along the last axis.
    Under a transformation (values unknown, nothing raised), a weight vector
    that breaks a rule comes back as NaN, so that every value computed from
    it is NaN.
    """
    w = as_float_array(name, w)
    if w.shape != tuple(shape):
        raise fail(name, f"has shape {w.shape} but `{samples_name}` needs weights of shape {tuple(shape)}")
    xp = _namespace(w)
    wx = np.asarray(w) if xp is np else w
    finite, nonnegative = xp.isfinite(wx), wx >= 0
    positive = xp.sum(wx, axis=-1, keepdims=True) > 0
    require(name, finite, "contains NaN or infinite values")
    require(name, nonnegative, "has negative entries; weights must be >= 0")
    require(name, positive, "sums to 0; at least one weight must be positive")
    normalised = w / jnp.sum(w, axis=-1, keepdims=True)
    if xp is np:
        return normalised
    return jnp.where(jnp.all(finite & nonnegative, axis=-1, keepdims=True) & positive, normalised, jnp.nan)


def check_key(name: str, key: Any) -> jax.Array:
    """``key`` must be one PRNG key: a typed key (``jax.random.key``) or a raw ``uint32`` key (``jax.random.PRNGKey``).

    A static check (dtype and shape), so it raises at trace time under
    ``jit`` as well. A Python int, a string, a float array or a batch of keys
    is refused with a message that says how to make a key.
    """
    how = "make one with jax.random.key(0) (or split one you have with jax.random.split)"
    if isinstance(key, (jax.Array, np.ndarray)) or isinstance(key, jax.core.Tracer):
        dtype, shape = key.dtype, tuple(key.shape)
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            if shape == ():
                return key
            raise fail(name, f"is a batch of {int(np.prod(shape))} PRNG keys (shape {shape}); pass a single key, e.g. keys[0]")
        if dtype == np.uint32 and len(shape) >= 1 and shape[-1] in (2, 4):
            if len(shape) == 1:
                return jnp.asarray(key)
            raise fail(name, f"is a batch of raw PRNG keys (shape {shape}); pass a single key, e.g. keys[0]")
        raise fail(name, f"must be a PRNG key; got an array of dtype {dtype} and shape {shape}; {how}")
    raise fail(name, f"must be a PRNG key; got {type(key).__name__} {key!r}; {how}")


def as_samples(name: str, x: Any, *, min_samples: int = 1) -> jax.Array:
    """Samples along axis 0 as ``[n, d]``: ``[n]`` is read as ``n`` one-dimensional samples (``[n, 1]``).

    Converts and checks like :func:`check_samples`; refuses ranks other than 1 and 2.
    """
    x = as_float_array(name, x, min_ndim=1)
    if x.ndim > 2:
        raise fail(name, f"must have shape [n] or [n, d] (samples along axis 0); got shape {x.shape}")
    if x.ndim == 1:
        x = x[:, None]
    return check_samples(name, x, ndim=2, min_samples=min_samples)
