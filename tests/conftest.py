"""Shared test configuration: float64 available for the oracle comparisons."""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# One OpenBLAS thread for JAX's CPU LAPACK calls (see train/__init__.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
