"""The multimodal generative digitizer: image and signal encoders sharing one latent space.

Following Nemati & Jafari Tadi (*Multimodal Generative Deep Learning for ECG Image Digitization
and Reconstruction*): an **image encoder** reads a panel crop (``ecgnb.panels``), a **signal
encoder** reads the same panel's signal, both map into one latent sequence ``(B, latent_dim, L)``
(``L`` latent steps along time), and one **waveform decoder** reconstructs the signal (mV) from
either latent. Training pulls the image latent towards the signal latent (``ecgnb.train``); at
inference only the image path runs (``MultimodalECG.predict`` takes no signal).

Beyond the paper (``CropConfig.trace_channel``, on by default): a crop has a second channel, the
trace the classical digitizer followed, drawn as a line; the image encoder reads ink and that
reading together and learns where to trust it. With ``ModelConfig.residual`` (default) the
decoder does not redraw the whole waveform: it adds a correction to that reading, read back from
the trace channel (``TraceReading``), so the model starts where the classical digitizer stands and
learns what it gets wrong. A row-attention readout of the trace position may be supervised
directly (``TrainConfig.w_readout``) so the encoder learns early where the trace is.

The model is built from two configs: ``ModelConfig`` (the architecture) and ``CropConfig`` (the
crops it reads: ``H = crop.height`` rows, ``W = crop.width`` columns, ``C = crop.channels``,
``T = crop.n_samples`` output samples, ``half_mm / gain_mm_mv`` mV at the top row); a checkpoint
stores both.

The crops' front (``CropConfig.front``) is the classical digitizer by default: its layout cuts
the crops and its reading is the trace channel. With ``front = "trace_net"`` the per-pixel trace
network (``ecgnb.trace_net``) is the front of the image encoder: its reader flattens the page and
finds the layout, the crops' ink is the network's trace probability at the page's resolution
and the trace channel its sub-pixel reading; the three parts train on those crops
(``benchmarks/train_trace_model.py``; ``TraceModelDigitizer``, ``--method trace_model``).

Read top to bottom: small parts (ConvBlock2d, ResBlock1d, RowAttention, TraceReading), the three parts, the
whole model, checkpoints, then the digitizer behind the one interface (``CropModelDigitizer``).

Shapes: ``B`` batch, ``H x W`` crop rows x columns, ``T`` output samples, ``L`` latent steps,
``D`` latent_dim. Images are ink 0..1, signals mV.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import paths
from .config import CropConfig, ModelConfig  # noqa: F401  (defined with the profiles)
from .errors import MissingInputError
from .leads import LEAD_INDEX, LEAD_NAMES
from .reading import Reading, ReadOptions

# The checkpoint `digitize --method model` uses; notebook 04 publishes its best multimodal run here.
DEFAULT_CHECKPOINT = paths.ROOT / "models" / "default.pt"
# The same model on the trace network's front (CropConfig.front = "trace_net"), `--method trace_model`;
# benchmarks/train_trace_model.py publishes it.
TRACE_MODEL_CHECKPOINT = paths.ROOT / "models" / "trace_model.pt"


# --------------------------------------------------------------------------------------------
# Small parts
# --------------------------------------------------------------------------------------------

def top_row_mv(crop: CropConfig) -> float:
    """mV at a crop's top row (minus that at its bottom row): ``half_mm / gain_mm_mv``."""
    return crop.half_mm / crop.gain_mm_mv


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 where they divide ``channels``, else fewer (batch-independent norm)."""
    return math.gcd(8, channels)


class ConvBlock2d(nn.Module):
    """Strided 3x3 conv, then a residual 3x3 conv; GroupNorm + GELU. ``(B, Ci, H, W) -> (B, Co, H/sh, W/sw)``."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int], dropout: float = 0.0):
        super().__init__()
        self.down = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.n1 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.n2 = nn.GroupNorm(_groups(c_out), c_out)
        self.drop = nn.Dropout2d(dropout)

    def forward(self, x):
        x = F.gelu(self.n1(self.down(x)))            # (B, Co, H', W')
        return x + self.drop(F.gelu(self.n2(self.conv(x))))


class ResBlock1d(nn.Module):
    """Pre-norm residual block along time: GN, GELU, dilated conv, GN, GELU, conv. ``(B, C, L)`` kept."""

    def __init__(self, channels: int, kernel_size: int = 5, dilation: int = 1, dropout: float = 0.0):
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.n1 = nn.GroupNorm(_groups(channels), channels)
        self.c1 = nn.Conv1d(channels, channels, kernel_size, padding=pad, dilation=dilation)
        self.n2 = nn.GroupNorm(_groups(channels), channels)
        self.c2 = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        h = self.c1(F.gelu(self.n1(x)))
        h = self.c2(self.drop(F.gelu(self.n2(h))))
        return x + h


def _temporal_stack(channels: int, cfg: "ModelConfig") -> nn.Sequential:
    """``cfg.n_blocks`` ResBlock1d with dilations 1, 2, 4, ... (wide context along time)."""
    return nn.Sequential(*[ResBlock1d(channels, cfg.kernel_size, 2 ** (i % 4), cfg.dropout)
                           for i in range(cfg.n_blocks)])


class TraceReading(nn.Module):
    """The classical digitizer's reading, read back from the trace channel: ``(B, T)`` mV.

    Per crop column, the centroid of the trace mark (channel 1, one Gaussian per column, see
    ``ecgnb.panels.trace_crop``; ``power`` > 1 would sharpen the weights) in mV (``top_row_mv``
    at the top row), 0 mV where the column holds less than ``min_mass`` of mark (nothing traced
    there); then linear interpolation from column times (``j * W / T`` samples) to the ``T``
    output samples.
    Fixed, no parameters: with ``ModelConfig.residual`` the decoder adds its output to this.
    """

    def __init__(self, crop: CropConfig, power: float = 1.0, min_mass: float = 0.2):
        super().__init__()
        self.power, self.min_mass = power, min_mass
        mv = top_row_mv(crop)
        rows = torch.linspace(mv, -mv, crop.height)
        self.register_buffer("rows", rows.view(1, -1, 1), persistent=False)
        j = torch.arange(crop.n_samples, dtype=torch.float64) * crop.width / crop.n_samples
        j0 = j.floor().long().clamp(max=crop.width - 1)
        self.register_buffer("j0", j0, persistent=False)
        self.register_buffer("j1", (j0 + 1).clamp(max=crop.width - 1), persistent=False)
        self.register_buffer("frac", (j - j0).clamp(0, 1).float(), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        line = image[:, 1].clamp(min=0.0)                      # (B, H, W)
        w = line ** self.power
        pos = (w * self.rows).sum(1) / w.sum(1).clamp(min=1e-6)  # (B, W) mV
        pos = torch.where(line.sum(1) >= self.min_mass, pos, torch.zeros_like(pos))
        return pos[:, self.j0] * (1 - self.frac) + pos[:, self.j1] * self.frac  # (B, T)


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


class RowAttention(nn.Module):
    """Soft-argmax over rows: where the trace is in each column, at full time resolution.

    ``(B, C, H1, W1)`` features -> per head, a softmax over the H1 rows of each column, and the
    expected row position (+1 top .. -1 bottom of the crop, i.e. +-half_mm) under it ->
    ``(B, heads * r, L)`` with the ``r = W1 / L`` columns of each latent step stacked as channels
    (space-to-depth, so no time detail is averaged away).
    """

    def __init__(self, channels: int, heads: int, height: int, latent_len: int, crop_height: int):
        super().__init__()
        self.logits = nn.Conv2d(channels, heads, 3, padding=1)
        self.latent_len = latent_len
        # Row k of the stage-1 map is centred on crop row 2k (stride-2, 3x3, padding 1).
        centres = 1.0 - 2.0 * (2 * torch.arange(height, dtype=torch.float32)) / (crop_height - 1)
        self.register_buffer("rows", centres.view(1, 1, -1, 1), persistent=False)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(stacked (B, K * r, L), positions (B, K, W1))``, positions in +1 (top) .. -1 units."""
        B, _, H1, W1 = f.shape
        assert H1 == self.rows.shape[2] and W1 % self.latent_len == 0, \
            f"row attention expects height {self.rows.shape[2]} and width a multiple of {self.latent_len}, got {H1}x{W1}"
        att = self.logits(f).softmax(dim=2)                  # (B, K, H1, W1), sums to 1 over rows
        pos = (att * self.rows).sum(dim=2)                   # (B, K, W1) expected row position
        r = W1 // self.latent_len
        stacked = pos.view(B, -1, self.latent_len, r).transpose(2, 3)  # (B, K, r, L)
        return stacked.reshape(B, -1, self.latent_len), pos


class ImageEncoder(nn.Module):
    """Panel crop -> latent sequence: 2-D conv stages collapse the height, keep a time axis.

    ``(B, C, H, W)`` -> stages (each halves H, divides W by its stride) -> a full-height conv that
    reads the remaining rows (where on the strip the ink is = amplitude), joined by the row
    attention's positions after stage 1 (``row_heads``) -> 1-D blocks along time ->
    ``(B, D, L)`` (``(B, 2D, L)``, i.e. mu and logvar, when variational).
    """

    def __init__(self, cfg: ModelConfig, crop: CropConfig):
        super().__init__()
        self.cfg, self.crop = cfg, crop
        self.mv_top = top_row_mv(crop)
        c_in = crop.channels + (1 if cfg.coord_channel else 0)
        stages = []
        for c, sw in zip(cfg.channels, cfg.width_strides):
            stages.append(ConvBlock2d(c_in, c, (2, sw), cfg.dropout))
            c_in = c
        self.stages = nn.Sequential(*stages)
        h_left = crop.height // 2 ** len(cfg.channels)
        self.collapse = nn.Conv2d(c_in, cfg.hidden, (h_left, 1))      # (B, hidden, 1, L)
        self.row_att = None
        if cfg.row_heads > 0:
            w1, latent_len = crop.width // cfg.width_strides[0], cfg.latent_len(crop)
            self.row_att = RowAttention(cfg.channels[0], cfg.row_heads, crop.height // 2,
                                        latent_len, crop.height)
            self.join = nn.Conv1d(cfg.hidden + cfg.row_heads * (w1 // latent_len), cfg.hidden, 1)
        self.temporal = _temporal_stack(cfg.hidden, cfg)
        self.head = nn.Conv1d(cfg.hidden, cfg.latent_dim * (2 if cfg.variational else 1), 1)
        rows = torch.linspace(1.0, -1.0, crop.height).view(1, 1, -1, 1)  # +1 top (positive mV)
        self.register_buffer("rows", rows, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.forward_with_readout(image)[0]

    def forward_with_readout(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(latent (B, D or 2D, L), readout (B, W1) mV or None)``.

        The readout is the first row-attention head's trace position per stage-1 column
        (``W / width_strides[0]`` columns), in mV (``top_row_mv`` at the top row); training may
        supervise it (``TrainConfig.w_readout``) so the encoder learns to find the trace early.
        """
        cfg, crop = self.cfg, self.crop
        assert image.ndim == 4 and image.shape[1:] == (crop.channels, crop.height, crop.width), \
            f"image must be (B, {crop.channels}, {crop.height}, {crop.width}), got {tuple(image.shape)}"
        x = image
        if cfg.coord_channel:
            x = torch.cat([x, self.rows.expand(x.shape[0], 1, -1, x.shape[3])], dim=1)  # (B, 2, H, W)
        f1 = self.stages[0](x)                       # (B, C1, H / 2, W / sw1)
        x = self.stages[1:](f1)                      # (B, C, H / 2**stages, L)
        x = self.collapse(x).squeeze(2)              # (B, hidden, L)
        readout = None
        if self.row_att is not None:
            stacked, pos = self.row_att(f1)
            x = self.join(torch.cat([x, stacked], dim=1))  # (B, hidden, L)
            readout = pos[:, 0] * self.mv_top        # (B, W1) mV
        x = self.temporal(x)                         # (B, hidden, L)
        return self.head(F.gelu(x)), readout         # (B, D or 2D, L)


class SignalEncoder(nn.Module):
    """Signal (mV) -> latent sequence: patchify ``patch`` samples per step, then 1-D blocks.

    ``(B, T)`` -> ``(B, hidden, L)`` -> ``(B, D, L)`` (``(B, 2D, L)`` when variational).
    """

    def __init__(self, cfg: ModelConfig, crop: CropConfig):
        super().__init__()
        self.cfg, self.n_samples = cfg, crop.n_samples
        patch = cfg.patch(crop)
        self.embed = nn.Conv1d(1, cfg.hidden, patch, stride=patch)
        self.temporal = _temporal_stack(cfg.hidden, cfg)
        self.head = nn.Conv1d(cfg.hidden, cfg.latent_dim * (2 if cfg.variational else 1), 1)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        assert signal.ndim == 2 and signal.shape[1] == self.n_samples, \
            f"signal must be (B, {self.n_samples}) mV, got {tuple(signal.shape)}"
        x = self.embed(signal.unsqueeze(1))          # (B, hidden, L)
        x = self.temporal(x)                         # (B, hidden, L)
        return self.head(F.gelu(x))                  # (B, D or 2D, L)


class WaveformDecoder(nn.Module):
    """Latent sequence -> signal (mV): 1-D blocks, then ``patch`` samples per latent step.

    ``(B, D, L)`` -> ``(B, hidden, L)`` -> ``(B, patch, L)`` -> ``(B, T)`` (sub-pixel upsampling).
    """

    def __init__(self, cfg: ModelConfig, crop: CropConfig):
        super().__init__()
        self.cfg, self.latent_len, self.n_samples = cfg, cfg.latent_len(crop), crop.n_samples
        self.embed = nn.Conv1d(cfg.latent_dim, cfg.hidden, 1)
        self.temporal = _temporal_stack(cfg.hidden, cfg)
        self.out = nn.Conv1d(cfg.hidden, cfg.patch(crop), 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        assert z.ndim == 3 and z.shape[1:] == (cfg.latent_dim, self.latent_len), \
            f"latent must be (B, {cfg.latent_dim}, {self.latent_len}), got {tuple(z.shape)}"
        x = self.temporal(self.embed(z))             # (B, hidden, L)
        x = self.out(F.gelu(x))                      # (B, patch, L)
        return x.transpose(1, 2).reshape(z.shape[0], self.n_samples)  # (B, T): step-major


# --------------------------------------------------------------------------------------------
# The whole model
# --------------------------------------------------------------------------------------------

class MultimodalECG(nn.Module):
    """Image encoder + signal encoder -> shared latent -> waveform decoder.

    ``cfg`` is the architecture, ``crop`` the crops it reads (every input and output size comes
    from it). With ``cfg.residual`` and two-channel crops the shared latent encodes the
    *correction* to the classical reading (``TraceReading`` of the image): the image path outputs
    reading + decoded correction, and the signal encoder sees the signal minus that reading (what
    the classical digitizer missed). ``self.cfg`` is ``cfg.resolved(crop)``, what was built
    (residual off on ink-only crops); checkpoints store it beside ``crop``.
    """

    def __init__(self, cfg: ModelConfig, crop: CropConfig):
        super().__init__()
        cfg.validate(crop)
        self.cfg, self.crop = cfg.resolved(crop), crop
        cfg = self.cfg
        self.image_encoder = ImageEncoder(cfg, crop)
        self.signal_encoder = SignalEncoder(cfg, crop) if cfg.signal_encoder else None
        self.decoder = WaveformDecoder(cfg, crop)
        self.reading = TraceReading(crop) if cfg.residual else None
        if cfg.residual:   # start exactly at the classical reading: a zero correction
            nn.init.zeros_(self.decoder.out.weight)
            nn.init.zeros_(self.decoder.out.bias)

    def base(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` mV the decoder's output is added to: the classical reading, or 0."""
        if self.reading is None:
            return image.new_zeros(image.shape[0], self.crop.n_samples)
        return self.reading(image)

    def _latent(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(z, mu, logvar)`` from an encoder output; z is sampled only when variational and training."""
        if not self.cfg.variational:
            return h, h, None
        mu, logvar = h.chunk(2, dim=1)               # (B, D, L) each
        logvar = logvar.clamp(-10.0, 10.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return z, mu, logvar

    def encode_image(self, image: torch.Tensor):
        """``(B, C, H, W)`` crops -> ``(z, mu, logvar)``, each ``(B, D, L)`` (logvar None unless variational)."""
        return self._latent(self.image_encoder(image))

    def encode_signal(self, signal: torch.Tensor):
        """``(B, T)`` mV -> ``(z, mu, logvar)``, each ``(B, D, L)``."""
        assert self.signal_encoder is not None, "this model has no signal encoder (image-only config)"
        return self._latent(self.signal_encoder(signal))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, D, L)`` -> ``(B, T)`` mV."""
        return self.decoder(z)

    def forward(self, image: torch.Tensor, signal: torch.Tensor | None = None) -> dict:
        """Reconstruct from the image and, when ``signal`` is given, from the signal.

        Returns ``recon_image`` ``(B, T)``, ``z_image``/``mu_image``/``logvar_image``
        ``(B, D, L)`` and, with a signal (and a signal encoder), the same ``*_signal`` keys.
        The image outputs never depend on ``signal``.
        """
        h, readout = self.image_encoder.forward_with_readout(image)
        z, mu, logvar = self._latent(h)
        base = self.base(image)                                  # (B, T) mV
        out = {"recon_image": base + self.decode(z), "z_image": z, "mu_image": mu,
               "logvar_image": logvar, "readout_image": readout, "base": base}
        if signal is not None and self.signal_encoder is not None:
            assert signal.shape == base.shape, \
                f"signal must be (B, {self.crop.n_samples}) mV with the image's batch " \
                f"{image.shape[0]}, got {tuple(signal.shape)}"
            zs, mus, logvars = self.encode_signal(signal - base)
            out.update(recon_signal=base + self.decode(zs), z_signal=zs, mu_signal=mus,
                       logvar_signal=logvars)
        return out

    @torch.no_grad()
    def reconstruct_signal(self, image: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        """The signal autoencoder's output ``(B, T)`` mV (latent mean); ``image`` gives the reading
        a residual model encodes the signal against. A training diagnostic, not inference."""
        base = self.base(image)
        return base + self.decode(self.encode_signal(signal - base)[1])

    @torch.no_grad()
    def predict(self, image_batch: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Inference from images only: ``(B, C, H, W)`` -> ``(B, T)`` mV (latent mean, no sampling)."""
        was = self.training
        self.eval()
        try:
            dev = next(self.parameters()).device
            outs = []
            for i in range(0, image_batch.shape[0], batch_size):
                x = image_batch[i:i + batch_size].to(dev)
                outs.append((self.base(x) + self.decode(self.encode_image(x)[1])).cpu())
        finally:
            self.train(was)
        return torch.cat(outs) if outs else torch.zeros(0, self.crop.n_samples)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per part (``image_encoder``, ``signal_encoder``, ``decoder``) and ``total``."""
    m = getattr(model, "module", model)          # unwrap DDP
    parts = {name: sum(p.numel() for p in child.parameters() if p.requires_grad)
             for name, child in m.named_children() if name != "reading"}   # reading: fixed, none
    parts.setdefault("signal_encoder", 0)
    parts["total"] = sum(p.numel() for p in m.parameters() if p.requires_grad)
    return parts


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------

def shape_table(model: "MultimodalECG", image: torch.Tensor, signal: torch.Tensor):
    """Tensor shapes through each part for one batch: a DataFrame (part, input, output)."""
    import pandas as pd

    rows = []
    hooks = [module.register_forward_hook(
        lambda m, inp, out, name=name: rows.append(
            {"part": name, "input": tuple(inp[0].shape),
             "output": tuple((out[0] if isinstance(out, tuple) else out).shape)}))
        for name, module in model.named_children() if module is not None]
    try:
        with torch.no_grad():
            model.eval()(image, signal)
    finally:
        for h in hooks:
            h.remove()
    return pd.DataFrame(rows)


def publish_checkpoint(source: str | Path, target: str | Path = DEFAULT_CHECKPOINT) -> Path:
    """Copy the weights, configs and scores of ``source`` (no optimiser state) to ``target``.

    The published file is what ``digitize --method model`` loads; dropping the optimiser keeps
    it small enough to commit.
    """
    import os
    import tempfile

    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    keep = {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng")}
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt.", dir=target.parent)
    os.close(fd)
    torch.save(keep, tmp)
    os.chmod(tmp, 0o644)          # mkstemp makes it owner-only; a published model is for everyone
    os.replace(tmp, target)
    return target


def load_model(checkpoint: str | Path | None = None, device: str = "cpu"
               ) -> tuple[MultimodalECG, dict]:
    """``(model in eval mode, checkpoint dict)`` from a ``ecgnb.train`` checkpoint.

    ``checkpoint`` defaults to ``DEFAULT_CHECKPOINT``; a clear ``MissingInputError`` says how to
    make one. Loaded with ``weights_only=True`` (checkpoints hold only tensors and plain types).
    The model is built from the checkpoint's ``model_cfg`` (architecture) and its crop
    (``checkpoint_crop``), so checkpoints whose ``model_cfg`` still restates the geometry load too.
    """
    path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    if not path.exists():
        how = ("benchmarks/train_trace_model.py --publish" if path == TRACE_MODEL_CHECKPOINT else
               "notebook 04_training (`python -m ecgnb study --only 01 02 03 04`)")
        raise MissingInputError(
            f"model checkpoint {path} not found: train and publish one with {how}, "
            "or pass checkpoint=...")
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model = MultimodalECG(ModelConfig.from_dict(ckpt["model_cfg"]), checkpoint_crop(ckpt)).to(device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def checkpoint_crop(ckpt: dict) -> CropConfig:
    """The ``CropConfig`` a checkpoint was trained on.

    Its ``crop``; a checkpoint saved without one (trained on bare arrays, or before crops were
    stored) gets the crop its old-style ``model_cfg`` restated (rows, columns, samples, channels,
    mV at the top row; the rest default), else ``CropConfig()``.
    """
    if ckpt.get("crop"):
        return CropConfig.from_dict(ckpt["crop"])
    m = ckpt.get("model_cfg", {})
    if "crop_height" not in m:
        return CropConfig()
    d = CropConfig()
    window_s = m["out_samples"] / d.fs
    return CropConfig(height=m["crop_height"], half_mm=m.get("readout_mv", 2.4) * d.gain_mm_mv,
                      cols_per_s=int(round(m["crop_width"] / window_s)), window_s=window_s,
                      trace_channel=m.get("in_channels", 1) == 2)


# --------------------------------------------------------------------------------------------
# Inference on pages: the digitizer behind the one interface
# --------------------------------------------------------------------------------------------

def place_crops(crops: list, outputs: np.ndarray, crop_fs: float, fs: float, n: int) -> np.ndarray:
    """Assemble per-crop outputs ``(N, T)`` mV (at ``crop_fs``) into a ``(n, 12)`` page signal at ``fs``.

    Rhythm-strip windows go first and own their samples; short panels fill only what is still
    NaN (as the classical digitizer does).
    """
    signal = np.full((n, len(LEAD_NAMES)), np.nan)
    order = sorted(range(len(crops)), key=lambda i: not crops[i].rhythm)
    for i in order:
        c, y = crops[i], outputs[i]
        t = c.t0_s + np.arange(y.size) / crop_fs                       # (T,) s
        s0, s1 = int(np.ceil(c.t0_s * fs - 1e-9)), int(np.ceil(c.t1_s * fs - 1e-9))
        idx = np.arange(max(0, s0), min(n, s1))
        vals = y[idx - s0] if fs == crop_fs else np.interp(idx / fs, t, y)
        col = signal[:, LEAD_INDEX[c.lead]]
        free = np.isnan(col[idx])
        col[idx[free]] = vals[free]
    return signal


class CropModelDigitizer:
    """The crop model behind the one interface (``ecgnb.reading.Digitizer``).

    The model is loaded once, here: from ``checkpoint`` (default ``DEFAULT_CHECKPOINT``; a clear
    ``MissingInputError`` when absent) unless ``model`` is given. The crops are cut with the
    model's ``CropConfig``; ``crop_cfg`` may replace it by one of the same geometry (another blur).
    """

    name = "crop_model"

    def __init__(self, checkpoint: str | Path | None = None, model: MultimodalECG | None = None,
                 crop_cfg: CropConfig | None = None):
        self.model = model if model is not None else load_model(checkpoint)[0]
        self.crop_cfg = crop_cfg or self.model.crop
        c, m = self.crop_cfg, self.model.crop
        if (c.channels, c.height, c.width, c.n_samples, top_row_mv(c)) != \
                (m.channels, m.height, m.width, m.n_samples, top_row_mv(m)):
            # A setting the caller passed, not a bug: say so as a ValueError, not an assert
            # (which python -O would skip).
            raise ValueError(f"crop geometry {c} does not match the model's {m}; pass the "
                             "checkpoint's own crop settings or none")

    def read(self, image: np.ndarray, options: ReadOptions = ReadOptions()) -> Reading:
        """Digitize one RGB page ``(H, W, 3)`` uint8: ``(round(fs * duration_s), 12)`` mV.

        Crops every panel (``ecgnb.panels``: the layout the crop front finds, classical or the
        trace network's), runs ``model.predict`` on them (image only) and places each output at
        its lead and time span (``read_analysis``).
        """
        from .panels import analyse_for

        return self.read_analysis(analyse_for(image, options.layout, options.duration_s, self.crop_cfg),
                                  options)

    def read_analysis(self, analysis, options: ReadOptions = ReadOptions()) -> Reading:
        """The model's reading of a page the front has analysed (``ecgnb.panels.PageAnalysis``,
        made with this model's crop settings): ``traces`` are the outputs drawn back on the
        upright page; ``extra`` holds ``n_crops`` and the front's own diagnostics."""
        from .panels import crops_from_layout

        crop_cfg, fs = self.crop_cfg, float(options.fs)
        crops = crops_from_layout(analysis, crop_cfg)
        x = np.zeros((0, crop_cfg.channels, crop_cfg.height, crop_cfg.width), np.float32)
        if crops:
            x = np.stack([c.crop if c.crop.ndim == 3 else c.crop[None] for c in crops])  # (N, C, H, W)
        y = self.model.predict(torch.from_numpy(x.astype(np.float32))).numpy()           # (N, T) mV
        signal = place_crops(crops, y, crop_cfg.fs, fs, int(round(fs * options.duration_s)))
        front = analysis.classical
        extra = {"n_crops": len(crops), "front": crop_cfg.front}
        if crop_cfg.front != "classical" and front is not None:   # e.g. page_turn_deg, geometry
            extra = {**front.extra, **extra}
        return Reading(signal=signal, fs=fs, lead_names=LEAD_NAMES, method=self.name,
                       skew_deg=analysis.skew_deg, grid=analysis.grid, layout=analysis.layout,
                       upright=analysis.upright,
                       traces={i: output_trace(c, y[i], crop_cfg) for i, c in enumerate(crops)},
                       notes=list(front.notes) if front is not None else [],
                       extra=extra)


class TraceModelDigitizer(CropModelDigitizer):
    """The multimodal model on the trace network's front: the crops are the network's trace
    probability and its reader's trace (``CropConfig.front = "trace_net"``), read by the model
    of ``TRACE_MODEL_CHECKPOINT`` unless another ``checkpoint`` is given."""

    name = "trace_model"

    def __init__(self, checkpoint: str | Path | None = None, model: MultimodalECG | None = None,
                 crop_cfg: CropConfig | None = None):
        super().__init__(TRACE_MODEL_CHECKPOINT if checkpoint is None and model is None else checkpoint,
                         model, crop_cfg)


def digitize_image(image: np.ndarray, layout: str = "3x4+1", fs: float = 500,
                   model: MultimodalECG | None = None, checkpoint: str | Path | None = None,
                   duration_s: float = 10.0, crop_cfg: CropConfig | None = None) -> Reading:
    """One page with the crop model (``CropModelDigitizer``; make one of those to read many)."""
    return CropModelDigitizer(checkpoint, model, crop_cfg).read(image, ReadOptions(layout, fs, duration_s))


def output_trace(crop, mv: np.ndarray, crop_cfg) -> np.ndarray:
    """``(T, 2)`` x, y px on the upright page where the printed trace of output ``mv`` would lie."""
    t = np.arange(mv.size) / crop_cfg.fs                                  # (T,) s from crop.t0_s
    x = crop.x0 + t * (crop.x1 - crop.x0) / (crop.t1_s - crop.t0_s)
    y = crop.baseline_y + crop.slope * (x - crop.x0) - mv * crop_cfg.gain_mm_mv * crop.px_per_mm_y
    return np.stack([x, y], axis=1)
