"""The per-pixel trace network: page pixels -> probability that each pixel is trace ink.

A compact U-Net (``TraceUNet``), fully convolutional, run on the whole page at its own
resolution (200 dpi, ~7.9 px/mm in both directions: no downsampling before it). It learns what
the colour rules of ``ecgnb.grid`` cannot: a trace from grid lines of the same colour (black and
white copies, grey or dim grids), from printed text and from handwriting. Its target
is the pen's exact coverage of each pixel (``trace_coverage``; or its 0/1 footprint,
``trace_target``), drawn from the renderer's truth: every lead's trace, the calibration pulses
and the separator ticks, not the labels or header.

Training is ``ecgnb.trace_train``; the digitizer that reads a page with it is
``ecgnb.trace_reader``. Checkpoints hold the network's ``TraceNetConfig``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from . import paths
from .config import TraceNetConfig, TRACE_NET_PRESETS
from .errors import MissingInputError
from .augment import _warp_points
from .render import CAL_LEAD_MM, TICK_HALF_MM, _to_fixed as _fixed, _SHIFT

DEFAULT_CHECKPOINT = paths.ROOT / "models" / "trace_net.pt"


# --------------------------------------------------------------------------------------------
# The target: where the pen touched the page
# --------------------------------------------------------------------------------------------

def pen_px(truth: dict) -> int:
    """Drawn pen width (px) of a rendered page: its style's trace width, else 0.25 mm."""
    width_mm = (truth.get("style") or {}).get("trace_width_mm") or 0.25
    return max(1, int(round(width_mm * truth["px_per_mm"])))


def trace_polylines(truth: dict) -> list[np.ndarray]:
    """Float px ``(n, 2)`` polylines of all trace ink on a rendered page (after augmentation).

    The leads' traces come from the truth as drawn; the calibration pulses are rebuilt from
    their boxes (1 mV high, 1 mm of flat line either side) and the separator ticks from the
    clean page positions moved by the page's homography, as ``ecgnb.render`` draws them.
    """
    ppm = truth["px_per_mm"]
    lines = [np.asarray(p["trace"], float) for p in truth["panels"] if len(p["trace"]) > 1]
    for c in truth.get("calibration", []):
        x0, top, x1, base = c["bbox"]
        lead = CAL_LEAD_MM * ppm
        lines.append(np.array([[x0 - lead, base], [x0, base], [x0, top], [x1, top], [x1, base],
                               [x1 + lead, base]]))
    h = np.asarray(truth.get("artefacts", {}).get("homography", np.eye(3)), float)
    half = TICK_HALF_MM * ppm
    for p in truth["panels"]:
        if p["col"] > 0:
            x, base = p["x_start"], p["baseline_y"]
            lines.append(_warp_points(np.array([[x, base - half], [x, base + half]]), h))
    return lines


def trace_target(truth: dict, shape: tuple[int, int] | None = None) -> np.ndarray:
    """``(H, W)`` uint8, 1 where the pen drew trace ink on the page of ``truth``, else 0."""
    h, w = shape or tuple(truth["image_size"])
    out = np.zeros((h, w), np.uint8)
    cv2.polylines(out, [_fixed(p) for p in trace_polylines(truth)], False, 1, pen_px(truth),
                  cv2.LINE_8, _SHIFT)
    return out


def trace_coverage(truth: dict, shape: tuple[int, int] | None = None) -> np.ndarray:
    """``(H, W)`` uint8, the share of each pixel the pen covered on the page of ``truth``, in
    1/255: the trace drawn anti-aliased with the renderer's own pen, so a pixel half under the
    pen's edge is ~128. Its sub-pixel edges are what a reader needs to place a flat stretch
    to a fraction of a pixel; the 0/1 footprint of ``trace_target`` only to the nearest pixel."""
    h, w = shape or tuple(truth["image_size"])
    out = np.zeros((h, w), np.uint8)
    cv2.polylines(out, [_fixed(p) for p in trace_polylines(truth)], False, 255, pen_px(truth),
                  cv2.LINE_AA, _SHIFT)
    return out


def coverage_from_probability(prob: np.ndarray, cfg: TraceNetConfig) -> np.ndarray:
    """The pen's coverage (0..1) of each pixel, from a network's ``prob``.

    A network trained on coverage (``cfg.soft_target``) with trace pixels weighted by
    ``w = cfg.pos_weight`` in its BCE learns ``p = w c / (w c + 1 - c)`` for a pixel of
    coverage ``c``; this undoes that. A network trained on the 0/1 footprint gives its
    probability as it is.
    """
    if not cfg.soft_target:
        return prob
    w = cfg.pos_weight
    return (prob / np.maximum(w - (w - 1.0) * prob, 1e-6)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------

class ConvBlock(nn.Module):
    """``n`` convolutions (``kernel`` x ``kernel``), each with batch norm and ReLU."""

    def __init__(self, c_in: int, c_out: int, n: int = 2, kernel: int = 3):
        super().__init__()
        layers = []
        for k in range(n):
            layers += [nn.Conv2d(c_in if k == 0 else c_out, c_out, kernel, padding=kernel // 2, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class TraceUNet(nn.Module):
    """``(B, 3, H, W)`` RGB in 0..1 -> ``(B, 1, H, W)`` trace logits; H, W multiples of ``stride``.

    Encoder levels at strides 1, 2, 4, ... with ``widths`` channels (two convolutions each,
    max-pooling between them), a decoder that upsamples bilinearly and joins each level's skip. The deepest level sees
    ~20 mm of page at 200 dpi: enough to tell a straight grid line from a trace's flat stretch.
    """

    def __init__(self, widths: tuple[int, ...] = TraceNetConfig().widths):
        super().__init__()
        self.widths = tuple(widths)
        self.down = nn.ModuleList()
        c = 3
        for w in widths:
            self.down.append(ConvBlock(c, w))
            c = w
        # One convolution per decoder level, and only a 1x1 one at full resolution: most of
        # the compute is at the finest levels, and the encoder's full-resolution features
        # already hold the pen's edges.
        self.up = nn.ModuleList(ConvBlock(widths[i + 1] + widths[i], widths[i], n=1, kernel=1 if i == 0 else 3)
                                for i in range(len(widths) - 1))
        self.head = nn.Conv2d(widths[0], 1, 1)

    @property
    def stride(self) -> int:
        return 2 ** (len(self.widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in reversed(self.up):
            skip = skips.pop()
            x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def to_input(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 ``(H, W, 3)`` (or a batch ``(B, H, W, 3)``) -> float ``(B, 3, H, W)`` in 0..1."""
    a = torch.from_numpy(np.ascontiguousarray(image)).float().div_(255.0)
    a = a[None] if a.ndim == 3 else a
    return a.permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------------------------
# Inference on a whole page
# --------------------------------------------------------------------------------------------

def _spans(n: int, tile: int, overlap: int, stride: int) -> list[tuple[int, int, int, int]]:
    """Tiles along one axis: ``(read_from, read_to, keep_from, keep_to)`` px."""
    if n <= tile:
        return [(0, n, 0, n)]
    step = tile - 2 * overlap
    out, start, kept = [], 0, 0
    while True:
        a = min(start, n - tile)       # the last tile is moved back to end at the edge
        b = a + tile
        keep_b = n if b == n else b - overlap
        out.append((a, b, kept, keep_b))   # each tile keeps on from where the last one stopped
        if b == n:
            return out
        start, kept = start + step, keep_b


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``conv`` followed by ``bn`` in eval mode, as one convolution."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return ((conv.weight * scale[:, None, None, None]).detach().contiguous(),
            (bn.bias - bn.running_mean * scale).detach())


def _conv1x1(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 convolution as a product over the channels of a channels-last ``x``: oneDNN
    sends 1x1 convolutions of a few channels to a slow generic path."""
    return nn.functional.linear(x.permute(0, 2, 3, 1), w[:, :, 0, 0], b).permute(0, 3, 1, 2)


def _upsample(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return nn.functional.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class InferenceUNet(nn.Module):
    """A trained ``TraceUNet`` for reading pages, with the same logits to ~1e-6: batch norm
    folded into the convolutions (its input channels-last, see ``trace_probability``), and a
    decoder that never concatenates. A decoder convolution of ``cat(up(x), skip)`` is the sum
    of one convolution of ``up(x)`` and one of ``skip``; at full resolution, where it is 1x1, the
    first is taken before the upsampling (a channel mix commutes with a bilinear resize, whose
    weights sum to 1), so half as many channels are upsampled there."""

    def __init__(self, model: TraceUNet):
        super().__init__()
        self.stride = model.stride
        self.down = [[_folded(layers[k], layers[k + 1]) for k in range(0, len(layers), 3)]
                     for layers in (list(block.body) for block in model.down)]
        self.up = []
        for i, block in enumerate(model.up):
            w, b = _folded(*list(block.body)[:2])
            c_up = model.widths[i + 1]
            self.up.append((w[:, :c_up].contiguous(), w[:, c_up:].contiguous(), b))
        self.head = (model.head.weight.detach(), model.head.bias.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = nn.functional.conv2d
        skips = []
        for i, convs in enumerate(self.down):
            x = x if i == 0 else nn.functional.max_pool2d(x, 2)
            for w, b in convs:
                x = nn.functional.relu_(conv(x, w, b, padding=w.shape[-1] // 2))
            skips.append(x)
        x = skips.pop()
        for w_up, w_skip, b in reversed(self.up):
            skip = skips.pop()
            if w_up.shape[-1] == 1:
                x = _upsample(_conv1x1(x, w_up, b), skip).add_(_conv1x1(skip, w_skip))
            else:
                pad = w_up.shape[-1] // 2
                x = conv(_upsample(x, skip), w_up, b, padding=pad).add_(conv(skip, w_skip, padding=pad))
            x = nn.functional.relu_(x)
        return _conv1x1(x, *self.head)


def inference_copy(model: TraceUNet) -> InferenceUNet:
    """The network for reading pages (``InferenceUNet``): the same output as ``model`` in eval
    mode to ~1e-6, in less time on a CPU (``benchmarks/bench_digitize.py``)."""
    return InferenceUNet(model.eval())


@torch.inference_mode()
def trace_probability(model: nn.Module, image: np.ndarray, cfg: TraceNetConfig = TraceNetConfig()
                      ) -> np.ndarray:
    """``(H, W)`` float32 probability (0..1) that each pixel of RGB ``image`` is trace ink.

    ``model`` is a ``TraceUNet`` or its ``inference_copy``. Tiles of ``cfg.tile_px`` overlapping
    by ``cfg.tile_overlap_px`` bound the memory; each tile is padded (by reflection) to a
    multiple of the network's stride and only its inner part kept.
    """
    model.eval()
    h, w = image.shape[:2]
    out = np.zeros((h, w), np.float32)
    s = model.stride
    for ya, yb, ka, kb in _spans(h, cfg.tile_px, cfg.tile_overlap_px, s):
        for xa, xb, la, lb in _spans(w, cfg.tile_px, cfg.tile_overlap_px, s):
            tile = image[ya:yb, xa:xb]
            ph, pw = (-tile.shape[0]) % s, (-tile.shape[1]) % s
            if ph or pw:
                tile = cv2.copyMakeBorder(tile, 0, ph, 0, pw, cv2.BORDER_REFLECT)
            x = to_input(tile).contiguous(memory_format=torch.channels_last)
            logit = model(x)[0, 0, :yb - ya, :xb - xa]
            prob = torch.sigmoid(logit).numpy()
            out[ka:kb, la:lb] = prob[ka - ya:kb - ya, la - xa:lb - xa]
    return out


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------

def make_model(cfg: TraceNetConfig) -> TraceUNet:
    return TraceUNet(cfg.widths)


def load_trace_net(checkpoint: str | Path | None = None) -> tuple[TraceUNet, TraceNetConfig]:
    """The network of a checkpoint (``models/trace_net.pt`` by default) and its settings."""
    path = Path(checkpoint or DEFAULT_CHECKPOINT)
    if not path.exists():
        raise MissingInputError(f"trace network checkpoint {path} not found: train one with "
                                "`python benchmarks/train_trace_net.py` (or pass checkpoint=)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    fields = dict(ckpt["config"])
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    fields.setdefault("soft_target", False)     # checkpoints older than the field learnt the footprint
    fields.setdefault("fade_trace", 0.0)        # ... and never saw a faded trace or a dark band
    fields.setdefault("band_p", 0.0)
    cfg = TraceNetConfig(**fields)
    model = make_model(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, cfg


def preset(name: str) -> TraceNetConfig:
    """A named training size (``TRACE_NET_PRESETS``); ``ValueError`` for an unknown one."""
    if name not in TRACE_NET_PRESETS:
        raise ValueError(f"unknown trace network preset {name!r}; known: {', '.join(TRACE_NET_PRESETS)}")
    return TRACE_NET_PRESETS[name]
