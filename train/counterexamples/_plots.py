"""The figures of ``python -m divergences.train.counterexamples`` (matplotlib, imported here only)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

_LABELS = {"kl": "KL", "tv": "TV", "js": "JS", "w1": "W1"}


def _divergences(res: dict, path: str) -> None:
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.5), constrained_layout=True)
    for row, name in enumerate(("uniform_shift", "parallel_lines")):
        r = res[name]
        grid = np.asarray(r["grid"])
        fine = np.linspace(grid.min(), grid.max(), 301)
        for col, d in enumerate(("kl", "tv", "js", "w1")):
            ax = axes[row, col]
            closed = np.asarray(r["closed"][d], dtype=float)
            if d == "kl":
                ax.text(0.5, 0.92, "closed form: +inf for every %s != 0" % r["param"], transform=ax.transAxes,
                        ha="center", fontsize=8)
            elif name == "uniform_shift":
                ax.plot(fine, {"tv": np.minimum(fine, 1), "js": np.minimum(fine, 1) * np.log(2), "w1": fine}[d],
                        "k-", lw=1.5, label="closed form")
            else:
                ax.plot(grid, closed, "k-", lw=1.5, label="closed form", drawstyle="default")
            for c, dd, label in r["columns"]:
                if dd != d or c.endswith("_closed"):
                    continue
                e = r["estimates"][c]
                mean = np.asarray(e["mean"], dtype=float)
                ci = np.nan_to_num(np.asarray(e["ci95"], dtype=float), nan=0.0)
                ok = np.isfinite(mean)
                if not ok.all():
                    label = f"{label} (+inf where not drawn)"
                ax.errorbar(grid[ok], mean[ok], yerr=ci[ok], fmt="o--", ms=3, capsize=2, label=label)
            if d == "w1":
                for c, e in r["extras"].items():
                    ax.errorbar(grid, e["mean"], yerr=np.nan_to_num(e["ci95"]), fmt="s:", ms=3, capsize=2,
                                label="sliced SW1")
                    ax.plot(grid, e["closed"], color="gray", lw=0.8, ls=":", label="2|theta|/pi")
            ax.set_title(f"{_LABELS[d]}, {'uniform shift' if row == 0 else 'parallel lines'}", fontsize=10)
            ax.set_xlabel(r["param"])
            ax.legend(fontsize=7, loc="lower right" if d != "kl" else "center right")
            ax.grid(alpha=0.3)
    fig.suptitle("Closed forms and sample estimates (mean ± 95% CI over seeds): TV and JS saturate, W1 grows")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _gradients(res: dict, path: str) -> None:
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)
    thetas = np.asarray(res["thetas"])
    keep = thetas > 0
    floor = 1e-12
    for name, label, style in (
        ("grad_minimax", "(b) minimax GAN, trained D", "o-"),
        ("grad_nonsaturating", "(b) non-saturating GAN, trained D", "s-"),
        ("grad_w1", "(c) dual W1, trained critic", "^-"),
    ):
        mean = np.maximum(np.asarray(res[name]["abs_mean"])[keep], floor)
        ax.plot(thetas[keep], mean, style, label=label)
    ax.plot(thetas[keep], np.maximum(np.abs(np.asarray(res["grad_optimal"]))[keep], floor), "kx--",
            label=f"(a) GAN value at D* (exactly 0, drawn at {floor:g})")
    ax.axhline(1.0, color="gray", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("theta")
    ax.set_ylabel("|d loss / d theta|")
    ax.set_title("Parallel lines: the generator's gradient")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")

    g = res["gaussians"]
    x = np.asarray(g["x"])
    m0, m1 = g["means"]
    s = g["std"]
    dens = lambda m: np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))  # noqa: E731
    ax2.fill_between(x, dens(m0) / dens(m0).max(), color="tab:blue", alpha=0.2, label="real (scaled density)")
    ax2.fill_between(x, dens(m1) / dens(m1).max(), color="tab:orange", alpha=0.2, label="fake (scaled density)")
    ax2.plot(x, g["discriminator"], "r-", label="GAN discriminator D(x)")
    ax2.set_ylim(-0.05, 1.1)
    ax2.set_xlabel("x")
    ax3 = ax2.twinx()
    ax3.plot(x, g["critic"], "g-", label="WGAN critic f(x) (right axis)")
    ax3.set_ylabel("critic value")
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = ax3.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, fontsize=8, loc="center")
    ax2.set_title("Two Gaussians far apart (WGAN paper, Figure 2)")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _learned_shift(res: dict, path: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    for i, (name, r) in enumerate(res["objectives"].items()):
        paths = np.asarray(r["paths"])
        color = f"C{i}"
        for p in paths:
            ax.plot(p, color=color, lw=0.6, alpha=0.4)
        ax.plot(paths.mean(0), color=color, lw=1.8, label=f"{name} (final |theta| {r['final_abs_theta_mean']:.3g})")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("generator step")
    ax.set_ylabel("theta")
    ax.set_title(f"Learning the shift of the parallel lines from theta = {res['theta0']:g}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _likelihood(res: dict, path: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), constrained_layout=True)
    thetas = np.asarray(res["thetas"])
    for sigma, curve in res["curves"].items():
        axes[0].plot(thetas, curve, label=f"sigma = {sigma}")
    axes[0].set_yscale("symlog")
    axes[0].set_xlabel("theta")
    axes[0].set_ylabel("mean log-likelihood (symlog)")
    axes[0].set_title("Noise-smoothed log-likelihood of data from P_0")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)

    rows = res["rows"]
    sig = np.array([r["sigma"] for r in rows])
    floor = 1e-40
    for key, label, style in (
        ("grad_loglik", "log-likelihood", "o-"),
        ("grad_js", "JS, noise on both", "s-"),
        ("grad_w1", "W1", "^-"),
    ):
        axes[1].plot(sig, np.maximum(np.abs([r[key] for r in rows]), floor), style, label=label)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("sigma")
    axes[1].set_ylabel(f"|gradient| at theta = {res['theta0']:g} (0 drawn at {floor:g})")
    axes[1].set_title("Gradient far from the data against the noise")
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3, which="both")

    for sigma, p in res["paths"].items():
        p = np.asarray(p, dtype=float)
        axes[2].plot(np.clip(p, -10, 10), label=f"sigma = {sigma}")
    axes[2].set_ylim(-10, 10)
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("theta (clipped to [-10, 10])")
    axes[2].set_title(f"Gradient ascent on the log-likelihood, step {res['lr']:g}")
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_all(results: dict, out: str) -> list[str]:
    """Write the four figures; returns their paths."""
    os.makedirs(out, exist_ok=True)
    paths = {
        "divergences.png": (_divergences, results["divergences"]),
        "gradients.png": (_gradients, results["gradients"]),
        "learned_shift.png": (_learned_shift, results["learned_shift"]),
        "likelihood.png": (_likelihood, results["likelihood"]),
    }
    written = []
    for name, (fn, res) in paths.items():
        path = os.path.join(out, name)
        fn(res, path)
        written.append(path)
    return written
