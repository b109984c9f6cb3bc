"""A scoped single-thread BLAS for the CPU factorisations of the linear dual GAN.

JAX's CPU Cholesky runs in scipy's OpenBLAS, whose spinning worker threads
compete with XLA's own thread pool; on a small, busy machine that makes each
linear-dual solve many times slower. :func:`single_blas_thread` limits the BLAS
pool to one thread inside a ``with`` block only (threadpoolctl), so importing
this package changes no environment variable and no thread pool.
"""

from __future__ import annotations

import contextlib


def single_blas_thread() -> contextlib.AbstractContextManager:
    """A context manager that runs its body with one BLAS thread, then restores the pool.

    A no-op (``contextlib.nullcontext``) where threadpoolctl or scipy is not installed.

    Example:
        >>> from divergences.train._blas import single_blas_thread
        >>> with single_blas_thread():
        ...     pass
    """
    try:
        import scipy.linalg  # noqa: F401  (loads the OpenBLAS that JAX's CPU LAPACK calls)
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
