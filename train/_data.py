"""Data sets for training: built-in toys, the scikit-learn 8x8 digits, a user's array.

Every loader returns a :class:`Dataset` with a training array and a held-out
array, both ``float32 [n, d]`` (images are flattened; ``image_shape`` says how
to fold them back). Toy sets draw the held-out split independently from the
same distribution; the digits and user arrays are split by a seeded
permutation.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

__all__ = ["Dataset", "DATASETS", "load_dataset"]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A training array, a held-out array and what the evaluation needs to know.

    Attributes:
      name: the data set's name (or the file path).
      train: ``float32 [n_train, d]``.
      test: ``float32 [n_test, d]`` held out for evaluation.
      modes: ``[k, d]`` centres of a Gaussian mixture, else None.
      mode_std: the standard deviation of each mixture component, else None.
      labels_train, labels_test: integer class labels (digits), else None.
      image_shape: ``(H, W, C)`` when rows are flattened images, else None.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    modes: np.ndarray | None = None
    mode_std: float | None = None
    labels_train: np.ndarray | None = None
    labels_test: np.ndarray | None = None
    image_shape: tuple[int, int, int] | None = None

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])


def _mixture(rng: np.random.Generator, n: int, modes: np.ndarray, std: float) -> np.ndarray:
    idx = rng.integers(0, len(modes), size=n)
    return modes[idx] + std * rng.standard_normal((n, modes.shape[1]))


RING_MODES = np.stack(
    [2.0 * np.cos(2 * np.pi * np.arange(8) / 8), 2.0 * np.sin(2 * np.pi * np.arange(8) / 8)], axis=1
)
RING_STD = 0.02
GRID_MODES = np.array([(x, y) for x in (-4.0, -2.0, 0.0, 2.0, 4.0) for y in (-4.0, -2.0, 0.0, 2.0, 4.0)])
GRID_STD = 0.05


def _swiss_roll(rng: np.random.Generator, n: int) -> np.ndarray:
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5.0
    return x + 0.05 * rng.standard_normal((n, 2))


def _toy(sampler: Callable[[np.random.Generator, int], np.ndarray], name: str, n_train: int, n_test: int,
         seed: int, **meta) -> Dataset:
    rng = np.random.default_rng([seed, 1])
    train = sampler(rng, n_train).astype(np.float32)
    test = sampler(rng, n_test).astype(np.float32)
    return Dataset(name=name, train=train, test=test, **meta)


def _digits(seed: int, holdout: float) -> Dataset:
    from sklearn.datasets import load_digits  # lazy: scikit-learn is in the `train` extra

    d = load_digits()
    x = (d.data.astype(np.float32) / 8.0 - 1.0)  # pixel values 0..16 -> [-1, 1]
    y = d.target.astype(np.int32)
    perm = np.random.default_rng([seed, 2]).permutation(len(x))
    n_test = int(round(holdout * len(x)))
    te, tr = perm[:n_test], perm[n_test:]
    return Dataset("digits", x[tr], x[te], labels_train=y[tr], labels_test=y[te], image_shape=(8, 8, 1))


def _from_file(path: str, seed: int, holdout: float) -> Dataset:
    if not os.path.isfile(path):
        raise ValueError(f"`dataset` {path!r} is neither a built-in name ({', '.join(DATASETS)}) nor an existing .npy/.npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:  # a corrupt or non-numpy file
        raise ValueError(f"`dataset` file {path!r} could not be read as .npy/.npz ({type(e).__name__}: {e})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        if not keys:
            raise ValueError(f"`dataset` file {path!r} holds no arrays; save one with np.savez(path, x=samples)")
        key = "x" if "x" in keys else keys[0]
        x = loaded[key]
    else:
        x = loaded
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"`dataset` file {path!r} holds dtype {x.dtype}; it must be a numeric array [n, d]")
    image_shape = None
    if x.ndim == 3:  # [n, H, W] grey images
        image_shape = (x.shape[1], x.shape[2], 1)
    elif x.ndim == 4:
        image_shape = tuple(int(s) for s in x.shape[1:])
    elif x.ndim == 1:
        x = x[:, None]
    elif x.ndim != 2:
        raise ValueError(f"`dataset` file {path!r} holds an array of shape {x.shape}; expected [n, d] samples")
    x = x.reshape(len(x), -1).astype(np.float32)
    if len(x) < 10:
        raise ValueError(f"`dataset` file {path!r} holds {len(x)} samples; at least 10 are needed (some are held out)")
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"`dataset` file {path!r} has {int(bad.sum())} NaN/inf values (first in row {row}); clean or drop those rows")
    perm = np.random.default_rng([seed, 2]).permutation(len(x))
    n_test = max(1, int(round(holdout * len(x))))
    return Dataset(path, x[perm[n_test:]], x[perm[:n_test]], image_shape=image_shape)


DATASETS: dict[str, str] = {
    "8gaussians": "8 Gaussians (std 0.02) on a ring of radius 2",
    "25gaussians": "25 Gaussians (std 0.05) on the grid {-4,-2,0,2,4}^2",
    "swissroll": "2-D swiss roll (scaled by 1/5, noise 0.05)",
    "uniform_shift": "1-D U[0, 1] (the uniform-shift counterexample's target)",
    "parallel_lines": "2-D segment {0} x U[0, 1] (the parallel-lines counterexample's target)",
    "digits": "scikit-learn's 8x8 digits (1797 images, no download), pixels in [-1, 1]",
}


def load_dataset(name: str, *, seed: int = 0, n_train: int = 20000, n_test: int = 5000,
                 holdout: float = 0.2) -> Dataset:
    """Load a built-in data set by name, or a ``.npy``/``.npz`` file by path.

    Args:
      name: a key of :data:`DATASETS` or a path to an ``[n, d]`` array
        (``[n, H, W]`` and ``[n, H, W, C]`` images are flattened); an ``.npz``
        is read at key ``"x"`` or its first array.
      seed: seeds the toy sampler and the train/held-out split.
      n_train, n_test: sizes of the toy sets.
      holdout: share held out of the digits and file arrays.

    Returns:
      A :class:`Dataset`.

    Raises:
      ValueError: unknown name, unreadable file, wrong shape, NaN or inf.
    """
    if name == "8gaussians":
        return _toy(lambda r, n: _mixture(r, n, RING_MODES, RING_STD), name, n_train, n_test, seed,
                    modes=RING_MODES.astype(np.float32), mode_std=RING_STD)
    if name == "25gaussians":
        return _toy(lambda r, n: _mixture(r, n, GRID_MODES, GRID_STD), name, n_train, n_test, seed,
                    modes=GRID_MODES.astype(np.float32), mode_std=GRID_STD)
    if name == "swissroll":
        return _toy(_swiss_roll, name, n_train, n_test, seed)
    if name == "uniform_shift":
        return _toy(lambda r, n: r.random((n, 1)), name, n_train, n_test, seed)
    if name == "parallel_lines":
        return _toy(lambda r, n: np.concatenate([np.zeros((n, 1)), r.random((n, 1))], 1), name, n_train, n_test, seed)
    if name == "digits":
        return _digits(seed, holdout)
    if name.endswith((".npy", ".npz")) or os.path.sep in name or os.path.exists(name):
        return _from_file(name, seed, holdout)
    raise ValueError(f"`dataset` {name!r} is unknown; choose one of {', '.join(DATASETS)} or give a .npy/.npz path")
