"""The per-pixel trace network: its target, tiling, random look, training and resume."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from conftest import ecg_like

from ecgnb import render
from ecgnb.errors import MissingInputError
from ecgnb.config import PaperConfig, TraceNetConfig, TraceReadConfig
from ecgnb.trace_net import (DEFAULT_CHECKPOINT, TraceUNet, _spans, coverage_from_probability, inference_copy,
                             load_trace_net, preset, trace_coverage, trace_polylines,
                             trace_probability, trace_target)
from ecgnb.config import get_profile
from ecgnb.dataset import split_records
from ecgnb.trace_train import (PatchSampler, _hue_rotate, dark_band, fade_trace, photo_look, random_look, score,
                               styled_pages, train_page, train_trace_net)
from ecgnb.trace_reader import low_passed


@pytest.fixture(scope="module")
def rendered():
    signal = ecg_like()
    image, truth = render.render_page(signal, 500, PaperConfig(), np.random.default_rng(3))
    return image, truth


def test_target_covers_every_trace_sample_and_no_label(rendered):
    image, truth = rendered
    target = trace_target(truth)
    assert target.shape == image.shape[:2] and target.dtype == np.uint8
    for p in truth["panels"]:
        xy = np.rint(np.asarray(p["trace"])).astype(int)
        assert target[xy[:, 1], xy[:, 0]].mean() > 0.99, p["lead"]
    # The pen's footprint: every target pixel is darker than the paper, and the dark pixels
    # left outside it are the labels, header and grid, not a missed trace.
    grey = image.mean(axis=2)
    assert np.median(grey[target > 0]) < 0.5 * np.median(grey)
    assert 0.005 < target.mean() < 0.05
    # Pulses and separator ticks are trace ink too: one polyline per panel, pulse and tick.
    n_ticks = sum(p["col"] > 0 for p in truth["panels"])
    assert len(trace_polylines(truth)) == len(truth["panels"]) + len(truth["calibration"]) + n_ticks


def _centre_errors(truth, ink: np.ndarray) -> np.ndarray:
    """Ink-weighted vertical centre minus the true trace (px) on flat stretches at whole-pixel x."""
    out = []
    for p in truth["panels"]:
        tr = np.asarray(p["trace"])
        for k in range(2, len(tr) - 2):
            x, y = tr[k]
            if abs(x - round(x)) > 0.1 or abs(tr[k + 2, 1] - tr[k - 2, 1]) > 0.3:
                continue
            rows = np.arange(int(round(y)) - 5, int(round(y)) + 6)
            col = ink[rows, int(round(x))].astype(float)
            out.append((col * rows).sum() / col.sum() - y)
    return np.abs(out)


def test_coverage_is_the_pens_anti_aliased_ink_and_places_it_sub_pixel(rendered):
    image, truth = rendered
    cov, foot = trace_coverage(truth), trace_target(truth)
    assert cov.dtype == np.uint8 and cov.shape == foot.shape
    # The same pen as the footprint, with partly covered pixels at its edges.
    assert ((cov >= 128) == (foot > 0)).mean() > 0.98
    assert ((cov > 0) & (cov < 255)).sum() > 0.3 * (foot > 0).sum()
    grey = image.mean(axis=2)
    assert np.median(grey[cov == 255]) < np.median(grey[(cov > 30) & (cov < 128)]) < np.median(grey)
    # Its weighted centre finds a flat stretch to a fraction of a pixel, better than whole pixels.
    e_cov, e_foot = _centre_errors(truth, cov), _centre_errors(truth, foot)
    assert len(e_cov) > 500
    assert np.quantile(e_cov, 0.9) < 0.25 and np.quantile(e_cov, 0.9) < 0.7 * np.quantile(e_foot, 0.9)


def test_coverage_from_probability_undoes_the_trace_weight():
    c = np.linspace(0, 1, 11, dtype=np.float32)
    soft = TraceNetConfig(pos_weight=3.0, soft_target=True)
    p = 3 * c / (3 * c + 1 - c)                 # what weighted BCE learns for coverage c
    np.testing.assert_allclose(coverage_from_probability(p, soft), c, atol=1e-6)
    footprint = TraceNetConfig(soft_target=False)
    np.testing.assert_array_equal(coverage_from_probability(p, footprint), p)


@pytest.mark.parametrize("n, tile, overlap", [(100, 200, 10), (1000, 256, 24), (257, 128, 16)])
def test_tiles_keep_every_pixel_once(n, tile, overlap):
    spans = _spans(n, tile, overlap, 4)
    kept = np.zeros(n, int)
    for a, b, ka, kb in spans:
        assert 0 <= a <= ka < kb <= b <= n and b - a <= tile
        assert (ka == 0 or ka >= a + overlap) and (kb == n or kb <= b - overlap)  # context kept
        kept[ka:kb] += 1
    assert (kept == 1).all()


def test_tiled_probability_matches_one_pass():
    torch.manual_seed(0)
    model = TraceUNet((4, 6))                        # receptive field ~14 px < the overlap
    image = np.random.default_rng(0).integers(0, 255, (150, 230, 3), dtype=np.uint8)
    whole = trace_probability(model, image, TraceNetConfig(tile_px=512))
    tiled = trace_probability(model, image, TraceNetConfig(tile_px=96, tile_overlap_px=20))
    assert whole.shape == (150, 230)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    fast = trace_probability(inference_copy(model), image, TraceNetConfig(tile_px=96, tile_overlap_px=20))
    np.testing.assert_allclose(fast, whole, atol=1e-5)


def test_the_inference_copy_gives_the_trained_networks_logits():
    torch.manual_seed(1)
    model = TraceUNet((4, 6, 8))
    for m in model.modules():                        # batch norm that folding must carry over
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.3, 0.3)
    x = torch.rand(2, 3, 48, 80)
    with torch.inference_mode():
        want = model.eval()(x)
        got = inference_copy(model)(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == want.shape == (2, 1, 48, 80)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert want.std() > 1e-3                         # logits that vary: not two constant maps


def test_hue_rotation_keeps_greys_and_moves_colours():
    grey = np.full((2, 2, 3), 0.4, np.float32)
    np.testing.assert_allclose(_hue_rotate(grey, 1.3), grey, atol=1e-6)
    red = np.zeros((1, 1, 3), np.float32)
    red[..., 0] = 1.0
    turned = _hue_rotate(red, 2 * np.pi / 3)[0, 0]
    assert turned.argmax() == 1                       # a third of the way round: red -> green


def test_random_look_changes_the_look_not_the_shape(rendered):
    patch = rendered[0][300:400, 100:300]
    rng = np.random.default_rng(0)
    looks = [random_look(patch, rng) for _ in range(12)]
    assert all(lk.shape == patch.shape and lk.dtype == np.uint8 for lk in looks)
    assert np.mean([np.abs(lk.astype(int) - patch).mean() for lk in looks]) > 5


def test_a_faded_trace_is_lighter_than_before_and_the_rest_unchanged(rendered):
    image, truth = rendered
    cover = trace_coverage(truth, image.shape[:2])[300:400, 100:300].astype(np.float32) / 255
    patch = image[300:400, 100:300]
    assert (cover >= 0.5).sum() > 50
    for grey in (False, True):
        faded = fade_trace(patch, cover, 0.7, grey=grey)
        assert faded.shape == patch.shape and faded.dtype == np.uint8
        ink = cover >= 0.5
        assert faded[ink].mean() > patch[ink].mean() + 60            # much lighter ink
        np.testing.assert_array_equal(faded[cover == 0], patch[cover == 0])
    greyed = fade_trace(patch, cover, 0.0, grey=True).astype(int)
    full = cover >= 0.99                              # wholly under the pen: no grid colour left
    assert np.abs(greyed[full] - greyed[full].mean(axis=1, keepdims=True)).max() <= 1


def test_a_dark_band_only_darkens_and_only_in_part_of_the_patch():
    paper = np.full((96, 96, 3), 0.9, np.float32)
    rng = np.random.default_rng(1)
    for _ in range(5):
        banded = dark_band(paper, rng)
        assert banded.shape == paper.shape and (banded <= paper + 1e-6).all()
        shaded = (banded < 0.85).any(axis=2)
        assert 0 < shaded.mean() < 0.8                 # a band, not a uniform dimming


def test_patches_are_centred_on_the_trace_they_mark(rendered):
    image, truth = rendered
    cfg = dataclasses.replace(TraceNetConfig(), patch_px=64, on_trace=1.0, scale_range=(1.0, 1.0))
    for soft in (True, False):
        page = train_page("p", image, truth, soft)
        sampler = PatchSampler([page], dataclasses.replace(cfg, soft_target=soft), seed=1, look=False)
        for _ in range(10):
            patch, t = sampler.one()
            assert t.dtype == np.float32 and 0 <= t.min() and t.max() <= 1
            assert (t[28:36, 28:36] >= 0.5).any()     # the centre pixel's trace is in the target
            grey = patch.mean(axis=2)
            assert grey[t >= 0.5].mean() < grey[t == 0].mean() - 40
            # Soft: partly covered edge pixels; footprint: 0 or 1 only.
            assert ((t > 0.05) & (t < 0.95)).any() == soft


def test_a_photographed_twin_keeps_its_trace_on_the_pages_target(rendered):
    image, truth = rendered
    twin = photo_look(image, truth, np.random.default_rng(5))
    assert twin.shape == image.shape and twin.dtype == np.uint8
    assert np.abs(twin.astype(int) - image).mean() > 5               # a photo, not a copy
    cover = trace_coverage(truth, image.shape[:2])
    grey = twin.astype(np.float32).mean(axis=2)
    paper = np.median(grey)
    # The photo's ink lands on the page's own target: dark on it, paper-like a pen away.
    near = cv2.dilate((cover > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    on, off = np.median(grey[cover >= 200]), np.median(grey[~near])
    assert on < off - 0.3 * paper
    assert off > 0.8 * paper


def test_styled_pages_print_train_records_in_other_styles_with_their_targets():
    assert styled_pages("quick", "train", 0) == []
    pages = styled_pages("quick", "train", 3, photo_share=1 / 3, seed=4)
    train = {r.name for r in split_records(get_profile("quick"), "train", log=lambda msg: None)}
    assert [p.name.rsplit("_style", 1)[0] in train for p in pages] == [True] * 3
    assert [p.name[-3:] for p in pages] == ["000", "001", "002"]
    widths = set()
    for page in pages:
        grey = page.image.astype(np.float32).mean(axis=2)
        on = page.target >= 200
        near = cv2.dilate((page.target > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        assert on.sum() > 5000
        # The target still marks the page's own ink: darker on it than a pen away from it.
        assert np.median(grey[on]) < np.median(grey[~near]) - 40
        widths.add(int(on.sum()))
    assert len(widths) == 3          # other trace widths and pages: not one style three times
    again = styled_pages("quick", "train", 3, photo_share=1 / 3, seed=4)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(pages, again))    # seeded


def test_a_run_starts_from_the_weights_it_names(rendered, tmp_path):
    image, truth = rendered
    pages = [train_page("p", image, truth)]
    cfg = dataclasses.replace(preset("quick"), val_every=100, threads=1)
    train_trace_net(pages, pages, cfg, tmp_path / "first", log=lambda s: None)
    frozen = dataclasses.replace(cfg, init_from=str(tmp_path / "first" / "last.pt"), lr=0.0, seed=7)
    train_trace_net(pages, pages, frozen, tmp_path / "second", log=lambda s: None)
    a = torch.load(tmp_path / "first" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "second" / "last.pt", weights_only=False)["model"]
    for k in a:
        if k.endswith(("weight", "bias")):     # batch-norm statistics move even at lr 0
            torch.testing.assert_close(a[k], b[k], msg=k)


def test_a_run_from_missing_weights_says_which(rendered, tmp_path):
    pages = [train_page("p", *rendered)]
    cfg = dataclasses.replace(preset("quick"), init_from=str(tmp_path / "absent.pt"), threads=1)
    with pytest.raises(MissingInputError, match="absent.pt not found"):
        train_trace_net(pages, pages, cfg, tmp_path / "run", log=lambda s: None)


def test_val_scores_count_half_inked_pixels_as_trace():
    y = torch.tensor([0.0, 0.3, 0.6, 1.0]).reshape(1, 1, 2, 2)
    perfect = torch.logit(torch.tensor([0.01, 0.01, 0.99, 0.99])).reshape(1, 1, 2, 2)
    s = score(nn.Identity(), perfect, y, TraceNetConfig())
    assert s["val_f1"] == pytest.approx(1.0)


def test_training_resumes_exactly_where_it_stopped(rendered, tmp_path):
    image, truth = rendered
    pages = [train_page("p", image, truth)]
    cfg = dataclasses.replace(preset("quick"), val_every=100, threads=1)
    train_trace_net(pages, pages, cfg, tmp_path / "once")
    stop_each_step = dataclasses.replace(cfg, time_budget_s=0.0)    # a runtime setting
    for _ in range(cfg.steps):
        row = train_trace_net(pages, pages, stop_each_step, tmp_path / "resumed", log=lambda s: None)
    assert row["step"] == cfg.steps
    a = torch.load(tmp_path / "once" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    model, loaded_cfg = load_trace_net(tmp_path / "once" / "best.pt")
    assert loaded_cfg == dataclasses.replace(cfg, time_budget_s=loaded_cfg.time_budget_s)
    assert isinstance(model, TraceUNet)
    # A checkpoint older than ``soft_target`` was trained on the footprint.
    old = torch.load(tmp_path / "once" / "best.pt", weights_only=False)
    del old["config"]["soft_target"]
    torch.save(old, tmp_path / "old.pt")
    assert load_trace_net(tmp_path / "old.pt")[1].soft_target is False
    with pytest.raises(ValueError, match="other settings"):
        train_trace_net(pages, pages, dataclasses.replace(cfg, lr=1e-2), tmp_path / "once")


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_trace_net"):
        load_trace_net(tmp_path / "none.pt")
    with pytest.raises(ValueError, match="unknown trace network preset"):
        preset("huge")


def _snr(signal, estimate) -> float:
    from ecgnb.metrics import record_metrics

    return float(np.nanmean(record_metrics(signal, estimate, 500)["snr_db"].replace(np.inf, np.nan)))


def test_the_reader_checks_its_geometry_setting():
    from ecgnb.trace_reader import TraceNetDigitizer

    with pytest.raises(ValueError, match="unknown geometry 'curved'"):
        TraceNetDigitizer(geometry="curved")
    with pytest.raises(ValueError, match="unknown coverage 'ink'"):
        TraceNetDigitizer(ink=TraceReadConfig(coverage="ink"))
    with pytest.raises(ValueError, match="unknown split_strokes 'on'"):
        TraceNetDigitizer(ink=TraceReadConfig(split_strokes="on"))


def test_voted_ink_keeps_whole_blobs_the_network_marks_in_part():
    from ecgnb.trace_reader import voted_ink

    base = np.zeros((6, 20), bool)
    base[1, 0:10] = True          # a trace blob: the network marks 3 of its 10 px
    base[4, 0:10] = True          # a label blob: the network marks none of it
    net = np.zeros_like(base)
    net[1, 0:3] = True
    net[5, 15] = True             # network-only ink stays
    ink = voted_ink(base, net, share=0.25)
    assert ink[1, :10].all() and not ink[4].any() and ink[5, 15]
    assert not voted_ink(base, net, share=0.5)[1, 3:10].any()   # too little of it marked


def test_voted_ink_leaves_out_a_solid_shadow_joined_to_the_trace():
    from ecgnb.trace_reader import voted_ink

    base = np.zeros((60, 400), bool)
    base[29:32, :] = True         # the trace, all of it marked but where the shadow covers it
    base[10:50, 30:60] = True     # a dark shadow the colour rules take for ink, joined to it
    net = base.copy()
    net[:, 30:60] = False
    kept = voted_ink(base, net, share=0.1)
    assert kept[10:50, 30:60].all()     # the joined blob is marked enough: all of it voted in
    cut = voted_ink(base, net, share=0.1, solid_px=8)
    assert not cut[10:50, 30:60].any() and cut[29:32, :30].all() and cut[29:32, 60:].all()
    # Lines never hold a solid square: a 1 mm grid of 1 px lines (8 px/mm) with a 2 mm square
    # is voted as without it.
    lines = np.zeros((80, 160), bool)
    lines[::8, :] = lines[:, ::8] = True
    net = np.zeros_like(lines)
    net[::8, :80] = True
    assert (voted_ink(lines, net, 0.1, solid_px=16) == voted_ink(lines, net, 0.1)).all()


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.exists(), reason=f"{DEFAULT_CHECKPOINT} not committed")
def test_the_committed_network_reads_a_clean_page_and_a_black_grid_copy(rendered):
    from ecgnb import digitize
    from ecgnb.trace_reader import TraceNetDigitizer

    image, truth = rendered
    signal = render.masked_signal(ecg_like(), truth)
    reader = TraceNetDigitizer()
    clean = reader.read(image)
    assert clean.extra["geometry"] == "straighten"          # a render fills its frame
    # Read out with both coverages; the kept one is named, with both verdicts.
    assert set(clean.extra["coverage_consistency"]) == {"darkness", "network"}
    kept = clean.extra["coverage_consistency"][clean.extra["coverage"]]
    assert kept == max(clean.extra["coverage_consistency"].values())
    clean_db = _snr(signal, clean.signal)
    assert clean_db > 12, clean_db
    # The reading is the read-out low-passed at TraceReadConfig.lowpass_hz, nothing else.
    raw = TraceNetDigitizer(ink=TraceReadConfig(lowpass_hz=0)).read(image)
    assert clean.diagnostics()["lowpass_hz"] == TraceReadConfig().lowpass_hz
    assert not np.allclose(raw.signal, clean.signal, equal_nan=True)
    np.testing.assert_allclose(clean.signal, low_passed(raw.signal, raw.fs, TraceReadConfig().lowpass_hz),
                               atol=1e-9)
    # A black-and-white copy: grid lines as black as the trace. The colour rules cannot tell
    # them apart; the network must.
    grey = image.min(axis=2)
    bw = np.repeat(np.where(grey < 235, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    copy_db = _snr(signal, reader.read(bw).signal)
    try:
        classical_db = _snr(signal, digitize.digitize_image(bw).signal)
    except ValueError:
        classical_db = -np.inf                                 # refused outright
    # Floor 6 dB: this copy is extreme (every pixel under 235 black, so even the grid's faint
    # 1 mm lines are as black as the trace); the network fine-tuned on printed styles reads it
    # at 7.0 dB where the photo network read 8.8, while it reads simulated val-split photocopies
    # of make_photo_pages.py better (9.24 vs 8.17 dB, measured when it was chosen).
    assert copy_db > 6 and copy_db > classical_db + 3, (copy_db, classical_db)


def test_low_passed_keeps_slow_waves_and_gaps_and_takes_out_column_jitter():
    fs, n = 500.0, 1250
    t = np.arange(n) / fs
    slow = 0.5 * np.sin(2 * np.pi * 5 * t)                      # mV, a T-wave's pace
    jitter = 0.02 * np.sin(2 * np.pi * 150 * t)                  # mV, column-to-column noise
    sig = np.column_stack([slow + jitter, slow]).copy()
    sig[600:650, :] = np.nan                                     # a gap between panels
    sig[:3, 1] = [1.0, 2.0, 3.0]                                 # a stretch too short to filter
    sig[3, 1] = np.nan
    out = low_passed(sig, fs, 60.0)
    assert np.array_equal(np.isnan(out), np.isnan(sig))        # gaps stay, nothing is filled
    assert np.array_equal(out[:3, 1], [1.0, 2.0, 3.0])
    inner = np.r_[50:550, 700:1200]                              # away from the stretches' ends
    assert np.max(np.abs(out[inner, 0] - slow[inner])) < 0.002    # jitter gone, no delay
    assert np.max(np.abs(out[inner, 1] - slow[inner])) < 0.002
    assert np.array_equal(low_passed(sig, fs, 0), sig, equal_nan=True)        # off
    assert np.array_equal(low_passed(sig, fs, 250.0), sig, equal_nan=True)    # at Nyquist: off
    before = sig.copy()
    low_passed(sig, fs, 60.0)
    assert np.array_equal(sig, before, equal_nan=True)          # the input is not touched


def test_bridged_fills_short_gaps_along_columns_only():
    from ecgnb.trace_reader import bridged

    mask = np.zeros((12, 6), bool)
    mask[1:4, 1] = mask[6:9, 1] = True      # a stroke broken by 2 px: bridged at gap_px 3
    mask[0:2, 3] = mask[8:10, 3] = True     # 6 px apart: two strokes, left apart
    mask[5, 4] = True                       # a lone pixel is not grown
    out = bridged(mask, 3)
    assert out[1:9, 1].all() and not out[2:8, 3].any() and out[5, 4] and out.sum() == mask.sum() + 2
    assert not bridged(mask, 3)[5, 5] and (bridged(mask, 1) == mask).all()


def test_filled_holes_mends_a_stroke_cut_by_a_grid_line_only():
    from ecgnb.trace_reader import filled_holes

    mask = np.zeros((60, 60), bool)
    mask[5:40, 10:18] = True
    mask[20:24, 11:17] = False              # a dark grid line cut from a thick stroke: 4 px tall
    mask[45:47, 30:50] = mask[53:55, 30:50] = True
    mask[45:55, 30:32] = mask[45:55, 48:50] = True   # a cell 6 px tall, ink all round
    mask[0:10, 40:42] = True                # a blank corner open to the edge
    mask[5:12, 22:27] = True
    mask[7:11, 24] = False                  # an upright slit between two strokes: 4 x 1 px
    out = filled_holes(mask, 4, 16)
    assert out[20:24, 11:17].all() and out.sum() == mask.sum() + 24
    assert (filled_holes(mask, 0, 16) == mask).all()
    assert (filled_holes(mask, 6, 16) == mask | np.pad(np.ones((6, 16), bool), ((47, 7), (32, 12)))
            | out).all()                    # a taller bound takes the cell too
    assert (filled_holes(mask, 4, 5) == mask).all()      # and a narrower one not the cut
    printed = np.zeros_like(mask)
    printed[21:24, :] = True                # the page inks most of the cut: filled
    assert (filled_holes(mask, 4, 16, printed) == out).all()
    printed[21:23, :] = False               # blank paper there: left
    assert (filled_holes(mask, 4, 16, printed) == mask).all()


def test_the_trace_reader_reads_with_its_own_front_end_settings():
    from ecgnb.reading import ReadOptions
    from ecgnb.trace_reader import with_reader_settings

    options = ReadOptions(layout="6x2", fs=250.0)
    set_ = with_reader_settings(options)
    assert set_.preprocess.keep_apex and set_.preprocess.pulse_consensus and set_.preprocess.own_row
    assert (set_.layout, set_.fs) == ("6x2", 250.0)
    assert not (options.preprocess.keep_apex or options.preprocess.pulse_consensus
                or options.preprocess.own_row)
    assert set_.preprocess.split_strokes and not with_reader_settings(options, False).preprocess.split_strokes
    assert set_.preprocess.end_run and not options.preprocess.end_run


def test_a_page_is_binary_only_when_almost_no_pixel_is_grey():
    from ecgnb.trace_reader import is_binary

    page = np.full((100, 100, 3), 255, np.uint8)
    page[40:43] = 0
    assert is_binary(page)
    page[0, :50] = (250, 120, 120)       # a pink grid line's pixels: grey in their darkest channel
    assert is_binary(page)               # 0.5 % of the page
    page[1:3, :] = 128
    assert not is_binary(page)


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.exists(), reason=f"{DEFAULT_CHECKPOINT} not committed")
def test_the_readers_path_pays_only_through_ink_the_network_does_not_mark(monkeypatch):
    from ecgnb.reading import ReadOptions
    from ecgnb.trace_reader import TraceNetDigitizer

    reader = TraceNetDigitizer(ink=TraceReadConfig(weak_mm=0.4))
    prob = np.array([[0.9, 0.2], [0.5, 0.51]], np.float32)    # threshold 0.5: 0.5 is not marked
    monkeypatch.setattr(reader, "probability", lambda upright: prob)
    path_cost = reader.ink_hooks(ReadOptions())[3]
    np.testing.assert_allclose(path_cost(np.zeros((2, 2, 3), np.uint8)), [[0, 0.4], [0.4, 0]])
