"""``python -m divergences.train.compare RUN_DIR...``: several runs side by side.

Writes one PNG with a panel per metric (every run's curve over steps, from
its ``metrics.jsonl``) and prints a table of their final summaries (from
``summary.json``; a run without one, still running or stopped, shows its last
logged line).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

__all__ = ["load_run", "summary_table", "plot_runs", "main"]

# The summary columns worth a glance, in this order, where present.
_COLUMNS = ("objective", "dataset", "steps", "wall_time_s", "steps_per_s", "modes_covered", "high_quality",
            "classes_covered", "fid", "kid", "heldout_nll", "sliced_wasserstein", "mmd", "final_d_loss", "final_g_loss", "final_w_estimate",
            "final_d_accuracy")
_SKIP = {"step", "time_s", "n_modes", "judge_accuracy", "fid_floor", "kid_std"}


def load_run(run_dir: str) -> dict[str, Any]:
    """``{"name", "records", "summary"}`` of a run folder.

    Raises:
      ValueError: not a run folder (no ``metrics.jsonl``), or an unreadable file.
    """
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise ValueError(f"`run_dir` {run_dir!r} is not a run folder (no metrics.jsonl)")
    try:
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        summary_path = os.path.join(run_dir, "summary.json")
        summary = json.load(open(summary_path)) if os.path.exists(summary_path) else None
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"`run_dir` {run_dir!r}: {e}") from None
    if summary is None:
        summary = {"steps": records[-1]["step"] if records else 0, **(records[-1] if records else {}),
                   "stopped": "no summary.json"}
    return {"name": os.path.basename(os.path.normpath(run_dir)) or run_dir, "records": records,
            "summary": summary}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return "" if v is None else str(v)


def summary_table(runs: list[dict[str, Any]]) -> str:
    """A markdown table: one row per run, the summary columns that any run has."""
    cols = [c for c in _COLUMNS if any(c in r["summary"] for r in runs)]
    lines = ["| run | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in runs:
        lines.append(f"| {r['name']} | " + " | ".join(_fmt(r["summary"].get(c)) for c in cols) + " |")
    return "\n".join(lines)


def plot_runs(path: str, runs: list[dict[str, Any]]) -> list[str]:
    """Write the overlay PNG to ``path``; return the metric names plotted."""
    from divergences.train._plots import _pyplot

    plt = _pyplot()
    names: list[str] = []
    for r in runs:
        for rec in r["records"]:
            for k, v in rec.items():
                if k not in _SKIP and k not in names and isinstance(v, (int, float)) and not isinstance(v, bool):
                    names.append(k)
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        for r in runs:
            pts = [(rec["step"], rec[name]) for rec in r["records"] if name in rec]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=r["name"])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m divergences.train.compare",
                                description="Overlay the metrics of several runs in one PNG and print a table of "
                                            "their final summaries.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (each with metrics.jsonl)")
    p.add_argument("--out", default="compare.png", help="the PNG to write (default: compare.png)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        runs = [load_run(d) for d in args.runs]
        plot_runs(args.out, runs)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary_table(runs))
    print(f"\ncurves: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
