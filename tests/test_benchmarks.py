"""The benchmark command: a quick run end to end, and the harness's pieces.

No test asserts on timing (the machines are shared); they check that the
command runs every case, writes well-formed JSON and markdown, reports
missing or skipped peers instead of crashing, and fits scaling exponents
correctly on synthetic data.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import _harness as h

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--device", "cpu", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, out


def test_quick_run_succeeds(quick_run):
    proc, out = quick_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "cpu-quick.json").exists()
    assert (out / "cpu-quick.md").exists()


def test_quick_run_json(quick_run):
    _, out = quick_run
    report = json.loads((out / "cpu-quick.json").read_text())
    meta = report["meta"]
    assert meta["quick"] is True
    assert meta["device"]["platform"] == "cpu"
    assert meta["device"]["description"]
    assert meta["versions"]["jax"]
    names = {r["name"] for r in report["results"]}
    # Cases come from the case modules (a module whose estimator is not there yet may give none).
    assert {r["module"] for r in report["results"]} <= set(h.case_modules())
    assert {"benchmarks.case_discrete", "benchmarks.case_wasserstein", "benchmarks.case_mmd"} <= {
        r["module"] for r in report["results"]
    }
    assert "kl_divergence" in names
    for result in report["results"]:
        ours = result["ours"]
        if ours["status"] == "not timed":  # a memory-only case: XLA's figure, no times
            assert ours["xla_bytes"] > 0
            continue
        assert ours["status"] == "ok", result
        assert ours["median_s"] > 0
        assert ours["repeats"] >= 5
        assert ours["compile_s"] >= 0
        for label, peer in result["peers"].items():
            status = peer["status"]
            # A peer either ran, is not installed, or was skipped with a reason; never a crash.
            assert status == "ok" or status == "not installed" or status.startswith("skipped: "), (label, peer)
            if status == "ok":
                assert peer["repeats"] >= 5
                assert peer["speedup"] == pytest.approx(peer["median_s"] / ours["median_s"])
    for fit in report["scaling"]:
        assert len(fit["n"]) >= 3
        assert np.isfinite(fit["exponent"])


def test_quick_run_markdown(quick_run):
    _, out = quick_run
    report = json.loads((out / "cpu-quick.json").read_text())
    text = (out / "cpu-quick.md").read_text()
    assert "| case | sizes | ours |" in text
    assert "python -m benchmarks --quick" in text
    for result in report["results"]:
        assert f"| {result['name']} | {result['sizes']}" in text


def _case(peers, ours=lambda: 1.0):
    return h.Case(name="toy", sizes="n=10", ours=ours, peers=peers, n=10)


def _missing_peer():
    import not_a_real_module_xyz  # noqa: F401


def _broken_peer():
    raise RuntimeError("boom")


def test_run_case_peer_statuses():
    result = h.run_case(
        _case(
            {
                "fine": lambda: np.zeros(3),
                "missing": _missing_peer,
                "too big": h.Skipped("needs 80 GB"),
                "broken": _broken_peer,
            }
        ),
        min_repeats=5,
        max_repeats=5,
        target_s=0.0,
    )
    assert result["ours"]["status"] == "ok"
    assert result["ours"]["repeats"] == 5
    peers = result["peers"]
    assert list(peers) == ["fine", "missing", "too big", "broken"]
    assert peers["fine"]["status"] == "ok" and peers["fine"]["repeats"] == 5
    assert peers["missing"]["status"] == "not installed"
    assert peers["too big"]["status"] == "skipped: needs 80 GB"
    assert peers["broken"]["status"].startswith("error: RuntimeError: boom")


def test_xla_memory_counts_temporaries_not_inputs():
    import jax
    import jax.numpy as jnp

    x = jnp.ones((512, 8), jnp.float32)
    gram = jax.jit(lambda a: jnp.cumsum(a @ a.T, axis=1)[:, -1].sum())
    measured = h.xla_memory(lambda: gram(x))
    # The 512 x 512 float32 Gram matrix (1 MiB) must be materialised for the cumsum;
    # the input (16 KiB) is not counted. XLA may keep a second buffer of that size.
    assert 512 * 512 * 4 <= measured <= 3 * 512 * 512 * 4
    # numpy code is not JAX code: no XLA figure.
    host = np.ones((512, 8))
    assert h.xla_memory(lambda: host @ host.T) is None


@pytest.mark.parametrize("power", [1.0, 1.5, 2.0])
def test_fit_exponent_recovers_power(power):
    ns = [1e3, 1e4, 1e5, 1e6]
    assert h.fit_exponent(ns, [3e-9 * n**power for n in ns]) == pytest.approx(power)


def test_scaling_groups_series_by_sizes_without_n():
    def result(n, d, seconds, peer_seconds):
        return {
            "name": "sw",
            "sizes": f"n={n}, d={d}, directions=128",
            "n": n,
            "ours": {"status": "ok", "median_s": seconds},
            "peers": {"POT": {"status": "ok", "median_s": peer_seconds}},
        }

    results = [result(n, 16, 1e-8 * n, 1e-12 * n**2) for n in (1000, 10000, 100000, 1000000)]
    results.append(result(1000, 784, 1.0, 1.0))  # another series: only one size, no fit
    fits = h.scaling(results)
    assert {(f["fixed"], f["impl"]) for f in fits} == {("d=16, directions=128", "ours"), ("d=16, directions=128", "POT")}
    by_impl = {f["impl"]: f for f in fits}
    assert by_impl["ours"]["exponent"] == pytest.approx(1.0)
    assert by_impl["POT"]["exponent"] == pytest.approx(2.0)
    assert by_impl["POT"]["decades"] == pytest.approx(3.0)


def test_markdown_says_when_we_lose():
    ok = {"status": "ok", "median_s": 2.0, "compile_s": 0.1, "peak_bytes": 2**20, "peak_method": "xla"}
    report = {
        "meta": {"device": {"description": "CPU"}, "date": "today", "command": "python -m benchmarks"},
        "results": [
            {
                "name": "toy",
                "sizes": "n=10",
                "note": "",
                "ours": ok,
                "peers": {
                    "fast peer": {**ok, "median_s": 1.0, "speedup": 0.5, "peak_method": "rss"},
                    "slow peer": {**ok, "median_s": 4.0, "speedup": 2.0},
                    "gone": {"status": "not installed"},
                },
            }
        ],
        "scaling": [],
    }
    text = h.to_markdown(report)
    assert "2.00x slower (peer wins)" in text
    assert "**2.00x faster**" in text
    assert "not installed" in text
    assert "1.0 MiB (RSS)" in text


def test_only_matches_names_and_globs():
    assert h._matches("sliced_wasserstein", None)
    assert h._matches("sliced_wasserstein", ["sliced_wasserstein"])
    assert h._matches("sliced_wasserstein", ["*wasserstein*"])
    assert not h._matches("wasserstein_1d", ["sliced_wasserstein"])


def test_memory_only_case_reports_xla_bytes_without_running():
    import jax
    import jax.numpy as jnp

    calls = []
    x = jnp.ones((256, 4), jnp.float32)
    f = jax.jit(lambda a: jnp.cumsum(a @ a.T, axis=1)[:, -1].sum())

    def ours():
        calls.append(1)  # runs at trace time only
        return f(x)

    case = h.Case(name="toy", sizes="n=256", ours=ours, peers={"dense": h.Skipped("too big")}, n=256, timed=False)
    result = h.run_case(case, min_repeats=5, max_repeats=5, target_s=0.0)
    assert result["ours"]["status"] == "not timed"
    assert result["ours"]["xla_bytes"] >= 256 * 256 * 4
    assert result["peers"]["dense"]["status"] == "skipped: too big"
    assert len(calls) == 1  # traced once, never executed


def test_update_replaces_only_the_matching_cases():
    def result(name, seconds):
        return {"name": name, "sizes": "n=10", "n": None, "ours": {"status": "ok", "median_s": seconds}, "peers": {}}

    def meta(date, command, host):
        return {"date": date, "command": command, "device": {"description": host}}

    old = {"meta": meta("d0", "c0", "CPU A"), "results": [result("a", 1.0), result("b", 2.0)], "scaling": []}
    new = {"meta": meta("d1", "c1 --only b", "CPU A"), "results": [result("b", 3.0)], "scaling": []}
    merged = h._updated(old, new, ["b"])
    assert [(r["name"], r["ours"]["median_s"]) for r in merged["results"]] == [("a", 1.0), ("b", 3.0)]
    assert merged["meta"]["updated"] == [{"date": "d1", "command": "c1 --only b"}]
    # An update measured on another host (or NumPy setting) names it, in the JSON and the markdown.
    other = {"meta": meta("d2", "c2 --only a", "CPU B"), "results": [result("a", 4.0)], "scaling": []}
    merged = h._updated(merged, other, ["a"])
    assert merged["meta"]["updated"][-1] == {"date": "d2", "command": "c2 --only a", "device": "CPU B"}
    assert "Updated d2 by `c2 --only a` on CPU B." in h.to_markdown({**merged, "results": [], "scaling": []})


def test_first_puts_topics_first_and_refuses_unknown_ones():
    every = h.case_modules()
    ordered = h.case_modules(["wasserstein", "train_step", "wasserstein"])
    assert ordered[:2] == ["benchmarks.case_wasserstein", "benchmarks.case_train_step"]
    assert sorted(ordered) == sorted(every) and len(ordered) == len(every)
    assert ordered[2:] == [m for m in every if m not in ordered[:2]]  # the rest keep their sorted order
    with pytest.raises(ValueError, match=r"^`first` names no case module: benchmarks.case_nope;"):
        h.case_modules(["nope"])


def test_budget_stops_starting_cases_and_lists_the_rest(tmp_path, monkeypatch):
    import time
    import types

    def module(name, cases):
        mod = types.ModuleType(name)
        mod.cases = lambda quick: cases
        monkeypatch.setitem(sys.modules, name, mod)
        return name

    slow = h.Case(name="toy_slow", sizes="n=1", ours=lambda: time.sleep(0.05), peers={})
    late = h.Case(name="toy_late", sizes="n=2", ours=lambda: 0.0, peers={})
    other = h.Case(name="toy_other", sizes="n=3", ours=lambda: 0.0, peers={})
    names = [module("fake_bench_a", [slow, late]), module("fake_bench_b", [other])]
    monkeypatch.setattr(h, "case_modules", lambda first=None: names)
    # The slow case alone (a warm-up and at least five timed calls of 0.05 s) outlasts the budget.
    rc = h.main(["--quick", "--budget", "0.1", "--out", str(tmp_path)])
    assert rc == 0
    report = json.loads((tmp_path / "cpu-quick.json").read_text())
    assert [r["name"] for r in report["results"]] == ["toy_slow"]
    assert report["meta"]["budget_s"] == 0.1
    assert report["meta"]["not_run"] == ["toy_late (n=2)", "every case of fake_bench_b"]
    markdown = (tmp_path / "cpu-quick.md").read_text()
    assert "Not run, the --budget of 0.1 s being spent: toy_late (n=2); every case of fake_bench_b." in markdown
    # Without a budget every case runs and nothing is listed.
    assert h.main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "cpu-quick.json").read_text())
    assert [r["name"] for r in report["results"]] == ["toy_slow", "toy_late", "toy_other"]
    assert report["meta"]["not_run"] == [] and "Not run" not in (tmp_path / "cpu-quick.md").read_text()


def test_budget_must_not_be_negative(tmp_path):
    with pytest.raises(SystemExit, match="--budget must be >= 0"):
        h.main(["--budget", "-1", "--out", str(tmp_path)])


def test_update_keeps_the_cases_its_budget_left_out():
    def meta(date, command, **extra):
        return {"date": date, "command": command, "device": {"description": "GPU A"}, **extra}

    row = {"name": "a", "sizes": "n=10", "n": None, "ours": {"status": "ok", "median_s": 1.0}, "peers": {}}
    old = {"meta": meta("d0", "c0"), "results": [row], "scaling": []}
    new = {"meta": meta("d1", "c1 --only b --update --budget 5", budget_s=5.0, not_run=["b (n=1)"]), "results": [],
           "scaling": []}
    merged = h._updated(old, new, ["b"])
    assert merged["meta"]["updated"] == [
        {"date": "d1", "command": "c1 --only b --update --budget 5", "budget_s": 5.0, "not_run": ["b (n=1)"]}
    ]
    text = h.to_markdown({**merged, "results": [], "scaling": []})
    assert "Updated d1 by `c1 --only b --update --budget 5`.\nNot run, the --budget of 5 s being spent: b (n=1)." in text
    # A later update that measures a case of the first run's list takes it off that list.
    first = {"meta": meta("d0", "c0 --budget 9", budget_s=9.0, not_run=["b (n=1)", "c (n=2)", "every case of m"]),
             "results": [row], "scaling": []}
    merged = h._updated(first, {"meta": meta("d1", "c1 --only b --update"), "results": [], "scaling": []}, ["b"])
    assert merged["meta"]["not_run"] == ["c (n=2)", "every case of m"]
    assert "updated" in merged["meta"] and "not_run" not in merged["meta"]["updated"][-1]
