"""Shared test configuration: float64 available for the oracle comparisons."""

import os
import subprocess
import sys

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite's time is mostly XLA compiling small programs, so it compiles
# faster than XLA's defaults (README, Quickstart): with the backend's (LLVM's)
# optimisation level 0, and on CPU with XLA's older fusion code generator in
# place of its newer MLIR fusion emitters. The same programs, less optimised
# machine code, compiled faster; only rounding can differ
# (another summation order, another polynomial for a transcendental), which
# the tolerances allow for. Set the level yourself to test what users run,
# XLA's defaults: XLA_FLAGS=--xla_backend_optimization_level=3 (then nothing
# is added). Subprocesses that the tests start inherit the setting.


def _xla_accepts(flag: str) -> bool:
    """Whether this jaxlib's XLA knows ``flag``: an unknown flag in XLA_FLAGS aborts the process."""
    env = dict(os.environ, XLA_FLAGS=flag, JAX_PLATFORMS="cpu")
    probe = "import jax; jax.numpy.zeros(1).block_until_ready()"
    try:
        return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=120).returncode == 0
    except subprocess.TimeoutExpired:
        return False


if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    flags = [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]
    # Probed once: the pytest-xdist workers inherit the result with the environment.
    if "xla_cpu_use_fusion_emitters" not in flags[0] and _xla_accepts("--xla_cpu_use_fusion_emitters=false"):
        flags.append("--xla_cpu_use_fusion_emitters=false")
    os.environ["XLA_FLAGS"] = " ".join(flags).strip()
# One OpenBLAS thread for JAX's CPU LAPACK calls (see train/__init__.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
