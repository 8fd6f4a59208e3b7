"""All configuration in one place: frozen dataclasses with typed defaults and named profiles.

Notebooks name a profile (``quick``, ``reference``); everything else is resolved here and
saved with every output (``Profile.to_dict``), so each artefact records the settings that made it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SignalConfig:
    fs: int = 500                 # Hz, sampling rate of every signal in the study
    duration_s: float = 10.0      # s, length of one record


@dataclass(frozen=True)
class PaperConfig:
    dpi: int = 200                # px per inch of the rendered page
    speed_mm_s: float = 25.0      # mm/s, paper speed
    gain_mm_mv: float = 10.0      # mm/mV, amplitude scale
    minor_mm: float = 1.0         # mm, minor grid spacing
    major_mm: float = 5.0         # mm, major grid spacing
    page_w_mm: float = 279.4      # mm, US-letter landscape width
    page_h_mm: float = 215.9      # mm, US-letter landscape height
    layout: str = "3x4+1"         # key of ecgnb.layouts.LAYOUTS
    trace_width_mm: float = 0.25  # mm, pen width of the ECG trace
    calibration_pulse: bool = True  # 1 mV x 0.2 s pulse at the start of each row
    header: bool = True           # print patient/recording header text

    @property
    def px_per_mm(self) -> float:
        """Pixels per millimetre at this dpi (25.4 mm per inch)."""
        return self.dpi / 25.4


@dataclass(frozen=True)
class PreprocessConfig:
    """Thresholds of the classical page preprocessing (``ecgnb.preprocess``: ``ecgnb.grid``,
    ``ecgnb.straighten``, ``ecgnb.layout_detect``). What the paper itself is (mm/s, mm/mV, grid
    spacing, the pulse's speed-dependent width) comes from ``PaperConfig``; "relative darkness" is
    ``1 - I / local paper`` (0..1, ``ecgnb.grid.darkness``)."""

    # --- loading ---
    min_page_px: int = 200            # px, shortest side a page may have (under ~100 dpi no trace is legible)
    # --- darkness, grid and trace ink (ecgnb.grid) ---
    background_kernel_div: int = 60   # the paper background's closing kernel is the short side (px) over this
                                      # (3.6 mm on a 200-dpi letter page: wider than a dense trace band,
                                      # narrower than wrinkle shadows; px/mm is not known yet)
    background_kernel_min_px: int = 7  # px, smallest closing kernel (tiny images)
    trace_darkness: float = 0.45      # relative darkness above which a pixel dark in every channel is trace ink
    grey_grid_darkness: float = 0.08  # relative darkness above which (up to trace_darkness) an achromatic pixel
                                      # is grid evidence: faint grey lines, darker than paper noise
    px_per_mm_range: tuple[float, float] = (2.0, 24.0)  # px/mm, plausible scan resolutions (about 50-600 dpi)
    autocorr_trend_px: int = 61       # px, box filter taking a profile's slow trend out before its
                                      # autocorrelation (well above any minor grid period)
    period_repeat: float = 0.5        # share of a grid period's autocorrelation peak that must come
                                      # back at twice its lag (else it is texture, not the grid)
    grid_xy_tol: float = 0.05         # relative x/y px/mm disagreement at which grid confidence falls to 0
    grid_strength_full: float = 0.3   # autocorrelation at the major period (0..1) that gives full confidence
    grid_confidence_min: float = 0.25  # 0..1, below this the grid is reported as not found
    grey_grid_spread: int = 40        # RGB levels: a grid colour whose channels differ less is grey, so trace
                                      # ink must be clearly darker than its lines (remove_grid)
    grey_grid_margin: float = 0.15    # relative darkness trace ink needs above a grey grid's lines (99th pct)
    grey_grid_threshold_max: float = 0.8  # relative darkness, the most that margin may raise the ink threshold to
    speck_area_mm2: float = 0.15      # mm^2, ink components smaller than this are JPEG or scanner noise
                                      # (a trace piece 0.25 mm wide and 1 mm long is already 0.25 mm^2)
    edge_mm: float = 2.0              # mm, ink this close to the image edge is the scan's edge or rotation fill
    # --- deskew and perspective (ecgnb.straighten) ---
    max_skew_deg: float = 10.0        # deg, largest rotation estimate_skew searches (and deskew can remove)
    skew_border_frac: float = 0.08    # share of each side estimate_skew ignores (scan framing, page edges)
    skew_steps_deg: tuple[float, float] = (0.5, 0.05)  # deg, coarse and fine steps of the skew search (the fine
                                      # search spans 1.2 coarse steps either side of the coarse answer)
    skew_min_deg: float = 0.02        # deg, deskew leaves a smaller skew alone (below what the search resolves;
                                      # resampling would only blur the page)
    rectify_xy_tol: float = 0.05      # relative x/y px/mm disagreement beyond which a page is not rectified
    rectify_window_mm: float = 15.0   # mm, width of the (Hann) window a grid line position is read in
    rectify_band_mm: float = 20.0     # mm, height (width) of the band averaged for vertical (horizontal) lines
    rectify_step_mm: float = 10.0     # mm between window centres
    rectify_min_shift_px: float = 1.5  # px: a page whose rectification moves no corner more stays as it is
                                      # (flat pages measure up to ~0.9 px: resampling would only blur them)
    rectify_min_inliers: float = 0.5  # share of line positions the fitted map must explain (0.7-0.97 on
                                      # rendered pages, under 0.4 where lines were mislabelled)
    rectify_tol_mm: float = 0.2       # mm, a line position farther from the fitted map is not grid
    # --- rows, time axis and calibration pulses (ecgnb.layout_detect) ---
    row_min_gap_mm: float = 8.0       # mm, ink-projection peaks closer than this are one row
    row_ink_half_mm: float = 4.0      # mm either side of a row's baseline whose ink counts as the row's
                                      # (coverage, picking rows; the trace spends most time there)
    row_min_coverage: float = 0.3     # 0..1, share of the time axis a row must ink for the layout to fit
    page_min_confidence: float = 0.6  # 0..1, without a grid a less confident layout means "not an ECG page"
    time_axis_half_mm: float = 4.0    # mm either side of a row's baseline whose ink marks the time axis
    trace_fs: float = 500.0           # Hz, sampling rate of the printed trace: its ink spans n - 1 samples,
                                      # one sample period shorter than the time axis
    ink_lead_mm: tuple[float, float] = (0.22, 0.145)  # mm the pen's ink reaches before the first / after
                                      # the last sample (measured on clean pages, 0.25 mm pen)
    row_slope_max_deg: float = 0.6    # deg, largest per-row tilt left after deskew (perspective)
    row_band_frac: float = 0.4        # share of the row spacing above and below a baseline in which its grid
                                      # slope and grid px/mm are measured
    row_end_tol_mm: float = 4.0       # mm, how far a row's trace end may lie from the page's
    row_shift_tol_mm: float = 5.0     # mm, largest shift of a row's time axis from the page's
    row_fit_tol_mm: float = 0.3       # mm, rows' trace ends this close to one straight line agree
    row_min_shift_mm: float = 0.3     # mm, rows closer than this to the page's time axis keep it
    row_width_tol: float = 0.01       # largest relative disagreement of a row's ends and its grid px/mm
    row_scale_tol: float = 0.02       # largest relative px/mm difference of a row from the page's
    trace_band_mm: tuple[float, float] = (2.0, 5.0)  # mm either side of the baseline: the narrow band a trace
                                      # start or end is read in, and the tall band its gap must leave empty
    trace_gap_max_mm: float = 4.0     # mm past the pulse's right stroke where a row's trace may start
    pulse_slide_mm: float = 0.5       # mm, a trace start found past the pulses this far right of the
                                      # page's time axis moves the axis there (it had slid onto them)
    keep_apex: bool = False           # keep a peak's column point beside the steep strokes' row
                                      # points (a narrow QRS apex, whose rows hold both strokes
                                      # merged, has no row point); the trace-network reader sets
                                      # it, the classical reader of the committed study does not
    split_strokes: bool = False       # a narrow QRS's rows, where its up- and downstroke's ink
                                      # merge, give both strokes' crossings from the ink's edges,
                                      # and each steep stroke's points are read in order
                                      # (``digitize.stroke_points``, ``digitize.order_strokes``);
                                      # the trace-network reader sets it, as keep_apex
    cal_pulse_s: float = 0.2          # s, calibration pulse width (5 mm at PaperConfig.speed_mm_s = 25 mm/s)
    cal_pulse_mv: float = 1.0         # mV, calibration pulse height (its mm give the print's mm/mV)
    cal_search_mm: tuple[float, float, float, float] = (15.0, 1.0, 14.0, 3.0)  # mm the pulse is searched
                                      # left of t = 0, right of it, above and below the row's baseline
    cal_stroke_mm: float = 6.0        # mm, ink a column needs to be one of the pulse's vertical strokes
    cal_width_range_mm: tuple[float, float] = (3.0, 8.0)  # mm, plausible distance of the pulse's two strokes
    cal_min_height_mm: float = 4.0    # mm, a shorter "pulse" is trace, not calibration
    cal_foot_tol_mm: float = 0.5      # mm, a right foot farther from the left stroke's bottom is trace
    pulse_consensus: bool = False     # a row's pulse whose height differs from the page's median
                                      # pulse by over ``cal_height_tol_mm`` takes its 0 mV line from
                                      # its flat top less that median (``layout_detect.agree_pulses``);
                                      # the trace-network reader sets it, as keep_apex
    cal_height_tol_mm: float = 0.5    # mm, see pulse_consensus
    own_row: bool = False             # a panel's trace path lying mostly in a neighbouring row's
                                      # half of its box (the neighbour's trace, followed where its own
                                      # is faint) is followed again, pulled hard to its own 0 mV line
                                      # (``digitize.panel_path``); the trace-network reader sets it,
                                      # as keep_apex
    through_mm: float = 0.0           # mm; > 0: columns where another row's stroke crosses a
                                      # trace, reaching this far past it both above and below,
                                      # are read from the trace either side, not from that stroke
                                      # (``digitize.crossed_columns``); the trace-network reader
                                      # sets it, as keep_apex
    edge_marks: bool = False          # drop the trace points over lead separator bars and the
                                      # calibration pulse's stroke at panels' edges
                                      # (``ecgnb.separators``); the trace-network reader sets it,
                                      # as keep_apex
    end_run: bool = False             # a row's trace ends at its last ink that closes 2 mm inked
                                      # for the most part (``layout_detect._trace_end``: not at a
                                      # grid line's stub just past it); off: at its last ink within
                                      # row_end_tol_mm. The trace-network reader sets it, as keep_apex
    sep_search_mm: float = 1.0        # mm either side of a panel edge a separator bar is looked for
    sep_band_mm: float = 8.0          # mm either side of the 0 mV line a bar may reach
    sep_min_mm: float = 2.0           # mm, a bar is at least this tall
    sep_width_max_mm: float = 1.2     # mm, and at most this wide
    sep_flat_mm: float = 0.2          # mm, its columns' tops (and bottoms) agree this closely
    sep_margin_px: float = 1.0        # px, trace points this close to a mark go with it


@dataclass(frozen=True)
class DataConfig:
    n_synthetic: int = 24         # synthetic records generated by ecgnb.synth
    use_real: bool = True         # also render the free records in ../shared/data/real-ecg
    real_folder: str | None = None  # other WFDB records instead (e.g. "data/ptb-xl", relative to the
                                    # project root); the shared holdout manifest still applies
    max_real: int | None = None   # use at most this many real records (first by name); None: all
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train/val/test fractions, by record
    severities: tuple[float, ...] = (0.0, 0.5, 1.0)         # artefact severity per rendered page
    show_progress: bool = True    # tqdm progress bars on long loops


# --- print style, phone photos, scans and photocopies (ecgnb.render, ecgnb.photo) ---

GRID_COLOURS: tuple[str, ...] = ("red", "pink", "orange", "brown", "green", "blue", "grey",
                                 "black", "none")   # keys of ecgnb.render.GRID_PALETTES


@dataclass(frozen=True)
class StyleConfig:
    """How a page is printed (``ecgnb.render.render_page(style=...)``). The defaults are the
    study's own look, bit for bit: ``None`` keeps what the renderer did before styles existed
    (the rose/salmon/coral/amber palettes and ink colours drawn from ``rng``, or rose and black
    without one). ``ecgnb.render.random_style`` draws one from a ``StyleRangeConfig``."""

    grid_colour: str | None = None    # one of GRID_COLOURS; None: the study's palette family
    paper_colour: tuple[int, int, int] | None = None  # RGB 0-255 of the paper; None: the palette's
    grid_contrast: float = 1.0        # scales the lines' colour difference from the paper (0: none)
    minor_lines: bool = True          # print the 1 mm lines (False: 5 mm lines only)
    minor_width_mm: float = 0.1       # mm, minor line width (never under 0.6 px)
    major_width_mm: float = 0.2       # mm, major line width (never under 1 px)
    trace_colour: tuple[int, int, int] | None = None  # RGB of trace and text; None: study's ink
    trace_width_mm: float | None = None  # mm, pen width (0.1-0.6 on real prints); None: PaperConfig's
    font: str = "simplex"             # cv2 Hershey font: simplex, plain, duplex, complex, triplex
    font_scale: float = 1.0           # text size relative to the study's (2.5 mm label cap height)
    label_position: str = "above"     # lead label: "above" (6 mm over the baseline), "below" the
                                      # baseline, or "corner" (top-left of the panel's cell)
    header_style: str = "standard"    # header text: "standard" (2 lines), "detailed" (4 lines:
                                      # demographics, intervals, a statement), "minimal" (1 line)
    separator: str = "tick"           # mark where a row's next lead starts: "tick" (thin, 3 mm on
                                      # the baseline), "bar" (0.6 mm wide, 7 mm tall, centred on the
                                      # new lead's first sample, as ECG-Image-Kit prints) or "none"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StyleRangeConfig:
    """What ``ecgnb.render.random_style`` draws a ``StyleConfig`` from (uniformly)."""

    grid_colours: tuple[str, ...] = GRID_COLOURS   # grid colours to pick from
    paper_tint_max: int = 12          # RGB levels a paper channel may fall below white
    grid_contrast: tuple[float, float] = (0.5, 1.4)    # range of StyleConfig.grid_contrast
    minor_lines_p: float = 0.85       # probability the 1 mm lines are printed
    minor_width_mm: tuple[float, float] = (0.05, 0.15)  # mm
    major_width_mm: tuple[float, float] = (0.1, 0.35)   # mm
    trace_colours: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (15, 15, 20), (10, 15, 45),
                                                       (40, 40, 40), (20, 40, 110))  # RGB
    trace_width_mm: tuple[float, float] = (0.1, 0.6)    # mm
    fonts: tuple[str, ...] = ("simplex", "plain", "duplex", "complex", "triplex")
    font_scale: tuple[float, float] = (0.7, 1.5)
    label_positions: tuple[str, ...] = ("above", "below", "corner")
    header_styles: tuple[str, ...] = ("standard", "detailed", "minimal")
    separators: tuple[str, ...] = ("tick",)  # separator marks to pick from (one: no draw, so the
                                      # styles of earlier seeds stay as they were)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PhotoConfig:
    """Ranges of the phone-photo (and flatbed-scan) simulation ``ecgnb.photo.photograph``; each
    photo draws its parameters uniformly from them (dpi log-uniformly). ``ecgnb.photo.PRESETS``
    names a phone and a scanner setting."""

    dpi_range: tuple[float, float] = (80.0, 600.0)  # px per inch of paper at the page centre (the
                                      # equivalent scan resolution); lowered where max_megapixels binds
    max_megapixels: float = 12.0      # MP, largest photo; a larger frame is scaled down
    tilt_deg_max: float = 35.0        # deg, camera axis away from the page normal (perspective)
    distance_range: tuple[float, float] = (0.9, 1.8)  # camera distance in page diagonals (nearer:
                                      # stronger keystone at the same tilt)
    rotation_deg_max: float = 15.0    # deg, in-plane rotation either way
    quarter_turn_p: tuple[float, float, float, float] = (0.7, 0.1, 0.1, 0.1)  # probability of a
                                      # further 0, 90, 180, 270 deg (counter-clockwise) turn
    margin_range: tuple[float, float] = (0.03, 0.2)  # background on each side, share of the
                                      # page's size in the photo (before frame_aspect widens it)
    cut_p: float = 0.0                # probability the frame cuts the page: on one side, or two
                                      # (a corner), the paper goes on beyond the photo
    cut_range: tuple[float, float] = (0.01, 0.05)  # share of the page's size cut off on such a side
    frame_aspect: float = 4 / 3       # long / short side of the photo (0: just page and margins)
    backgrounds: tuple[str, ...] = ("wood", "cloth", "plain")  # surfaces under the page: "wood"
                                      # grain, woven "cloth", "plain" desk, light "lid" (scanner)
    curl_deg_max: float = 40.0        # deg, most one edge curls up (a cylinder; paper length kept)
    bow_deg_max: float = 10.0         # deg, whole-page bow (a page kept rolled), at each edge
    bump_mm_max: float = 3.0          # mm, height of smooth random bumps (a page not lying flat)
    fold_p: float = 0.4               # probability the page was folded (1-2 folds at 1/2 or 1/3)
    fold_mm_max: float = 6.0          # mm, height of a fold's ridge above the desk
    light_gradient_max: float = 0.35  # 0..1, largest darkening across the frame (uneven light)
    vignette_max: float = 0.25        # 0..1, largest darkening of the frame's corners (lens)
    shadow_p: float = 0.6             # probability of a cast shadow (phone, hand)
    shadow_depth: tuple[float, float] = (0.2, 0.55)  # 0..1, share of the light the shadow takes
    glare_p: float = 0.2              # probability of a specular glare spot (glossy paper)
    white_balance_max: float = 0.12   # largest relative per-channel colour cast of the light
    exposure: tuple[float, float] = (0.85, 1.12)     # overall brightness gain
    fade_p: float = 0.15              # probability the print itself faded (ink lighter, paper yellower)
    blur_px_max: float = 1.2          # px, Gaussian defocus sigma in the photo
    motion_p: float = 0.15            # probability of camera shake (linear motion blur)
    motion_px_max: float = 3.0        # px, length of the shake
    noise: tuple[float, float] = (1.0, 6.0)          # grey levels, sensor noise sigma at mid grey
    sharpen_max: float = 0.8          # unsharp-mask amount of the phone's processing
    jpeg_quality: tuple[int, int] = (55, 95)         # JPEG quality range
    map_step_mm: float = 5.0          # mm between nodes of the stored page -> photo map

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CopyConfig:
    """Ranges of the black-and-white photocopy / fax / faded-print simulation
    ``ecgnb.photo.photocopy``. Levels are relative to the paper's luminance (1 = white)."""

    threshold: tuple[float, float] = (0.72, 0.88)   # relative luminance where the copy turns
                                      # from white to black (higher: more of the grid goes black);
                                      # raised to stay above the grid's major lines (ecgnb.photo)
    softness: tuple[float, float] = (0.01, 0.04)    # relative width of that transition (0: hard)
    toner: tuple[float, float] = (0.8, 1.0)         # density of solid black (1: pure black)
    fade_p: float = 0.2               # probability of a faded copy (light toner, low contrast)
    faded_toner: tuple[float, float] = (0.35, 0.6)  # density of solid black on a faded copy
    paper_grey: tuple[int, int] = (228, 252)         # grey level of the copy paper
    blur_mm: tuple[float, float] = (0.02, 0.08)      # mm, copier optics sigma before the tone curve
    grain: tuple[float, float] = (0.03, 0.12)        # relative toner grain on dark areas
    specks_per_cm2: tuple[float, float] = (0.0, 0.4)  # toner specks on the background
    streak_p: float = 0.3             # probability of drum streaks (faint lines along the feed)
    edge_p: float = 0.3               # probability of a dark band where the glass showed past the page
    rotation_deg_max: float = 1.5     # deg, page askew on the glass
    shift_mm_max: float = 3.0         # mm, page offset on the glass
    scale: tuple[float, float] = (0.97, 1.01)        # copier reduction/enlargement
    jpeg_p: float = 0.5               # probability the copy was scanned to JPEG (greyscale)
    jpeg_quality: tuple[int, int] = (60, 95)
    map_step_mm: float = 5.0          # mm between nodes of the stored page -> copy map

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RectifyConfig:
    """Settings of ``ecgnb.rectify``: from a photo or scan to a flat page at a known px/mm."""

    find_long_px: int = 800           # px, long side of the copy the paper is looked for on
    page_area_min: float = 0.15       # share of the frame: a smaller bright blob is not the page
    page_area_max: float = 0.97       # share of the frame: a larger one means the page fills it
    page_aspect_tol: float = 1.35     # an outline's long/short side ratio within this factor of the paper's
    paper_mm: tuple[float, float] = (279.4, 215.9)  # mm, the page's sides; used only to tell a
                                      # grid's 1 mm from its 5 mm lines when both could fit
    work_long_px: int = 1600          # px, long side of the working copy the lattice is read on
    lattice_px_range: tuple[float, float] = (4.0, 90.0)  # px, plausible spacing of the finest
                                      # grid lines on that copy (1 mm at 4 px/mm to 5 mm at 18 px/mm)
    lattice_xy_ratio_max: float = 1.2  # the spacings along x and y of one grid differ less
    lattice_strength_min: float = 0.06  # 0..1, share of the profiles' power a lattice must explain (pure
                                      # noise: ~0.02; the weakest grid of our simulated copies: 0.10)
    phase_sigma_periods: float = 1.2  # lattice spacings, Gaussian window of the local phase
    phase_sigma_min_px: float = 12.0  # px, at least (a 1 mm lattice needs more lines per window)
    node_step_periods: float = 1.0    # lattice spacings between the nodes of the displacement field
    node_min_px: float = 12.0         # px, at least
    line_min_contrast: float = 0.08   # 0..1, local grid-line contrast (|phase vector| / ink) a
                                      # node needs to count
    smooth_nodes: float = 1.0         # nodes, Gaussian smoothing of the displacement field
    smooth_rms_px: float = 2.0        # px RMS on the working copy under which a quadratic fit of the
                                      # field replaces it (a flat scan or copy)
    passes: int = 2                   # measurements of the field (each on the page flattened so far)
    outline_check_periods: float = 2.0  # lattice spacings of displacement beyond which a page
                                      # outline's flattening is checked against the whole frame's
    outline_check_ratio: float = 0.5  # the frame's lattice replaces the outline's only where it
                                      # needs under this share of its warping (a bogus outline's
                                      # homography leaves the lattice to undo a skew) ...
    outline_check_coverage: float = 0.8  # ... and is seen on this share of the outline's coverage
    fill_nodes: float = 6.0           # nodes, wider smoothing that fills where the grid is not seen
    refine_passes: int = 1            # re-measurements of the lattice on the flat page itself, at
                                      # its full resolution (composed into the map). Simulated
                                      # photos of the reference val split, trace_net aligned /
                                      # unaligned dB: 6.68 / 2.63 without either refinement,
                                      # 7.48 / 4.09 fine pass only, 7.67 / 5.85 both
    fine_lines: bool = True           # then a last pass on the 1 mm lines, where they show: the
                                      # nearest minor line on the whole, followed node to node
    fine_sigma_mm: float = 2.5        # mm, Gaussian window of that pass's local phase
    fine_step_mm: float = 2.0         # mm between its field's nodes
    fine_min_contrast: float = 0.15   # 0..1, 1 mm line contrast a node needs to move the page
    refine_min_confidence: float = 0.2  # flattening confidence under which the page is not
                                      # measured again: a "lattice" seen on a few spots of a page
                                      # without a grid (0.08 on one such val photo, 0.32 and up on
                                      # gridded ones) is noise at full resolution
    out_dpi: int = 200                # px per inch of the flat page (the classical reader's home)
    max_out_mp: float = 16.0          # MP, largest flat page
    map_step_px: int = 4              # px, output grid the source map is computed on (then linear)
    lattice_line_mm: float = 12.0     # mm, run a grid line keeps on a flat page (longer than any
                                      # flat stretch of trace; for the colour-free ink mask)
    lattice_margin: float = 0.12      # relative darkness ink needs above the grid lines' own
    line_band_mm: float = 0.35        # mm either side of a lattice line position the grid model covers
    line_probe_mm: float = 3.0        # mm, straight run that marks a grid-line pixel (grid_line_level)
    line_floor: float = 0.1           # relative darkness a line pixel needs to count there
    level_band_mm: float = 0.15       # mm either side of a 5 mm line position its darkness is read in
    line_level_quantile: float = 0.9  # quantile of line pixels' darkness taken as the lines' level
    dark_grid_level: float = 0.5      # relative darkness of grid lines from which they count as black
    thin_line_mm: float = 0.25        # mm, width of grid-line remnants the colour-free mask opens away
    bridge_mm: float = 0.4            # mm, gaps the colour-free mask closes where a trace crosses a line

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TraceNetConfig:
    """Settings of ``ecgnb.trace_net``: a per-pixel trace network on the page at 200 dpi
    (~7.9 px/mm), trained on patches of the profile's own rendered pages with a random look."""

    widths: tuple[int, ...] = (8, 16, 32, 48, 64)  # channels per U-Net level (stride 1, 2, 4, 8, 16)
    patch_px: int = 192               # px, side of a training patch (~24 mm at 200 dpi)
    batch_size: int = 12              # patches per optimiser step
    steps: int = 2200                 # most optimiser steps (the cosine schedule's length; ~0.8 s each)
    time_budget_s: float = 2400.0     # s, training stops (resumably) after this much wall time
    lr: float = 3e-3                  # peak AdamW learning rate (cosine to 0 over ``steps``)
    weight_decay: float = 1e-4        # AdamW decoupled weight decay
    pos_weight: float = 3.0           # BCE weight of trace pixels (~3 % of a page's pixels)
    soft_target: bool = False         # learn the pen's anti-aliased coverage of each pixel (its
                                      # sub-pixel edges), not its 0/1 footprint; off: a coverage
                                      # net read the reference val pages 15.26 dB vs 15.39
    on_trace: float = 0.7             # share of patches centred on a trace pixel (else anywhere)
    fade_trace: float = 0.0           # share of patches whose trace is printed lighter than its
                                      # grid (``trace_train.fade_trace``): thin grey traces of
                                      # real printouts, which the renderer's dark inks never show.
                                      # Off: nets trained with fade_trace 0.35 / 0.3 and band_p
                                      # 0 / 0.3 read photos-dev better (5.28 / 4.97 dB vs 4.26)
                                      # but eik-dev worse (8.33 / 9.66 vs 11.16) and the
                                      # reference val pages 16.08 / 16.08 vs 16.19
    fade_range: tuple[float, float] = (0.25, 0.7)  # how far such a trace is blended towards the paper
    band_p: float = 0.0               # share of patches crossed by a soft dark band (a crease, a
                                      # wrinkle's shade: ``trace_train.dark_band``), which is not trace
    photo_pages: int = 0              # train pages that also get a photographed twin
                                      # (``trace_train.photo_look``: the print as a phone photo
                                      # shows it, mapped back onto the page's pixels)
    style_pages: int = 0              # extra train pages: train-split records printed in a random
                                      # style (``render.random_style``: grid colour, line widths,
                                      # trace colour and width 0.1-0.6 mm, fonts, labels), which
                                      # the dataset's pages (the study's one style) never show
    style_photo_share: float = 0.5    # share of those styled pages that are also photographed
                                      # (``trace_train.photo_look``) instead of kept as printed
    init_from: str = ""               # checkpoint whose weights a fresh run starts from ("":
                                      # random), relative to the repository root
    scale_range: tuple[float, float] = (0.8, 1.25)  # patch rescaling: pages not exactly 200 dpi
    val_pages: int = 12               # val pages the fixed validation patches come from
    val_patches: int = 96             # fixed validation patches (scored every ``val_every`` steps)
    val_every: int = 250              # steps between validations and checkpoints
    threshold: float = 0.5            # probability above which a pixel is trace ink
    tile_px: int = 2560               # px, inference tile side (memory; a 200-dpi letter page is one
                                      # tile), tiles overlapping by ``tile_overlap_px``
    tile_overlap_px: int = 48         # px, more than the network's useful context on each side
    threads: int = 2                  # torch CPU threads while training
    seed: int = 0                     # torch and patch sampling seed

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TraceReadConfig:
    """How ``ecgnb.trace_reader`` turns the trace network's probability into the reader's ink."""

    threshold: float = 0.5            # probability above which a pixel is the network's ink (a
                                      # lower one, grown from it by hysteresis, was tried: no
                                      # better on the reference val pages, worse on their B/W copies)
    vote_share: float = 0.1           # share of a colour-rule ink blob the network must mark for
                                      # the whole blob to be kept (its stretches on grid lines too)
    solid_mm: float = 2.0             # mm: a colour-rule ink area solid over a square of this
                                      # side (holes of a pixel filled) is a shadow or a stain, not
                                      # ink, and is not voted in with the trace it touches (0: off;
                                      # trace_reader.voted_ink). A dark blob joined to a row's
                                      # trace made its path zigzag through the blob. eik-dev
                                      # aligned dB 12.63 without, 12.73 with; reference val and
                                      # photos-dev unchanged (17.19, 6.53)
    coverage: str = "choose"          # the pen's coverage per px the read-out centres on: "network"
                                      # (its probability turned back into coverage), "darkness" (the
                                      # page's own, inside the network's mask) or "choose": read with
                                      # both, keep the one whose limb leads agree best. Reference val
                                      # pages, aligned dB: network 15.70, darkness 15.60, choose 15.96
                                      # (darkness wins on clean prints, the network on degraded ones)
    bridge_mm: float = 0.5            # mm: vertical gaps shorter than this in a column of the ink
                                      # are filled before the traces are read (a thin steep QRS
                                      # stroke the network breaks); layout and time axes come from
                                      # the ink as it is. Reference val pages, aligned / unaligned
                                      # dB: 15.79 / 13.82 without, 15.96 / 13.92 with (bridging
                                      # before the layout too: 16.06 / 13.44)
    hole_mm: float = 0.9              # mm: holes in the ink at most this tall (2 mm wide, no slit)
                                      # that the page prints dark are filled before the traces are
                                      # read (trace_reader.filled_holes: a copy's black grid line cut
                                      # from a thick QRS, the network's pinholes in a thick stroke;
                                      # 0: off). Chosen on val sets only, as the highest mean of the
                                      # sets: reports/benchmarks/hole_mm_val.md
    weak_mm: float = 0.5              # mm-equivalent per column the trace's path pays through ink the
                                      # network does not mark (half of skipping a column: a voted
                                      # flat stretch is still kept). Without it a grid line on the
                                      # 0 mV line, kept with the trace's blob, carried the path past
                                      # deep S waves on printed photos. Reference val pages, aligned
                                      # / unaligned dB: 16.15 / 14.13 without, 16.19 / 14.17 with
    gridless_scale: bool = True       # a page with no grid found is read again at the scale of its
                                      # calibration pulses (ecgnb.scale; off: at the profile's dpi).
                                      # See reports/benchmarks/gridless.md
    split_strokes: str = "grey"       # where steep QRS strokes are read finer
                                      # (PreprocessConfig.split_strokes): "grey" on pages with grey
                                      # levels (not on a black-and-white-only page, whose ink edges
                                      # give no sub-pixel position), "always" or "never". See
                                      # reports/benchmarks/split_strokes_val*.md
    lowpass_hz: float = 60.0          # Hz: each lead's reading is low-passed here (zero-phase
                                      # Butterworth, order 2; 0: off; ``trace_reader.low_passed``).
                                      # One column of a 200-dpi page is 5 ms: what the read-out
                                      # adds above ~60 Hz is mostly pen, paper and JPEG jitter.
                                      # Chosen on val sets only (see ``low_passed``)


# Named sizes of the trace network's training: "quick" proves the chain in seconds (tests, CI);
# "reference" is the committed models/trace_net.pt (about 30 min on 2 idle CPU cores).
TRACE_NET_PRESETS: dict[str, TraceNetConfig] = {
    "quick": TraceNetConfig(widths=(4, 8, 8, 16, 16), patch_px=96, batch_size=4, steps=6,
                            time_budget_s=120.0, val_pages=2, val_patches=4, val_every=3),
    "reference": TraceNetConfig(),
    # The reference network fine-tuned with photographed twins of 100 train pages.
    "photo": TraceNetConfig(photo_pages=100, init_from="models/trace_net_reference.pt", steps=900,
                            lr=1e-3, time_budget_s=1800.0),
    # The photo network (kept as ``models/trace_net_photo.pt``) fine-tuned further with 200
    # train records printed in random styles, half of them photographed.
    "styles": TraceNetConfig(photo_pages=100, style_pages=200, init_from="models/trace_net_photo.pt",
                             steps=1200, lr=1e-3, time_budget_s=1800.0),
}


# --- the learned digitizer (ecgnb.panels, ecgnb.model, ecgnb.train) ---

@dataclass(frozen=True)
class CropConfig:
    """Geometry of one crop and its target."""

    height: int = 96            # rows per crop
    half_mm: float = 24.0       # mm above (and below) the 0 mV line the crop spans (2.4 mV at 10 mm/mV);
                                # at 16 mm, 12 % of the reference val crops had peaks outside the crop
    cols_per_s: int = 200       # crop columns per second of record (page: ~197 px/s at 200 dpi)
    window_s: float = 2.5       # s per crop; longer panels are cut into windows of this length
    fs: int = 500               # Hz, sampling rate of the target signal
    gain_mm_mv: float = 10.0    # mm/mV, printed amplitude scale
    speed_mm_s: float = 25.0    # mm/s, printed paper speed
    blur_px: float = 2.0        # px, vertical Gaussian sigma on the ink map before sampling (anti-alias:
                                # crop rows are 0.5 mm, ~4 px at 200 dpi, apart)
    preprocess: bool = True     # False: ablation "without preprocessing": the page as given (no
                                # deskew, grid kept), panels at the renderer's template positions
    trace_channel: bool = True  # add a 2nd channel: the front's reading of the trace drawn as a line
                                # (needs preprocess; the model then refines that reading)
    front: str = "classical"    # what cuts the crops and reads the trace channel: "classical"
                                # (ecgnb.digitize; ink = the page's darkness) or "trace_net" (the
                                # per-pixel trace network's reader, ecgnb.trace_reader; ink = the
                                # network's trace probability on its flattened or straightened page)

    @property
    def channels(self) -> int:
        """Input channels of a crop: ink, plus the classical trace when ``trace_channel``."""
        return 2 if (self.trace_channel and self.preprocess) else 1

    @property
    def width(self) -> int:
        """Columns per crop."""
        return int(round(self.cols_per_s * self.window_s))

    @property
    def n_samples(self) -> int:
        """Target samples per crop."""
        return int(round(self.fs * self.window_s))

    @property
    def mv_per_row(self) -> float:
        """mV between two crop rows."""
        return 2 * self.half_mm / (self.height - 1) / self.gain_mm_mv

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CropConfig":
        """Inverse of ``to_dict``; crops saved before ``trace_channel`` existed had none."""
        return cls(**{"trace_channel": False, **d})


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the three parts (``ecgnb.model``); nothing about the crops.

    The crop geometry (rows H, columns W, channels C, output samples T, mV at the top row) is the
    ``CropConfig``'s: ``MultimodalECG(model_cfg, crop_cfg)`` reads it from there, and every
    checkpoint stores both.
    """

    channels: tuple[int, ...] = (16, 32, 48, 64)  # image-encoder stage widths; each halves H
    width_strides: tuple[int, ...] = (2, 2, 1, 1)  # image-encoder stage strides along W
    hidden: int = 64                  # channels of the 1-D (time) stacks
    latent_dim: int = 32              # D, channels of the shared latent sequence
    n_blocks: int = 3                 # ResBlock1d per 1-D stack (image head, signal encoder, decoder)
    kernel_size: int = 5              # kernel of the 1-D convolutions
    dropout: float = 0.0              # dropout in every block
    variational: bool = False         # VAE latent: encoders give mu and logvar, z ~ N(mu, exp(logvar))
    coord_channel: bool = True        # add a fixed row-position channel to the image (CoordConv)
    row_heads: int = 4                # row-attention heads after stage 1: soft-argmax row per column (0: off)
    signal_encoder: bool = True       # build the signal encoder (False: image-only ablation; ecgnb.train
                                      # sets it from TrainConfig.multimodal)
    residual: bool = True             # decode a correction to the classical reading (the trace channel's
                                      # row centroid per column) instead of the whole signal, where the
                                      # crops have the trace channel (ink-only crops: off, see ``resolved``)

    # Fields of checkpoints saved before the geometry moved to CropConfig (``from_dict`` drops them).
    LEGACY_GEOMETRY = ("crop_height", "in_channels", "crop_width", "out_samples", "readout_mv")

    def latent_len(self, crop: CropConfig) -> int:
        """L, latent steps: crop columns over the product of the width strides."""
        return crop.width // math.prod(self.width_strides)

    def patch(self, crop: CropConfig) -> int:
        """Output samples per latent step (T / L)."""
        return crop.n_samples // self.latent_len(crop)

    def resolved(self, crop: CropConfig) -> "ModelConfig":
        """This architecture as built on ``crop``: the residual decoder needs the trace channel, so
        on ink-only crops (``crop.channels == 1``) it is off. What a checkpoint stores."""
        return dataclasses.replace(self, residual=self.residual and crop.channels == 2)

    def validate(self, crop: CropConfig) -> None:
        assert len(self.channels) == len(self.width_strides), \
            f"channels {self.channels} and width_strides {self.width_strides} need one entry per stage"
        assert crop.width % math.prod(self.width_strides) == 0, \
            f"crop width {crop.width} (cols_per_s * window_s) must be divisible by the width strides' product"
        assert crop.n_samples % self.latent_len(crop) == 0, \
            f"crop n_samples {crop.n_samples} must be a multiple of latent_len {self.latent_len(crop)}"
        assert crop.height % 2 ** len(self.channels) == 0, \
            f"crop height {crop.height} must be divisible by 2**{len(self.channels)} (one halving per stage)"

    def to_dict(self) -> dict:
        """Plain dict (tuples as lists), safe for ``torch.load(weights_only=True)``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Inverse of ``to_dict``. Older checkpoints: the geometry fields they restated are dropped
        (the geometry is their ``crop``'s), and those saved before ``residual`` had none."""
        d = {"residual": False, **{k: v for k, v in d.items() if k not in cls.LEGACY_GEOMETRY}}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

# --------------------------------------------------------------------------------------------
# The three parts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, losses, stopping and runtime settings of one training run."""

    epochs: int = 30                  # most epochs to run
    batch_size: int = 32              # crops per optimiser step (per process under DDP)
    lr: float = 2e-3                  # peak learning rate of AdamW
    weight_decay: float = 1e-4        # AdamW decoupled weight decay
    schedule: str = "cosine"          # "cosine": linear warm-up then cosine to 0; "onecycle": lr/25 -> lr -> lr/1e4; "constant"
    warmup_frac: float = 0.05         # share of all steps spent warming up (onecycle: rising)
    grad_clip: float = 1.0            # max global grad norm (0: no clipping)
    w_image: float = 1.0              # weight of the image -> signal reconstruction (mV^2)
    w_signal: float = 0.5             # weight of the signal -> signal reconstruction (mV^2)
    w_align: float = 0.5              # weight of the latent alignment MSE (image vs signal latent)
    w_readout: float = 0.0            # weight of the row-attention readout MSE (mV^2, at stage-1 columns);
                                      # off: on quick data it gave 11.1 vs 11.2 dB val crop SNR at 8 epochs
    detach_signal_latent: bool = True # alignment treats the signal latent as a fixed target
    beta_kl: float = 1e-3             # weight of the KL term when the model is variational
    patience: int = 8                 # stop after this many epochs without a better val SNR
    seed: int = 0                     # torch seed: initialisation, data order, dropout, sampling
    multimodal: bool = True           # False: image-only ablation (no signal encoder, no alignment)
    threads: int = 2                  # torch CPU threads (shared machines: keep small)
    device: str = "auto"              # "auto" (CUDA when available), "cpu" or "cuda"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    seed: int = 0
    signal: SignalConfig = field(default_factory=SignalConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    data: DataConfig = field(default_factory=DataConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    publish_model: bool = True    # notebook 04 copies its best multimodal model to models/default.pt
    variants: tuple[str, ...] = ("multimodal", "image_only", "no_trace", "no_preprocess")  # notebook 04
    compare_pages: int | None = None  # val pages notebook 04 digitizes per variant (None: all)

    def to_dict(self) -> dict:
        """Plain-JSON view of the resolved configuration."""
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    # Whole chain in a few minutes on 2 cores; the default for tests and CI.
    "quick": Profile(name="quick", seed=0, data=DataConfig(n_synthetic=24),
                     train=TrainConfig(epochs=4, patience=4), publish_model=False,
                     variants=("multimodal", "image_only"), compare_pages=8),
    # The quick data with ~30 min of training per variant on 2 CPU cores (a longer-training
    # check of the quick data; the published checkpoint comes from "reference").
    "quick-long": Profile(name="quick-long", seed=0, data=DataConfig(n_synthetic=24),
                          train=TrainConfig(epochs=30, patience=8), publish_model=False),
    # The reference run whose figures and tables are committed and whose multimodal model is
    # models/default.pt: the largest data and training that fit about an hour of training on
    # 2 CPU cores for the four variants of notebook 04.
    "reference": Profile(name="reference", seed=0, data=DataConfig(n_synthetic=120),
                         train=TrainConfig(epochs=12, patience=5)),
    # The full PTB-XL (download it into data/ptb-xl/; its strat_fold gives the splits) plus
    # synthetic records: for a GPU or a long CPU night (not run for the committed reports).
    "ptbxl": Profile(name="ptbxl", seed=0,
                     data=DataConfig(n_synthetic=200, real_folder="data/ptb-xl", max_real=5000),
                     train=TrainConfig(epochs=40, patience=8)),
    # A larger synthetic run for a GPU or a long CPU night (not run for the committed reports).
    "large": Profile(name="large", seed=0,
                     data=DataConfig(n_synthetic=600, severities=(0.0, 0.25, 0.5, 0.75, 1.0)),
                     train=TrainConfig(epochs=40, patience=8)),
}


def get_profile(name: str) -> Profile:
    """Return the named profile; a clear ``ValueError`` lists the known ones."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}")
    return PROFILES[name]


def with_overrides(profile: Profile, seed: int | None = None, n_synthetic: int | None = None,
                   severities: tuple[float, ...] | None = None, dpi: int | None = None,
                   layout: str | None = None, use_real: bool | None = None) -> Profile:
    """Return ``profile`` with the given fields replaced (``None`` keeps the profile's value).

    Notebooks call this with their papermill parameters so a run can shrink or reseed a profile
    without editing it; the resolved profile is what gets saved with the outputs.
    """
    data = dataclasses.replace(
        profile.data,
        **{k: v for k, v in dict(n_synthetic=n_synthetic, use_real=use_real,
                                 severities=tuple(severities) if severities is not None else None
                                 ).items() if v is not None})
    paper = dataclasses.replace(
        profile.paper, **{k: v for k, v in dict(dpi=dpi, layout=layout).items() if v is not None})
    return dataclasses.replace(profile, data=data, paper=paper,
                               seed=profile.seed if seed is None else int(seed))
