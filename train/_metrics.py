"""Evaluation of generated samples against held-out data, logged while training.

* sliced Wasserstein (:func:`divergences.sliced_wasserstein`, p = 2, 128
  directions) and MMD (:func:`divergences.mmd`, the library's default kernel)
  from generated samples to the held-out split;
* Gaussian mixtures (8 and 25 Gaussians): a sample is *high quality* when it
  lies within 3 standard deviations of its nearest mode (VEEGAN, Srivastava et
  al. 2017; PacGAN, Lin et al. 2018); a mode is *covered* when at least
  ``max(1, n / 125)`` high-quality samples (20 of 2500, PacGAN's rule) have it
  as their nearest mode;
* digits: a logistic-regression classifier (the *judge*) trained on the real
  training digits labels the generated ones; a class is covered under the
  same 20-in-2500 rule; ``judge_accuracy`` is the judge's accuracy on the
  held-out real digits.
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
    """A small classifier of the real digits (multinomial logistic regression)."""

    def __init__(self, dataset: Dataset):
        from sklearn.linear_model import LogisticRegression  # lazy: `train` extra

        self.model = LogisticRegression(max_iter=2000)
        self.model.fit(dataset.train, dataset.labels_train)
        self.test_accuracy = float(self.model.score(dataset.test, dataset.labels_test))

    def coverage(self, samples: np.ndarray) -> dict[str, float]:
        pred = self.model.predict(np.clip(np.asarray(samples, np.float64), -1, 1))
        counts = np.bincount(pred, minlength=10)
        # judge_accuracy: the judge's own accuracy on held-out real digits (how far
        # to trust its labels), not a two-sample test of the generated digits.
        return {"classes_covered": int((counts >= min_count(len(samples))).sum()),
                "judge_accuracy": self.test_accuracy}


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
