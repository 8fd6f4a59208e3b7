"""Pages as users bring them: phone photos, flatbed scans and photocopies, truth moved along.

``photograph(image, truth, cfg, rng)`` lays the printed page on a procedural desk (wood grain,
cloth, a plain desk or a scanner lid), bends it (an edge curl and a whole-page bow, both
cylinders that keep the paper's length, smooth bumps, folds), photographs it with a pinhole camera
(tilt up to ``cfg.tilt_deg_max``, in-plane rotation plus 0/90/180/270 deg turns, any scale) under
uneven light (gradient, vignette, a cast shadow, shading by the bent page's normals, glare), and
puts it through a phone's processing (defocus and shake, sensor noise, sharpening, JPEG).
``photocopy(image, truth, cfg, rng)`` makes a black-and-white copy: a threshold-like tone curve
that turns grid and trace black, toner grain and specks, drum streaks, a page askew on the glass,
light (faded) toner. Both return a new ``(image, truth)``; the inputs are not changed.

Geometry as data: ``truth["photo"]["map"]`` is a grid of clean-page points and the photo px where
each lands; between nodes the map is bicubic (Catmull-Rom), beyond them linear. It *defines* the
warp: the image is resampled through the same map (its Newton inverse on a grid every 8-16 photo
px, bilinear between: within ~0.15 px, ~0.4 px at a fold's crease), so ``to_photo(points,
truth)`` (clean page px -> photo px) and its inverse ``to_page(points, truth)`` hold for any
point of the page as they do for its pixels. Panel ``trace`` points and ``bbox``es, calibration and header ``bbox``es are
moved through it (a bbox becomes the bbox of its mapped outline); clean-page reference values
(``baseline_y``, ``x_start``, ``grid``) stay in clean-page px, to be mapped with ``to_photo``.
``image_size`` becomes the photo's, ``px_per_mm``/``dpi`` the photo's mean scale over the page.
A photo of a photocopy composes the maps, so the map always starts at the clean page.

``truth["photo"]``::

    {"page_size": [H, W],              # px of the clean page the map starts from
     "page_px_per_mm": float,          # its scale (the clean page's reference values use it)
     "map": {"origin": [x, y],         # clean-page px of node [0][0]
             "step_px": float,         # clean-page px between nodes (cfg.map_step_mm)
             "points": [[[x, y], ...], ...]},   # (rows, cols, 2) photo px of every node
     "rotation_deg": float,            # in-plane rotation, counter-clockwise as seen
     "quarter_turns": int,             # further 90 deg counter-clockwise turns (0-3)
     "steps": [{"kind": "photograph" | "photocopy", <its drawn parameters>}, ...]}

``truth["artefacts"]["kinds"]`` gains ``"photograph"`` / ``"photocopy"``.
"""
from __future__ import annotations

import copy
import math

import cv2
import numpy as np

from ecgnb.config import CopyConfig, PhotoConfig
from ecgnb.io import check_rgb

COARSE_PX = (8, 16)     # photo px between the nodes of the dense inverse map (then bilinear):
                        # the first up to COARSE_MP_SPLIT megapixels, the second above (within
                        # ~0.05 / ~0.15 photo px of the exact inverse; ~0.4 at a fold's crease)
COARSE_MP_SPLIT = 4.0
NEWTON_STEPS = 12       # most Newton iterations of to_page
NEWTON_TOL_PX = 1e-4    # photo px, to_page stops when every point is this close
GRID_MARGIN = 0.08      # relative luminance a copy's threshold keeps above the grid's major lines
NOISE_TILE = 1024       # px, side of the sensor-noise tile repeated over the photo

# Named settings: a phone photo on a desk, one whose frame cuts the page (a side or a corner
# beyond the photo, as in 5 of the 13 photos of photos-dev), and a flatbed scan (flat,
# square-on, white lid).
PRESETS: dict[str, PhotoConfig] = {
    "phone": PhotoConfig(),
    "phone-cut": PhotoConfig(cut_p=1.0),
    "scan": PhotoConfig(dpi_range=(150.0, 600.0), max_megapixels=36.0, tilt_deg_max=0.3,
                        distance_range=(40.0, 40.0), rotation_deg_max=3.0,
                        quarter_turn_p=(0.9, 0.03, 0.04, 0.03), margin_range=(0.0, 0.03),
                        frame_aspect=0.0, backgrounds=("lid",), curl_deg_max=0.0, bow_deg_max=0.0,
                        bump_mm_max=0.3, fold_p=0.2, fold_mm_max=0.8, light_gradient_max=0.06,
                        vignette_max=0.0, shadow_p=0.0, glare_p=0.0, white_balance_max=0.02,
                        exposure=(0.95, 1.05), fade_p=0.1, blur_px_max=0.6, motion_p=0.0,
                        noise=(0.5, 2.0), sharpen_max=0.3, jpeg_quality=(70, 98)),
}


# --- the page -> photo map: a grid of nodes, Catmull-Rom between them --------------------------
def _cubic_weights(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Catmull-Rom weights ``(n, 4)`` of the 4 nodes around ``t`` in [0, 1], and their d/dt."""
    t2, t3 = t * t, t * t * t
    w = np.stack([(-t3 + 2 * t2 - t), (3 * t3 - 5 * t2 + 2), (-3 * t3 + 4 * t2 + t),
                  (t3 - t2)], axis=1) / 2
    dw = np.stack([(-3 * t2 + 4 * t - 1), (9 * t2 - 10 * t), (-9 * t2 + 8 * t + 1),
                   (3 * t2 - 2 * t)], axis=1) / 2
    return w, dw


def _nodes(m: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """The map's node array ``(rows, cols, 2)`` photo px, origin and step (page px)."""
    return np.asarray(m["points"], float), np.asarray(m["origin"], float), float(m["step_px"])


def _eval_map(m: dict | tuple, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Photo px ``(n, 2)`` of clean-page px ``points`` and the Jacobian ``(n, 2, 2)``
    (``J[:, i, j] = d photo_i / d page_j``). Linear beyond the outermost cells.
    ``m`` is a stored map or its ``_nodes``."""
    nodes, origin, step = _nodes(m) if isinstance(m, dict) else m
    ny, nx = nodes.shape[:2]
    f = (np.asarray(points, float) - origin) / step
    cell = np.floor(f).astype(int)
    cell[:, 0] = np.clip(cell[:, 0], 1, nx - 3)
    cell[:, 1] = np.clip(cell[:, 1], 1, ny - 3)
    t = f - cell
    tc = np.clip(t, 0.0, 1.0)
    wx, dwx = _cubic_weights(tc[:, 0])
    wy, dwy = _cubic_weights(tc[:, 1])
    k = np.arange(-1, 3)
    g = nodes[(cell[:, 1, None] + k)[:, :, None], (cell[:, 0, None] + k)[:, None, :]]  # (n,4,4,2)
    gx = np.einsum("nbac,na->nbc", g, wx)                           # along x first
    gdx = np.einsum("nbac,na->nbc", g, dwx)
    val = np.einsum("nbc,nb->nc", gx, wy)
    ddx = np.einsum("nbc,nb->nc", gdx, wy) / step
    ddy = np.einsum("nbc,nb->nc", gx, dwy) / step
    beyond = (t - tc) * step                                        # px outside the grid
    val += ddx * beyond[:, :1] + ddy * beyond[:, 1:]
    return val, np.stack([ddx, ddy], axis=2)


def _invert_map(m: dict, targets: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
    """Clean-page px ``(n, 2)`` that ``m`` maps to photo px ``targets`` (Newton); NaN where the
    map does not reach a target (a point off a page folded out of view)."""
    q = np.asarray(targets, float).reshape(-1, 2)
    arrays = _nodes(m)
    m = arrays
    if guess is None:
        nodes, origin, step = arrays
        ny, nx = nodes.shape[:2]
        gx, gy = np.meshgrid(np.arange(nx), np.arange(ny))
        page = origin + step * np.column_stack((gx.ravel(), gy.ravel()))
        hom, _ = cv2.findHomography(nodes.reshape(-1, 2), page, 0)
        guess = _apply_homography(hom, q)
    p = np.array(guess, float)
    active = np.ones(len(q), bool)
    for _ in range(NEWTON_STEPS):
        val, jac = _eval_map(m, p[active])
        r = val - q[active]
        det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        dx = (jac[:, 1, 1] * r[:, 0] - jac[:, 0, 1] * r[:, 1]) / det
        dy = (-jac[:, 1, 0] * r[:, 0] + jac[:, 0, 0] * r[:, 1]) / det
        p[active] -= np.column_stack((dx, dy))
        idx = np.flatnonzero(active)
        active[idx[np.abs(r).max(axis=1) < NEWTON_TOL_PX]] = False
        if not active.any():
            break
    val, _ = _eval_map(m, p)
    p[np.abs(val - q).max(axis=1) > 0.05] = np.nan
    return p


def _invert_grid(m: dict, ch: int, cw: int, step: int, every: int = 4) -> np.ndarray:
    """Clean-page px ``(ch * cw, 2)`` of the photo px ``((i + 0.5) step - 0.5, ...)``: Newton
    on every ``every``-th node first, whose answers start the rest."""
    cy, cx = np.mgrid[0:ch, 0:cw]
    nodes = np.column_stack(((cx.ravel() + 0.5) * step - 0.5, (cy.ravel() + 0.5) * step - 0.5))
    sub = nodes.reshape(ch, cw, 2)[::every, ::every]
    sh, sw = sub.shape[:2]
    first = _invert_map(m, sub.reshape(-1, 2)).reshape(sh, sw, 2)
    if np.isnan(first).any() or sh < 2 or sw < 2:
        return _invert_map(m, nodes)
    gy, gx = np.mgrid[0:ch, 0:cw].astype(np.float32) / every
    guess = cv2.remap(first.astype(np.float32), gx, gy, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    return _invert_map(m, nodes, guess.reshape(-1, 2))


def _apply_homography(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    hom = np.column_stack((points, np.ones(len(points)))) @ np.asarray(matrix, float).T
    return hom[:, :2] / hom[:, 2:3]


def _build_map(forward, page_hw: tuple[int, int], step_px: float) -> dict:
    """Node grid of ``forward`` (clean-page px -> photo px) over the page plus one node beyond
    each edge; node positions rounded to 1/1000 px (the stored map is the one used)."""
    h, w = page_hw
    nx, ny = int(math.ceil((w - 1) / step_px)) + 3, int(math.ceil((h - 1) / step_px)) + 3
    gx, gy = np.meshgrid(np.arange(nx), np.arange(ny))
    page = -step_px + step_px * np.column_stack((gx.ravel(), gy.ravel())).astype(float)
    photo = np.round(forward(page), 3).reshape(ny, nx, 2)
    return {"origin": [-step_px, -step_px], "step_px": float(step_px), "points": photo.tolist()}


def _photo_map(truth: dict) -> dict | None:
    return truth.get("photo", {}).get("map")


def to_photo(points, truth: dict) -> np.ndarray:
    """Clean-page px ``(n, 2)`` -> px of the photo (or copy) ``truth`` describes.

    A page never photographed maps to itself."""
    pts = np.asarray(points, float).reshape(-1, 2)
    m = _photo_map(truth)
    return pts.copy() if m is None else _eval_map(m, pts)[0]


def to_page(points, truth: dict) -> np.ndarray:
    """Photo px ``(n, 2)`` -> clean-page px (the inverse of ``to_photo``; NaN where the page
    does not reach the point)."""
    pts = np.asarray(points, float).reshape(-1, 2)
    m = _photo_map(truth)
    return pts.copy() if m is None else _invert_map(m, pts)


# --- the page bent in 3-D and the camera (all lengths in mm unless named _px) ------------------
def _page_mm(xy_px: np.ndarray, page: dict) -> tuple[np.ndarray, np.ndarray]:
    """Clean-page px -> mm from the page centre (u right, v down)."""
    ppm = page["px_per_mm"]
    return ((xy_px[:, 0] + 0.5) / ppm - page["w_mm"] / 2,
            (xy_px[:, 1] + 0.5) / ppm - page["h_mm"] / 2)


def _surface(xy_px: np.ndarray, page: dict, shape: dict) -> np.ndarray:
    """World mm ``(n, 3)`` of clean-page px on the bent page: x right, y down, z into the desk
    (a lifted point has z < 0). Bends are cylinders that keep the paper's length."""
    u, v = _page_mm(xy_px, page)
    pos, lift = [u.copy(), v.copy()], np.zeros_like(u)
    for b in shape["bends"]:
        s = (u, v)[b["axis"]]
        d = np.maximum(b["dir"] * (s - b["start_mm"]), 0.0)
        ang = d / b["radius_mm"]
        pos[b["axis"]] += b["dir"] * (b["radius_mm"] * np.sin(ang) - d)
        up = b["radius_mm"] * (1 - np.cos(ang))
        lift += (b["arch_mm"] - up) if b["arch_mm"] > 0 else up
    for bump in shape["bumps"]:
        r2 = (u - bump["centre_mm"][0]) ** 2 + (v - bump["centre_mm"][1]) ** 2
        lift += bump["height_mm"] * np.exp(-r2 / (2 * bump["sigma_mm"] ** 2))
    for fold in shape["folds"]:
        d = np.abs((u, v)[fold["axis"]] - fold["pos_mm"])
        e = np.exp(-d / fold["width_mm"])
        lift += fold["height_mm"] * (e if fold["ridge"] else 1 - e)
    return np.column_stack((pos[0], pos[1], -lift))


def _camera_rotation(cam: dict) -> np.ndarray:
    """Rows: the camera's right, down and forward axes in world coordinates."""
    th, ph = math.radians(cam["tilt_deg"]), math.radians(cam["azimuth_deg"])
    fwd = np.array([math.sin(th) * math.cos(ph), math.sin(th) * math.sin(ph), math.cos(th)])
    right = np.array([1.0, 0.0, 0.0]) - fwd[0] * fwd
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(fwd, right), fwd])


def _project(world: np.ndarray, cam: dict) -> np.ndarray:
    """Photo px ``(n, 2)`` of world mm points: pinhole at ``distance_mm`` from the page centre,
    then the in-plane roll (counter-clockwise as seen) and the frame's offset."""
    rot = _camera_rotation(cam)
    pc = (world + cam["distance_mm"] * rot[2]) @ rot.T
    xy = cam["focal_px"] * pc[:, :2] / pc[:, 2:3]
    a = math.radians(cam["roll_deg"])
    c, s = math.cos(a), math.sin(a)
    return np.column_stack((c * xy[:, 0] + s * xy[:, 1], -s * xy[:, 0] + c * xy[:, 1])) \
        + np.asarray(cam["offset_px"], float)


def _page_outline(h: int, w: int, n: int = 40) -> np.ndarray:
    """Clean-page px ``(4n, 2)`` along the page's edge, clockwise from the top-left corner."""
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    x0, y0, x1, y1 = -0.5, -0.5, w - 0.5, h - 0.5
    return np.concatenate([np.column_stack((x0 + t * (x1 - x0), np.full(n, y0))),
                           np.column_stack((np.full(n, x1), y0 + t * (y1 - y0))),
                           np.column_stack((x1 - t * (x1 - x0), np.full(n, y1))),
                           np.column_stack((np.full(n, x0), y1 - t * (y1 - y0)))])


def _draw_shape(rng, cfg: PhotoConfig, page: dict) -> dict:
    """Bends, bumps and folds of one page (mm, from the page centre)."""
    w, h = page["w_mm"], page["h_mm"]
    bends, bumps, folds = [], [], []
    if cfg.bow_deg_max > 0:                               # whole page bowed, edges (or middle) up
        axis = int(rng.integers(2))
        half = (w, h)[axis] / 2
        ang = math.radians(rng.uniform(0, cfg.bow_deg_max))
        if ang > 1e-3:
            radius = half / ang
            arch = radius * (1 - math.cos(ang)) if rng.random() < 0.3 else 0.0
            bends += [{"kind": "bow", "axis": axis, "start_mm": 0.0, "dir": d, "radius_mm": radius,
                       "arch_mm": arch} for d in (1, -1)]
    if cfg.curl_deg_max > 0:                              # one edge curling up
        axis, d = int(rng.integers(2)), int(rng.choice([-1, 1]))
        size = (w, h)[axis]
        length = size * rng.uniform(0.1, 0.35)
        ang = math.radians(rng.uniform(0, cfg.curl_deg_max))
        if ang > 1e-3:
            bends.append({"kind": "curl", "axis": axis, "start_mm": d * (size / 2 - length),
                          "dir": d, "radius_mm": length / ang, "arch_mm": 0.0})
    if cfg.bump_mm_max > 0:
        for _ in range(int(rng.integers(1, 4))):
            bumps.append({"centre_mm": [rng.uniform(-w / 2, w / 2), rng.uniform(-h / 2, h / 2)],
                          "sigma_mm": rng.uniform(30, 90),
                          "height_mm": rng.uniform(0, cfg.bump_mm_max)})
    if rng.random() < cfg.fold_p:
        axis = int(rng.integers(2))
        size = (w, h)[axis]
        fracs = [0.5] if rng.random() < 0.6 else [1 / 3, 2 / 3]
        for f in fracs:
            folds.append({"axis": axis, "pos_mm": (f - 0.5) * size,
                          "height_mm": rng.uniform(0.2, 1.0) * cfg.fold_mm_max,
                          "width_mm": rng.uniform(15, 50), "ridge": bool(rng.random() < 0.6)})
    return {"bends": bends, "bumps": bumps, "folds": folds}


def _scaled_shape(shape: dict, k: float) -> dict:
    """``shape`` with every bend angle and lift scaled by ``k`` (a retry when the page folds
    out of view)."""
    out = copy.deepcopy(shape)
    for b in out["bends"]:
        b["radius_mm"] /= k
        b["arch_mm"] *= k
    for x in out["bumps"] + out["folds"]:
        x["height_mm"] *= k
    return out


def _fit_frame(rng, cfg: PhotoConfig, cam: dict, page: dict, shape: dict) -> tuple[int, int]:
    """Set ``cam``'s scale and offset so the page and its margins fill a frame; return (H, W).

    The frame gets ``cfg.frame_aspect`` (long/short side), at most ``cfg.max_megapixels``, and a
    size that is a multiple of the coarser ``COARSE_PX``."""
    cam["offset_px"] = [0.0, 0.0]
    outline = _project(_surface(_page_outline(page["h_px"], page["w_px"]), page, shape), cam)
    lo, hi = outline.min(axis=0), outline.max(axis=0)
    size = hi - lo
    m = rng.uniform(*cfg.margin_range, 4) * np.array([size[0], size[0], size[1], size[1]])
    fw, fh = size[0] + m[0] + m[1], size[1] + m[2] + m[3]
    if cfg.frame_aspect > 0:                               # widen the short side at random
        if fw >= fh and fw < cfg.frame_aspect * fh:
            extra = cfg.frame_aspect * fh - fw
            f = rng.uniform()
            m[0], m[1], fw = m[0] + f * extra, m[1] + (1 - f) * extra, cfg.frame_aspect * fh
        elif fw >= fh:
            extra = fw / cfg.frame_aspect - fh
            f = rng.uniform()
            m[2], m[3], fh = m[2] + f * extra, m[3] + (1 - f) * extra, fw / cfg.frame_aspect
        elif fh < cfg.frame_aspect * fw:
            extra = cfg.frame_aspect * fw - fh
            f = rng.uniform()
            m[2], m[3], fh = m[2] + f * extra, m[3] + (1 - f) * extra, cfg.frame_aspect * fw
        else:
            extra = fh / cfg.frame_aspect - fw
            f = rng.uniform()
            m[0], m[1], fw = m[0] + f * extra, m[1] + (1 - f) * extra, fh / cfg.frame_aspect
    if cfg.cut_p > 0 and rng.uniform() < cfg.cut_p:
        # The photo cuts off a strip of paper on one side, or a corner (two sides); the frame
        # shrinks by as much (its aspect changes a little).
        sides = rng.choice(4, size=int(rng.integers(1, 3)), replace=False)
        cut = -rng.uniform(*cfg.cut_range, len(sides)) * np.array([size[0], size[0], size[1], size[1]])[sides]
        m[sides] = cut
        fw, fh = size[0] + m[0] + m[1], size[1] + m[2] + m[3]
    k = min(1.0, math.sqrt(cfg.max_megapixels * 1e6 / (fw * fh)))
    cam["focal_px"] *= k
    cam["offset_px"] = [float(k * (m[0] - lo[0])), float(k * (m[2] - lo[1]))]
    step = max(COARSE_PX)
    return (int(math.ceil(k * fh / step)) * step, int(math.ceil(k * fw / step)) * step)


def _local_scales(m: dict, page_hw: tuple[int, int]) -> tuple[float, float]:
    """Largest singular value of the map's Jacobian on the page, and the smallest determinant
    over the median one (<= 0 where the page folds over itself in the photo)."""
    h, w = page_hw
    gx, gy = np.meshgrid(np.linspace(0, w - 1, 24), np.linspace(0, h - 1, 18))
    _, jac = _eval_map(m, np.column_stack((gx.ravel(), gy.ravel())))
    det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
    s_max = float(np.linalg.svd(jac, compute_uv=False)[:, 0].max())
    return s_max, float(det.min() / np.median(det))


# --- procedural surfaces under the page --------------------------------------------------------
def _smooth_noise(rng, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Float32 ``shape`` noise, unit std, smooth over ``shape / cells``."""
    small = rng.standard_normal((max(2, cells[0]), max(2, cells[1]))).astype(np.float32)
    out = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return out / max(float(out.std()), 1e-6)


# RGB base colours of the desk surfaces
WOODS = ((172, 122, 78), (98, 62, 40), (205, 165, 115), (208, 192, 170), (72, 46, 30),
         (150, 95, 55))
CLOTHS = ((40, 52, 92), (120, 120, 126), (192, 176, 150), (58, 90, 70), (140, 42, 48),
          (36, 36, 40))
DESKS = ((236, 236, 230), (200, 200, 198), (92, 92, 98), (32, 32, 35), (212, 196, 170),
         (150, 160, 170))


def _texture(rng, kind: str, hw: tuple[int, int], px_per_mm: float) -> tuple[np.ndarray, dict]:
    """``(h, w, 3)`` uint8 texture of a desk ``kind`` at ``px_per_mm``, and what was drawn."""
    h, w = hw
    h_mm, w_mm = h / px_per_mm, w / px_per_mm
    yy = (np.arange(h, dtype=np.float32) / px_per_mm)[:, None]
    xx = (np.arange(w, dtype=np.float32) / px_per_mm)[None, :]
    if kind == "wood":                      # planks along x, growth rings and fine streaks
        base = np.array(WOODS[int(rng.integers(len(WOODS)))], np.float32)
        period, plank = rng.uniform(3, 9), rng.uniform(80, 220)
        warp = _smooth_noise(rng, hw, (int(h_mm / 40), int(w_mm / 120)))
        idx = np.floor(yy / plank)
        phase = (yy + 2.5 * period * warp + 37.0 * idx + xx * 0.02) / period
        ring = (0.5 + 0.5 * np.sin(2 * np.pi * phase)) ** 3
        streak = cv2.resize(rng.standard_normal((h, max(2, w // 60))).astype(np.float32), (w, h),
                            interpolation=cv2.INTER_LINEAR)
        plank_gain = 1 + 0.08 * np.sin(idx * 12.9898 + rng.uniform(0, 6))
        seam = 1 - 0.45 * np.exp(-((yy - idx * plank) * px_per_mm) ** 2 / 2.0)
        val = plank_gain * (1 - 0.22 * ring + 0.05 * streak) * seam
        info = {"colour": base.tolist(), "ring_mm": period, "plank_mm": plank}
    elif kind == "cloth":                   # plain weave: threads over and under
        base = np.array(CLOTHS[int(rng.integers(len(CLOTHS)))], np.float32)
        period = max(rng.uniform(0.8, 2.5), 4.0 / px_per_mm)
        wx, wy = np.sin(2 * np.pi * xx / period), np.sin(2 * np.pi * yy / period)
        rows = rng.standard_normal(int(h / px_per_mm / period) + 2).astype(np.float32)
        cols = rng.standard_normal(int(w / px_per_mm / period) + 2).astype(np.float32)
        thread = 0.04 * (rows[(yy / period).astype(int)] + cols[(xx / period).astype(int)])
        wrinkle = _smooth_noise(rng, hw, (int(h_mm / 60), int(w_mm / 60)))
        val = (1 + 0.14 * wx * wy + thread) * (1 + 0.08 * wrinkle)
        info = {"colour": base.tolist(), "thread_mm": period}
    elif kind in ("plain", "lid"):
        if kind == "plain":
            base = np.array(DESKS[int(rng.integers(len(DESKS)))], np.float32)
        else:
            base = np.full(3, rng.uniform(222, 250), np.float32)
        mottle = _smooth_noise(rng, hw, (6, 8))
        val = 1 + (0.035 if kind == "plain" else 0.008) * mottle
        info = {"colour": base.tolist()}
    else:
        raise ValueError(f"unknown background {kind!r}; known: wood, cloth, plain, lid")
    val = val + 0.015 * rng.standard_normal(hw).astype(np.float32)
    tex = np.clip(val[..., None] * base[None, None, :], 0, 255).astype(np.uint8)
    return tex, {"kind": kind, **info}


def _background(rng, cfg: PhotoConfig, cam: dict,
                frame_hw: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """The desk as the camera sees it (the plane z = 0, in perspective)."""
    kind = cfg.backgrounds[int(rng.integers(len(cfg.backgrounds)))]
    desk = np.array([[-100.0, -100.0, 0], [100, -100, 0], [100, 100, 0], [-100, 100, 0]])
    photo = _project(desk, cam)
    to_photo_h = cv2.getPerspectiveTransform(desk[:, :2].astype(np.float32),
                                             photo.astype(np.float32))
    fh, fw = frame_hw
    corners = _apply_homography(np.linalg.inv(to_photo_h),
                                np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], float))
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    local_ppm = cam["focal_px"] / cam["distance_mm"]
    tex_ppm = float(np.clip(0.5 * local_ppm, 0.8, 4.0))
    tex_ppm = min(tex_ppm, 2000.0 / max(hi[0] - lo[0], hi[1] - lo[1], 1.0))   # <= 2000 px a side
    tex_hw = (int((hi[1] - lo[1]) * tex_ppm) + 2, int((hi[0] - lo[0]) * tex_ppm) + 2)
    tex, info = _texture(rng, kind, tex_hw, tex_ppm)
    ang = rng.uniform(0, 180)                               # grain direction on the desk
    centre = (lo + hi) / 2
    # texture px -> desk mm: rotate the texture about the visible region's centre
    c, s = math.cos(math.radians(ang)), math.sin(math.radians(ang))
    to_desk = np.array([[c / tex_ppm, -s / tex_ppm, 0], [s / tex_ppm, c / tex_ppm, 0], [0, 0, 1]])
    half = np.array([tex_hw[1], tex_hw[0]]) / 2
    to_desk[:2, 2] = centre - to_desk[:2, :2] @ half
    matrix = to_photo_h @ to_desk
    out = cv2.warpPerspective(tex, matrix, (fw, fh), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    return out, {**info, "grain_deg": float(ang), "texture_px_per_mm": tex_ppm}


# --- light -------------------------------------------------------------------------------------
def _surface_normals(page_xy: np.ndarray, page: dict, shape: dict) -> np.ndarray:
    """Unit normals ``(n, 3)`` of the bent page towards the camera side (z < 0)."""
    e = 0.5 * page["px_per_mm"]
    du = _surface(page_xy + [e, 0], page, shape) - _surface(page_xy - [e, 0], page, shape)
    dv = _surface(page_xy + [0, e], page, shape) - _surface(page_xy - [0, e], page, shape)
    n = -np.cross(du, dv)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _light_fields(rng, cfg: PhotoConfig, coarse_page: np.ndarray, coarse_hw, step: int, page: dict,
                  shape: dict, cam: dict) -> tuple:
    """Coarse gain fields ``(h, w)``: page shading, desk shadow of the page, light on everything
    and glare; the light's RGB gains (white balance, exposure) and the parameters."""
    ch, cw = coarse_hw
    el, az = math.radians(rng.uniform(35, 75)), rng.uniform(0, 2 * math.pi)
    ambient = float(rng.uniform(0.35, 0.6))
    light = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), -math.sin(el)])
    ok = np.isfinite(coarse_page).all(axis=1)
    pxy = np.where(ok[:, None], coarse_page, 0.0)
    normals = _surface_normals(pxy, page, shape)
    shade = (ambient + (1 - ambient) * np.maximum(normals @ light, 0)) / (
        ambient + (1 - ambient) * math.sin(el))
    shade = np.clip(np.where(ok, shade, 1.0), 0.3, 1.3).reshape(ch, cw).astype(np.float32)
    inside = (ok & (pxy[:, 0] >= -0.5) & (pxy[:, 0] <= page["w_px"] - 0.5)
              & (pxy[:, 1] >= -0.5) & (pxy[:, 1] <= page["h_px"] - 0.5)).reshape(ch, cw)
    # The page's own shadow on the desk, away from the light, longer where the page is lifted.
    lift = -_surface(pxy, page, shape)[:, 2]
    height = 1.0 + float(np.percentile(lift[inside.ravel()], 90)) if inside.any() else 1.0
    centre = np.array([[page["w_px"] / 2, page["h_px"] / 2]])
    c0 = _project(_surface(centre, page, shape), cam)[0]
    off = -height / math.tan(el) * light[:2] / max(np.linalg.norm(light[:2]), 1e-9)
    world_c = _surface(centre, page, shape)[0]
    c1 = _project((world_c + [off[0], off[1], 0.0])[None], cam)[0]
    shift = (c1 - c0) / step
    mask = inside.astype(np.float32)
    moved = cv2.warpAffine(mask, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (cw, ch))
    soft = max(0.8, 0.6 * float(np.hypot(*shift)))
    drop = 1 - float(rng.uniform(0.15, 0.35)) * cv2.GaussianBlur(moved, (0, 0), soft)
    # Light over the frame: gradient, vignette, white balance, exposure, a cast shadow.
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    yy, xx = yy / max(ch - 1, 1) - 0.5, xx / max(cw - 1, 1) - 0.5
    g_dir, grad = rng.uniform(0, 2 * math.pi), float(rng.uniform(0, cfg.light_gradient_max))
    ramp = math.cos(g_dir) * xx + math.sin(g_dir) * yy + 0.5
    vig = float(rng.uniform(0, cfg.vignette_max))
    field = (1 - grad * np.clip(ramp, 0, 1)) * (1 - vig * (xx ** 2 + yy ** 2) * 2)
    cast = np.zeros((ch, cw), np.float32)
    shadow_info = None
    if rng.random() < cfg.shadow_p:
        shadow_info = _cast_shadow(rng, cfg, cast, step)
    wb = 1 + rng.uniform(-1, 1, 3) * cfg.white_balance_max
    wb = wb / wb.mean() * rng.uniform(*cfg.exposure)
    light = (field * (1 - cast)).astype(np.float32)
    glare = np.zeros((ch, cw), np.float32)
    glare_info = None
    if rng.random() < cfg.glare_p:
        gc = rng.uniform(0.2, 0.8, 2)
        sig = rng.uniform(0.05, 0.15)
        strength = float(rng.uniform(0.3, 0.8))
        r2 = (xx + 0.5 - gc[0]) ** 2 + (yy + 0.5 - gc[1]) ** 2
        glare = (strength * np.exp(-r2 / (2 * sig ** 2)) * mask).astype(np.float32)
        glare_info = {"centre": gc.tolist(), "sigma": float(sig), "strength": strength}
    info = {"elevation_deg": math.degrees(el), "azimuth_deg": math.degrees(az), "ambient": ambient,
            "gradient": grad, "gradient_dir_deg": math.degrees(g_dir), "vignette": vig,
            "white_balance": wb.tolist(), "cast_shadow": shadow_info, "glare": glare_info,
            "page_shadow_px": (shift * step).tolist()}
    return shade, drop.astype(np.float32), light, glare, wb, info


def _cast_shadow(rng, cfg: PhotoConfig, out: np.ndarray, step: int) -> dict:
    """Draw a soft shadow (a phone or hand held over the page) into ``out`` (coarse, in place)."""
    ch, cw = out.shape
    side = int(rng.integers(4))
    t = rng.uniform(0.1, 0.9)
    edge = [(t * cw, 0), (cw, t * ch), (t * cw, ch), (0, t * ch)][side]
    inward = np.array([(0, 1), (-1, 0), (0, -1), (1, 0)][side], float)
    length, width = rng.uniform(0.3, 0.8) * max(ch, cw), rng.uniform(0.15, 0.4) * max(ch, cw)
    ang = math.atan2(inward[1], inward[0]) + rng.normal(0, 0.35)
    d = np.array([math.cos(ang), math.sin(ang)])
    n = np.array([-d[1], d[0]])
    start = np.array(edge) - d * 0.2 * length
    tip = start + d * length
    poly = np.array([start + n * width / 2, tip + n * width * 0.35, tip - n * width * 0.35,
                     start - n * width / 2])
    depth = float(rng.uniform(*cfg.shadow_depth))
    cv2.fillPoly(out, [np.rint(poly).astype(np.int32)], depth)
    cv2.ellipse(out, tuple(int(v) for v in np.rint(tip)),
                (int(width * 0.35), int(width * 0.3)), math.degrees(ang), 0, 360, depth, -1)
    soft = float(rng.uniform(0.02, 0.08)) * max(ch, cw)
    out[:] = cv2.GaussianBlur(out, (0, 0), max(0.8, soft))
    return {"side": ["top", "right", "bottom", "left"][side], "depth": depth,
            "penumbra_px": soft * step}


# --- the print and the phone's processing -----------------------------------------------------
def _fade(image: np.ndarray, rng) -> tuple[np.ndarray, dict]:
    """A faded print: ink lighter, paper yellower."""
    keep = float(rng.uniform(0.4, 0.75))
    yellow = np.array([1.0, rng.uniform(0.96, 0.99), rng.uniform(0.86, 0.95)], np.float32)
    out = (255 - (255 - image.astype(np.float32)) * keep) * yellow
    return np.clip(out, 0, 255).astype(np.uint8), {"ink_kept": keep, "paper_gain": yellow.tolist()}


def _crease_marks(image: np.ndarray, folds: list[dict], page: dict) -> None:
    """Darken a fold's line on the print (in place): a dark row/column with a light shoulder."""
    ppm = page["px_per_mm"]
    for f in folds:
        pos = (f["pos_mm"] + (page["w_mm"], page["h_mm"])[f["axis"]] / 2) * ppm - 0.5
        for off, g in ((-1, 0.93), (0, 0.82), (1, 0.9), (2, 1.04)):
            k = int(round(pos)) + off
            n = image.shape[1 - f["axis"]]
            if 0 <= k < n:
                sl = np.s_[:, k] if f["axis"] == 0 else np.s_[k, :]
                image[sl] = np.clip(image[sl].astype(np.float32) * g, 0, 255).astype(np.uint8)


def _up8(coarse: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Coarse float field (0-255) -> full-size ``(H, W, 3)`` uint8."""
    small = np.clip(np.rint(coarse), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.resize(small, size_wh, interpolation=cv2.INTER_LINEAR),
                        cv2.COLOR_GRAY2RGB)


def _gain(image: np.ndarray, coarse_gain: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """uint8 ``image`` times a smooth gain given on the coarse grid (0-1.99, 1/128 steps)."""
    return cv2.multiply(image, _up8(128 * coarse_gain, size_wh), scale=1 / 128)


def _jpeg(image: np.ndarray, quality: int, grey: bool = False) -> np.ndarray:
    """JPEG encode/decode (a single grey channel when ``grey``)."""
    src = image[..., 0] if grey else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", src, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("cv2.imencode failed to write a JPEG; check the image is (H, W, 3) uint8")
    dec = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    return cv2.merge([dec, dec, dec]) if grey else cv2.cvtColor(dec, cv2.COLOR_BGR2RGB)


def _camera_processing(img: np.ndarray, rng, cfg: PhotoConfig) -> tuple[np.ndarray, dict]:
    """Optics, sensor and the phone's processing on a uint8 ``(H, W, 3)`` photo."""
    sigma = float(rng.uniform(0, cfg.blur_px_max))
    if sigma > 0.2:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    motion = None
    if rng.random() < cfg.motion_p:
        length, ang = float(rng.uniform(1, cfg.motion_px_max)), float(rng.uniform(0, 180))
        k = int(math.ceil(length)) | 1
        kernel = np.zeros((k + 2, k + 2), np.float32)
        c = (k + 1) / 2
        d = np.array([math.cos(math.radians(ang)), math.sin(math.radians(ang))]) * length / 2
        cv2.line(kernel, (int(round((c - d[0]) * 16)), int(round((c - d[1]) * 16))),
                 (int(round((c + d[0]) * 16)), int(round((c + d[1]) * 16))), 1.0, 1, cv2.LINE_AA, 4)
        img = cv2.filter2D(img, -1, kernel / kernel.sum())
        motion = {"length_px": length, "angle_deg": ang}
    h, w = img.shape[:2]
    noise = float(rng.uniform(*cfg.noise))
    # Shot noise grows with the signal: sigma = noise at mid grey (128), noise / 3 at black.
    lut = (noise * np.sqrt((np.arange(256) + 16.0) / 144.0)).astype(np.float32)
    scale = cv2.LUT(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), lut)
    tile = rng.standard_normal((NOISE_TILE, NOISE_TILE), dtype=np.float32)
    lum = np.tile(tile, (h // NOISE_TILE + 1, w // NOISE_TILE + 1))[:h, :w] * scale + 128.0
    lum8 = cv2.cvtColor(cv2.convertScaleAbs(lum), cv2.COLOR_GRAY2RGB)   # noise + 128, uint8
    chroma = rng.standard_normal((h // 4 + 1, w // 4 + 1, 3), dtype=np.float32) * (0.6 * noise)
    chroma8 = cv2.resize(cv2.convertScaleAbs(chroma + 128.0), (w, h),
                         interpolation=cv2.INTER_LINEAR)
    img = cv2.addWeighted(img, 1.0, lum8, 1.0, -128.0)
    img = cv2.addWeighted(img, 1.0, chroma8, 1.0, -128.0)
    amount = float(rng.uniform(0, cfg.sharpen_max))
    if amount > 0.05:
        img = cv2.addWeighted(img, 1 + amount, cv2.GaussianBlur(img, (0, 0), 1.2), -amount, 0)
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    return _jpeg(img, quality), {"blur_sigma_px": sigma, "motion": motion, "noise_sigma": noise,
                                 "sharpen": amount, "jpeg_quality": quality}


# --- truth ------------------------------------------------------------------------------------
def _map_box(box: list[float], fn) -> list[float]:
    """bbox of the mapped outline (5 points per side) of ``box`` ``[x0, y0, x1, y1]``."""
    x0, y0, x1, y1 = box
    t = np.linspace(0, 1, 5)
    pts = np.concatenate([np.column_stack((x0 + t * (x1 - x0), np.full(5, y0))),
                          np.column_stack((x0 + t * (x1 - x0), np.full(5, y1))),
                          np.column_stack((np.full(5, x0), y0 + t * (y1 - y0))),
                          np.column_stack((np.full(5, x1), y0 + t * (y1 - y0)))])
    q = fn(pts)
    return [float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())]


def _move_truth(truth: dict, fn, new_map: dict, image_hw: tuple[int, int], step: dict,
                rotation_deg: float, quarter_turns: int, page_ppm: float, page_hw) -> dict:
    """Deep copy of ``truth`` with every image coordinate moved by ``fn`` (input px -> output
    px) and ``photo`` set to the composed clean page -> output map."""
    out = copy.deepcopy({k: v for k, v in truth.items() if k != "panels"})
    out["panels"] = [{**copy.deepcopy({k: v for k, v in p.items() if k != "trace"}),
                      "trace": p["trace"]} for p in truth["panels"]]
    for p in out["panels"]:
        if p["trace"]:
            p["trace"] = np.round(fn(np.asarray(p["trace"], float)), 4).tolist()
        p["bbox"] = _map_box(p["bbox"], fn)
    for c in out["calibration"]:
        c["bbox"] = _map_box(c["bbox"], fn)
    if out.get("header", {}).get("bbox"):
        out["header"]["bbox"] = _map_box(out["header"]["bbox"], fn)
    old = truth.get("photo", {})
    photo = {"page_size": old.get("page_size", list(page_hw)),
             "page_px_per_mm": old.get("page_px_per_mm", page_ppm), "map": new_map,
             "rotation_deg": float(old.get("rotation_deg", 0.0) + rotation_deg),
             "quarter_turns": int((old.get("quarter_turns", 0) + quarter_turns) % 4),
             "steps": old.get("steps", []) + [step]}
    out["photo"] = photo
    out["image_size"] = [int(image_hw[0]), int(image_hw[1])]
    ph, pw = photo["page_size"]
    area = abs(cv2.contourArea(to_photo(_page_outline(ph, pw, 10), out).astype(np.float32)))
    ppm = math.sqrt(area / (ph * pw)) * photo["page_px_per_mm"]
    out["px_per_mm"], out["dpi"] = float(ppm), int(round(ppm * 25.4))
    art = out.setdefault("artefacts", {})
    art["kinds"] = list(art.get("kinds", [])) + [step["kind"]]
    return out


def _compose_map(truth: dict, forward, step_mm: float) -> tuple[dict, tuple[int, int], float]:
    """The clean page -> output map: ``forward`` after the truth's own map, if it has one."""
    old = truth.get("photo")
    if old is None:
        hw = tuple(truth["image_size"])
        ppm = float(truth["px_per_mm"])
        return _build_map(forward, hw, step_mm * ppm), hw, ppm
    hw, ppm = tuple(old["page_size"]), float(old["page_px_per_mm"])
    return _build_map(lambda p: forward(to_photo(p, truth)), hw, step_mm * ppm), hw, ppm


def _check(image: np.ndarray, truth: dict) -> None:
    check_rgb(image)
    if list(image.shape[:2]) != list(truth["image_size"]):
        raise ValueError(f"image is {image.shape[:2]} px but truth says {truth['image_size']}; "
                         "pass the truth that came with this image")


# --- one photo, step by step -----------------------------------------------------------------
def _draw_camera(rng, cfg: PhotoConfig, page: dict) -> tuple[float, dict]:
    """The drawn scale (dpi at the page centre) and the camera: tilt, distance, roll."""
    dpi = float(math.exp(rng.uniform(math.log(cfg.dpi_range[0]), math.log(cfg.dpi_range[1]))))
    turns = int(rng.choice(4, p=np.asarray(cfg.quarter_turn_p) / sum(cfg.quarter_turn_p)))
    rotation = float(rng.uniform(-1, 1) * cfg.rotation_deg_max)
    diag = math.hypot(page["w_mm"], page["h_mm"])
    cam = {"tilt_deg": float(rng.uniform(0, cfg.tilt_deg_max)),
           "azimuth_deg": float(rng.uniform(0, 360)),
           "distance_mm": float(diag * rng.uniform(*cfg.distance_range)),
           "roll_deg": rotation + 90.0 * turns, "quarter_turns": turns}
    cam["focal_px"] = dpi / 25.4 * cam["distance_mm"]
    return dpi, cam


def _warp_page(page_img: np.ndarray, m: dict, frame: tuple[int, int], grid_px: int,
               s_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The page resampled into the frame through ``m``: ``(warped RGB, alpha 0-255 on the page,
    clean-page px of the coarse photo grid)``. Each photo pixel's page point comes from Newton
    on a grid every ``grid_px`` px, upsampled bilinearly."""
    (fh, fw), (h, w) = frame, page_img.shape[:2]
    ch, cw = fh // grid_px, fw // grid_px
    coarse = _invert_grid(m, ch, cw, grid_px)
    far = np.where(np.isfinite(coarse), coarse, -1e4).astype(np.float32).reshape(ch, cw, 2)
    map_x = cv2.resize(np.ascontiguousarray(far[..., 0]), (fw, fh), interpolation=cv2.INTER_LINEAR)
    map_y = cv2.resize(np.ascontiguousarray(far[..., 1]), (fw, fh), interpolation=cv2.INTER_LINEAR)
    src = page_img
    if s_max < 1.0:                                  # minify first: no aliasing of thin lines
        sw, sh = max(2, int(round(w * s_max))), max(2, int(round(h * s_max)))
        src = cv2.resize(page_img, (sw, sh), interpolation=cv2.INTER_AREA)
        map_x = (map_x + 0.5) * (sw / w) - 0.5
        map_y = (map_y + 0.5) * (sh / h) - 0.5
    warped = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.remap(np.full(src.shape[:2], 255, np.uint8), map_x, map_y, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped, alpha, coarse


def _composite(warped: np.ndarray, alpha: np.ndarray, desk: np.ndarray, shade, drop, light,
               glare, wb, frame: tuple[int, int]) -> np.ndarray:
    """Light the page and the desk (coarse gains, 1/128 steps), blend by alpha, white-balance;
    all in uint8."""
    size = (frame[1], frame[0])
    lit_page = _gain(warped, shade * light, size)
    if glare.any():                                  # glare: towards white, on the page only
        keep = _up8(255 * (1 - glare), size)
        lit_page = cv2.bitwise_not(cv2.multiply(cv2.bitwise_not(lit_page), keep, scale=1 / 255))
    lit_desk = _gain(desk, drop * light, size)
    a3 = cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB)
    photo = cv2.add(cv2.multiply(lit_page, a3, scale=1 / 255),
                    cv2.multiply(lit_desk, cv2.bitwise_not(a3), scale=1 / 255))
    return cv2.transform(photo, np.diag(wb).astype(np.float32))


# --- public API --------------------------------------------------------------------------------
def photograph(image: np.ndarray, truth: dict, cfg: PhotoConfig = PhotoConfig(),
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, dict]:
    """A phone photo (or, with ``PRESETS["scan"]``, a flatbed scan) of a printed page.

    Parameters
    ----------
    image : ``(H, W, 3)`` uint8 RGB page (``ecgnb.render.render_page``, possibly after
        ``ecgnb.augment``'s paper kinds or ``photocopy``).
    truth : its ground truth (deep-copied; the copy follows the photo, see the module docstring).
    cfg : ranges the photo's parameters are drawn from.
    rng : the only source of randomness; the same seed gives the same photo.

    Returns
    -------
    image : ``(H', W', 3)`` uint8 RGB photo; its size follows the drawn scale (at most
        ``cfg.max_megapixels``).
    truth : the moved truth, with ``truth["photo"]`` holding the map and the drawn parameters.
    """
    _check(image, truth)
    rng = np.random.default_rng() if rng is None else rng
    h, w = image.shape[:2]
    ppm = float(truth["px_per_mm"])
    page = {"h_px": h, "w_px": w, "px_per_mm": ppm, "w_mm": w / ppm, "h_mm": h / ppm}
    dpi, cam = _draw_camera(rng, cfg, page)
    shape = _draw_shape(rng, cfg, page)
    for attempt in range(4):                       # flatten the page until it stays in view
        placed = dict(cam)
        frame = _fit_frame(rng, cfg, placed, page, shape)
        m = _build_map(lambda p: _project(_surface(p, page, shape), placed), (h, w),
                       cfg.map_step_mm * ppm)
        s_max, det_ratio = _local_scales(m, (h, w))
        if det_ratio > 0.15 or attempt == 3:
            break
        shape = _scaled_shape(shape, 0.5)
    cam = placed
    # The print itself: faded ink, crease marks.
    page_img, faded = _fade(image, rng) if rng.random() < cfg.fade_p else (image, None)
    if shape["folds"]:
        page_img = page_img.copy() if page_img is image else page_img
        _crease_marks(page_img, shape["folds"], page)
    grid_px = COARSE_PX[0] if frame[0] * frame[1] <= COARSE_MP_SPLIT * 1e6 else COARSE_PX[1]
    warped, alpha, coarse = _warp_page(page_img, m, frame, grid_px, s_max)
    desk, desk_info = _background(rng, cfg, cam, frame)
    fields = _light_fields(rng, cfg, coarse, (frame[0] // grid_px, frame[1] // grid_px), grid_px,
                           page, shape, cam)
    out, camera_info = _camera_processing(_composite(warped, alpha, desk, *fields[:5], frame),
                                          rng, cfg)
    step = {"kind": "photograph", "dpi_drawn": dpi,
            "dpi_at_centre": cam["focal_px"] / cam["distance_mm"] * 25.4, "camera": cam,
            "shape": shape, "background": desk_info, "light": fields[5], "faded": faded,
            **camera_info}
    full_map, page_hw, page_ppm = (m, (h, w), ppm) if "photo" not in truth else _compose_map(
        truth, lambda p: _project(_surface(p, page, shape), cam), cfg.map_step_mm)
    out_truth = _move_truth(truth, lambda p: _eval_map(m, p)[0], full_map, frame, step,
                            cam["roll_deg"] - 90.0 * cam["quarter_turns"], cam["quarter_turns"],
                            page_ppm, page_hw)
    return out, out_truth


def _line_level(image_lum: np.ndarray, truth: dict) -> float:
    """Median relative luminance on the grid's major lines (1.0 where the page has no grid)."""
    g = truth.get("grid")
    if not g:
        return 1.0
    x0, y0, x1, y1 = g["bbox"]
    xs = np.arange(x0, x1 + 1e-6, g["major_px"])
    ys = np.linspace(y0, y1, 60)
    pts = np.array([[x, y] for x in xs for y in ys])
    q = np.rint(to_photo(pts, truth)).astype(int)
    h, w = image_lum.shape
    ok = (q[:, 0] >= 0) & (q[:, 0] < w) & (q[:, 1] >= 0) & (q[:, 1] < h)
    if not ok.any():
        return 1.0
    vals = image_lum[q[ok, 1], q[ok, 0]]
    return float(np.median(vals[vals > 0.35])) if (vals > 0.35).any() else 1.0


def photocopy(image: np.ndarray, truth: dict, cfg: CopyConfig = CopyConfig(),
              rng: np.random.Generator | None = None) -> tuple[np.ndarray, dict]:
    """A black-and-white photocopy (or fax, or a faded copy) of a page, the same size as it.

    The tone curve's threshold sits above the grid's major lines (read where the truth puts
    them), so grid and trace both come out black; a faded copy is light and low in contrast.
    The page lies slightly askew on the glass (``truth`` moves along, as in ``photograph``).
    Returns ``(image, truth)``: ``(H, W, 3)`` uint8 with R = G = B.
    """
    _check(image, truth)
    rng = np.random.default_rng() if rng is None else rng
    h, w = image.shape[:2]
    ppm = float(truth["px_per_mm"])
    lum = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    paper_level = max(float(np.percentile(lum[::7, ::7], 95)), 1.0)
    rel = lum / paper_level
    sigma = float(rng.uniform(*cfg.blur_mm)) * ppm
    if sigma > 0.2:
        rel = cv2.GaussianBlur(rel, (0, 0), sigma)
    faded = bool(rng.random() < cfg.fade_p)
    grid_level = _line_level(rel, truth)
    threshold = float(rng.uniform(*cfg.threshold))
    if grid_level < 0.97:                            # a grid to keep: go black above its lines
        threshold = max(threshold, min(grid_level + GRID_MARGIN, 0.95))
    soft = float(rng.uniform(*cfg.softness)) * (2.0 if faded else 1.0)
    toner = float(rng.uniform(*(cfg.faded_toner if faded else cfg.toner)))
    paper = float(rng.integers(cfg.paper_grey[0], cfg.paper_grey[1] + 1))
    sig = lambda v: 1 / (1 + np.exp(-(v - threshold) / soft))  # noqa: E731
    lo, hi = sig(0.0), sig(1.0)
    y = np.clip((sig(rel) - lo) / (hi - lo), 0, 1).astype(np.float32)  # 1 = paper, 0 = toner
    # Toner grain on the dark parts, specks on the paper, streaks along the feed.
    grain = float(rng.uniform(*cfg.grain))
    noise = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), 0.7)
    y = np.clip(y + (1 - y) * grain * 3 * noise, 0, 1)
    black = 255 * (1 - toner)
    copy_img = black + (paper - black) * y
    n_specks = int(rng.uniform(*cfg.specks_per_cm2) * (w / ppm / 10) * (h / ppm / 10))
    for _ in range(n_specks):
        c = (int(rng.integers(w)), int(rng.integers(h)))
        cv2.circle(copy_img, c, max(1, int(round(rng.uniform(0.03, 0.12) * ppm))),
                   float(black + rng.uniform(0, 0.5) * (paper - black)), -1, cv2.LINE_AA)
    streaks = []
    if rng.random() < cfg.streak_p:
        for _ in range(int(rng.integers(1, 4))):
            x = int(rng.integers(w))
            width = int(rng.integers(1, 4))
            dark = float(rng.uniform(10, 45))
            copy_img[:, x:x + width] -= dark
            streaks.append({"x_px": x, "width_px": width, "darkening": dark})
    # Placement on the glass: rotation, scale, shift about the page centre (same output size).
    ang = float(rng.uniform(-1, 1) * cfg.rotation_deg_max)
    scale = float(rng.uniform(*cfg.scale))
    shift = rng.uniform(-1, 1, 2) * cfg.shift_mm_max * ppm
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    affine = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), ang, scale)
    affine[:, 2] += shift
    edge = bool(rng.random() < cfg.edge_p)
    fill = float(rng.uniform(20, 80)) if edge else paper
    out = cv2.warpAffine(copy_img, affine, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    out += rng.standard_normal((h, w), dtype=np.float32) * float(rng.uniform(0.5, 2.5))
    grey = np.clip(out, 0, 255).astype(np.uint8)
    result = cv2.merge([grey, grey, grey])
    quality = None
    if rng.random() < cfg.jpeg_p:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        result = _jpeg(result, quality, grey=True)
    forward = lambda p: p @ affine[:, :2].T + affine[:, 2]  # noqa: E731
    step = {"kind": "photocopy", "threshold": threshold, "grid_level": grid_level,
            "softness": soft, "toner": toner, "faded": faded, "paper_grey": paper,
            "blur_sigma_px": sigma, "grain": grain, "specks": n_specks, "streaks": streaks,
            "rotation_deg": ang, "scale": scale, "shift_px": shift.tolist(),
            "edge_fill": fill if edge else None, "jpeg_quality": quality}
    full_map, page_hw, page_ppm = _compose_map(truth, forward, cfg.map_step_mm)
    out_truth = _move_truth(truth, forward, full_map, (h, w), step, ang, 0, page_ppm, page_hw)
    return result, out_truth
