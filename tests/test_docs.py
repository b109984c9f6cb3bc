"""The reference manual builds with warnings as errors, and every docstring example runs.

The doctests walk the installed packages (``divergences``, with its
subpackages ``divergences.models`` and ``divergences.train``), private modules
included, since the public functions live there: a module added later is
covered without editing this file.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import divergences

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("divergences", "divergences.models", "divergences.train")
# Command-line entry points (`python -m ...`): importing them is harmless, but
# they hold no examples of the API.
SKIP = ("__main__",)


def _modules() -> list[str]:
    names: set[str] = set()
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.add(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
            if info.name.rsplit(".", 1)[-1] in SKIP:
                continue
            names.add(info.name)
    return sorted(names)


MODULES = _modules()


def test_the_walk_finds_the_library_and_its_subpackages():
    # A property of the walk, not a list to keep up to date: private modules
    # of each package are found (that is where the examples live).
    assert "divergences._mmd" in MODULES
    assert any(m.startswith("divergences.models._") for m in MODULES)
    assert any(m.startswith("divergences.train._") for m in MODULES)
    assert any(m.startswith("divergences.train.counterexamples") for m in MODULES)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    # Only the docstrings of objects defined in this module (a re-export is
    # tested where it is defined).
    tests = [t for t in finder.find(module, module_name) if t.examples]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=lambda s: None)
    failures = []
    if runner.failures:
        # Rerun the failing ones to report their output.
        for test in tests:
            out: list[str] = []
            result = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE).run(test, out=out.append)
            if result.failed:
                failures.append("".join(out))
    assert not failures, "\n".join(failures)


def test_every_public_function_has_an_example():
    # The team's rule: each public function shows a short runnable example.
    missing = []
    for name in divergences.__all__:
        obj = getattr(divergences, name)
        if callable(obj) and not isinstance(obj, type) and ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert not missing, f"public functions without a >>> example: {missing}"


def test_manual_builds_with_warnings_as_errors(tmp_path):
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pages = {p.stem for p in out.glob("*.html")}
    assert {"index", "divergences", "estimators", "objectives", "two_sample_tests", "training", "counterexamples"} <= pages
    # The API pages are filled from the docstrings, formulas included.
    estimators = (out / "estimators.html").read_text()
    assert "divergences.mmd" in estimators and "divergences.sliced_wasserstein" in estimators
    assert "math" in estimators
    shutil.rmtree(out)
