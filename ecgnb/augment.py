"""Scan and paper artefacts for rendered ECG pages, with one ``severity`` knob.

``augment_page(image, truth, severity, rng)`` applies every artefact kind (or the ``kinds`` asked
for) in a fixed, physically ordered sequence: first what happens to the paper (tint, stains,
handwriting, creases), then the scan (placement on the glass, illumination, margins, optics, sensor,
file format). ``severity`` 0 returns an unchanged copy; 1 is a strong but still readable scan.
Each kind's strength is ``severity`` times a random factor in ``[0.6, 1]``.

Geometric kinds (``perspective``, ``margin``) move every truth coordinate with the page:
panel ``trace`` points and ``bbox``es, calibration and header ``bbox``es (a bbox becomes the bbox
of its warped corners). Clean-page reference values (``baseline_y``, ``x_start``, ``grid``) are
left as they were; ``truth["artefacts"]["homography"]`` is the 3x3 matrix (row-major list) that
maps clean-page px to augmented px, so they can be mapped too. Output images keep the input size;
points that leave the image keep their (outside) coordinates.

``truth["artefacts"]`` after augmentation::

    {"severity": float, "kinds": [applied kind names, in order],
     "homography": [[3 floats] x 3],
     <kind>: {its parameters}, ...}
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import cv2
import numpy as np

from ecgnb.errors import ImageError

# --- helpers -------------------------------------------------------------------------------------
def _strength(severity: float, rng: np.random.Generator) -> float:
    """Random strength of one kind: ``severity`` scaled by a factor in ``[0.6, 1]``."""
    return float(severity * rng.uniform(0.6, 1.0))


def _warp_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to float px points ``(n, 2)``."""
    hom = np.column_stack((points, np.ones(len(points)))) @ matrix.T
    return hom[:, :2] / hom[:, 2:3]


def _warp_box(box: list[float], matrix: np.ndarray) -> list[float]:
    """bbox ``[x0, y0, x1, y1]`` px of the four warped corners of ``box``."""
    x0, y0, x1, y1 = box
    pts = _warp_points(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float), matrix)
    return [float(pts[:, 0].min()), float(pts[:, 1].min()),
            float(pts[:, 0].max()), float(pts[:, 1].max())]


def _transform_truth(truth: dict, matrix: np.ndarray) -> None:
    """Move every post-augmentation coordinate of ``truth`` by ``matrix`` (in place)."""
    for p in truth["panels"]:
        if p["trace"]:
            p["trace"] = _warp_points(np.asarray(p["trace"], float), matrix).tolist()
        p["bbox"] = _warp_box(p["bbox"], matrix)
    for c in truth["calibration"]:
        c["bbox"] = _warp_box(c["bbox"], matrix)
    if truth.get("header", {}).get("bbox"):
        truth["header"]["bbox"] = _warp_box(truth["header"]["bbox"], matrix)
    art = truth["artefacts"]
    art["homography"] = (matrix @ np.asarray(art["homography"], float)).tolist()


def _multiply(image: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``image * gain`` (gain ``(H, W)`` float32), rounded and saturated back to uint8."""
    gain3 = cv2.merge([gain, gain, gain])
    return cv2.convertScaleAbs(cv2.multiply(image.astype(np.float32), gain3))


def _bezier(p: np.ndarray, n: int = 24) -> np.ndarray:
    """``n`` points of the cubic Bezier curve with control points ``p`` ``(4, 2)``."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1]
            + 3 * (1 - t) * t ** 2 * p[2] + t ** 3 * p[3])


def _ppm(truth: dict) -> float:
    return float(truth["px_per_mm"])


# --- paper artefacts -----------------------------------------------------------------------------
def _hue_rotation(angle_rad: float) -> np.ndarray:
    """3x3 RGB matrix rotating hue about the grey axis; greys (paper white, black ink) stay put."""
    c, s, k = math.cos(angle_rad), math.sin(angle_rad), 1.0 / 3.0
    r = math.sqrt(k) * s
    return np.array([[c + (1 - c) * k, (1 - c) * k - r, (1 - c) * k + r],
                     [(1 - c) * k + r, c + (1 - c) * k, (1 - c) * k - r],
                     [(1 - c) * k - r, (1 - c) * k + r, c + (1 - c) * k]])


def tint(image, truth, severity, rng):
    """Aged/coloured paper (per-channel gain) and a grid of another hue (hue rotation, +-50 deg)."""
    m = _strength(severity, rng)
    gains = 1.0 - m * rng.uniform(0.0, 0.14, 3)
    angle = float(rng.uniform(-1, 1) * math.radians(50) * m)
    matrix = np.diag(gains) @ _hue_rotation(angle)
    out = cv2.transform(image, matrix)
    return out, {"channel_gain": gains.tolist(), "hue_rotation_deg": math.degrees(angle)}


def stain(image, truth, severity, rng):
    """Coffee-like stains: soft ellipses with a darker rim, tinted brown/yellow (multiplicative)."""
    m = _strength(severity, rng)
    h, w = image.shape[:2]
    out, stains = image.copy(), []
    for _ in range(1 + int(round(2 * m))):
        r = float(rng.uniform(0.03, 0.08) * min(h, w))
        cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        colour = np.array([rng.uniform(150, 210), rng.uniform(110, 170), rng.uniform(50, 110)])
        alpha = float(rng.uniform(0.25, 0.5) * m)
        _stain_one(out, (cx, cy), r, float(rng.uniform(0.6, 1.0)), float(rng.uniform(0, 180)),
                   colour, alpha)
        stains.append({"center": [cx, cy], "radius_px": r, "alpha": alpha,
                       "colour": colour.tolist()})
    return out, {"stains": stains}


def _stain_one(img, centre, r, aspect, angle, colour, alpha) -> None:
    """Darken a region of ``img`` in place by one stain (work only inside its bounding box)."""
    h, w = img.shape[:2]
    pad = int(r * 1.3) + 2
    x0, y0 = max(0, int(centre[0]) - pad), max(0, int(centre[1]) - pad)
    x1, y1 = min(w, int(centre[0]) + pad), min(h, int(centre[1]) + pad)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    c = (int(round(centre[0] - x0)), int(round(centre[1] - y0)))
    axes = (max(1, int(r)), max(1, int(r * aspect)))
    cv2.ellipse(mask, c, axes, angle, 0, 360, 0.45, -1)                  # faint body
    cv2.ellipse(mask, c, axes, angle, 0, 360, 1.0, max(1, int(r * 0.06)))  # dried rim
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.8, r * 0.04))
    shade = 1.0 - alpha * mask[..., None] * (1.0 - colour[None, None, :] / 255.0)
    img[y0:y1, x0:x1] = np.clip(img[y0:y1, x0:x1] * shade, 0, 255).astype(np.uint8)


def handwriting(image, truth, severity, rng):
    """Pen scribbles: chains of random cubic Bezier strokes in blue or black ballpoint ink."""
    m = _strength(severity, rng)
    h, w = image.shape[:2]
    ppm = _ppm(truth)
    out, strokes = image.copy(), []
    for _ in range(1 + int(round(4 * m))):
        colour = [(30, 45, 160), (25, 25, 35), (20, 70, 140)][int(rng.integers(3))]
        thick = max(1, int(round(rng.uniform(0.25, 0.5) * ppm)))
        pts = _scribble(rng, np.array([rng.uniform(0, w), rng.uniform(0, h)]), 8.0 * ppm)
        cv2.polylines(out, [np.rint(pts * 256).astype(np.int32)], False, colour, thick,
                      cv2.LINE_AA, 8)
        strokes.append({"bbox": [float(pts[:, 0].min()), float(pts[:, 1].min()),
                                 float(pts[:, 0].max()), float(pts[:, 1].max())],
                        "colour": list(colour), "thickness_px": thick})
    return out, {"strokes": strokes}


def _scribble(rng, start: np.ndarray, step_px: float) -> np.ndarray:
    """Float px points of 2-6 chained Bezier segments that wander from ``start``."""
    pts, p0 = [], start
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(2, 7))):
        heading += rng.normal(0, 1.2)
        p3 = p0 + step_px * rng.uniform(0.5, 1.5) * np.array([np.cos(heading), np.sin(heading)])
        ctrl = np.array([p0, p0 + rng.normal(0, step_px * 0.6, 2),
                         p3 + rng.normal(0, step_px * 0.6, 2), p3])
        pts.append(_bezier(ctrl))
        p0 = p3
    return np.concatenate(pts)


def crease(image, truth, severity, rng):
    """Fold lines across the page (dark line with a bright shoulder) and short wrinkles."""
    m = _strength(severity, rng)
    h, w = image.shape[:2]
    ppm = _ppm(truth)
    gain = np.ones((h, w), np.float32)
    folds = []
    for _ in range(1 + int(round(2 * m))):
        p, q = _line_across(rng, w, h)
        # The bright shoulder sits beside the fold, across the fold's direction.
        horizontal = abs(q[0] - p[0]) > abs(q[1] - p[1])
        off = np.array([0.0, 0.4 * ppm]) if horizontal else np.array([0.4 * ppm, 0.0])
        dark = float(0.25 * m)
        cv2.line(gain, _fix(p + off), _fix(q + off), 1.0 + 0.4 * dark, max(1, int(0.5 * ppm)),
                 cv2.LINE_AA, 8)
        cv2.line(gain, _fix(p), _fix(q), 1.0 - dark, max(1, int(0.3 * ppm)), cv2.LINE_AA, 8)
        folds.append({"from": p.tolist(), "to": q.tolist(), "darkening": dark})
    n_wrinkles = int(round(6 * m))
    for _ in range(n_wrinkles):
        ctrl = np.array([rng.uniform(0, w), rng.uniform(0, h)]) + rng.normal(0, 12 * ppm, (4, 2))
        cv2.polylines(gain, [_fix(_bezier(ctrl))], False, 1.0 - 0.12 * m, max(1, int(0.3 * ppm)),
                      cv2.LINE_AA, 8)
    gain = cv2.GaussianBlur(gain, (0, 0), max(0.6, 0.15 * ppm))
    return _multiply(image, gain), {"folds": folds, "n_wrinkles": n_wrinkles}


def _fix(p: np.ndarray) -> np.ndarray | tuple[int, int]:
    """Float px -> cv2 fixed point (8 fractional bits): a tuple for one point, array for many."""
    q = np.rint(np.asarray(p) * 256).astype(np.int32)
    return (int(q[0]), int(q[1])) if q.ndim == 1 else q


def _line_across(rng, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Two far-apart points (px) of a random straight line through the page."""
    centre = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
    # Folds are usually near horizontal or vertical (the page was folded in halves or thirds).
    angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.08)
    d = np.array([np.cos(angle), np.sin(angle)]) * (w + h)
    return centre - d, centre + d


# --- scan artefacts ------------------------------------------------------------------------------
def perspective(image, truth, severity, rng):
    """Page placed askew on the glass: rotation (<= 3 deg) plus mild perspective (<= 1.5 %)."""
    m = _strength(severity, rng)
    h, w = image.shape[:2]
    angle = float(rng.uniform(-1, 1) * math.radians(3.0) * m)
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = (src - centre) @ rot.T + centre + rng.uniform(-1, 1, (4, 2)) * 0.015 * m * min(w, h)
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    lid = int(rng.uniform(225, 250))                      # scanner lid shows where paper is not
    out = cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(lid, lid, lid))
    _transform_truth(truth, matrix)
    return out, {"rotation_deg": math.degrees(angle), "matrix": matrix.tolist(), "lid_grey": lid}


def shadow(image, truth, severity, rng):
    """Uneven lighting: a linear illumination gradient plus a soft-edged shadow (multiplicative)."""
    m = _strength(severity, rng)
    h, w = image.shape[:2]
    sh, sw = max(2, h // 16), max(2, w // 16)              # smooth field: compute small, upsample
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    yy, xx = yy / (sh - 1), xx / (sw - 1)
    g_dir = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(g_dir) * (xx - 0.5) + np.sin(g_dir) * (yy - 0.5)) + 0.5
    grad = float(0.25 * m)
    s_dir, s_off = rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.45)
    dist = np.cos(s_dir) * (xx - 0.5) + np.sin(s_dir) * (yy - 0.5) + s_off - 0.5
    depth, soft = float(0.4 * m), float(rng.uniform(0.03, 0.12))
    field = (1.0 - grad * ramp) * (1.0 - depth / (1.0 + np.exp(dist / soft)))
    gain = cv2.resize(field.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return _multiply(image, gain), {"gradient": grad, "gradient_dir_deg": math.degrees(g_dir),
                                    "shadow_depth": depth, "shadow_dir_deg": math.degrees(s_dir)}


def margin(image, truth, severity, rng):
    """Scan framing: page offset by whole px (truth shifted), exposed and edge bands dark."""
    m = _strength(severity, rng)
    h, w = image.shape[:2]
    dx = int(round(rng.uniform(-1, 1) * 0.02 * m * w))
    dy = int(round(rng.uniform(-1, 1) * 0.02 * m * h))
    fill = int(rng.uniform(15, 70))
    out = np.full_like(image, fill)
    out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
        image[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    bands = {}
    for edge in ("top", "bottom", "left", "right"):
        size = int(round(rng.uniform(0, 0.025) * m * min(h, w))) if rng.random() < 0.5 else 0
        bands[edge] = size
        if size:
            region = {"top": np.s_[:size], "bottom": np.s_[h - size:],
                      "left": np.s_[:, :size], "right": np.s_[:, w - size:]}[edge]
            out[region] = fill
    _transform_truth(truth, np.array([[1.0, 0, dx], [0, 1.0, dy], [0, 0, 1.0]]))
    return out, {"offset_px": [dx, dy], "border_px": bands, "fill_grey": fill}


def blur(image, truth, severity, rng):
    """Scanner optics / focus: Gaussian blur, sigma <= 0.15 mm."""
    sigma = _strength(severity, rng) * 0.15 * _ppm(truth)
    if sigma < 0.05:
        return image.copy(), {"sigma_px": 0.0}
    return cv2.GaussianBlur(image, (0, 0), sigma), {"sigma_px": float(sigma)}


def noise(image, truth, severity, rng):
    """Sensor noise: Gaussian, shared by the channels (luminance), sigma <= 10 grey levels."""
    sigma = float(_strength(severity, rng) * 10.0)
    n = rng.standard_normal(image.shape[:2], dtype=np.float32) * sigma
    out = cv2.add(image.astype(np.float32), cv2.merge([n, n, n]))
    return np.clip(out, 0, 255).astype(np.uint8), {"sigma": sigma}


def grayscale(image, truth, severity, rng):
    """Greyscale scan: blend towards luminance by ``severity`` (1 = fully grey, 3 channels)."""
    amount = float(min(1.0, severity))
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(image, 1.0 - amount, grey, amount, 0.0), {"amount": amount}


def jpeg(image, truth, severity, rng):
    """Lossy file format: JPEG encode/decode at quality 95 (mild) down to 30 (severity 1)."""
    quality = int(round(95 - 65 * _strength(severity, rng)))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("cv2.imencode failed to write a JPEG; check the image is (H, W, 3) uint8")
    out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out, {"quality": quality}


# Order matters: paper first, then placement on the scanner, lighting, framing, optics, sensor,
# file format.
KINDS: dict[str, Callable] = {
    "tint": tint, "stain": stain, "handwriting": handwriting, "crease": crease,
    "perspective": perspective, "shadow": shadow, "margin": margin,
    "blur": blur, "noise": noise, "grayscale": grayscale, "jpeg": jpeg,
}


# --- public API ----------------------------------------------------------------------------------
def _check_inputs(image: np.ndarray, truth: dict, severity: float, kinds) -> list[str]:
    """Validate arguments; return the kinds to apply in canonical order."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise ImageError("image must be an (H, W, 3) uint8 RGB array as made by render_page")
    if list(image.shape[:2]) != list(truth["image_size"]):
        raise ImageError(f"image is {image.shape[:2]} px but truth says {truth['image_size']}; "
                         "pass the truth that came with this image")
    if not (np.isfinite(severity) and 0.0 <= severity <= 1.0):
        raise ValueError(f"severity must be in [0, 1] (0 = clean, 1 = strong), got {severity!r}")
    if kinds is None:
        return list(KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown artefact kind(s) {unknown}; known kinds: {', '.join(KINDS)}")
    return [k for k in KINDS if k in kinds]


def augment_page(image: np.ndarray, truth: dict, severity: float, rng: np.random.Generator,
                 kinds: tuple[str, ...] | None = None) -> tuple[np.ndarray, dict]:
    """Return ``(image, truth)`` of the page as a ``severity``-strong scan; inputs are not changed.

    Parameters
    ----------
    image : ``(H, W, 3)`` uint8 RGB page from ``ecgnb.render.render_page``.
    truth : its ground truth (deep-copied; the copy's coordinates follow geometric artefacts).
    severity : 0 (identity, a copy) to 1 (strong but readable).
    rng : the only source of randomness; the same seed gives the same page.
    kinds : subset of ``KINDS`` to apply (always in ``KINDS`` order); ``None`` = all.
    """
    order = _check_inputs(image, truth, severity, kinds)
    out_truth = copy.deepcopy(truth)
    if severity == 0:
        return image.copy(), out_truth
    art = out_truth.setdefault("artefacts", {})
    art.update({"severity": float(severity), "kinds": order,
                "homography": art.get("homography", np.eye(3).tolist())})
    out = image
    for name in order:
        out, params = KINDS[name](out, out_truth, severity, rng)
        art[name] = params
    if out is image:
        out = image.copy()
    return out, out_truth
