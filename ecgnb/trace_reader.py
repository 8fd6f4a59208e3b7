"""The trace-network digitizer: the classical geometry, the trace ink from ``ecgnb.trace_net``.

The page is made upright as the classical digitizer does (``geometry="straighten"``: deskew and
the grid's own perspective) or flattened as the rectified method does (``"flatten"``: photos
and bent paper); ``"auto"`` (the default) flattens only where a page outline stands out against
a background (a photo), and straightens scans and renders that fill the frame, unless the
straightened page shows no grid to the colour rules (a black-grid copy), which is then
flattened, its lattice giving the scale. Then, instead of telling trace from grid by colour, the trace network's
probability gives the ink mask (above ``TraceNetConfig.threshold``) and each pixel's ink
coverage, from which the classical reader's column-by-column path and its sub-pixel centres
and edges are read (``ecgnb.digitize``). Layout, 0 mV lines and time axes come from that mask.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import preprocess as pp
from .config import RectifyConfig
from .digitize import digitize_straightened
from .io import check_rgb
from .reading import Reading, ReadOptions
from .rectified import RectifiedDigitizer
from .rectify import find_page
from .trace_net import inference_copy, load_trace_net, trace_probability

GEOMETRIES = ("auto", "straighten", "flatten")


class TraceNetDigitizer(RectifiedDigitizer):
    """Reads a page with the per-pixel trace network's ink (see the module docstring)."""

    name = "trace_net"

    def __init__(self, checkpoint: str | Path | None = None, geometry: str = "auto",
                 rectify: RectifyConfig | None = None, threads: int | None = None):
        if geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {geometry!r}; known: {', '.join(GEOMETRIES)}")
        super().__init__(rectify)
        model, self.net_cfg = load_trace_net(checkpoint)
        self.model = inference_copy(model)
        self.geometry, self.threads = geometry, threads
        self._last: tuple | None = None   # ((id, shape) of the page, its probability)

    def probability(self, upright: np.ndarray) -> np.ndarray:
        """``(H, W)`` trace probability of an upright page (kept for the page last asked)."""
        if self._last is None or self._last[0] != (id(upright), upright.shape):
            if self.threads:
                torch.set_num_threads(self.threads)
            self._last = ((id(upright), upright.shape), trace_probability(self.model, upright, self.net_cfg))
        return self._last[1]

    def ink_hooks(self) -> tuple:
        threshold = self.net_cfg.threshold

        def ink_mask(upright, dark, grid):
            return self.probability(upright) > threshold

        def coverage(upright, dark, mask):
            return self.probability(upright)

        return ink_mask, coverage

    def read_as_given(self, image: np.ndarray, options: ReadOptions) -> Reading:
        """The classical deskew and perspective, then the network's ink."""
        upright, skew, dark = pp.straighten(image, cfg=options.preprocess, paper=options.paper)
        ink_mask, coverage = self.ink_hooks()
        return digitize_straightened(upright, skew, dark, options.layout, options.fs,
                                     options.duration_s, options.paper, options.preprocess,
                                     ink_mask=ink_mask, coverage=coverage)

    def _straightened(self, image: np.ndarray, options: ReadOptions) -> Reading | Exception:
        """The straightened reading; where the colour rules found no grid (a black-grid copy:
        no scale, so the page may be refused) and ``geometry="auto"``, the refusal or the
        gridless reading is returned as an exception, for the flattening (whose lattice gives
        the scale) to try instead."""
        try:
            reading = self.read_as_given(image, options)
        except ValueError as exc:               # EcgnbError refusals are ValueErrors
            if self.geometry != "auto":
                raise
            return exc
        if self.geometry == "auto" and not reading.grid.found:
            return ValueError("no grid found on the straightened page")
        return reading

    def read(self, image: np.ndarray, options: ReadOptions = ReadOptions()) -> Reading:
        """Digitize one RGB page ``(H, W, 3)`` uint8: ``(round(fs * duration_s), 12)`` mV."""
        check_rgb(image)
        try:
            geometry = self.geometry
            if geometry == "auto":
                geometry = "flatten" if find_page(image, self.cfg) is not None else "straighten"
            if geometry == "flatten":
                reading = super().read(image, options)
            else:
                reading = self._straightened(image, options)
                if isinstance(reading, Exception):
                    geometry, reading = "flatten", super().read(image, options)
        finally:
            self._last = None          # a page's probability is not kept past its reading
        reading.method = self.name
        reading.extra["geometry"] = geometry
        return reading
