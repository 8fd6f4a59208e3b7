"""Classical page preprocessing, the public entry: load, straighten, grid, trace mask, layout.

The steps in order, and where each lives:

1. ``load_image`` (here): read an RGB page and refuse one too small to be an ECG page.
2. ``straighten`` (``ecgnb.straighten``): ``deskew`` (``estimate_skew``, ``rotate``), then the
   grid's ``perspective_map``, applied as one resampling; also returns ``darkness(upright)``.
3. ``detect_grid`` (``ecgnb.grid``): px/mm along x and y, line colour and confidence from the
   grid's own periodicity (``grid_strength``, ``grid_period``).
4. ``remove_grid`` then ``denoise`` (``ecgnb.grid``): the trace mask, by relative darkness in
   every channel (``darkness``, ``channel_min``), without specks and page edges.
5. ``detect_layout`` (``ecgnb.layout_detect``): rows, time axis, calibration pulses
   (``detect_calibration``), each row's slope (``row_slope``) and one ``PanelBox`` per panel.

Conventions: ``image`` is ``(H, W, 3)`` uint8 RGB; masks are ``(H, W)`` bool (True = trace ink);
angles are degrees, counter-clockwise positive (as ``cv2.getRotationMatrix2D``); lengths are px
unless a name says ``_mm``. Every threshold is a field of ``ecgnb.config.PreprocessConfig``
(``cfg=None``: the defaults; saved with a profile as ``Profile.preprocess``); what the paper is
(25 mm/s, 10 mm/mV, 5 mm major grid) comes from ``ecgnb.config.PaperConfig`` (``paper=``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import PaperConfig, PreprocessConfig
from .errors import ImageError
from .grid import (GridInfo, channel_max, channel_min, darkness, denoise, detect_grid,
                   grid_period, grid_strength, remove_grid)
from .io import read_image
from .layout_detect import (LayoutInfo, PanelBox, RowInfo, detect_calibration, detect_layout,
                            row_candidates, row_slope)
from .straighten import deskew, estimate_skew, perspective_map, rotate, straighten

__all__ = [
    "load_image", "PaperConfig", "PreprocessConfig",
    "estimate_skew", "rotate", "deskew", "perspective_map", "straighten",
    "darkness", "channel_min", "channel_max", "grid_strength", "grid_period", "GridInfo",
    "detect_grid", "remove_grid", "denoise",
    "RowInfo", "PanelBox", "LayoutInfo", "row_candidates", "detect_calibration", "row_slope",
    "detect_layout",
]



def load_image(path: str | Path, *, cfg: PreprocessConfig | None = None) -> np.ndarray:
    """Read ``path`` as an RGB ``(H, W, 3)`` uint8 image (``ecgnb.io.read_image``) fit for
    preprocessing.

    Raises ``MissingInputError`` if it does not exist and ``ImageError`` if it is corrupt,
    not an image, or too small to hold an ECG page (under ``cfg.min_page_px``, 200 px, on a side).
    """
    cfg = PreprocessConfig() if cfg is None else cfg
    image = read_image(Path(path))
    if min(image.shape[:2]) < cfg.min_page_px:
        raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]} px is too small for an ECG "
                         "page; scan at 100 dpi or more")
    return image
