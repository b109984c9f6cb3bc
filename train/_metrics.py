"""Evaluation of generated samples against held-out data, logged while training.

* sliced Wasserstein (:func:`divergences.sliced_wasserstein`, p = 2, 128
  directions) and MMD (:func:`divergences.mmd`, the library's default kernel)
  from generated samples to the held-out split;
* Gaussian mixtures (8 and 25 Gaussians): a sample is *high quality* when it
  lies within 3 standard deviations of its nearest mode (VEEGAN, Srivastava et
  al. 2017; PacGAN, Lin et al. 2018); a mode is *covered* when at least
  ``max(1, n / 125)`` high-quality samples (20 of 2500, PacGAN's rule) have it
  as their nearest mode;
* digits: a small classifier (the *judge*: one hidden layer of 64 ReLU
  units, scikit-learn's ``MLPClassifier``) trained on the real training
  digits labels the generated ones; a class is covered under the same
  20-in-2500 rule; ``judge_accuracy`` is the judge's accuracy on the
  held-out real digits. The judge's hidden layer is also the feature space
  of the Fréchet distance (``fid``, :func:`divergences.frechet_distance`)
  and KID (``kid`` and ``kid_std``, :func:`divergences.kernel_inception_distance`)
  between generated and held-out digits, as FID and KID use an Inception
  network's pool features (Heusel et al. 2017; Bińkowski et al. 2018);
  ``fid_floor`` is the Fréchet distance between the real training and
  held-out digits in the same features (what sampling noise alone gives).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import divergences as dv
from divergences.train._data import Dataset
from divergences.train._quality import min_count, mode_statistics

__all__ = ["mixture_quality", "DigitClassifier", "evaluate"]


def mixture_quality(samples: np.ndarray, modes: np.ndarray, std: float) -> dict[str, float]:
    """Modes covered, the share of high-quality samples and the reverse KL of the mode histogram.

    The PacGAN protocol's statistics (:func:`divergences.train._quality.mode_statistics`).

    Args:
      samples: ``[n, d]`` generated samples.
      modes: ``[k, d]`` mixture centres.
      std: the components' standard deviation.

    Returns:
      ``{"modes_covered": int, "n_modes": k, "high_quality": share in [0, 1], "reverse_kl": nats}``.
    """
    return mode_statistics(samples, modes, std)


class DigitClassifier:
    """The judge of generated digits: a one-hidden-layer MLP classifier of the real digits, and its features."""

    def __init__(self, dataset: Dataset, *, hidden: int = 64, seed: int = 0):
        from sklearn.neural_network import MLPClassifier  # lazy: `train` extra

        self.model = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-3, max_iter=1000, random_state=seed)
        self.model.fit(np.asarray(dataset.train, np.float64), dataset.labels_train)
        self.test_accuracy = float(self.model.score(dataset.test, dataset.labels_test))
        self.test_features = self.features(dataset.test)
        self.fid_floor = float(dv.frechet_distance(self.features(dataset.train), self.test_features))

    def features(self, samples: np.ndarray) -> np.ndarray:
        """The judge's hidden ReLU activations ``[n, hidden]`` of digits ``[n, 64]`` (clipped to the pixel range)."""
        x = np.clip(np.asarray(samples, np.float64).reshape(len(samples), -1), -1, 1)
        return np.maximum(x @ self.model.coefs_[0] + self.model.intercepts_[0], 0.0).astype(np.float32)

    def coverage(self, samples: np.ndarray) -> dict[str, float]:
        x = np.clip(np.asarray(samples, np.float64).reshape(len(samples), -1), -1, 1)
        counts = np.bincount(self.model.predict(x), minlength=10)
        # judge_accuracy: the judge's own accuracy on held-out real digits (how far
        # to trust its labels), not a two-sample test of the generated digits.
        return {"classes_covered": int((counts >= min_count(len(samples))).sum()),
                "judge_accuracy": self.test_accuracy}

    def feature_distances(self, samples: np.ndarray, key: jax.Array) -> dict[str, float]:
        """Fréchet distance and KID (mean, std over 100 subsets) to the held-out digits in the judge's features."""
        fake = self.features(samples)
        real = self.test_features
        size = min(1000, len(fake), len(real))
        kid = dv.kernel_inception_distance(fake, real, key, n_subsets=100, subset_size=size)
        return {"fid": float(dv.frechet_distance(fake, real)), "fid_floor": self.fid_floor,
                "kid": float(kid.mean), "kid_std": float(kid.std)}


def evaluate(samples: jax.Array, dataset: Dataset, key: jax.Array, *,
             classifier: DigitClassifier | None = None, n_projections: int = 128) -> dict[str, Any]:
    """All evaluation metrics of ``samples [n, d]`` against ``dataset.test``."""
    samples = jnp.asarray(samples, jnp.float32)
    held = jnp.asarray(dataset.test[: max(len(samples), 1)], jnp.float32)
    out: dict[str, Any] = {}
    if not bool(jnp.all(jnp.isfinite(samples))):
        return {"sliced_wasserstein": float("nan"), "mmd": float("nan")}
    out["sliced_wasserstein"] = float(_sliced(samples, held, key, n_projections))
    out["mmd"] = float(_mmd(samples, held))
    host = np.asarray(samples)
    if dataset.modes is not None:
        out.update(mixture_quality(host, dataset.modes, dataset.mode_std))
    if dataset.image_shape is None and min(len(samples), len(held)) > 5:
        # Kynkaenniemi et al. 2019 (k = 3) and Naeem et al. 2020 (k = 5), in the data space of the toy sets.
        pr = dv.precision_recall(held, samples, k=3)
        dc = dv.density_coverage(held, samples, k=5)
        out.update(precision=float(pr.precision), recall=float(pr.recall), density=float(dc.density),
                   coverage=float(dc.coverage))
    if classifier is not None:
        out.update(classifier.coverage(host))
        if len(host) > 1:
            out.update(classifier.feature_distances(host, jax.random.fold_in(key, 1)))
    return out


@jax.jit
def _sliced_impl(x, y, key):
    return dv.sliced_wasserstein(x, y, key, n_projections=128)


def _sliced(x, y, key, n_projections):
    if n_projections == 128:
        return _sliced_impl(x, y, key)
    return dv.sliced_wasserstein(x, y, key, n_projections=n_projections)


@jax.jit
def _mmd(x, y):
    return dv.mmd(x, y)
