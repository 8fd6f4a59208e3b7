"""The multimodal model: shapes through every part, parameter counts, image-only inference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgnb.errors import MissingInputError
from ecgnb.model import (ImageEncoder, ModelConfig, MultimodalECG, SignalEncoder, WaveformDecoder,
                         count_parameters, digitize_image, load_model, place_crops)

# Tiny geometry: 32 rows x 100 columns (0.5 s at 200 col/s) -> 250 samples (500 Hz).
TINY = ModelConfig(crop_height=32, crop_width=100, out_samples=250, channels=(4, 8),
                   width_strides=(2, 2), hidden=8, latent_dim=4, n_blocks=1, in_channels=1,
                   residual=False)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def test_shapes_through_each_part():
    cfg = TINY
    assert (cfg.latent_len, cfg.patch) == (25, 10)
    image, signal = torch.rand(3, 1, 32, 100), torch.randn(3, 250)
    z = ImageEncoder(cfg)(image)
    assert z.shape == (3, cfg.latent_dim, cfg.latent_len)
    assert SignalEncoder(cfg)(signal).shape == (3, cfg.latent_dim, cfg.latent_len)
    assert WaveformDecoder(cfg)(z).shape == (3, 250)
    out = MultimodalECG(cfg)(image, signal)
    assert out["recon_image"].shape == out["recon_signal"].shape == (3, 250)
    assert out["z_image"].shape == out["z_signal"].shape == (3, 4, 25)
    assert out["logvar_image"] is None
    assert "recon_signal" not in MultimodalECG(cfg)(image)


def test_default_config_matches_default_crops():
    from ecgnb.panels import CropConfig
    crop, cfg = CropConfig(), ModelConfig()
    assert (crop.height, crop.width, crop.n_samples) == (cfg.crop_height, cfg.crop_width,
                                                          cfg.out_samples)
    assert cfg.readout_mv == crop.half_mm / crop.gain_mm_mv


def test_wrong_shapes_fail_with_a_message():
    model = MultimodalECG(TINY)
    with pytest.raises(AssertionError, match="image must be"):
        model(torch.rand(2, 1, 30, 100))
    with pytest.raises(AssertionError, match="signal must be"):
        model(torch.rand(2, 1, 32, 100), torch.randn(2, 200))
    with pytest.raises(AssertionError, match="divisible"):
        MultimodalECG(ModelConfig(crop_width=101))


def test_parameter_counts_per_part():
    counts = count_parameters(MultimodalECG(TINY))
    assert set(counts) == {"image_encoder", "signal_encoder", "decoder", "total"}
    assert all(v > 0 for v in counts.values())
    assert counts["total"] == counts["image_encoder"] + counts["signal_encoder"] + counts["decoder"]
    image_only = count_parameters(MultimodalECG(ModelConfig(**{**TINY.__dict__, "signal_encoder": False})))
    assert image_only["signal_encoder"] == 0
    assert image_only["total"] == counts["total"] - counts["signal_encoder"]


@pytest.mark.parametrize("variational", [False, True])
def test_image_path_ignores_the_signal(variational):
    cfg = ModelConfig(**{**TINY.__dict__, "variational": variational})
    model = MultimodalECG(cfg).eval()
    image, signal = torch.rand(4, 1, 32, 100), torch.randn(4, 250)
    with torch.no_grad():
        a = model(image, signal)["recon_image"]
        b = model(image, torch.randn(4, 250) * 5)["recon_image"]
        c = model(image)["recon_image"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    torch.testing.assert_close(model.predict(image), a)


@pytest.mark.parametrize("variational", [False, True])
def test_vae_on_and_off(variational):
    cfg = ModelConfig(**{**TINY.__dict__, "variational": variational})
    model = MultimodalECG(cfg).train()
    out = model(torch.rand(2, 1, 32, 100), torch.randn(2, 250))
    assert (out["logvar_image"] is not None) == variational
    assert (out["logvar_signal"] is not None) == variational
    if variational:   # training samples z around mu; inference uses mu
        assert not torch.equal(out["z_image"], out["mu_image"])
    else:
        assert torch.equal(out["z_image"], out["mu_image"])
    out["recon_image"].sum().backward()   # gradients flow
    assert model.image_encoder.head.weight.grad is not None


def test_predict_is_batch_size_independent():
    model = MultimodalECG(TINY)
    image = torch.rand(5, 1, 32, 100)
    torch.testing.assert_close(model.predict(image, batch_size=2), model.predict(image, batch_size=5),
                               rtol=1e-5, atol=1e-6)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(MissingInputError, match="notebook 04"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(MissingInputError):
        digitize_image(np.zeros((300, 300, 3), np.uint8), checkpoint=tmp_path / "nope.pt")


def test_place_crops_rhythm_owns_its_lead():
    from types import SimpleNamespace as NS
    crops = [NS(lead="II", t0_s=0.0, t1_s=0.5, rhythm=False),
             NS(lead="II", t0_s=0.0, t1_s=0.5, rhythm=True),
             NS(lead="I", t0_s=0.5, t1_s=1.0, rhythm=False)]
    out = np.stack([np.full(250, 1.0), np.full(250, 2.0), np.full(250, 3.0)])
    sig = place_crops(crops, out, 500, 500, 500)
    assert sig.shape == (500, 12)
    assert np.all(sig[:250, 1] == 2.0) and np.isnan(sig[250:, 1]).all()
    assert np.all(sig[250:, 0] == 3.0) and np.isnan(sig[:250, 0]).all()
    assert np.isnan(sig[:, 2:]).all()
    half = place_crops(crops, out, 500, 250, 250)   # other output rate: resampled
    assert half.shape == (250, 12) and np.all(half[:125, 1] == 2.0)


def test_row_attention_shapes_and_off_switch():
    from ecgnb.model import RowAttention
    att = RowAttention(channels=4, heads=3, height=16, latent_len=25, crop_height=32)
    stacked, pos = att(torch.rand(2, 4, 16, 50))
    assert stacked.shape == (2, 3 * 2, 25) and stacked.abs().max() <= 1.0
    assert pos.shape == (2, 3, 50)
    # row k of the stage-1 map is centred on crop row 2k: +1 at the top, 1 - 4k/31 below
    assert att.rows[0, 0, 0, 0] == 1.0 and att.rows[0, 0, -1, 0] == pytest.approx(1 - 60 / 31)
    off = ModelConfig(**{**TINY.__dict__, "row_heads": 0})
    assert MultimodalECG(off)(torch.rand(2, 1, 32, 100))["recon_image"].shape == (2, 250)
    assert count_parameters(MultimodalECG(off))["image_encoder"] < \
        count_parameters(MultimodalECG(TINY))["image_encoder"]


def test_digitize_image_places_every_panel():
    """A tiny untrained model on a rendered page: output layout, diagnostics, overlay."""
    import json

    from ecgnb import digitize as dg
    from ecgnb.config import PaperConfig
    from ecgnb.panels import CropConfig
    from ecgnb.render import drawn_mask, render_page

    t = np.arange(5000) / 500
    signal = 0.8 * np.sin(2 * np.pi * 1.2 * t)[:, None] * np.linspace(-1, 1, 12)[None, :]
    image, truth = render_page(signal, 500, PaperConfig(), np.random.default_rng(0))
    crop = CropConfig(height=32, window_s=0.5)        # 32 x 100 crops -> 250 samples, as TINY
    tiny = ModelConfig(**{**TINY.__dict__, "in_channels": crop.channels,   # ink + classical trace
                          "residual": True})
    result = digitize_image(image, model=MultimodalECG(tiny), crop_cfg=crop)
    assert result.signal.shape == (5000, 12)
    assert result.n_crops == 12 * 5 + 20                 # 2.5 s panels and the 10 s strip, 0.5 s windows
    np.testing.assert_array_equal(~np.isnan(result.signal), drawn_mask(truth))
    diag = json.loads(json.dumps(result.diagnostics()))
    assert diag["method"] == "model" and len(diag["panels"]) == 13
    assert dg.overlay(result).shape == image.shape      # the command line's overlay works on it
    half = digitize_image(image, model=MultimodalECG(tiny), crop_cfg=crop, fs=250)
    assert half.signal.shape == (2500, 12)


def test_configs_of_older_checkpoints_load_as_one_channel():
    from ecgnb.config import CropConfig

    old = {k: v for k, v in ModelConfig().to_dict().items() if k not in ("in_channels", "residual")}
    assert ModelConfig.from_dict(old).in_channels == 1
    assert ModelConfig.from_dict(old).residual is False
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()
    crop = {k: v for k, v in CropConfig().to_dict().items() if k != "trace_channel"}
    assert CropConfig.from_dict(crop).channels == 1
    assert CropConfig.from_dict(CropConfig().to_dict()) == CropConfig()


def _line_crops(Y: np.ndarray, height: int = 32, width: int = 100, mv_top: float = TINY.readout_mv):
    """``(B, 2, H, W)`` crops whose trace channel is a thin line at ``Y`` (``(B, T)`` mV)."""
    rows = np.linspace(mv_top, -mv_top, height)[None, :, None]                  # (1, H, 1) mV
    cols = np.stack([np.interp(np.arange(width) * Y.shape[1] / width, np.arange(Y.shape[1]), y)
                     for y in Y])[:, None, :]                                     # (B, 1, W) mV
    line = np.exp(-0.5 * ((rows - cols) / (2 * mv_top / (height - 1))) ** 2)   # ~1 row wide
    return torch.from_numpy(np.stack([line, line], axis=1).astype(np.float32))


def test_trace_reading_recovers_the_drawn_line():
    from ecgnb.model import TraceReading

    t = np.arange(250) / 500
    Y = np.stack([0.8 * np.sin(2 * np.pi * 2 * t), -0.5 + 0.3 * t]).astype(np.float32)
    cfg = ModelConfig(**{**TINY.__dict__, "in_channels": 2, "residual": True})
    got = TraceReading(cfg)(_line_crops(Y)).numpy()
    assert got.shape == (2, 250)
    assert np.abs(got - Y).max() < 0.05            # well under one crop row (0.1 mV)
    empty = torch.zeros(1, 2, 32, 100)
    assert TraceReading(cfg)(empty).abs().max() == 0   # nothing traced: 0 mV, not NaN


def test_residual_model_adds_the_decoder_to_the_reading_and_ignores_the_signal():
    cfg = ModelConfig(**{**TINY.__dict__, "in_channels": 2, "residual": True})
    model = MultimodalECG(cfg).eval()
    t = np.arange(250) / 500
    Y = np.stack([0.6 * np.sin(2 * np.pi * 3 * t)] * 2).astype(np.float32)
    x = _line_crops(Y)
    base = model.reading(x)
    out = model(x, torch.from_numpy(Y))
    torch.testing.assert_close(out["recon_image"], base + model.decode(out["mu_image"]))
    torch.testing.assert_close(model.predict(x), out["recon_image"])
    torch.testing.assert_close(model(x, torch.randn(2, 250))["recon_image"], out["recon_image"])
    # the signal path encodes what the reading missed
    torch.testing.assert_close(out["z_signal"], model.encode_signal(torch.from_numpy(Y) - base)[0])
    with pytest.raises(AssertionError, match="residual needs the trace channel"):
        MultimodalECG(ModelConfig(**{**TINY.__dict__, "in_channels": 1, "residual": True}))
