"""Shared test configuration: float64 available for the oracle comparisons."""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite's time is mostly XLA compiling small programs, so it compiles with
# the backend's (LLVM's) optimisation level 0: the same programs, less
# optimised machine code, compiled much faster (README, Quickstart). Only
# rounding can differ (another summation order), which the tolerances allow
# for. Set the level yourself to test at XLA's default, which users run:
# XLA_FLAGS=--xla_backend_optimization_level=3. Subprocesses that the tests
# start inherit the setting.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
# One OpenBLAS thread for JAX's CPU LAPACK calls (see train/__init__.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
