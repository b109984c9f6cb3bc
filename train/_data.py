"""Data sets for training: built-in toys, the scikit-learn 8x8 digits, a user's array.

Every loader returns a :class:`Dataset` with a training array and a held-out
array, both ``float32 [n, d]`` (images are flattened; ``image_shape`` says how
to fold them back). Toy sets draw the held-out split independently from the
same distribution; the digits and user arrays are split by a seeded
permutation.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable

import numpy as np

__all__ = ["Dataset", "DATASETS", "load_dataset", "dataset_from_array"]


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


_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".json")


def _from_file(path: str, seed: int, holdout: float) -> Dataset:
    if path.lower().endswith(_TEXT_SUFFIXES):
        raise ValueError(f"`dataset` file {path!r} is a text file; convert it once with "
                         f"np.save('data.npy', np.loadtxt({path!r}, delimiter=',')) and pass the .npy")
    if not os.path.isfile(path):
        raise ValueError(f"`dataset` {path!r} is neither a built-in name ({', '.join(DATASETS)}) nor an existing "
                         ".npy/.npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:  # a corrupt or non-numpy file
        raise ValueError(f"`dataset` file {path!r} could not be read as .npy/.npz ({type(e).__name__}: {e}); "
                         "save your [n, d] array with np.save") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        if not keys:
            raise ValueError(f"`dataset` file {path!r} holds no arrays; save one with np.savez(path, x=samples)")
        x = loaded["x" if "x" in keys else keys[0]]
    else:
        x = loaded
    return dataset_from_array(x, seed=seed, holdout=holdout, name=path, what=f"`dataset` file {path!r}")


def dataset_from_array(x, *, seed: int = 0, holdout: float = 0.2, name: str = "array",
                       what: str = "`data`") -> Dataset:
    """A :class:`Dataset` from an in-memory array, checked and split by a seeded permutation.

    Args:
      x: ``[n, d]`` samples, ``[n]`` (1-D samples), or ``[n, H, W]`` /
        ``[n, H, W, C]`` images (flattened; ``image_shape`` keeps the shape).
        Images with values in ``[0, 255]`` (``uint8``, or any array of
        whole numbers beyond 1 in that range) are rescaled to ``[-1, 1]``.
      seed: seeds the split.
      holdout: share held out for evaluation.
      name: the data set's name in the configuration and plots.
      what: how messages name the array.

    Raises:
      ValueError: a non-numeric or complex array, no samples, dimension 0,
        fewer than 10 samples, NaN or inf.
    """
    x = np.asarray(x)
    if np.iscomplexobj(x):
        raise ValueError(f"{what} holds complex values (dtype {x.dtype}); pass the real part, or real and "
                         "imaginary parts as separate columns")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(f"{what} holds dtype {x.dtype}; it must be a numeric array [n, d]")
    image_shape = None
    if x.ndim == 3:  # [n, H, W] grey images
        image_shape = (int(x.shape[1]), int(x.shape[2]), 1)
    elif x.ndim == 4:
        image_shape = tuple(int(s) for s in x.shape[1:])
    elif x.ndim == 1:
        x = x[:, None]
    elif x.ndim != 2:
        raise ValueError(f"{what} holds an array of shape {x.shape}; expected [n, d] samples or [n, H, W(, C)] "
                         "images")
    if x.shape[0] == 0:
        raise ValueError(f"{what} holds 0 samples (shape {x.shape}); at least 10 are needed")
    if math.prod(x.shape[1:]) == 0:
        raise ValueError(f"{what} holds samples of dimension 0 (shape {x.shape}); each sample needs at least "
                         "one value")
    if len(x) < 10:
        raise ValueError(f"{what} holds {len(x)} samples; at least 10 are needed (some are held out)")
    integer = np.issubdtype(x.dtype, np.integer)
    x = x.reshape(len(x), -1).astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{what} has {int(bad.sum())} NaN/inf values (first in row {row}); clean or drop those "
                         "rows")
    if image_shape is not None and x.max() > 1.0:
        if x.min() >= 0 and x.max() <= 255 and (integer or np.all(x == np.round(x))):
            x = x / 127.5 - 1.0  # [0, 255] pixels -> [-1, 1], the range of the generator's images
        else:
            raise ValueError(f"{what} holds images with values in [{x.min():g}, {x.max():g}]; give pixels in "
                             "[-1, 1] or [0, 1], or whole numbers in [0, 255]")
    perm = np.random.default_rng([seed, 2]).permutation(len(x))
    n_test = max(1, int(round(holdout * len(x))))
    return Dataset(name, x[perm[n_test:]], x[perm[:n_test]], image_shape=image_shape)


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
    if name.endswith((".npy", ".npz") + _TEXT_SUFFIXES) or os.path.sep in name or os.path.exists(name):
        return _from_file(name, seed, holdout)
    raise ValueError(f"`dataset` {name!r} is unknown; choose one of {', '.join(DATASETS)} or give a .npy/.npz path")
