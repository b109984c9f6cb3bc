"""The mode-collapse protocol of PacGAN (Lin et al. 2018, Table 1) and the data standardisation of training.

Conventions:

* a generated sample is *high quality* when it lies within ``3 * std`` of its
  nearest mode (Euclidean distance; VEEGAN, Srivastava et al. 2017);
* a mode is *covered* when at least ``max(1, round(n / 125))`` high-quality
  samples have it as their nearest mode: 20 of PacGAN's 2,500 samples;
* the *reverse KL* is :math:`\\mathrm{KL}(p \\,\\|\\, u)` in nats, from the
  histogram :math:`p` of the high-quality samples over the modes (normalised
  over those samples) to the uniform :math:`u` over the :math:`K` modes, as in
  PacGAN; modes that receive no sample contribute 0 (:math:`0 \\log 0 = 0`),
  and with no high-quality sample at all it is :math:`\\log K`, the value of a
  generator that puts everything on one mode;
* standardisation centres each coordinate and divides by *one* scale for all
  coordinates (the root mean variance), so the geometry of the data (circles
  stay circles) and constant coordinates (image borders) are kept; training
  runs in those units and the samples are mapped back before anything sees
  them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import xlogy

__all__ = ["Standardizer", "fit_standardizer", "min_count", "mode_statistics"]


def min_count(n: int) -> int:
    """PacGAN's coverage threshold: 20 high-quality samples in 2,500, scaled to ``n``."""
    return max(1, int(round(n / 125)))


def mode_statistics(samples: np.ndarray, modes: np.ndarray, std: float, *,
                    threshold: int | None = None) -> dict[str, float]:
    """Modes covered, high-quality share and reverse KL of samples from a Gaussian mixture.

    .. math::

       q_i = \\mathbb 1\\{\\min_k \\|x_i - \\mu_k\\| \\le 3\\sigma\\}, \\quad
       c_k = \\#\\{i : q_i = 1, \\arg\\min_j \\|x_i - \\mu_j\\| = k\\}, \\quad
       \\mathrm{KL} = \\sum_k p_k \\log (K p_k), \\; p_k = c_k / \\textstyle\\sum_j c_j

    Args:
      samples: ``[n, d]`` generated samples.
      modes: ``[K, d]`` mixture centres.
      std: the components' standard deviation :math:`\\sigma`.
      threshold: samples a mode needs to count as covered; ``None``:
        :func:`min_count` of ``n`` (20 for 2,500).

    Returns:
      ``{"modes_covered": int, "n_modes": K, "high_quality": share in [0, 1],
      "reverse_kl": nats}``.

    Raises:
      ValueError: ``samples`` and ``modes`` of different dimensions, or ``std`` not positive.

    Example:
      >>> import numpy as np
      >>> modes = np.array([[0.0, 0.0], [1.0, 0.0]])
      >>> x = np.repeat(modes, [30, 10], axis=0)  # 3/4 on one mode, 1/4 on the other
      >>> s = mode_statistics(x, modes, 0.01)
      >>> s["modes_covered"], s["high_quality"], round(s["reverse_kl"], 4)
      (2, 1.0, 0.1308)

    References:
      Lin, Khetan, Fanti and Oh, "PacGAN: The power of two samples in
      generative adversarial networks", NeurIPS 2018 (Table 1).
      Srivastava et al., "VEEGAN", NeurIPS 2017.
    """
    x = np.asarray(samples, np.float64)
    mu = np.asarray(modes, np.float64)
    if x.ndim != 2 or mu.ndim != 2 or x.shape[1] != mu.shape[1]:
        raise ValueError(f"`samples` {x.shape} and `modes` {mu.shape} must be [n, d] and [K, d] with the same d")
    if not float(std) > 0:
        raise ValueError(f"`std` must be > 0, got {std}")
    n, k = len(x), len(mu)
    d2 = ((x[:, None, :] - mu[None]) ** 2).sum(-1)
    nearest = d2.argmin(1)
    good = np.sqrt(d2.min(1)) <= 3.0 * float(std)
    counts = np.bincount(nearest[good], minlength=k)
    need = min_count(n) if threshold is None else int(threshold)
    total = counts.sum()
    if total:
        p = counts / total
        kl = float(np.sum(xlogy(p, p * k)))
    else:
        kl = float(np.log(k))
    return {
        "modes_covered": int((counts >= need).sum()),
        "n_modes": int(k),
        "high_quality": float(good.mean()) if n else 0.0,
        "reverse_kl": max(kl, 0.0),
    }


class Standardizer(NamedTuple):
    """An affine map to standardised units and back: ``z = (x - shift) / scale``.

    Attributes:
      shift: ``[d]`` the data's mean.
      scale: ``[]`` one scale for every coordinate (see :func:`fit_standardizer`).
    """

    shift: np.ndarray
    scale: np.ndarray

    def forward(self, x):
        """Data ``[n, d]`` to standardised units (numpy or jax arrays, same dtype)."""
        return (x - self.shift.astype(x.dtype)) / self.scale.astype(x.dtype)

    def inverse(self, z):
        """Standardised samples ``[n, d]`` back to data units."""
        return z * self.scale.astype(z.dtype) + self.shift.astype(z.dtype)


def fit_standardizer(x: np.ndarray, *, std: float = 1.0) -> Standardizer:
    """The standardisation of ``x [n, d]``: per-coordinate mean, one scale.

    .. math::

       \\text{shift}_j = \\bar x_j, \\qquad
       \\text{scale} = \\Big(\\frac 1 d \\sum_j \\mathrm{Var}(x_{\\cdot j})\\Big)^{1/2} / \\text{std}

    (``1 / std`` when the data are constant), so that the standardised data
    have mean 0 and mean variance ``std ** 2`` over their coordinates.

    Args:
      x: ``[n, d]`` training data.
      std: the standard deviation of the standardised data, a positive
        number (the training configuration's ``standardize_std``).

    Returns:
      A :class:`Standardizer` with ``float32`` ``shift [d]`` and ``scale []``.

    Example:
      >>> import numpy as np
      >>> x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
      >>> s = fit_standardizer(x)
      >>> s.shift.tolist(), round(float(s.scale), 4)
      ([3.0, 10.0], 1.1547)
      >>> np.allclose(s.inverse(s.forward(x)), x)
      True
      >>> round(float(fit_standardizer(x, std=2.0).scale), 4)
      0.5774
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"`x` must be a non-empty [n, d] array, got shape {x.shape}")
    if not (isinstance(std, (int, float, np.floating)) and np.isfinite(std) and std > 0):
        raise ValueError(f"`std` must be a positive finite number, got {std!r}")
    shift = x.mean(0)
    scale = float(np.sqrt(np.mean(x.var(0))))
    if not scale > 0 or not np.isfinite(scale):
        scale = 1.0
    scale /= float(std)
    return Standardizer(shift.astype(np.float32), np.asarray(scale, np.float32))
