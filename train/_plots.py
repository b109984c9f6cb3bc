"""Sample plots (PNG): a scatter for 2-D data, histograms for 1-D, an image grid for images."""

from __future__ import annotations

import numpy as np

from divergences.train._data import Dataset

__all__ = ["save_samples", "save_curves"]


def _pyplot():
    import matplotlib  # lazy: the `train` extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_samples(path: str, samples: np.ndarray, dataset: Dataset, *, title: str = "") -> None:
    """Write a PNG of generated ``samples [n, d]`` next to held-out data."""
    plt = _pyplot()
    samples = np.asarray(samples)
    if dataset.image_shape is not None:
        h, w, c = dataset.image_shape
        n = min(64, len(samples))
        cols = 8
        rows = int(np.ceil(n / cols))
        imgs = np.clip(samples[:n].reshape(n, h, w, c), -1, 1)
        grid = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1, c))
        for i in range(n):
            r, q = divmod(i, cols)
            grid[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + q * (w + 1): 1 + q * (w + 1) + w] = (imgs[i] + 1) / 2
        fig, ax = plt.subplots(figsize=(4, 4 * grid.shape[0] / grid.shape[1]))
        ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray_r" if c == 1 else None, vmin=0, vmax=1)
        ax.axis("off")
    elif dataset.dim == 1:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        bins = np.linspace(min(dataset.test.min(), samples.min()), max(dataset.test.max(), samples.max()), 60)
        ax.hist(dataset.test[:, 0], bins=bins, alpha=0.5, density=True, label="held-out data")
        ax.hist(samples[:, 0], bins=bins, alpha=0.5, density=True, label="generated")
        ax.legend()
    else:
        fig, ax = plt.subplots(figsize=(5, 5))
        ref = dataset.test[:, :2]
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.75", label="held-out data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="C3", alpha=0.6, label="generated")
        if dataset.modes is not None:
            ax.scatter(dataset.modes[:, 0], dataset.modes[:, 1], marker="x", c="k", s=30, label="modes")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=7, markerscale=3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_curves(path: str, records: list[dict]) -> None:
    """Write a PNG of the logged losses and evaluation metrics against the step."""
    plt = _pyplot()
    keys = [k for k in ("d_loss", "g_loss", "w_estimate", "sliced_wasserstein", "mmd", "high_quality")
            if any(k in r for r in records)]
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 2.8))
    axes = np.atleast_1d(axes)
    for ax, k in zip(axes, keys):
        pts = [(r["step"], r[k]) for r in records if k in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts])
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
