"""Training loop: overfitting, checkpoints (weights_only), exact resume, determinism, ablation."""
from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch

from ecgnb.config import CropConfig
from ecgnb.model import ModelConfig, load_model
from ecgnb.train import TrainConfig, crop_snr_db, lr_at, mean_snr_db, train

TINY = ModelConfig(channels=(4, 8), width_strides=(2, 2), hidden=8, latent_dim=4, n_blocks=1,
                   residual=False)
INK = CropConfig(height=32, window_s=0.5, trace_channel=False)   # 32 x 100 ink -> 250 samples, +-2.4 mV
TWO = CropConfig(height=32, window_s=0.5)                         # the same with the trace channel
FAST = TrainConfig(epochs=3, batch_size=8, lr=3e-3, threads=1, device="cpu", patience=100)


def toy_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``INK`` crops whose ink sits at the row of the signal: ``X (n, 1, 32, 100)``, ``Y (n, 250)`` mV."""
    rng = np.random.default_rng(seed)
    t = np.arange(250) / 500
    Y = np.stack([rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * rng.uniform(1, 4) * t + rng.uniform(0, 6))
                  for _ in range(n)]).astype(np.float32)
    rows = np.arange(32)[:, None]
    centre = 15.5 - Y[:, (np.arange(100) * 2.5).astype(int)] / 0.1   # (n, 100) rows, 0.1 mV per row
    X = np.exp(-0.5 * ((rows[None] - centre[:, None, :]) / 0.8) ** 2).astype(np.float32)
    return X[:, None], Y


@pytest.fixture(scope="module")
def data():
    return toy_arrays(24, 0), toy_arrays(8, 1)


def _log(run_dir):
    with open(run_dir / "log.csv") as fh:
        return list(csv.DictReader(fh))


def test_snr_helpers():
    ref = np.array([[1.0, -1.0, 1.0, -1.0]])
    assert crop_snr_db(ref, ref)[0] == np.inf
    np.testing.assert_allclose(crop_snr_db(ref, 0.9 * ref), [20.0])
    np.testing.assert_allclose(crop_snr_db(ref, np.full_like(ref, np.nan)), [0.0])  # NaN = 0 mV
    assert mean_snr_db(np.vstack([ref, ref]), np.vstack([ref, 0.9 * ref])) == pytest.approx(20.0)
    cfg = TrainConfig(lr=1.0, warmup_frac=0.1)
    lrs = [lr_at(cfg, s, 100) for s in range(100)]
    assert max(lrs) == pytest.approx(1.0) and lrs[0] < 0.2 and lrs[-1] < 0.01
    one = [lr_at(dataclasses.replace(cfg, schedule="onecycle"), s, 100) for s in range(100)]
    assert one[0] == pytest.approx(1 / 25) and max(one) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="schedule"):
        lr_at(dataclasses.replace(cfg, schedule="step"), 0, 10)


def test_one_batch_overfit(data, tmp_path):
    from ecgnb.train import overfit_batch

    (X, Y), _ = data
    one = (X[:8], Y[:8])
    cfg = dataclasses.replace(FAST, epochs=150, schedule="constant", lr=5e-3)
    train(TINY, cfg, one, one, tmp_path, progress=False, crop_cfg=INK)
    log = _log(tmp_path)
    first, last = float(log[0]["loss_image"]), float(log[-1]["loss_image"])
    assert last < 0.05 * first, f"image loss only went from {first:.4f} to {last:.4f}"
    assert float(log[-1]["val_snr_db"]) > 10.0
    hist = overfit_batch(TINY, cfg, X[:8], Y[:8], steps=3, crop_cfg=INK)   # notebook 03's check
    assert len(hist) == 3 and all(np.isfinite(hist))


def test_checkpoint_round_trip_weights_only(data, tmp_path):
    (X, Y), val = data
    summary = train(TINY, FAST, (X, Y), val, tmp_path, progress=False, crop_cfg=INK)
    assert summary["epochs_run"] == 3 and summary["step"] == 9
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / name, weights_only=True)
        assert {"model", "optimizer", "scheduler", "model_cfg", "train_cfg", "step", "epoch",
                "best_score", "versions"} <= set(ckpt)
        assert ModelConfig.from_dict(ckpt["model_cfg"]) == TINY
        assert CropConfig.from_dict(ckpt["crop"]) == INK
        assert TrainConfig(**ckpt["train_cfg"]) == FAST
    model, ckpt = load_model(tmp_path / "best.pt")
    assert ckpt["best_score"] == pytest.approx(summary["best_val_snr_db"])
    pred = model.predict(torch.from_numpy(val[0])).numpy()
    assert mean_snr_db(val[1], pred) == pytest.approx(summary["best_val_snr_db"], abs=1e-4)
    rows = _log(tmp_path)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert set(rows[0]) == {"epoch", "step", "loss", "loss_image", "loss_signal", "loss_align",
                            "loss_kl", "loss_readout", "val_snr_db", "val_snr_signal_db", "lr", "seconds"}


def test_resume_equals_uninterrupted(data, tmp_path):
    (X, Y), val = data
    cfg = dataclasses.replace(FAST, epochs=3)
    full = train(dataclasses.replace(TINY, dropout=0.1), cfg, (X, Y), val, tmp_path / "a",
                 progress=False, crop_cfg=INK)
    part = train(dataclasses.replace(TINY, dropout=0.1), cfg, (X, Y), val, tmp_path / "b",
                 progress=False, max_epochs=1, crop_cfg=INK)
    assert part["epochs_run"] == 1 and part["step"] == 3
    resumed = train(dataclasses.replace(TINY, dropout=0.1), cfg, (X, Y), val, tmp_path / "b",
                    progress=False, crop_cfg=INK)
    assert resumed["step"] == full["step"] == 9 and resumed["epochs_run"] == 3
    assert resumed["best_val_snr_db"] == full["best_val_snr_db"]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{k} differs after resume")
    assert [r["val_snr_db"] for r in _log(tmp_path / "a")] == \
        [r["val_snr_db"] for r in _log(tmp_path / "b")]
    # A finished run resumes to its summary without training; other settings are refused.
    again = train(dataclasses.replace(TINY, dropout=0.1), cfg, (X, Y), val, tmp_path / "b",
                  progress=False, crop_cfg=INK)
    assert again["step"] == 9
    with pytest.raises(ValueError, match="another train_cfg"):
        train(dataclasses.replace(TINY, dropout=0.1), dataclasses.replace(cfg, lr=1e-4), (X, Y),
              val, tmp_path / "b", progress=False, crop_cfg=INK)
    with pytest.raises(ValueError, match="another model_cfg"):
        train(TINY, cfg, (X, Y), val, tmp_path / "b", progress=False, crop_cfg=INK)
    with pytest.raises(ValueError, match="another crop"):   # same shapes, other mV span
        train(dataclasses.replace(TINY, dropout=0.1), cfg, (X, Y), val, tmp_path / "b",
              progress=False, crop_cfg=dataclasses.replace(INK, half_mm=16.0))


def test_determinism_by_seed(data, tmp_path):
    (X, Y), val = data
    cfg = dataclasses.replace(FAST, epochs=2)
    vae = dataclasses.replace(TINY, variational=True)   # sampling noise must be seeded too
    runs = [train(vae, dataclasses.replace(cfg, seed=s), (X, Y), val, tmp_path / f"r{i}",
                  progress=False, crop_cfg=INK) for i, s in enumerate((7, 7, 8))]
    logs = [_log(tmp_path / f"r{i}") for i in range(3)]
    assert logs[0] == [dict(r, seconds=a["seconds"]) for r, a in zip(logs[1], logs[0])]
    assert runs[0]["best_val_snr_db"] == runs[1]["best_val_snr_db"]
    assert logs[0][-1]["loss"] != logs[2][-1]["loss"]
    assert float(logs[0][0]["loss_kl"]) > 0


def test_residual_reading_follows_the_crops(data, tmp_path):
    """Two-channel crops train a residual model; ink-only crops cannot, so it is turned off."""
    (X, Y), (Xv, Yv) = data
    cfg = dataclasses.replace(TINY, residual=True)
    one = dataclasses.replace(FAST, epochs=1)
    train(cfg, one, (np.concatenate([X, X], 1), Y), (np.concatenate([Xv, Xv], 1), Yv),
          tmp_path / "two", progress=False, crop_cfg=TWO)
    model, ckpt = load_model(tmp_path / "two" / "best.pt")
    assert model.cfg.residual and model.crop == TWO and model.reading is not None
    train(cfg, FAST, (X, Y), (Xv, Yv), tmp_path / "ink", progress=False, max_epochs=1, crop_cfg=INK)
    model, ckpt = load_model(tmp_path / "ink" / "best.pt")
    assert not model.cfg.residual and model.reading is None
    assert ckpt["model_cfg"]["residual"] is False     # the checkpoint stores what was built
    # and a run saved before ``residual`` existed resumes (the field reads as off)
    ck = torch.load(tmp_path / "ink" / "last.pt", weights_only=True)
    del ck["model_cfg"]["residual"]
    torch.save(ck, tmp_path / "ink" / "last.pt")
    s = train(cfg, FAST, (X, Y), (Xv, Yv), tmp_path / "ink", progress=False, crop_cfg=INK)
    assert s["epochs_run"] == FAST.epochs


def test_image_only_ablation(data, tmp_path):
    (X, Y), val = data
    summary = train(TINY, dataclasses.replace(FAST, multimodal=False, epochs=2), (X, Y), val,
                    tmp_path, progress=False, crop_cfg=INK)
    assert summary["params"]["signal_encoder"] == 0
    model, ckpt = load_model(tmp_path / "last.pt")
    assert model.signal_encoder is None and ckpt["model_cfg"]["signal_encoder"] is False
    log = _log(tmp_path)
    assert all(float(r["loss_signal"]) == 0 and float(r["loss_align"]) == 0 for r in log)
    assert all(r["val_snr_signal_db"] == "nan" for r in log)


def test_early_stopping(data, tmp_path):
    (X, Y), val = data
    cfg = dataclasses.replace(FAST, epochs=10, lr=0.0, schedule="constant", patience=2)
    summary = train(TINY, cfg, (X, Y), val, tmp_path, progress=False, crop_cfg=INK)
    assert summary["stopped_early"] and summary["epochs_run"] == 3 and summary["best_epoch"] == 0


DDP_SCRIPT = """
import sys, numpy as np
from ecgnb.config import CropConfig
from ecgnb.model import ModelConfig
from ecgnb.train import TrainConfig, train
z = np.load(sys.argv[1])
cfg = ModelConfig(channels=(4, 8), width_strides=(2, 2), hidden=8, latent_dim=4, n_blocks=1)
s = train(cfg, TrainConfig(epochs=2, batch_size=4, threads=1, device="cpu"), (z["X"], z["Y"]),
          (z["Xv"], z["Yv"]), sys.argv[2], progress=False,
          crop_cfg=CropConfig(height=32, window_s=0.5, trace_channel=False))
import os
# one file per rank: two processes printing to one pipe interleave their lines
with open(os.path.join(sys.argv[2], f"result_{os.environ['RANK']}.txt"), "w") as fh:
    fh.write(f"{s['step']} {s['epochs_run']}")
"""


@pytest.mark.slow
def test_ddp_two_processes_with_torchrun(data, tmp_path):
    """The same ``train`` under ``torchrun --nproc_per_node=2`` (gloo on CPU): half the steps each."""
    import os
    import subprocess
    import sys

    (X, Y), (Xv, Yv) = data
    np.savez(tmp_path / "d.npz", X=X, Y=Y, Xv=Xv, Yv=Yv)
    (tmp_path / "job.py").write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", str(tmp_path / "job.py"), str(tmp_path / "d.npz"),
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=240,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 24 crops, batch 4, 2 ranks: 3 steps per epoch on each rank.
    results = [(tmp_path / "run" / f"result_{r}.txt").read_text() for r in (0, 1)]
    assert results == ["6 2", "6 2"], results
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["step"] == 6 and len(_log(tmp_path / "run")) == 2


def test_train_variants_sets_an_incompatible_run_aside(data, tmp_path):
    from ecgnb.train import train_variants

    (X, Y), val = data
    cfg = dataclasses.replace(FAST, epochs=1)
    train_variants(TINY, cfg, (X, Y), val, tmp_path, ["image_only"], progress=False, crop_cfg=INK)
    train_variants(TINY, dataclasses.replace(cfg, lr=cfg.lr / 2), (X, Y), val, tmp_path,
                   ["image_only"], progress=False, crop_cfg=INK)
    kept = list(tmp_path.glob("image_only.old-*"))
    assert len(kept) == 1 and (kept[0] / "last.pt").exists()
    assert (tmp_path / "image_only" / "last.pt").exists()


def test_variant_configs():
    from ecgnb.config import CropConfig, TrainConfig
    from ecgnb.train import variant_configs

    t, c = variant_configs("no_preprocess", TrainConfig(), CropConfig())
    assert c.preprocess is False and t.multimodal is True
    t, c = variant_configs("image_only", TrainConfig(), CropConfig())
    assert c.preprocess is True and t.multimodal is False
    with pytest.raises(ValueError, match="unknown variant"):
        variant_configs("nope", TrainConfig(), CropConfig())
    # the trace network's front: the same three parts, the image-only and unaligned ablations
    t, c = variant_configs("trace_multimodal", TrainConfig(), CropConfig())
    assert c.front == "trace_net" and t.multimodal and t.w_align > 0
    t, c = variant_configs("trace_image_only", TrainConfig(), CropConfig())
    assert c.front == "trace_net" and not t.multimodal
    t, c = variant_configs("trace_no_align", TrainConfig(), CropConfig())
    assert c.front == "trace_net" and t.multimodal and t.w_align == 0.0


def test_crop_settings_come_from_the_arrays_or_the_caller(data, tmp_path):
    from types import SimpleNamespace

    (X, Y), (Xv, Yv) = data
    one = dataclasses.replace(FAST, epochs=1)
    with pytest.raises(ValueError, match="pass crop_cfg"):
        train(TINY, one, (X, Y), (Xv, Yv), tmp_path / "a", progress=False)
    meta = SimpleNamespace(attrs={"crop": INK.to_dict()})      # as build_panel_arrays' meta
    train(TINY, one, (X, Y, meta), (Xv, Yv, meta), tmp_path / "a", progress=False)
    assert load_model(tmp_path / "a" / "last.pt")[0].crop == INK
    with pytest.raises(ValueError, match="arrays were cut with"):
        train(TINY, one, (X, Y, meta), (Xv, Yv, meta), tmp_path / "b", progress=False, crop_cfg=TWO)
    with pytest.raises(AssertionError, match="do not match the crop settings"):
        train(TINY, one, (X, Y), (Xv, Yv), tmp_path / "c", progress=False, crop_cfg=TWO)


# What the code before the geometry moved to CropConfig saved as model_cfg for each variant of
# notebook 04 (profile model: residual on): the crop geometry restated, and what ``train``
# patched in at run time.
OLD_STYLE = {
    "multimodal": dict(in_channels=2, signal_encoder=True, residual=True),
    "image_only": dict(in_channels=2, signal_encoder=False, residual=True),
    "no_trace": dict(in_channels=1, signal_encoder=True, residual=False),
}


def _as_old_code_saved(path, patched: dict) -> None:
    """Rewrite checkpoint ``path`` the way the older code wrote it (old-style ``model_cfg``)."""
    ck = torch.load(path, weights_only=True)
    crop = CropConfig.from_dict(ck["crop"])
    ck["model_cfg"] = {**ck["model_cfg"], "crop_height": crop.height, "crop_width": crop.width,
                       "out_samples": crop.n_samples, "readout_mv": crop.half_mm / crop.gain_mm_mv,
                       **patched}
    torch.save(ck, path)


def test_runs_saved_by_the_old_code_resume(data, tmp_path):
    """An interrupted run of each variant, saved old-style, resumes under ``train_variants`` (no
    run set aside) and ends exactly where an uninterrupted run ends."""
    from types import SimpleNamespace

    from ecgnb.train import train_variants, variant_configs

    (X, Y), (Xv, Yv) = data
    arch = dataclasses.replace(TINY, residual=True)            # the profile's model config
    arrays = {}
    for name, patched in OLD_STYLE.items():
        cfg, crop = variant_configs(name, FAST, TWO)
        x, xv = (np.concatenate([X, X], 1), np.concatenate([Xv, Xv], 1)) if crop.channels == 2 else (X, Xv)
        meta = SimpleNamespace(attrs={"crop": crop.to_dict()})   # as build_panel_arrays' meta
        arrays[name] = ((x, Y, meta), (xv, Yv, meta))
        train(arch, cfg, *arrays[name], tmp_path / "full" / name, progress=False)
        train(arch, cfg, *arrays[name], tmp_path / "runs" / name, progress=False, max_epochs=1)
        _as_old_code_saved(tmp_path / "runs" / name / "last.pt", patched)
        saved = torch.load(tmp_path / "runs" / name / "last.pt", weights_only=True)["model_cfg"]
        assert saved["crop_height"] == 32 and saved["in_channels"] == crop.channels
    out = train_variants(arch, FAST, None, None, tmp_path / "runs", list(OLD_STYLE),
                         progress=False, variant_arrays=arrays)
    assert not list((tmp_path / "runs").glob("*.old-*")), "an old run was set aside, not resumed"
    for name in OLD_STYLE:
        assert out[name]["epochs_run"] == FAST.epochs and out[name]["step"] == 9
        a = torch.load(tmp_path / "full" / name / "last.pt", weights_only=True)["model"]
        b = torch.load(tmp_path / "runs" / name / "last.pt", weights_only=True)["model"]
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{name}: {k} differs")
