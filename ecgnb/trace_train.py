"""Training the per-pixel trace network (``ecgnb.trace_net``) on the profile's rendered pages.

Patches of ``TraceNetConfig.patch_px`` are cut from the train split's pages (most centred on
trace ink), rescaled a little (pages are not always exactly 200 dpi) and given a random look
(``random_look``): any grid hue, grey or black-and-white copies, contrast, shading, blur, noise
and JPEG, for some a trace printed lighter than its grid (``fade_trace``) or a crease's soft
dark band (``dark_band``), on top of the severity artefacts the pages already carry. Some
train pages may also get a photographed twin (``photo_look``, ``TraceNetConfig.photo_pages``):
the print as a phone photo shows it, mapped back onto the page's own pixels, so the same target
fits it; and train records may be printed again in random styles (``styled_pages``,
``TraceNetConfig.style_pages``), some of them photographed. A run may start from another
network's weights (``TraceNetConfig.init_from``). The target is the pen's coverage of each
pixel (``trace_net.trace_coverage``; its 0/1 footprint where ``TraceNetConfig.soft_target`` is
off). Loss: class-weighted BCE plus soft Dice.

``train_trace_net`` runs for ``steps`` or ``time_budget_s``, validates on fixed val-split
patches every ``val_every`` steps, and keeps ``last.pt`` (resumable, sampler state included)
and ``best.pt`` (best val F1) in its run folder, both written atomically, plus ``log.csv``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from . import io, paths
from .config import StyleRangeConfig, TraceNetConfig, get_profile
from .dataset import load_index, page_rng, split_records
from .errors import MissingInputError
from .trace_net import make_model, to_input, trace_coverage, trace_target
from .augment import _hue_rotation
from .photo import PRESETS, photograph, to_photo
from .rectify import dense_map
from .render import random_style, render_page
from .train import save_atomic, write_log

LOG_COLUMNS = ("step", "seconds", "lr", "train_loss", "val_loss", "val_f1", "val_precision",
               "val_recall")


# --------------------------------------------------------------------------------------------
# Pages and the random look
# --------------------------------------------------------------------------------------------

@dataclass
class TrainPage:
    """One rendered page in memory: RGB ``image`` uint8, ``target`` the pen's coverage of each
    pixel (uint8, in 1/255), trace pixel indices."""

    name: str
    image: np.ndarray
    target: np.ndarray
    ink: np.ndarray           # flat indices of pixels at least half inked (patch centres)


def train_page(name: str, image: np.ndarray, truth: dict, soft: bool = True) -> TrainPage:
    """A ``TrainPage`` of a rendered page and its truth: the target is the pen's anti-aliased
    coverage (``soft``) or its 0/1 footprint (as 0/255)."""
    target = trace_coverage(truth, image.shape[:2]) if soft else trace_target(truth, image.shape[:2]) * 255
    return TrainPage(name, image, target, np.flatnonzero(target >= 128))


MAP_STEP_PX = 4    # page px between the nodes of the photo-to-page map (then bilinear)


def photo_look(image: np.ndarray, truth: dict, rng: np.random.Generator) -> np.ndarray:
    """The rendered page ``(H, W, 3)`` uint8 RGB as a phone photo of its print shows it
    (``ecgnb.photo.photograph``, phone preset: scale, perspective, bending, light, shadows, blur,
    noise, JPEG), resampled back onto the page's own pixels through the photo's exact map, so
    that the page's trace target still fits it. Parts of the page the photo does not show take
    their nearest shown pixel."""
    photo, moved = photograph(image, truth, PRESETS["phone"], rng)
    h, w = image.shape[:2]
    s = MAP_STEP_PX
    gx, gy = np.meshgrid(np.arange(0, w + s, s, dtype=np.float64), np.arange(0, h + s, s, dtype=np.float64))
    nodes = to_photo(np.stack([gx.ravel(), gy.ravel()], axis=1), moved).reshape(gx.shape + (2,))
    map_x, map_y = dense_map(nodes[..., 0], nodes[..., 1], s, (h, w))
    return cv2.remap(photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def load_pages(profile: str, split: str, limit: int | None = None, data_dir: Path | None = None,
               progress: bool = False, soft: bool = True, photos: int = 0,
               seed: int = 0, styles: int = 0, style_photo_share: float = 0.5) -> list[TrainPage]:
    """The ``split`` pages of a built dataset with their trace targets (``limit`` of them,
    spread evenly over the index; ``soft``: see ``train_page``), plus a photographed twin
    (``photo_look``, seeded by ``seed``) of ``photos`` clean pages spread evenly over them,
    plus ``styles`` pages of the split's records printed in random styles (``styled_pages``)."""
    root = Path(data_dir or paths.data_dir(profile))
    index = load_index(profile, root)
    rows = index[index["split"] == split]
    if rows.empty:
        raise MissingInputError(f"no {split} pages in {root}/index.csv")
    if limit and limit < len(rows):     # evenly spread over records and severities
        rows = rows.iloc[np.unique(np.linspace(0, len(rows) - 1, limit).round().astype(int))]
    pages = []
    for k, row in enumerate(rows.itertuples(), 1):
        pages.append(train_page(row.page, *_read_page(root, row), soft))
        if progress and (k % 50 == 0 or k == len(rows)):
            print(f"  loaded {k}/{len(rows)} {split} pages", flush=True)
    pages += _photo_twins(root, rows, photos, seed, soft, progress)
    return pages + styled_pages(profile, split, styles, style_photo_share, seed, soft, progress)


def styled_pages(profile: str, split: str, n: int, photo_share: float = 0.5, seed: int = 0,
                 soft: bool = True, progress: bool = False) -> list[TrainPage]:
    """``n`` pages of the profile's ``split`` records (cycled, spread over them) printed in a
    random style (``render.random_style`` of the default ``StyleRangeConfig``: grid colour and
    line widths, paper tint, trace colour and width, fonts, labels, header), the first
    ``photo_share`` of them photographed (``photo_look``). The dataset's own pages all show the
    study's one style (a 0.25 mm trace over thinner grid lines), so a network trained on them
    alone takes a thin trace's flat stretch for a grid line."""
    if n <= 0:
        return []
    prof = get_profile(profile)
    records = split_records(prof, split, log=lambda msg: None)
    if not records:
        raise MissingInputError(f"profile {profile} has no {split} records to print in styles")
    picks = np.linspace(0, len(records) - 1, n).round().astype(int)
    n_photo = int(round(photo_share * n))
    out = []
    for k, i in enumerate(picks):
        record, name = records[i], f"{records[i].name}_style{k:03d}"
        rng = page_rng(seed, name)
        image, truth = render_page(record.signal, record.fs, prof.paper, rng,
                                   style=random_style(rng, StyleRangeConfig()))
        if k < n_photo:
            image = photo_look(image, truth, rng)
        out.append(train_page(name, image, truth, soft))
        if progress and ((k + 1) % 25 == 0 or k + 1 == n):
            print(f"  printed {k + 1}/{n} pages in random styles", flush=True)
    return out


def _read_page(root: Path, row) -> tuple[np.ndarray, dict]:
    """``(RGB image, truth)`` of one index row's page under ``root``."""
    rel = Path(row.path)
    return (io.read_image(root / rel.parent / f"{rel.name}.png"),
            io.read_json(root / rel.parent / f"{rel.name}.json"))


def _photo_twins(root: Path, rows, n: int, seed: int, soft: bool, progress: bool) -> list[TrainPage]:
    """``n`` photographed twins (``photo_look``) of clean pages of ``rows``, spread evenly."""
    clean = rows[rows["severity"] == 0] if "severity" in rows else rows
    if n <= 0 or clean.empty:
        return []
    picks = clean.iloc[np.linspace(0, len(clean) - 1, n).round().astype(int)]
    rng = np.random.default_rng(seed)
    out = []
    for k, row in enumerate(picks.itertuples(), 1):
        image, truth = _read_page(root, row)
        out.append(train_page(f"{row.page}-photo{k}", photo_look(image, truth, rng), truth, soft))
        if progress and (k % 20 == 0 or k == n):
            print(f"  photographed {k}/{n} pages", flush=True)
    return out


def _hue_rotate(img: np.ndarray, angle: float) -> np.ndarray:
    """Rotate colours about the grey axis by ``angle`` rad (greys and black stay as they are)."""
    return img @ _hue_rotation(angle).T.astype(np.float32)


def dark_band(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` (float RGB 0..1) crossed by a soft, mottled dark band along a random curve: the
    shade of a crease or wrinkle, which a reader must not take for a faint trace."""
    h, w = img.shape[:2]
    ends = rng.uniform(-0.3, 1.3, size=(3, 2)) * [w, h]     # often across the whole patch
    t = np.linspace(0, 1, 32)[:, None]
    curve = (1 - t) ** 2 * ends[0] + 2 * t * (1 - t) * ends[1] + t ** 2 * ends[2]
    band = np.zeros((h, w), np.float32)
    cv2.polylines(band, [curve.round().astype(np.int32)], False, 1.0,
                  thickness=int(rng.integers(4, 40)))
    band = cv2.GaussianBlur(band, (0, 0), rng.uniform(1.5, 10.0))
    mottle = 1 + rng.uniform(0, 0.6) * rng.normal(0, 1, (h, w)).astype(np.float32)
    shade = 1 - rng.uniform(0.15, 0.55) * np.clip(band * mottle, 0, 1.5)
    return img * shade[:, :, None]


def random_look(patch: np.ndarray, rng: np.random.Generator, copy: bool = True,
                band_p: float = 0.0) -> np.ndarray:
    """A random print/scan/photo look for an RGB uint8 patch; returns uint8 of the same shape.

    What changes is only what a reader must not depend on: the grid's hue, colour or grey or a
    thresholded black-and-white copy, contrast and brightness, a shading ramp, blur, sensor
    noise, JPEG. The trace's position never moves (the target stays exact). ``copy`` False:
    never a thresholded copy (which would erase a faded trace that the target still marks).
    ``band_p``: probability of a soft dark band across the patch (``dark_band``).
    """
    img = patch.astype(np.float32) / 255.0
    if rng.random() < 0.6:
        img = _hue_rotate(img, rng.uniform(-math.pi, math.pi))
    if rng.random() < 0.2:
        img = img[:, :, rng.permutation(3)]
    if rng.random() < 0.3:
        grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
        img = np.repeat(grey[:, :, None], 3, axis=2)
    img = np.clip(img, 0, 1) ** rng.uniform(0.6, 1.6)
    lo, hi = rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0)
    img = lo + (hi - lo) * img * rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    if rng.random() < 0.3:
        h, w = img.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        ramp = (np.cos(a) * xx + np.sin(a) * yy) / max(h, w)
        img = img * (1 - rng.uniform(0, 0.5) * (ramp - ramp.min()))[:, :, None]
    if band_p and rng.random() < band_p:
        img = dark_band(img, rng)
    if rng.random() < 0.15 and copy:
        img = _copy_look(img, rng)
    if rng.random() < 0.4:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.3))
    if rng.random() < 0.5:
        img = img + rng.normal(0, rng.uniform(0.005, 0.05), img.shape).astype(np.float32)
    out = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.4:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


def fade_trace(patch: np.ndarray, cover: np.ndarray, amount: float,
               grey: bool = False) -> np.ndarray:
    """The patch with its trace printed lighter: each pixel moves towards the paper colour by
    ``amount`` (0..1) times the pen's ``cover`` of it (0..1, the exact target), the trace first
    made grey where ``grey``. The grid and text are untouched, so the trace may end up fainter
    than the grid lines, as on many real printouts. RGB uint8 in and out."""
    img = patch.astype(np.float32)
    paper = np.quantile(img.reshape(-1, 3), 0.9, axis=0)     # most of a patch is paper
    c = np.clip(cover, 0.0, 1.0)[:, :, None]
    if grey:
        img = img + c * (img.mean(axis=2, keepdims=True) - img)
    img = img + amount * c * (paper - img)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _copy_look(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A black-and-white photocopy: luminance thresholded at a random level, a little ragged."""
    grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
    grey = grey + rng.normal(0, 0.04, grey.shape).astype(np.float32)
    level = np.quantile(grey, rng.uniform(0.05, 0.35))
    bw = np.where(grey < level, rng.uniform(0.0, 0.2), rng.uniform(0.85, 1.0)).astype(np.float32)
    return np.repeat(bw[:, :, None], 3, axis=2)


# --------------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------------

class PatchSampler:
    """Random ``(patch RGB uint8, target float32 0..1)`` pairs from ``pages`` (the target is
    the pen's coverage, or with ``cfg.soft_target`` off its 0/1 footprint); its state can be saved."""

    def __init__(self, pages: list[TrainPage], cfg: TraceNetConfig, seed: int, look: bool = True):
        self.pages, self.cfg, self.look = pages, cfg, look
        self.rng = np.random.default_rng(seed)

    def one(self) -> tuple[np.ndarray, np.ndarray]:
        rng, n = self.rng, self.cfg.patch_px
        page = self.pages[int(rng.integers(len(self.pages)))]
        h, w = page.target.shape
        if page.ink.size and rng.random() < self.cfg.on_trace:
            cy, cx = divmod(int(page.ink[rng.integers(page.ink.size)]), w)
        else:
            cy, cx = int(rng.integers(h)), int(rng.integers(w))
        scale = rng.uniform(*self.cfg.scale_range)          # > 1: the page looks larger
        side = n / scale
        # An affine map from patch pixels to page pixels (scale and jitter; no rotation: the
        # reader sees upright pages).
        m = np.array([[1 / scale, 0, cx - side / 2], [0, 1 / scale, cy - side / 2]], np.float32)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        patch = cv2.warpAffine(page.image, m, (n, n), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        target = cv2.warpAffine(page.target.astype(np.float32) / 255.0, m, (n, n), flags=flags,
                                borderMode=cv2.BORDER_CONSTANT)
        # No draw when off, so the default recipe samples what the committed net was trained on.
        faded = self.look and self.cfg.fade_trace > 0 and rng.random() < self.cfg.fade_trace
        if faded:
            patch = fade_trace(patch, target, rng.uniform(*self.cfg.fade_range), rng.random() < 0.5)
        if self.look:
            patch = random_look(patch, rng, copy=not faded, band_p=self.cfg.band_p)
        if not self.cfg.soft_target:
            target = (target > 0.35).astype(np.float32)
        return patch, target

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self.one() for _ in range(size)]
        x = to_input(np.stack([p for p, _ in pairs]))
        y = torch.from_numpy(np.stack([t for _, t in pairs])).float()[:, None]
        return x, y


# --------------------------------------------------------------------------------------------
# Loss, scores, training
# --------------------------------------------------------------------------------------------

def trace_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Class-weighted BCE plus soft Dice (the trace is a few % of the pixels)."""
    bce = nn.functional.binary_cross_entropy_with_logits(
        logits, target, pos_weight=torch.tensor(pos_weight))
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


@torch.no_grad()
def score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TraceNetConfig,
          chunk: int = 16) -> dict:
    """Loss, F1, precision and recall of trace pixels (pixels at least half inked) at
    ``cfg.threshold`` on a fixed set."""
    model.eval()
    loss, tp, fp, fn = 0.0, 0.0, 0.0, 0.0
    for i in range(0, len(x), chunk):
        logits = model(x[i:i + chunk])
        loss += float(trace_loss(logits, y[i:i + chunk], cfg.pos_weight)) * len(logits)
        t = (y[i:i + chunk] >= 0.5).float()        # a pixel at least half under the pen is trace
        pred = (torch.sigmoid(logits) > cfg.threshold).float()
        tp += float((pred * t).sum())
        fp += float((pred * (1 - t)).sum())
        fn += float(((1 - pred) * t).sum())
    prec, rec = tp / max(tp + fp, 1.0), tp / max(tp + fn, 1.0)
    return {"val_loss": loss / len(x), "val_f1": 2 * prec * rec / max(prec + rec, 1e-9),
            "val_precision": prec, "val_recall": rec}


def _lr(step: int, cfg: TraceNetConfig) -> float:
    warm = max(1, cfg.steps // 20)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, cfg.steps - warm))))


RUNTIME_FIELDS = ("threads", "time_budget_s")   # may differ between a run and its resume


def _settings(config: dict) -> dict:
    """What a resume must match: every setting but the runtime ones."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()
            if k not in RUNTIME_FIELDS}


def train_trace_net(train: list[TrainPage], val: list[TrainPage], cfg: TraceNetConfig,
                    run_dir: str | Path, resume: bool = True, log=print) -> dict:
    """Train (or resume) a trace network in ``run_dir``; return the last log row.

    Stops after ``cfg.steps`` steps or ``cfg.time_budget_s`` s of this call's wall time, with
    ``last.pt`` up to date either way, so calling again continues where it stopped.
    """
    run_dir = Path(run_dir)
    last, best = run_dir / "last.pt", run_dir / "best.pt"
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model = make_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = PatchSampler(train, cfg, cfg.seed)
    val_x, val_y = PatchSampler(val, cfg, cfg.seed + 1, look=True).batch(cfg.val_patches)
    step, rows, best_f1, spent = 0, [], -1.0, 0.0
    if cfg.init_from and not (resume and last.exists()):
        start_from = Path(cfg.init_from)
        start_from = start_from if start_from.is_absolute() else paths.ROOT / start_from
        if not start_from.exists():
            raise MissingInputError(f"init_from checkpoint {start_from} not found: train it first "
                                    "(`python benchmarks/train_trace_net.py --preset reference`)")
        model.load_state_dict(torch.load(start_from, map_location="cpu", weights_only=True)["model"])
        log(f"starting from the weights of {cfg.init_from}")
    if resume and last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        if _settings(ck["config"]) != _settings(cfg.to_dict()):
            raise ValueError(f"{run_dir} holds a run with other settings; use another folder "
                             "or resume=False")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sampler.rng.bit_generator.state = ck["sampler_state"]
        step, rows, best_f1, spent = ck["step"], ck["log"], ck["best_f1"], ck["seconds"]
        log(f"resumed at step {step} ({spent:.0f} s so far, best val F1 {best_f1:.3f})")
    start = time.monotonic()
    losses = []
    while step < cfg.steps:
        model.train()
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg)
        x, y = sampler.batch(cfg.batch_size)
        loss = trace_loss(model(x), y, cfg.pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        out_of_time = time.monotonic() - start > cfg.time_budget_s
        if step % cfg.val_every == 0 or step == cfg.steps or out_of_time:
            row = {"step": step, "seconds": round(spent + time.monotonic() - start, 1),
                   "lr": opt.param_groups[0]["lr"], "train_loss": float(np.mean(losses)),
                   **score(model, val_x, val_y, cfg)}
            rows.append(row)
            losses = []
            ck = {"model": model.state_dict(), "config": cfg.to_dict(), "step": step,
                  "best_f1": max(best_f1, row["val_f1"]), "seconds": row["seconds"], "log": rows}
            if row["val_f1"] > best_f1:
                best_f1 = row["val_f1"]
                save_atomic({"model": ck["model"], "config": ck["config"], "step": step,
                              "val_f1": best_f1}, best)
            save_atomic({**ck, "optimizer": opt.state_dict(),
                          "sampler_state": sampler.rng.bit_generator.state}, last)
            write_log(run_dir / "log.csv", rows, LOG_COLUMNS)
            log(f"step {step}/{cfg.steps}  {row['seconds']:.0f} s  loss {row['train_loss']:.3f}  "
                f"val F1 {row['val_f1']:.3f} (P {row['val_precision']:.3f}, R {row['val_recall']:.3f})")
            if out_of_time:
                log(f"time budget of {cfg.time_budget_s:.0f} s reached; resume to continue")
                break
    return rows[-1] if rows else {}
