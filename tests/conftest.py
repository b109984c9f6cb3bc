"""Shared test configuration: float64 available for the oracle comparisons."""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
