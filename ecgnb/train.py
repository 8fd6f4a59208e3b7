"""Training the multimodal digitizer (``ecgnb.model``) on panel crops (``ecgnb.panels``).

``train(model_cfg, train_cfg, train_arrays, val_arrays, run_dir)`` is the whole loop: AdamW, a
warm-up + cosine learning-rate schedule, gradient clipping, validation SNR after every epoch,
early stopping, ``run_dir/log.csv``, and checkpoints ``last.pt`` (every epoch) and ``best.pt``
(best validation SNR), both written atomically and loadable with ``torch.load(weights_only=True)``.
An interrupted run resumes from ``last.pt`` and continues exactly where it stopped (the data
order and the random state are restored, so the result equals an uninterrupted run on CPU).

Losses (all MSE in mV^2 unless said otherwise), weighted by ``TrainConfig``:

* ``loss_image``: signal reconstructed from the image latent vs the target.
* ``loss_signal``: signal reconstructed from the signal latent (the signal autoencoder).
* ``loss_align``: MSE between the image latent mean and the signal latent mean. With
  ``detach_signal_latent`` (default) the signal latent is a fixed target for this term: the signal
  autoencoder shapes the latent space on its own, and the image encoder learns to land in it
  (it cannot pull the signal latent towards whatever is easy to read from images). Without it,
  both encoders move towards each other.
* ``loss_readout``: the image encoder's row-attention readout (trace position per stage-1
  column, mV) vs the target at those columns: direct supervision of where the trace is.
* ``loss_kl``: KL divergence to N(0, 1) per latent element (mean), both encoders, when
  ``ModelConfig.variational``.

Distributed data parallel: launch the same code with ``torchrun --nproc_per_node=K``;
``init_distributed`` reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, each rank sees its share of the
batches (``DistributedSampler``), rank 0 validates and writes every file.
"""
from __future__ import annotations

import atexit
import csv
import dataclasses
import io as _io
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from tqdm.auto import tqdm

from .config import CropConfig, TrainConfig  # noqa: F401  (defined with the profiles)
from .io import write_text_atomic
from .model import ModelConfig, MultimodalECG, checkpoint_crop, count_parameters

LOG_COLUMNS = ("epoch", "step", "loss", "loss_image", "loss_signal", "loss_align", "loss_kl",
               "loss_readout",
               "val_snr_db", "val_snr_signal_db", "lr", "seconds")
RUNTIME_FIELDS = ("threads", "device", "progress_every")  # may differ between a run and its resume



@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1), else one process.

    NCCL on CUDA, gloo on CPU; each rank uses GPU ``LOCAL_RANK`` when CUDA is used.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
        # Leave the group before the interpreter exits: left to the exit, gloo's threads were
        # torn down under a live rank now and then ("terminate called without an active
        # exception", SIGABRT, in about 1 of 4 CI runs of the torchrun test).
        atexit.register(_leave_group)
    return DistInfo(rank, world, local, dev)


def _leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def crop_snr_db(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """SNR (dB) of each crop, ``10 log10(sum ref^2 / sum err^2)``: a fast training-time score of
    fully drawn crops (no alignment, no alpha penalty; not the Challenge metric of ``ecgnb.metrics``).

    ``reference``/``estimate`` are ``(N, T)`` mV; NaN in the estimate counts as 0 mV. Returns
    ``(N,)``; ``inf`` for a perfect crop, ``-inf`` for an all-zero reference with error.
    """
    ref = np.asarray(reference, float)
    err = np.nan_to_num(np.asarray(estimate, float), nan=0.0) - ref
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10((ref ** 2).sum(axis=1)) - 10.0 * np.log10((err ** 2).sum(axis=1))


def mean_snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean of ``crop_snr_db`` over crops with a finite value."""
    snr = crop_snr_db(reference, estimate)
    snr = snr[np.isfinite(snr)]
    return float(snr.mean()) if snr.size else float("nan")


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Learning rate at optimiser ``step`` (0-based) of ``total`` (a pure function: resumable)."""
    if cfg.schedule == "constant":
        return cfg.lr
    warm = max(1, int(round(cfg.warmup_frac * total)))
    if cfg.schedule == "cosine":
        if step < warm:
            return cfg.lr * (step + 1) / warm
        p = min(1.0, (step - warm) / max(1, total - warm))
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * p))
    if cfg.schedule == "onecycle":
        lo, end = cfg.lr / 25, cfg.lr / 1e4
        if step < warm:
            return lo + (cfg.lr - lo) * 0.5 * (1 - math.cos(math.pi * step / warm))
        p = min(1.0, (step - warm) / max(1, total - warm))
        return end + (cfg.lr - end) * 0.5 * (1 + math.cos(math.pi * p))
    raise ValueError(f"unknown schedule {cfg.schedule!r}; use 'cosine', 'onecycle' or 'constant'")


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL(N(mu, exp(logvar)) || N(0, 1)) per latent element."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def compute_losses(out: dict, target: torch.Tensor, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Weighted losses of one batch: ``loss`` (to minimise) and its parts (see module docstring)."""
    zero = target.new_zeros(())
    parts = {"loss_image": F.mse_loss(out["recon_image"], target),
             "loss_signal": zero, "loss_align": zero, "loss_kl": zero, "loss_readout": zero}
    if out.get("readout_image") is not None and cfg.w_readout > 0:
        readout = out["readout_image"]                                   # (B, W1) mV
        step = target.shape[1] // readout.shape[1]
        # stage-1 column j is centred on crop column 2j, i.e. on target sample j * step
        parts["loss_readout"] = F.mse_loss(readout, target[:, ::step][:, :readout.shape[1]])
    if "recon_signal" in out:
        parts["loss_signal"] = F.mse_loss(out["recon_signal"], target)
        sig = out["mu_signal"].detach() if cfg.detach_signal_latent else out["mu_signal"]
        parts["loss_align"] = F.mse_loss(out["mu_image"], sig)
    if out.get("logvar_image") is not None:
        kl = _kl(out["mu_image"], out["logvar_image"])
        if out.get("logvar_signal") is not None:
            kl = kl + _kl(out["mu_signal"], out["logvar_signal"])
        parts["loss_kl"] = kl
    parts["loss"] = (cfg.w_image * parts["loss_image"] + cfg.w_signal * parts["loss_signal"]
                     + cfg.w_align * parts["loss_align"] + cfg.beta_kl * parts["loss_kl"]
                     + cfg.w_readout * parts["loss_readout"])
    return parts


@torch.no_grad()
def evaluate(model: MultimodalECG, X: np.ndarray, Y: np.ndarray, batch_size: int = 128
             ) -> dict[str, float]:
    """Mean crop SNR (dB) of the image path (``val_snr_db``) and, if present, the signal path."""
    x, y = torch.as_tensor(X), torch.as_tensor(Y)
    out = {"val_snr_db": mean_snr_db(Y, model.predict(x, batch_size).numpy())}
    if model.signal_encoder is not None:
        was = model.training
        model.eval()
        dev = next(model.parameters()).device
        rec = torch.cat([model.reconstruct_signal(x[i:i + batch_size].to(dev),
                                                  y[i:i + batch_size].to(dev)).cpu()
                         for i in range(0, len(y), batch_size)])
        model.train(was)
        out["val_snr_signal_db"] = mean_snr_db(Y, rec.numpy())
    else:
        out["val_snr_signal_db"] = float("nan")
    return out


def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` through a temporary file and ``os.replace`` (never a half-written checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_log(path: Path, rows: list[dict], columns: tuple[str, ...] = LOG_COLUMNS) -> None:
    """Write a training log (one row per epoch or validation) as CSV, atomically."""
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _versions() -> dict[str, str]:
    return {"torch": str(torch.__version__), "numpy": str(np.__version__), "python": platform.python_version()}


def build_model(model_cfg: ModelConfig, train_cfg: TrainConfig, crop_cfg: CropConfig) -> MultimodalECG:
    """The model a run trains: ``model_cfg`` on ``crop_cfg`` crops, with the signal encoder iff
    ``train_cfg.multimodal`` (the variant decides it, so one model config serves every variant)."""
    return MultimodalECG(dataclasses.replace(model_cfg, signal_encoder=train_cfg.multimodal), crop_cfg)


def _unpack(arrays) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(X, Y)`` or ``(X, Y, meta)`` -> ``(X float32, Y float32, crop config dict or {})``."""
    X, Y = np.asarray(arrays[0], np.float32), np.asarray(arrays[1], np.float32)
    crop = {}
    if len(arrays) > 2 and hasattr(arrays[2], "attrs"):
        crop = dict(arrays[2].attrs.get("crop", {}))
    assert X.ndim == 4 and X.shape[1] in (1, 2) and Y.ndim == 2 and len(X) == len(Y), \
        f"arrays must be X (N, C, H, W), C 1 or 2, and Y (N, T) with the same N; got {X.shape} and {Y.shape}"
    assert len(X) > 0, "no crops: build the panel arrays first (ecgnb.panels.build_panel_arrays)"
    assert np.isfinite(Y).all(), "targets contain NaN/inf: windows not fully drawn must be dropped"
    return X, Y, crop


def _crop_of(arrays_crop: dict, crop_cfg: CropConfig | None) -> CropConfig:
    """The ``CropConfig`` crops were cut with: their meta's, or ``crop_cfg`` (both: they must agree)."""
    if not arrays_crop:
        if crop_cfg is None:
            raise ValueError("bare (X, Y) arrays carry no crop settings: pass crop_cfg= (the CropConfig "
                             "they were cut with) or the (X, Y, meta) of ecgnb.panels.build_panel_arrays")
        return crop_cfg
    crop = CropConfig.from_dict(arrays_crop)
    if crop_cfg is not None and crop != crop_cfg:
        raise ValueError(f"the arrays were cut with {crop} but the crop settings given are "
                         f"{crop_cfg}: train and val crops need the same settings")
    return crop


def _check_shapes(X: np.ndarray, Y: np.ndarray, crop: CropConfig, split: str) -> None:
    assert X.shape[1:] == (crop.channels, crop.height, crop.width) and Y.shape[1] == crop.n_samples, \
        f"{split} crops {X.shape[1:]} with {Y.shape[1]} target samples do not match the crop " \
        f"settings: ({crop.channels}, {crop.height}, {crop.width}) with {crop.n_samples}"


class IncompatibleRunError(ValueError):
    """``run_dir`` holds a run made with other settings, so it cannot be resumed."""


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in RUNTIME_FIELDS}


def _run_settings(ckpt: dict) -> dict[str, dict]:
    """What a resume must match, from a checkpoint, in one form for saves of any version.

    ``model_cfg`` is the architecture as built on the run's crop (``ModelConfig.resolved``; older
    saves restated the geometry, which ``from_dict`` drops), ``crop`` the run's ``CropConfig``
    (``checkpoint_crop``), ``train_cfg`` less the runtime fields.
    """
    crop = checkpoint_crop(ckpt)
    return {"model_cfg": ModelConfig.from_dict(ckpt["model_cfg"]).resolved(crop).to_dict(),
            "crop": crop.to_dict(), "train_cfg": _comparable(ckpt["train_cfg"])}


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------

def train(model_cfg: ModelConfig, train_cfg: TrainConfig, train_arrays, val_arrays,
          run_dir: str | Path, resume: bool = True, progress: bool = True,
          max_epochs: int | None = None, time_budget_s: float | None = None,
          crop_cfg: CropConfig | None = None) -> dict:
    """Train a ``MultimodalECG`` on crops; return a summary dict (best val SNR, epochs, timings).

    ``train_arrays``/``val_arrays`` are ``(X (N, C, H, W), Y (N, T) mV[, meta])`` as made by
    ``ecgnb.panels.build_panel_arrays``. The crop settings are those in ``meta.attrs['crop']``, or
    ``crop_cfg`` for bare ``(X, Y)``; they set the model's geometry and are stored in the
    checkpoint beside the model config. The model is ``build_model(model_cfg, train_cfg, crop)``.

    With ``resume`` and an existing ``run_dir/last.pt`` made with the same configs, training
    continues after its epoch (a finished or early-stopped run just returns its summary).
    ``max_epochs`` stops this call after that many epochs and ``time_budget_s`` after the first
    epoch that ends past the budget, both as if interrupted (``last.pt`` is up to date).
    """
    run_dir = Path(run_dir)
    Xtr, Ytr, crop_tr = _unpack(train_arrays)
    Xva, Yva, crop_va = _unpack(val_arrays)
    crop = _crop_of(crop_va, _crop_of(crop_tr, crop_cfg))
    _check_shapes(Xtr, Ytr, crop, "train")
    _check_shapes(Xva, Yva, crop, "val")
    info = init_distributed(train_cfg.device)
    torch.set_num_threads(train_cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(train_cfg.seed)

    model = build_model(model_cfg, train_cfg, crop).to(info.device)
    core = model
    # What the checkpoints store and a resume must match (``_run_settings``).
    settings = {"model_cfg": core.cfg.to_dict(), "crop": crop.to_dict(),
                "train_cfg": train_cfg.to_dict()}
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    sampler = DistributedSampler(TensorDataset(torch.from_numpy(Xtr), torch.from_numpy(Ytr)),
                                 num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                 seed=train_cfg.seed)
    loader = DataLoader(sampler.dataset, batch_size=train_cfg.batch_size, sampler=sampler)
    total_steps = train_cfg.epochs * len(loader)

    state = {"epoch": -1, "step": 0, "best_score": -math.inf, "best_epoch": -1, "bad_epochs": 0,
             "history": [], "seconds": 0.0}
    last, best = run_dir / "last.pt", run_dir / "best.pt"
    if resume and last.exists():
        ckpt = torch.load(last, map_location=info.device, weights_only=True)
        saved, mine = _run_settings(ckpt), _run_settings(settings)
        for name in ("model_cfg", "crop", "train_cfg"):
            if saved[name] != mine[name]:
                diff = {k: (saved[name].get(k), v) for k, v in mine[name].items()
                        if saved[name].get(k) != v}
                raise IncompatibleRunError(f"{last} was made with another {name} (saved, given: "
                                           f"{diff}); use a new run_dir or resume=False")
        core.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng_state"])
        state.update({k: ckpt[k] for k in state})
    if info.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=[info.local_rank] if info.device.type == "cuda" else None)

    def summary(stopped: bool) -> dict:
        return {"best_val_snr_db": state["best_score"], "best_epoch": state["best_epoch"],
                "epochs_run": state["epoch"] + 1, "step": state["step"], "stopped_early": stopped,
                "seconds": state["seconds"], "params": count_parameters(core),
                "run_dir": str(run_dir), "log": str(run_dir / "log.csv")}

    if state["bad_epochs"] >= train_cfg.patience:
        return summary(True)
    epochs_this_call, t_call = 0, time.perf_counter()
    for epoch in range(state["epoch"] + 1, train_cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        sampler.set_epoch(epoch)
        sums = dict.fromkeys(("loss", "loss_image", "loss_signal", "loss_align", "loss_kl",
                              "loss_readout"), 0.0)
        n_batches = 0
        bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not (progress and info.main))
        for x, y in bar:
            x, y = x.to(info.device), y.to(info.device)
            lr = lr_at(train_cfg, state["step"], total_steps)
            for g in opt.param_groups:
                g["lr"] = lr
            out = model(x, y if train_cfg.multimodal else None)
            losses = compute_losses(out, y, train_cfg)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if train_cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
            opt.step()
            state["step"] += 1
            n_batches += 1
            for k in sums:
                sums[k] += float(losses[k].detach())
            bar.set_postfix(loss=f"{float(losses['loss'].detach()):.4f}")
        # Validation and bookkeeping on rank 0; the stop decision is shared with every rank.
        stop = torch.zeros(1, device=info.device)
        state["epoch"] = epoch
        if info.main:
            scores = evaluate(core, Xva, Yva)
            state["seconds"] += time.perf_counter() - t0
            improved = scores["val_snr_db"] > state["best_score"]
            if improved:
                state.update(best_score=scores["val_snr_db"], best_epoch=epoch, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            state["history"].append({"epoch": epoch, "step": state["step"],
                                     **{k: v / max(1, n_batches) for k, v in sums.items()},
                                     **scores, "lr": lr, "seconds": time.perf_counter() - t0})
            ckpt = {"model": core.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": {"name": train_cfg.schedule, "step": state["step"],
                                  "total_steps": total_steps},
                    **settings, "rng_state": torch.get_rng_state(), "versions": _versions(),
                    **state}
            if improved:
                save_atomic(ckpt, best)
            save_atomic(ckpt, last)
            write_log(run_dir / "log.csv", state["history"])
            if progress:
                h = state["history"][-1]
                print(f"epoch {epoch}: loss {h['loss']:.4f} val SNR {h['val_snr_db']:.2f} dB "
                      f"(signal path {h['val_snr_signal_db']:.2f}) lr {lr:.2e} {h['seconds']:.1f}s",
                      flush=True)
            stop[0] = float(state["bad_epochs"] >= train_cfg.patience)
        if info.world_size > 1:
            dist.broadcast(stop, 0)
        if stop.item():
            return summary(True)
        epochs_this_call += 1
        if max_epochs is not None and epochs_this_call >= max_epochs:
            break
        if time_budget_s is not None and time.perf_counter() - t_call > time_budget_s:
            break
    return summary(False)


def overfit_batch(model_cfg: ModelConfig, train_cfg: TrainConfig, X: np.ndarray, Y: np.ndarray,
                  steps: int = 100, *, crop_cfg: CropConfig) -> list[float]:
    """Train a fresh model on one batch ``(X, Y)`` of ``crop_cfg`` crops for ``steps`` steps; return
    the image-path reconstruction loss (mV²) per step. A model that cannot drive it towards 0 has a bug."""
    torch.manual_seed(train_cfg.seed)
    model = build_model(model_cfg, train_cfg, crop_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=0.0)
    x, y = torch.as_tensor(X), torch.as_tensor(Y)
    history = []
    for _ in range(steps):
        losses = compute_losses(model(x, y if train_cfg.multimodal else None), y, train_cfg)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        history.append(float(losses["loss_image"].detach()))
    return history


# Each variant: TrainConfig fields it overrides ("train") and CropConfig fields ("crop").
VARIANTS = {
    "multimodal": {},                                # the paper's design: both encoders, shared latent
    "image_only": {"train": {"multimodal": False}},  # ablation: no signal encoder, no latent alignment
    "no_trace": {"crop": {"trace_channel": False}},  # ablation: ink only, the paper's input
    "no_preprocess": {"crop": {"preprocess": False}},  # ablation: crops of the page as given
    # The same model on the per-pixel trace network's front (benchmarks/train_trace_model.py):
    "trace_multimodal": {"crop": {"front": "trace_net"}},
    "trace_image_only": {"crop": {"front": "trace_net"}, "train": {"multimodal": False}},
    "trace_no_align": {"crop": {"front": "trace_net"}, "train": {"w_align": 0.0}},  # latents not tied
}
TRACE_VARIANTS = ("trace_multimodal", "trace_image_only", "trace_no_align")


def variant_configs(name: str, train_cfg: TrainConfig, crop_cfg: CropConfig
                    ) -> tuple[TrainConfig, CropConfig]:
    """The training and crop settings of variant ``name`` (``ValueError`` if unknown)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    v = VARIANTS[name]
    return (dataclasses.replace(train_cfg, **v.get("train", {})),
            dataclasses.replace(crop_cfg, **v.get("crop", {})))


def train_variants(model_cfg: ModelConfig, train_cfg: TrainConfig, train_arrays, val_arrays,
                   run_root: str | Path, variants: list[str], progress: bool = True,
                   time_budget_s: float | None = None,
                   variant_arrays: dict[str, tuple] | None = None,
                   crop_cfg: CropConfig | None = None) -> dict[str, dict]:
    """Train each named variant of ``VARIANTS`` into ``run_root/<variant>/``, same budget each.

    ``variant_arrays`` maps a variant to its own ``(train_arrays, val_arrays)`` (a variant with
    other crop settings needs other crops); the others use ``train_arrays``/``val_arrays``.
    ``crop_cfg`` (needed for bare ``(X, Y)`` arrays) is the base crop settings; each variant's
    are ``variant_configs``'.
    Resumes a variant from its ``last.pt`` when one exists (see ``train``); a run made with other
    settings is renamed ``<variant>.old-<time>`` and the variant trained afresh. Returns the
    summaries.
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    out = {}
    for name in variants:
        cfg, crop = variant_configs(name, train_cfg, crop_cfg or CropConfig())
        if crop_cfg is None:   # the arrays' meta gives their crop settings
            crop = None
        tr, va = (variant_arrays or {}).get(name, (train_arrays, val_arrays))
        run_dir = Path(run_root) / name
        try:
            out[name] = train(model_cfg, cfg, tr, va, run_dir, progress=progress,
                              time_budget_s=time_budget_s, crop_cfg=crop)
        except IncompatibleRunError as exc:
            # Settings changed since that run: keep it (renamed), and train afresh.
            aside = run_dir.with_name(f"{name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
            run_dir.rename(aside)
            print(f"{exc}\nkept the old run as {aside}; training {name} afresh")
            out[name] = train(model_cfg, cfg, tr, va, run_dir, progress=progress,
                              time_budget_s=time_budget_s, crop_cfg=crop)
    return out
