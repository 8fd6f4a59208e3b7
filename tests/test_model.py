"""The multimodal model: shapes through every part, parameter counts, image-only inference."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ecgnb.config import CropConfig
from ecgnb.errors import MissingInputError
from ecgnb.model import (DEFAULT_CHECKPOINT, CropModelDigitizer, ImageEncoder, ModelConfig,
                         MultimodalECG, SignalEncoder, WaveformDecoder, count_parameters,
                         digitize_image, load_model, place_crops)
from ecgnb.reading import Reading, ReadOptions

# Tiny geometry: 32 rows x 100 columns (0.5 s at 200 col/s) -> 250 samples (500 Hz), +-2.4 mV.
TINY = ModelConfig(channels=(4, 8), width_strides=(2, 2), hidden=8, latent_dim=4, n_blocks=1,
                   residual=False)
INK = CropConfig(height=32, window_s=0.5, trace_channel=False)   # one channel: ink
TWO = CropConfig(height=32, window_s=0.5)                         # ink + classical trace


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def test_shapes_through_each_part():
    cfg, crop = TINY, INK
    assert (cfg.latent_len(crop), cfg.patch(crop)) == (25, 10)
    image, signal = torch.rand(3, 1, 32, 100), torch.randn(3, 250)
    z = ImageEncoder(cfg, crop)(image)
    assert z.shape == (3, cfg.latent_dim, 25)
    assert SignalEncoder(cfg, crop)(signal).shape == (3, cfg.latent_dim, 25)
    assert WaveformDecoder(cfg, crop)(z).shape == (3, 250)
    out = MultimodalECG(cfg, crop)(image, signal)
    assert out["recon_image"].shape == out["recon_signal"].shape == (3, 250)
    assert out["z_image"].shape == out["z_signal"].shape == (3, 4, 25)
    assert out["logvar_image"] is None
    assert "recon_signal" not in MultimodalECG(cfg, crop)(image)


def test_geometry_comes_from_the_crop_config():
    """Default model on default crops: (2, 96, 500) -> 1250 samples; +-2.4 mV rows; 2 channels."""
    crop = CropConfig()
    model = MultimodalECG(ModelConfig(), crop)
    assert model.crop == crop and model.cfg.residual
    assert model.reading.rows[0, 0, 0].item() == pytest.approx(crop.half_mm / crop.gain_mm_mv)
    assert model.predict(torch.rand(1, 2, 96, 500)).shape == (1, 1250)
    other = CropConfig(height=64, half_mm=16.0, window_s=2.0)     # 64 x 400 -> 1000, +-1.6 mV
    model = MultimodalECG(ModelConfig(), other)
    assert model.reading.rows[0, 0, 0].item() == pytest.approx(1.6)
    assert model.predict(torch.rand(1, 2, 64, 400)).shape == (1, 1000)
    assert not {"crop_height", "crop_width", "out_samples", "in_channels", "readout_mv"} & \
        set(ModelConfig().to_dict())


def test_wrong_shapes_fail_with_a_message():
    model = MultimodalECG(TINY, INK)
    with pytest.raises(AssertionError, match="image must be"):
        model(torch.rand(2, 1, 30, 100))
    with pytest.raises(AssertionError, match="signal must be"):
        model(torch.rand(2, 1, 32, 100), torch.randn(2, 200))
    with pytest.raises(AssertionError, match="divisible"):   # 101 columns, strides 2 x 2
        MultimodalECG(TINY, dataclasses.replace(INK, cols_per_s=202))


def test_parameter_counts_per_part():
    counts = count_parameters(MultimodalECG(TINY, INK))
    assert set(counts) == {"image_encoder", "signal_encoder", "decoder", "total"}
    assert all(v > 0 for v in counts.values())
    assert counts["total"] == counts["image_encoder"] + counts["signal_encoder"] + counts["decoder"]
    image_only = count_parameters(MultimodalECG(dataclasses.replace(TINY, signal_encoder=False), INK))
    assert image_only["signal_encoder"] == 0
    assert image_only["total"] == counts["total"] - counts["signal_encoder"]


@pytest.mark.parametrize("variational", [False, True])
def test_image_path_ignores_the_signal(variational):
    model = MultimodalECG(dataclasses.replace(TINY, variational=variational), INK).eval()
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
    model = MultimodalECG(dataclasses.replace(TINY, variational=variational), INK).train()
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
    model = MultimodalECG(TINY, INK)
    image = torch.rand(5, 1, 32, 100)
    torch.testing.assert_close(model.predict(image, batch_size=2), model.predict(image, batch_size=5),
                               rtol=1e-5, atol=1e-6)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(MissingInputError, match="notebook 04"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(MissingInputError):
        digitize_image(np.zeros((300, 300, 3), np.uint8), checkpoint=tmp_path / "nope.pt")
    with pytest.raises(MissingInputError, match="notebook 04"):
        CropModelDigitizer(checkpoint=tmp_path / "nope.pt")


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
    off = dataclasses.replace(TINY, row_heads=0)
    assert MultimodalECG(off, INK)(torch.rand(2, 1, 32, 100))["recon_image"].shape == (2, 250)
    assert count_parameters(MultimodalECG(off, INK))["image_encoder"] < \
        count_parameters(MultimodalECG(TINY, INK))["image_encoder"]


def _rendered_page():
    """A 10 s sine page (3x4+1 at 200 dpi): ``(image, truth)``."""
    from ecgnb.config import PaperConfig
    from ecgnb.render import render_page

    t = np.arange(5000) / 500
    signal = 0.8 * np.sin(2 * np.pi * 1.2 * t)[:, None] * np.linspace(-1, 1, 12)[None, :]
    return render_page(signal, 500, PaperConfig(), np.random.default_rng(0))


def test_digitize_image_places_every_panel():
    """A tiny untrained model on a rendered page: output layout, diagnostics, overlay."""
    import json

    from ecgnb.reading import overlay
    from ecgnb.render import drawn_mask

    image, truth = _rendered_page()
    crop = TWO                                           # 32 x 100 crops -> 250 samples, as TINY
    tiny = dataclasses.replace(TINY, residual=True)
    result = digitize_image(image, model=MultimodalECG(tiny, crop), crop_cfg=crop)
    assert isinstance(result, Reading) and result.method == "crop_model"
    assert result.signal.shape == (5000, 12)
    assert result.extra["n_crops"] == 12 * 5 + 20        # 2.5 s panels and the 10 s strip, 0.5 s windows
    assert len(result.traces) == result.extra["n_crops"]
    np.testing.assert_array_equal(~np.isnan(result.signal), drawn_mask(truth))
    diag = json.loads(json.dumps(result.diagnostics()))
    assert diag["method"] == "crop_model" and diag["n_crops"] == 80 and len(diag["panels"]) == 13
    assert overlay(result).shape == image.shape          # the command line's overlay works on it
    half = digitize_image(image, model=MultimodalECG(tiny, crop), fs=250)   # crop: the model's
    assert half.signal.shape == (2500, 12)
    with pytest.raises(ValueError, match="geometry"):
        CropModelDigitizer(model=MultimodalECG(tiny, crop), crop_cfg=CropConfig())


def test_crop_model_digitizer_loads_the_checkpoint_once(monkeypatch):
    """``models/default.pt`` behind the one interface: loaded in ``__init__``, never in ``read``."""
    from ecgnb import model as model_module
    from ecgnb.render import drawn_mask

    calls = []
    real = model_module.load_model
    monkeypatch.setattr(model_module, "load_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    reader = CropModelDigitizer()                         # DEFAULT_CHECKPOINT
    assert reader.name == "crop_model" and len(calls) == 1
    image, truth = _rendered_page()
    reading = reader.read(image, ReadOptions(layout="3x4+1", fs=500, duration_s=10.0))
    assert len(calls) == 1
    assert reading.signal.shape == (5000, 12) and reading.method == "crop_model"
    drawn = drawn_mask(truth)
    assert np.isfinite(reading.signal[drawn]).all() and np.isnan(reading.signal[~drawn]).all()
    assert reading.extra == {"n_crops": 16, "front": "classical"}   # 12 panels of 2.5 s, 4 rhythm windows
    assert reading.grid.found and reading.upright is not None


# Old-code outputs of the committed checkpoint (model_cfg with crop_height, in_channels,
# crop_width, out_samples, readout_mv) on ``torch.rand(2, 2, 96, 500)`` with generator seed 0,
# columns ::125; recorded before the geometry moved to CropConfig, valid for that file only.
DEFAULT_SHA256 = "fb529845791a435e654ddc96f38580a9bae2c87aeb18061a5453e4dcc2d90d12"
DEFAULT_GOLDEN = [[-0.03092, 0.04396, -0.05346, 0.03321, 0.05651, -0.12332, 0.13868, -0.04939, 0.06033, -0.03985],
                  [0.08649, 0.15577, 0.02282, 0.24003, 0.00976, -0.06002, 0.1157, 0.0169, -0.06081, -0.02265]]


def test_old_style_checkpoints_load_with_the_same_outputs(tmp_path):
    """A checkpoint whose model_cfg restates the geometry loads, geometry from its ``crop``."""
    import hashlib

    ckpt = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=True)
    crop = CropConfig.from_dict(ckpt["crop"])
    arch = ModelConfig.from_dict(ckpt["model_cfg"])
    old = {**arch.to_dict(), "crop_height": crop.height, "in_channels": crop.channels,
           "crop_width": crop.width, "out_samples": crop.n_samples,
           "readout_mv": crop.half_mm / crop.gain_mm_mv}
    assert ModelConfig.from_dict(old) == arch
    torch.save({**ckpt, "model_cfg": old}, tmp_path / "old.pt")
    torch.save({**ckpt, "model_cfg": arch.to_dict()}, tmp_path / "new.pt")
    x = torch.rand(2, 2, 96, 500, generator=torch.Generator().manual_seed(0))
    outs = {}
    for name, path in (("file", DEFAULT_CHECKPOINT), ("old", tmp_path / "old.pt"),
                       ("new", tmp_path / "new.pt")):
        model, _ = load_model(path)
        assert model.crop == crop and model.cfg == arch.resolved(crop)
        outs[name] = model.predict(x)
    torch.testing.assert_close(outs["old"], outs["file"], rtol=0, atol=0)
    torch.testing.assert_close(outs["new"], outs["file"], rtol=0, atol=0)
    if hashlib.sha256(DEFAULT_CHECKPOINT.read_bytes()).hexdigest() == DEFAULT_SHA256:
        np.testing.assert_allclose(outs["old"][:, ::125].numpy(), DEFAULT_GOLDEN, atol=2e-5)


def test_configs_of_older_checkpoints():
    from ecgnb.model import checkpoint_crop

    old = {**ModelConfig().to_dict(), "crop_height": 96, "in_channels": 2, "crop_width": 500,
           "out_samples": 1250, "readout_mv": 2.4}
    assert ModelConfig.from_dict(old) == ModelConfig()            # geometry fields dropped
    older = {k: v for k, v in old.items() if k not in ("in_channels", "residual")}
    assert ModelConfig.from_dict(older).residual is False         # saved before ``residual``
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()
    crop = {k: v for k, v in CropConfig().to_dict().items() if k != "trace_channel"}
    assert CropConfig.from_dict(crop).channels == 1
    assert CropConfig.from_dict(CropConfig().to_dict()) == CropConfig()
    # no ``crop`` saved (bare arrays, or before crops were stored): the restated geometry
    assert checkpoint_crop({"model_cfg": old, "crop": {}}) == CropConfig()
    tiny = {**TINY.to_dict(), "crop_height": 32, "crop_width": 100, "out_samples": 250,
            "in_channels": 1, "readout_mv": 2.4}
    assert checkpoint_crop({"model_cfg": tiny}) == INK
    assert checkpoint_crop({"model_cfg": TINY.to_dict(), "crop": TWO.to_dict()}) == TWO


def _line_crops(Y: np.ndarray, height: int = 32, width: int = 100, mv_top: float = 2.4):
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
    got = TraceReading(TWO)(_line_crops(Y)).numpy()
    assert got.shape == (2, 250)
    assert np.abs(got - Y).max() < 0.05            # well under one crop row (0.1 mV)
    empty = torch.zeros(1, 2, 32, 100)
    assert TraceReading(TWO)(empty).abs().max() == 0   # nothing traced: 0 mV, not NaN


def test_residual_model_adds_the_decoder_to_the_reading_and_ignores_the_signal():
    model = MultimodalECG(dataclasses.replace(TINY, residual=True), TWO).eval()
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
    # ink-only crops have no reading to correct: the residual is off there, and the model says so
    ink = MultimodalECG(dataclasses.replace(TINY, residual=True), INK)
    assert ink.reading is None and ink.cfg.residual is False


def test_the_trace_networks_front_cuts_its_probability_and_its_reading(tmp_path):
    """``CropConfig.front = "trace_net"``: the crops are the committed network's probability
    (ink) beside its reader's trace, and ``--method trace_model`` reads them with a model of
    that front, reporting what the front found (its geometry, the page's turn)."""
    from ecgnb import digitizers
    from ecgnb.panels import analyse_for, crops_from_layout, trace_net_reader
    from ecgnb.render import drawn_mask

    image, truth = _rendered_page()
    crop = dataclasses.replace(TWO, front="trace_net")
    analysis = analyse_for(image, "3x4+1", 10.0, crop)
    assert analysis.classical.method == "trace_net"
    # the ink is the network's probability of the page it read, not the page's darkness
    np.testing.assert_allclose(analysis.ink.max(), trace_net_reader().probability(analysis.upright).max(),
                               atol=0.05)
    assert analysis.ink.mean() < 0.1 and analysis.ink.max() > 0.9
    crops = crops_from_layout(analysis, crop)
    assert len(crops) == 80 and crops[0].crop.shape == (2, 32, 100)
    # the trace channel is the front's reading: one mark per column where it ran
    assert (crops[0].crop[1].max(axis=0) > 0.5).mean() > 0.9

    tiny = dataclasses.replace(TINY, residual=True)
    ckpt = tmp_path / "tiny.pt"
    net = MultimodalECG(tiny, crop)
    torch.save({"model": net.state_dict(), "model_cfg": tiny.resolved(crop).to_dict(),
                "crop": crop.to_dict()}, ckpt)
    reader = digitizers.get("trace_model", checkpoint=ckpt)
    reading = reader.read(image, ReadOptions(layout="3x4+1", fs=500))
    assert reading.method == "trace_model" and reading.signal.shape == (5000, 12)
    assert reading.extra["front"] == "trace_net" and reading.extra["n_crops"] == 80
    assert "geometry" in reading.extra and "page_turn_deg" in reading.extra
    np.testing.assert_array_equal(~np.isnan(reading.signal), drawn_mask(truth))
    # untrained weights: the residual decoder starts at the front's own reading
    front = analysis.classical.signal[drawn_mask(truth)]
    assert np.corrcoef(reading.signal[drawn_mask(truth)], front)[0, 1] > 0.5


def test_a_missing_trace_model_says_how_to_make_one(monkeypatch, tmp_path):
    from ecgnb import model as model_module

    monkeypatch.setattr(model_module, "TRACE_MODEL_CHECKPOINT", tmp_path / "trace_model.pt")
    with pytest.raises(MissingInputError, match="train_trace_model.py --publish"):
        model_module.TraceModelDigitizer()
