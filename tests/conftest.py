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

# One persistent XLA compilation cache for the whole run: the pytest-xdist
# workers and the commands that the tests start in subprocesses (training
# runs, resumes, the benchmark and protocol commands) compile many of the same
# programs, and a program compiled once is then read from disk. The cache
# changes no result (the key covers the program, the options and XLA_FLAGS).
# It lives in a fresh temporary folder, made by the first process (the
# workers and subprocesses inherit the variable) and removed by it at exit; a
# JAX_COMPILATION_CACHE_DIR of your own is left as it is.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="divergences-tests-xla-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    # Every program, however small or quick to compile (JAX's defaults skip those).
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
