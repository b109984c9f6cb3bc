"""`python -m divergences.train.compare`: two short runs overlaid in one PNG, their summaries in a table."""

import json
import os

import pytest

from divergences.train import TrainConfig, run
from divergences.train.compare import load_run, main

TINY = dict(width=8, depth=1, critic_width=8, critic_depth=1, batch_size=32, z_dim=2, steps=20, eval_every=10,
            plot_every=0, checkpoint_every=0, steps_per_call=10, eval_samples=100, progress=False)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    outs = []
    for objective in ("sliced", "nsgan"):
        out = str(root / objective)
        run(TrainConfig(objective=objective, out=out, **TINY), log=lambda s: None)
        outs.append(out)
    return outs


def test_compare_writes_png_and_table(two_runs, tmp_path, capsys):
    png = str(tmp_path / "cmp.png")
    assert main([*two_runs, "--out", png]) == 0
    text = capsys.readouterr().out
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| run | objective | dataset | steps")
    # one row per run, with the values of its summary.json
    for out, row in zip(two_runs, rows[1:]):
        summary = json.load(open(os.path.join(out, "summary.json")))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == os.path.basename(out) and cells[1] == summary["objective"] and cells[3] == "20"
        assert f"{summary['sliced_wasserstein']:.4g}" in cells


def test_compare_plots_every_logged_metric(two_runs, tmp_path):
    from divergences.train.compare import plot_runs

    runs = [load_run(d) for d in two_runs]
    names = plot_runs(str(tmp_path / "c.png"), runs)
    assert {"g_loss", "d_loss", "d_accuracy", "sliced_wasserstein", "mmd", "high_quality"} <= set(names)
    assert "step" not in names and "time_s" not in names


def test_compare_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a run folder" in capsys.readouterr().err
