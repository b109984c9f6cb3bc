"""The benchmark harness behind ``python -m benchmarks``.

Every ``benchmarks/case_<topic>.py`` module defines ``cases(quick) -> list[Case]``.
The harness imports all of them, and for each case runs our code and every
peer **in the same process, interleaved** (ours, peer 1, peer 2, ours, ...), so
that the load of a shared machine hits every implementation alike and the
ratios stay meaningful even when the absolute times are noisy.

Per implementation it records:

* the first call (for JAX code: tracing + compilation + one run); the compile
  time we report is ``first call - median``;
* the median wall time of at least ``min_repeats`` calls, each ended by
  ``jax.block_until_ready`` on the result;
* peak memory. For code that JAX can trace (ours, and JAX peers such as
  ott-jax or the dense MMD) this is what XLA's buffer assignment allocates
  per call, temporaries plus outputs, from ``Compiled.memory_analysis()`` of
  the traced thunk with its inputs as arguments: exact and the same on CPU and
  GPU. For everything else (numpy, scipy, POT, torch) it is the rise of the
  process's resident-set high-water mark (Linux ``VmHWM``, reset through
  ``/proc/self/clear_refs``) during one call after the warm-up: a lower bound,
  since an allocator may reuse memory that it already holds.

Results go to ``<out>/<platform>.json`` and ``<out>/<platform>.md``, with a
log-log least-squares fit of time against ``n`` for every series of cases
that differ only in ``n`` (the scaling exponent).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import datetime
import fnmatch
import importlib
import json
import math
import os
import pathlib
import platform as _platform
import re
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Case", "Skipped", "optional_peer", "main", "fit_exponent", "block", "xla_memory"]

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


@dataclasses.dataclass
class Case:
    """One benchmark: our code and its peers on the same prepared inputs.

    Attributes:
      name: the estimator or step, e.g. ``"wasserstein_1d"``; ``--only`` matches it.
      sizes: the problem size in words, e.g. ``"n=1000000"``. Cases of the same
        name whose ``sizes`` differ only in ``n=``/``m=`` form one scaling series.
      ours: runs our (jitted) code once on prepared inputs; the harness blocks
        on the result.
      peers: peer name ("POT", "scipy", "ott-jax", "torch eager", ...) to a
        thunk, or to :class:`Skipped` with the reason. A thunk that raises
        ``ImportError`` is reported as "not installed".
      n: the size used for the scaling fit (``None``: not part of a fit).
      note: shown beside the case in the table.
      timed: ``False`` for a size too slow to time on the machine at hand:
        our code is compiled and its XLA memory reported, nothing is run, and
        the table says "not timed" (an extension; the fields above are the
        interface every case module uses).
    """

    name: str
    sizes: str
    ours: Callable[[], Any]
    peers: dict[str, Callable[[], Any] | Skipped]
    n: int | None = None
    note: str = ""
    timed: bool = True


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A peer that a case does not run, with the reason (e.g. "needs 80 GB")."""

    reason: str


def optional_peer(build: Callable[[], Callable[[], Any]]) -> Callable[[], Any]:
    """Build a peer's thunk now (imports, jit); an ``ImportError`` becomes "not installed".

    ``build`` imports the peer's package and returns the thunk. When the
    import fails, the returned thunk re-raises the ``ImportError`` when
    called, which the harness reports as "not installed".
    """
    try:
        return build()
    except ImportError as exc:
        error = exc

        def missing() -> Any:
            raise error

        return missing


# --------------------------------------------------------------------------
# Running one thunk.


def block(out: Any) -> Any:
    """Wait until ``out`` (any pytree of JAX arrays, numpy, torch, floats) is computed."""
    import jax

    leaves = jax.tree_util.tree_leaves(out)
    for leaf in leaves:
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
        elif type(leaf).__module__.startswith("torch") and getattr(leaf, "is_cuda", False):
            import torch

            torch.cuda.synchronize()
    return out


def _has_jax_array(out: Any) -> bool:
    import jax

    return any(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(out))


def _timed(thunk: Callable[[], Any]) -> float:
    start = time.perf_counter()
    block(thunk())
    return time.perf_counter() - start


_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:
            _LIBC = False
    return _LIBC


def _read_status() -> dict[str, int] | None:
    try:
        text = pathlib.Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+)\s*kB", text, flags=re.M))
    if len(found) != 2:
        return None
    return {k: int(v) * 1024 for k, v in found.items()}


def _reset_high_water() -> int | None:
    """Give freed heap back to the OS and reset VmHWM; return the RSS baseline."""
    libc = _libc()
    if libc:
        try:
            libc.malloc_trim(0)
        except AttributeError:
            pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    status = _read_status()
    return None if status is None else status["VmRSS"]


def _rss_peak(thunk: Callable[[], Any]) -> tuple[float, int | None]:
    """One timed call; also the rise of the RSS high-water mark during it."""
    baseline = _reset_high_water()
    seconds = _timed(thunk)
    status = _read_status()
    if baseline is None or status is None:
        return seconds, None
    return seconds, max(status["VmHWM"] - baseline, 0)


def xla_memory(thunk: Callable[[], Any]) -> int | None:
    """Bytes that XLA allocates per call of ``thunk`` (temporaries + outputs).

    The thunk is traced once; the arrays it closes over become arguments (not
    constants, which XLA would fold), and the compiled program's memory
    analysis is read. Returns ``None`` when the thunk is not JAX code (it
    fails to trace, or traces to no operation at all, as numpy code does).
    """
    import jax

    try:
        closed = jax.make_jaxpr(thunk)()
    except Exception:  # not traceable: numpy/torch code, host callbacks, ...
        return None
    if not closed.jaxpr.eqns:
        return None
    # Keep the outputs of every top-level call alive: a thunk that returns
    # only part of a result (a step counter of a new train state) would
    # otherwise let XLA delete the work it stands for, which the real call
    # does materialise.
    jaxpr = closed.jaxpr
    seen = {id(v) for v in jaxpr.outvars}
    extra = []
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            if id(var) not in seen and type(var).__name__ != "DropVar":
                seen.add(id(var))
                extra.append(var)
    try:
        jaxpr = jaxpr.replace(outvars=list(jaxpr.outvars) + extra)
    except Exception:
        jaxpr = closed.jaxpr
    try:
        fn = jax.jit(lambda consts: jax.core.eval_jaxpr(jaxpr, consts))
        stats = fn.lower(list(closed.consts)).compile().memory_analysis()
    except Exception:
        return None
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)


def _device_memory_peak() -> int | None:
    """The accelerator's peak bytes in use so far (None on CPU)."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    try:
        stats = device.memory_stats() or {}
    except Exception:
        return None
    return stats.get("peak_bytes_in_use")


@dataclasses.dataclass
class _Impl:
    label: str
    thunk: Callable[[], Any]
    times: list[float] = dataclasses.field(default_factory=list)
    first_call_s: float | None = None
    rss_bytes: int | None = None
    xla_bytes: int | None = None
    status: str = "ok"
    single_call: bool = False


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ImportError):
        return "not installed"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"error: {type(exc).__name__}: {message}"[:300]


def measure(
    impls: dict[str, Callable[[], Any]],
    *,
    min_repeats: int = 5,
    max_repeats: int = 50,
    target_s: float = 2.0,
    memory: bool = True,
    peer_limit_s: float | None = None,
    slow_peer_s: float | None = None,
) -> dict[str, _Impl]:
    """Time several implementations of the same work, interleaved.

    Each implementation is called once to warm up (compile), once more to
    measure its memory and calibrate, then ``rounds - 1`` times in
    round-robin order, where ``rounds`` is chosen so that the case takes
    about ``target_s`` and lies in ``[min_repeats, max_repeats]``. A failing
    implementation is marked and dropped; the others go on. With
    ``peer_limit_s`` (smoke runs), a peer whose second call (after the
    warm-up) takes longer is skipped, with its time in the reason. ``memory=False`` leaves out XLA's
    memory analysis (a second compilation of each JAX implementation).
    With ``slow_peer_s``, a peer whose warm-up call takes longer than that is
    not called again: that one call is its time (``repeats = 1``, said in
    the table), so that one slow peer cannot take a full run's budget.
    """
    runs = {label: _Impl(label, thunk) for label, thunk in impls.items()}
    for impl in runs.values():
        try:
            start = time.perf_counter()
            out = block(impl.thunk())
            impl.first_call_s = time.perf_counter() - start
            if slow_peer_s is not None and impl.label != "ours" and impl.first_call_s > slow_peer_s:
                impl.times.append(impl.first_call_s)
                impl.single_call = True
                continue
            # Only code that returns JAX arrays is traced for XLA's figure:
            # tracing numpy code would just run it once more.
            if memory and _has_jax_array(out):
                impl.xla_bytes = xla_memory(impl.thunk)
            del out
            seconds, impl.rss_bytes = _rss_peak(impl.thunk)
            impl.times.append(seconds)
            if peer_limit_s is not None and impl.label != "ours" and seconds > peer_limit_s:
                impl.status = f"skipped: slower than {peer_limit_s:g} s a call in a --quick run ({seconds:.1f} s)"
        except Exception as exc:  # a broken peer must not stop the run
            impl.status = _describe_error(exc)
    alive = [impl for impl in runs.values() if impl.status == "ok" and not impl.single_call]
    per_round = sum(impl.times[0] for impl in alive)
    rounds = min_repeats if per_round <= 0 else int(target_s / per_round)
    rounds = max(min_repeats, min(max_repeats, rounds))
    for _ in range(rounds - 1):
        for impl in alive:
            if impl.status != "ok":
                continue
            try:
                impl.times.append(_timed(impl.thunk))
            except Exception as exc:
                impl.status = _describe_error(exc)
    return runs


def _summary(impl: _Impl) -> dict[str, Any]:
    if impl.status != "ok":
        return {"status": impl.status}
    median = statistics.median(impl.times)
    return {
        "status": "ok",
        "median_s": median,
        "min_s": min(impl.times),
        "repeats": len(impl.times),
        "first_call_s": impl.first_call_s,
        "compile_s": max((impl.first_call_s or 0.0) - median, 0.0),
        "per_second": 1.0 / median if median > 0 else None,
        "xla_bytes": impl.xla_bytes,
        "rss_bytes": impl.rss_bytes,
        "peak_bytes": impl.xla_bytes if impl.xla_bytes is not None else impl.rss_bytes,
        "peak_method": "xla" if impl.xla_bytes is not None else ("rss" if impl.rss_bytes is not None else None),
        "single_call": impl.single_call,
    }


def _memory_only(case: Case) -> dict[str, Any]:
    import jax

    try:
        jax.make_jaxpr(case.ours)()  # to report why, if it cannot be traced
        xla_bytes = xla_memory(case.ours)
    except Exception as exc:
        return {"status": _describe_error(exc)}
    if xla_bytes is None:
        return {"status": "error: memory-only case whose code JAX cannot trace"}
    return {"status": "not timed", "xla_bytes": xla_bytes, "peak_bytes": xla_bytes, "peak_method": "xla"}


def run_case(
    case: Case,
    *,
    min_repeats: int,
    max_repeats: int,
    target_s: float,
    memory: bool = True,
    peer_limit_s: float | None = None,
    slow_peer_s: float | None = None,
) -> dict[str, Any]:
    """Measure one case: our code and every peer that runs."""
    if not case.timed:
        return {
            "name": case.name,
            "sizes": case.sizes,
            "n": case.n,
            "note": case.note,
            "ours": _memory_only(case),
            "peers": {
                label: {"status": f"skipped: {peer.reason}" if isinstance(peer, Skipped) else "not timed"}
                for label, peer in case.peers.items()
            },
        }
    thunks: dict[str, Callable[[], Any]] = {"ours": case.ours}
    peers: dict[str, dict[str, Any]] = {}
    for label, peer in case.peers.items():
        if isinstance(peer, Skipped):
            peers[label] = {"status": f"skipped: {peer.reason}"}
        elif peer is None:
            peers[label] = {"status": "not installed"}
        else:
            thunks[f"peer:{label}"] = peer
    device_peak_before = _device_memory_peak()
    runs = measure(
        thunks,
        min_repeats=min_repeats,
        max_repeats=max_repeats,
        target_s=target_s,
        memory=memory,
        peer_limit_s=peer_limit_s,
        slow_peer_s=slow_peer_s,
    )
    ours = _summary(runs.pop("ours"))
    device_peak_after = _device_memory_peak()
    if device_peak_after is not None:
        ours["device_peak_bytes_so_far"] = device_peak_after
        ours["device_peak_grew"] = device_peak_before is None or device_peak_after > device_peak_before
    for key, impl in runs.items():
        peers[key.removeprefix("peer:")] = _summary(impl)
    for summary in peers.values():
        if summary.get("status") == "ok" and ours.get("status") == "ok":
            summary["speedup"] = summary["median_s"] / ours["median_s"]
    # Keep the case's order of peers.
    ordered = {label: peers[label] for label in case.peers}
    return {
        "name": case.name,
        "sizes": case.sizes,
        "n": case.n,
        "note": case.note,
        "ours": ours,
        "peers": ordered,
    }


# --------------------------------------------------------------------------
# Scaling fits.


def fit_exponent(ns: Sequence[float], seconds: Sequence[float]) -> float:
    """Least-squares slope of log(seconds) against log(n)."""
    xs = [math.log(n) for n in ns]
    ys = [math.log(s) for s in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return sxy / sxx


def _series_key(result: dict[str, Any]) -> tuple[str, str]:
    """Name and sizes without the ``n=``/``m=`` entries: cases that differ only in n."""
    kept = []
    for part in result["sizes"].split(","):
        keys = [k.strip() for k in part.split("=")[:-1]]
        if keys and all(k in ("n", "m") for k in keys):
            continue
        kept.append(part.strip())
    return result["name"], ", ".join(kept)


def scaling(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fit time ~ n^k for every series of cases that differ only in n."""
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in results:
        if result.get("n"):
            series.setdefault(_series_key(result), []).append(result)
    fits = []
    for (name, fixed), members in series.items():
        labels = ["ours"] + [p for p in members[0]["peers"]]
        for label in labels:
            points = {}
            for member in members:
                summary = member["ours"] if label == "ours" else member["peers"].get(label, {})
                if summary.get("status") == "ok":
                    points[member["n"]] = summary["median_s"]
            if len(points) < 3:
                continue
            ns = sorted(points)
            ts = [points[n] for n in ns]
            fits.append(
                {
                    "name": name,
                    "fixed": fixed,
                    "impl": label,
                    "n": ns,
                    "median_s": ts,
                    "decades": math.log10(ns[-1] / ns[0]),
                    "exponent": fit_exponent(ns, ts),
                    "last_exponent": fit_exponent(ns[-2:], ts[-2:]),
                }
            )
    return fits


# --------------------------------------------------------------------------
# Markdown.


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def _fmt_bytes(count: int | None, method: str | None = None) -> str:
    if count is None:
        return "-"
    if count >= 2**30:
        text = f"{count / 2**30:.2f} GiB"
    elif count >= 2**20:
        text = f"{count / 2**20:.1f} MiB"
    else:
        text = f"{count / 2**10:.0f} KiB"
    return f"{text} (RSS)" if method == "rss" else text


def _fmt_speedup(summary: dict[str, Any]) -> str:
    speedup = summary.get("speedup")
    if speedup is None:
        return "-"
    if speedup >= 1:
        return f"**{speedup:.2f}x faster**"
    return f"{1 / speedup:.2f}x slower (peer wins)"


def _not_run_lines(meta: dict[str, Any]) -> list[str]:
    """The line naming the cases that a run's ``--budget`` left out (none without a budget)."""
    if not meta.get("not_run"):
        return []
    return [f"Not run, the --budget of {meta['budget_s']:g} s being spent: {'; '.join(meta['not_run'])}."]


def to_markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"Device: {meta['device']['description']}. Date: {meta['date']}. "
        f"Command: `{meta['command']}`.",
    ]
    lines += _not_run_lines(meta)
    for update in meta.get("updated", []):
        on = f" on {update['device']}" if update.get("device") else ""
        lines.append(f"Updated {update['date']} by `{update['command']}`{on}.")
        lines += _not_run_lines(update)
    lines += [
        "",
        "| case | sizes | ours | compile | ours peak mem | peer | peer time | peer peak mem | ours vs peer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in report["results"]:
        ours = result["ours"]
        if ours["status"] == "ok":
            memory = _fmt_bytes(ours["peak_bytes"], ours["peak_method"])
            if ours["peak_method"] == "xla" and ours.get("rss_bytes") is not None:
                memory += f"; {_fmt_bytes(ours['rss_bytes'], 'rss')}"
            ours_cells = [_fmt_time(ours["median_s"]), _fmt_time(ours["compile_s"]), memory]
        elif ours["status"] == "not timed":
            ours_cells = ["not timed", "-", _fmt_bytes(ours["peak_bytes"], "xla")]
        else:
            ours_cells = [ours["status"], "-", "-"]
        sizes = result["sizes"] + (f" ({result['note']})" if result["note"] else "")
        peers = result["peers"] or {"(none)": {"status": "-"}}
        for row, (label, peer) in enumerate(peers.items()):
            if row == 1:  # one case, several peers: our cells once
                ours_cells = ["", "", ""]
            if peer.get("status") == "ok":
                peer_cells = [
                    label,
                    _fmt_time(peer["median_s"]) + (" (1 call)" if peer.get("single_call") else ""),
                    _fmt_bytes(peer["peak_bytes"], peer["peak_method"]),
                    _fmt_speedup(peer),
                ]
            else:
                peer_cells = [label, peer.get("status", "-"), "-", "-"]
            lines.append("| " + " | ".join([result["name"], sizes, *ours_cells, *peer_cells]) + " |")
    fits = report.get("scaling", [])
    if fits:
        lines += [
            "",
            "Scaling: least-squares slope of log(time) against log(n) (1 = linear, 2 = quadratic);"
            " the last column uses the two largest n only, where fixed overheads matter least.",
            "",
            "| case | fixed | implementation | n | decades | exponent | exponent (last step) |",
            "|---|---|---|---|---|---|---|",
        ]
        for fit in fits:
            ns = f"{fit['n'][0]:.0e} .. {fit['n'][-1]:.0e} ({len(fit['n'])} sizes)"
            lines.append(
                f"| {fit['name']} | {fit['fixed'] or '-'} | {fit['impl']} | {ns} | {fit['decades']:.1f} "
                f"| {fit['exponent']:.2f} | {fit['last_exponent']:.2f} |"
            )
    lines += [
        "",
        "Times are medians of >= 5 interleaved calls after a warm-up call; compile = first call - median;"
        " (1 call): a peer slower than --slow-peer seconds, timed by its first call alone."
        " Peak memory: XLA buffer assignment (temporaries + outputs) for JAX code;"
        " (RSS) = rise of the process's resident-set high-water mark during one call, a lower bound"
        " (for our code it also covers host-side work such as the NumPy sort that runs on CPU).",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Discovery, device and the command.


def case_modules(first: Sequence[str] | None = None) -> list[str]:
    """Names of every ``benchmarks/case_*.py`` module: those of the topics ``first`` in that order, then the rest sorted."""
    names = sorted(f"benchmarks.{p.stem}" for p in PACKAGE_DIR.glob("case_*.py"))
    leading = [f"benchmarks.case_{topic}" for topic in first or ()]
    unknown = [name for name in leading if name not in names]
    if unknown:
        topics = ", ".join(name.removeprefix("benchmarks.case_") for name in names)
        raise ValueError(f"`first` names no case module: {', '.join(unknown)}; the topics are {topics}")
    leading = list(dict.fromkeys(leading))
    return leading + [name for name in names if name not in leading]


def _matches(name: str, patterns: Sequence[str] | None) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _cpu_model() -> str:
    """The CPU's name, with its family and model numbers where /proc/cpuinfo gives them.

    Two hosts sold under one name can sort at different speeds (NumPy's
    AVX-512 sort is slow on AMD Zen 4, family 25, and absent on Zen 3), so
    the numbers go into every result's device line.
    """
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return _platform.processor() or _platform.machine()

    def field(name):
        found = re.search(rf"^{name}\s*:\s*(.+)$", text, flags=re.M)
        return found.group(1).strip() if found else None

    name = field("model name") or _platform.processor() or _platform.machine()
    family, model = field("cpu family"), field("model")
    return f"{name} (family {family}, model {model})" if family and model else name


def _numpy_simd() -> str:
    """NumPy's enabled SIMD dispatch targets (what its sorts run on), and ``NPY_DISABLE_CPU_FEATURES`` if set."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # NumPy moved its private module
        return "NumPy SIMD unknown"
    enabled = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    text = "NumPy SIMD " + (" ".join(enabled) or "baseline only")
    disabled = os.environ.get("NPY_DISABLE_CPU_FEATURES", "").strip()
    return text + (f" (NPY_DISABLE_CPU_FEATURES={disabled})" if disabled else "")


def _describe_device() -> dict[str, Any]:
    import jax

    device = jax.devices()[0]
    cores, cpu, simd = os.cpu_count(), _cpu_model(), _numpy_simd()
    host = f"{cpu}, {cores} cores"
    if device.platform == "cpu":
        description = f"CPU ({host}; {simd}; XLA CPU)"
    else:
        description = f"{device.platform.upper()} {device.device_kind} (host: {host})"
    return {
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "host_cpu": cpu,
        "host_cores": cores,
        "numpy_simd": simd,
        "description": description,
    }


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {"python": _platform.python_version()}
    for dist in ("jax", "jaxlib", "numpy", "scipy", "pot", "ott-jax", "torch"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def _select_platform(device: str) -> None:
    """Choose JAX's platform; must run before JAX creates its backends."""
    if device == "default":
        return
    platforms = {"cpu": "cpu", "gpu": "cuda,cpu", "tpu": "tpu,cpu"}[device]
    os.environ["JAX_PLATFORMS"] = platforms
    if "jax" in sys.modules:
        import jax

        jax.config.update("jax_platforms", platforms)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time every estimator and train step of `divergences` against its peers.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (what the tests run)")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only cases with this name (glob patterns allowed; repeatable)"
    )
    parser.add_argument("--out", default=str(PACKAGE_DIR / "results"), help="folder for the JSON and markdown results")
    parser.add_argument(
        "--device",
        choices=["default", "cpu", "gpu", "tpu"],
        default="default",
        help="JAX platform to run on (default: JAX's default device)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="minimum timed calls per implementation (>= 5)")
    parser.add_argument("--target-seconds", type=float, default=None, help="time to spend per case (sets the repeats)")
    parser.add_argument(
        "--slow-peer",
        type=float,
        default=30.0,
        help="a peer whose warm-up call takes longer than this (s) is timed by that one call (0: always repeat)",
    )
    parser.add_argument(
        "--first",
        action="append",
        metavar="TOPIC",
        help="run the cases of benchmarks/case_TOPIC.py before the others (repeatable, in the order given)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help="start no case after this many seconds; the cases left are listed as not run",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--update",
        action="store_true",
        help="with --only: replace those cases in the existing <platform>.json/.md of --out instead of "
        "writing a separate file",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.repeats < 5:
        raise SystemExit("--repeats must be >= 5")
    if args.budget is not None and not args.budget >= 0:
        raise SystemExit(f"--budget must be >= 0 seconds; got {args.budget}")
    _select_platform(args.device)
    import jax

    if args.device == "cpu":
        jax.config.update("jax_platforms", "cpu")

    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    failures = 0
    device = _describe_device()
    target_s = args.target_seconds if args.target_seconds is not None else (0.05 if args.quick else 2.0)
    max_repeats = args.repeats if args.quick else max(args.repeats, 50)
    partial = pathlib.Path(args.out) / f".partial-{os.getpid()}.json"
    try:
        modules = case_modules(args.first)
    except ValueError as exc:
        raise SystemExit(str(exc).replace("`first`", "--first", 1)) from None
    not_run: list[str] = []

    def spent() -> bool:
        return not args.list and args.budget is not None and time.perf_counter() - started > args.budget

    for module_name in modules:
        if spent():  # its cases are not even built (some hold large inputs)
            not_run.append(f"every case of {module_name}" + (" that --only matches" if args.only else ""))
            continue
        try:
            module = importlib.import_module(module_name)
            cases = module.cases(args.quick)
        except Exception:
            failures += 1
            print(f"[benchmarks] {module_name}: cannot build its cases", file=sys.stderr)
            traceback.print_exc()
            continue
        for case in cases:
            if not _matches(case.name, args.only):
                continue
            if args.list:
                print(f"{case.name:24s} {case.sizes}")
                continue
            if spent():
                not_run.append(f"{case.name} ({case.sizes})")
                continue
            t0 = time.perf_counter()
            result = run_case(
                case,
                min_repeats=args.repeats,
                max_repeats=max_repeats,
                target_s=target_s,
                # A smoke run checks the plumbing: no second compilation for
                # XLA's memory figure, and no waiting on slow peers.
                memory=not args.quick,
                peer_limit_s=0.5 if args.quick else None,
                slow_peer_s=None if args.quick or args.slow_peer <= 0 else args.slow_peer,
            )
            result["module"] = module_name
            results.append(result)
            if result["ours"]["status"] not in ("ok", "not timed"):
                failures += 1
            print(_progress_line(result, time.perf_counter() - t0), flush=True)
            # Results so far, in case a long run is interrupted (removed at the end).
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(results, default=_json_default))
        del cases
    if args.list:
        return 0
    command = "python -m benchmarks" + (" " + " ".join(argv) if argv is not None else " ".join([""] + sys.argv[1:]))
    report = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command.strip(),
            "quick": args.quick,
            "only": args.only,
            "device": device,
            "versions": _versions(),
            "min_repeats": args.repeats,
            "total_s": None,
            "budget_s": args.budget,
            "not_run": not_run,
            "memory_method": (
                "JAX code: XLA buffer assignment of the traced call (temporaries + outputs, inputs excluded); "
                "other code: rise of VmHWM during one call after warm-up (lower bound)"
            ),
        },
        "results": results,
        "scaling": scaling(results),
    }
    elapsed = time.perf_counter() - started
    report["meta"]["total_s"] = elapsed
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = device["platform"]
    if args.quick:
        stem += "-quick"
    if args.only and args.update and (out / f"{stem}.json").exists():
        report = _updated(json.loads((out / f"{stem}.json").read_text()), report, args.only)
    elif args.only:
        stem += "-only-" + "-".join(re.sub(r"[^A-Za-z0-9_]+", "_", p) for p in args.only)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(report))
    partial.unlink(missing_ok=True)
    for line in _not_run_lines({"not_run": not_run, "budget_s": args.budget}):  # this run's
        print(f"[benchmarks] {line}", flush=True)
    print(f"[benchmarks] wrote {out / stem}.json and .md in {elapsed:.0f} s", flush=True)  # this run (not an updated file's)
    return 1 if failures else 0


def _updated(old: dict[str, Any], new: dict[str, Any], patterns: Sequence[str]) -> dict[str, Any]:
    """``old`` with the cases matching ``patterns`` replaced by those of ``new``."""
    kept = [r for r in old["results"] if not _matches(r["name"], patterns)]
    results = kept + new["results"]
    meta = dict(old["meta"])
    if meta.get("not_run"):  # the cases of an earlier --budget's list that this update measured leave it
        meta["not_run"] = [case for case in meta["not_run"] if not _matches(case.split(" (")[0], patterns)]
    update = {"date": new["meta"]["date"], "command": new["meta"]["command"]}
    host = new["meta"].get("device", {}).get("description")
    if host and host != meta.get("device", {}).get("description"):
        update["device"] = host  # the rows of this update came from another host (or another NumPy setting)
    if new["meta"].get("not_run"):
        update.update(budget_s=new["meta"]["budget_s"], not_run=new["meta"]["not_run"])
    meta["updated"] = meta.get("updated", []) + [update]
    return {"meta": meta, "results": results, "scaling": scaling(results)}


def _json_default(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _progress_line(result: dict[str, Any], seconds: float) -> str:
    ours = result["ours"]
    shown = _fmt_time(ours.get("median_s")) if ours["status"] == "ok" else ours["status"]
    if ours.get("peak_bytes") is not None:
        shown += f" [{_fmt_bytes(ours['peak_bytes'], ours['peak_method'])}]"
    parts = [f"{result['name']:20s} {result['sizes']:34s} ours {shown}"]
    for label, peer in result["peers"].items():
        if peer.get("status") == "ok":
            parts.append(f"{label} {_fmt_time(peer['median_s'])} ({peer['speedup']:.2f}x)" if "speedup" in peer else label)
        else:
            parts.append(f"{label}: {peer.get('status')}")
    return " | ".join(parts) + f"  [{seconds:.1f} s]"
