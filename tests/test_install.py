"""The installed package is one namespace: a wheel holds `divergences` alone and works beside a user's own
`models.py` and `train.py` (the most common layout of a machine-learning project)."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    (path,) = out.glob("divergences-*.whl")
    return path


def test_wheel_has_one_top_level_package(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (top,) = [n for n in names if n.endswith("top_level.txt")]
        assert z.read(top).decode().split() == ["divergences"]
        tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        assert tops == {"divergences"}
        # The repository's models/ and train/ folders are installed as subpackages.
        assert "divergences/models/__init__.py" in names
        assert "divergences/train/__init__.py" in names
        assert "divergences/train/counterexamples/__init__.py" in names
        assert not any(n.startswith(("benchmarks/", "tests/")) for n in names)
        entry = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        assert "divergences-train = divergences.train.__main__:main" in entry
        assert "divergences-counterexamples = divergences.train.counterexamples.__main__:main" in entry


def test_installed_wheel_works_beside_user_models_and_train(wheel, tmp_path):
    """Install the wheel into a folder of its own (dependencies from this interpreter) and use it from a user's
    project that has its own models.py and train.py."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    project = tmp_path / "project"
    project.mkdir()
    (project / "models.py").write_text("raise RuntimeError('the user models.py was imported')\n")
    (project / "train.py").write_text("raise RuntimeError('the user train.py was imported')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENBLAS_NUM_THREADS")}
    env["PYTHONPATH"] = str(target)
    code = ("import os, divergences, divergences.models, divergences.train, divergences.train.counterexamples;"
            f"assert divergences.__file__.startswith({str(target)!r}), divergences.__file__;"
            f"assert divergences.models.__file__.startswith({str(target)!r}), divergences.models.__file__;"
            "assert 'OPENBLAS_NUM_THREADS' not in os.environ;"
            "print(divergences.models.MLP.__module__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "divergences.models._mlp"
    for args in (["-m", "divergences.train", "--help"], ["-m", "divergences.train.counterexamples", "--help"]):
        out = subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        assert "usage: python -m divergences.train" in out.stdout
    for script in ("divergences-train", "divergences-counterexamples"):
        out = subprocess.run([sys.executable, str(target / "bin" / script), "--help"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "usage:" in out.stdout


def test_import_has_no_process_wide_side_effects():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    code = ("import os, jax; before = dict(os.environ); flags = {k: getattr(jax.config, k) for k in "
            "('jax_enable_x64', 'jax_default_matmul_precision')};"
            "import divergences, divergences.models, divergences.train, divergences.train.counterexamples;"
            "assert dict(os.environ) == before, set(os.environ) ^ set(before);"
            "assert flags == {k: getattr(jax.config, k) for k in flags}")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
