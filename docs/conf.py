"""Sphinx configuration of the reference manual.

Build it from the repository root with::

    python -m sphinx -W -b html docs docs/_build/html

The API pages are generated from the package itself at build time: every
public name of :mod:`divergences` (``divergences.__all__``),
:mod:`divergences.closed_form`, :mod:`divergences.models`,
:mod:`divergences.train` and :mod:`divergences.train.counterexamples` is
placed on the page of the private module that defines it (``AREAS`` below),
so a function exported tomorrow appears in the manual without editing these
sources. A public name from a module that ``AREAS`` does not place fails the
build (with ``-W``) and says which line to add.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections import defaultdict

from sphinx.util import logging

sys.path.insert(0, os.path.abspath(".."))

import divergences  # noqa: E402

project = "divergences"
author = "the divergences authors"
release = divergences.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Example:" sections hold doctests; keep them as literal examples.
napoleon_custom_sections = [("Example", "examples_style"), ("Conventions", "notes_style")]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# Show `ArrayLike` as written, not as the union it stands for.
autodoc_type_aliases = {"ArrayLike": "jax.typing.ArrayLike"}
exclude_patterns = ["_build", "_generated"]
html_theme = "alabaster"
html_static_path: list[str] = []

# Namespaces whose public names the manual documents, and the page each
# defining module belongs to (the longest matching prefix wins).
NAMESPACES = (
    "divergences",
    "divergences.closed_form",
    "divergences.models",
    "divergences.train",
    "divergences.train.counterexamples",
)
AREAS = {
    "divergences._validation": "divergences",
    "divergences._discrete": "divergences",
    "divergences.closed_form": "divergences",
    "divergences._wasserstein": "estimators",
    "divergences._mmd": "estimators",
    "divergences._knn": "estimators",
    "divergences._binned": "estimators",
    "divergences._neural": "estimators",
    "divergences._features": "estimators",
    "divergences._gan": "objectives",
    "divergences._losses": "objectives",
    "divergences._fgan": "objectives",
    "divergences._linear_gan": "objectives",
    "divergences._likelihood": "objectives",
    "divergences._two_sample": "two_sample_tests",
    "divergences._classifier_test": "two_sample_tests",
    "divergences.models": "training",
    "divergences.train": "training",
    "divergences.train.counterexamples": "counterexamples",
}
PAGES = ("divergences", "estimators", "objectives", "two_sample_tests", "training", "counterexamples")

_logger = logging.getLogger("divergences.docs")


def _area(module: str) -> str | None:
    best = None
    for prefix in AREAS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return AREAS[best] if best else None


def _public(namespace):
    names = getattr(namespace, "__all__", None)
    if names is None:
        names = [n for n in vars(namespace) if not n.startswith("_")]
    return [n for n in names if not inspect.ismodule(getattr(namespace, n))]


def _title(module) -> str:
    doc = inspect.getdoc(module) or module.__name__
    line = doc.strip().splitlines()[0].strip().rstrip(".")
    return line.replace("``", "").replace("`", "")


def _generate(outdir: str) -> None:
    """Write ``_generated/<page>.inc``: per defining module, its docstring and its public objects."""
    pages: dict[str, dict[str, list[tuple[str, object]]]] = {p: defaultdict(list) for p in PAGES}
    seen: set[int] = set()
    for ns_name in NAMESPACES:
        ns = importlib.import_module(ns_name)
        for name in _public(ns):
            obj = getattr(ns, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj) or callable(obj)):
                continue  # constants (name tables) are described in the text
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            module = getattr(obj, "__module__", None) or ns_name
            area = _area(module)
            if area is None:
                _logger.warning(
                    f"{ns_name}.{name} (defined in {module}) is on no page of the manual: "
                    f"add {module!r} to AREAS in docs/conf.py"
                )
                continue
            pages[area][module].append((f"{ns_name}.{name}", obj))
    os.makedirs(outdir, exist_ok=True)
    for page, modules in pages.items():
        lines: list[str] = []
        for module in sorted(modules, key=lambda m: list(AREAS).index(m) if m in AREAS else len(AREAS)):
            title = _title(sys.modules[module])
            lines += [title, "-" * len(title), "", f".. automodule:: {module}", "   :no-members:", ""]
            for qualified, obj in modules[module]:
                directive = "autoclass" if inspect.isclass(obj) else "autofunction"
                lines += [f".. {directive}:: {qualified}", ""]
        with open(os.path.join(outdir, f"{page}.inc"), "w") as f:
            f.write("\n".join(lines) + "\n")


def setup(app):
    _generate(os.path.join(app.srcdir, "_generated"))
