import subprocess
import sys

import divergences


def test_packages_import():
    import divergences.models  # noqa: F401
    import divergences.train  # noqa: F401

    assert divergences.__version__


def test_main_prints_table():
    out = subprocess.run([sys.executable, "-m", "divergences"], capture_output=True, text=True, check=True).stdout
    assert "| 0.25 | inf | 0.2500 | 0.1733 | 0.2500 |" in out
    assert "| 2 | inf | 1.0000 | 0.6931 | 2.0000 |" in out
