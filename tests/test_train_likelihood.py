"""The likelihood objectives (`flow`, `vae`) in the training command: held-out NLL and the KL warm-up."""

import dataclasses
import math

import numpy as np
import pytest

from divergences.train import TrainConfig, fit


def _config(tmp_path, name, **kw):
    base = dict(steps=100, eval_every=100, plot_every=0, checkpoint_every=0, width=16, progress=False,
                eval_samples=200, out=str(tmp_path / name))
    return TrainConfig(**{**base, **kw})


def _gaussian(n=1000):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, 2)) * [1.0, 0.5] + [3.0, -1.0]).astype(np.float32)


def test_flow_heldout_nll_is_logged_in_data_units(tmp_path):
    # Scaling the data by 8 (a power of two: the standardised data are bit for bit
    # the same, so is the training) adds exactly log 8 per dimension to the NLL of
    # the data in their own units: the change of units' log-determinant.
    x = _gaussian()
    cfg = _config(tmp_path, "a", objective="flow", flow_layers=2)
    a = fit(cfg, data=x, log=lambda s: None)
    b = fit(dataclasses.replace(cfg, out=str(tmp_path / "b")), data=8 * x, log=lambda s: None)
    assert np.isfinite(a["heldout_nll"])
    assert b["heldout_nll"] - a["heldout_nll"] == pytest.approx(math.log(8), abs=1e-4)
    # No model beats the data's entropy by more than the held-out sample's noise:
    # N(mu, diag(1, 1/4)) has 0.5 log(2 pi e) + (log 1 + log 1/2) / 2 nats per dimension.
    entropy = 0.5 * math.log(2 * math.pi * math.e) + 0.5 * math.log(0.5)
    assert a["heldout_nll"] > entropy - 0.1


def test_gan_runs_log_no_heldout_nll(tmp_path):
    out = fit(_config(tmp_path, "g", objective="mmd", steps=50, eval_every=50), data=_gaussian(),
              log=lambda s: None)
    assert "heldout_nll" not in out


def test_vae_kl_warmup_weights_the_kl_term(tmp_path):
    # During the warm-up the loss descended is reconstruction + w * KL with w < 1,
    # below the negative ELBO (weight 1) that is logged beside it; without it they agree.
    x = _gaussian()
    warm = fit(_config(tmp_path, "w", objective="vae", kl_warmup_steps=1000), data=x, log=lambda s: None)
    plain = fit(_config(tmp_path, "p", objective="vae"), data=x, log=lambda s: None)
    assert warm["final_g_loss"] < warm["final_neg_elbo"] - 1e-4
    assert plain["final_g_loss"] == pytest.approx(plain["final_neg_elbo"], rel=1e-5)
    # The IWAE bound (K = 100) of the held-out points, an upper bound of the VAE's NLL.
    assert np.isfinite(warm["heldout_nll"]) and np.isfinite(plain["heldout_nll"])


def test_kl_warmup_must_be_non_negative():
    from divergences.train._config import validate_config

    with pytest.raises(ValueError, match="kl_warmup_steps"):
        validate_config(TrainConfig(objective="vae", kl_warmup_steps=-1))
    with pytest.raises(ValueError, match="dequantize"):
        validate_config(TrainConfig(objective="vae", dequantize=float("nan")))
    with pytest.raises(ValueError, match="flow_coupling"):
        validate_config(TrainConfig(objective="flow", flow_coupling="cubic"))
    with pytest.raises(ValueError, match="spline_bins"):
        validate_config(TrainConfig(objective="flow", spline_bins=1))
    with pytest.raises(ValueError, match="spline_bound"):
        validate_config(TrainConfig(objective="flow", spline_bound=float("inf")))
    with pytest.raises(ValueError, match="flow_layers"):
        validate_config(TrainConfig(objective="flow", flow_layers=0))
