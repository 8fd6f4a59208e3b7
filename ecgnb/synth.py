"""Synthetic 12-lead ECGs from a moving heart dipole, with no download.

The heart is modelled as one 3-D dipole (a vectorcardiogram, Frank axes: X to the patient's
left, Y to the feet, Z to the back). Each beat is a sum of Gaussian waves (P, Q, R, S, T), each
with its own time offset, width and 3-D vector in mV. The dipole is projected onto the eight
independent leads (I, II, V1-V6) with the Dower matrix; baseline wander and noise are added to
those eight only, and ``ecgnb.leads.assemble`` derives III, aVR, aVL and aVF, so the Einthoven
and Goldberger relations hold exactly.

``synth_record`` draws one record from an ``rng``; ``synth_records`` makes ``n`` named records,
each from its own child seed. ``signal_stats`` / ``stats_table`` summarise records (synthetic or
real) so that the two can be compared side by side.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import signal as sps

from ecgnb.config import SignalConfig
from ecgnb.leads import LEAD_NAMES, assemble

# Leads computed from the dipole; every other lead is derived from these by `assemble`.
INDEPENDENT_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")

# Dower matrix: lead voltage = row . (X, Y, Z) of the Frank VCG, all in mV (Dower et al. 1980,
# as tabulated by Edenbrandt & Pahlm 1988). Shape (8, 3), rows in INDEPENDENT_LEADS order.
DOWER = np.array([
    [0.632, -0.235, 0.059],    # I
    [0.235, 1.066, -0.132],    # II
    [-0.515, 0.157, -0.917],   # V1
    [0.044, 0.164, -1.387],    # V2
    [0.882, 0.098, -1.277],    # V3
    [1.213, 0.127, -0.601],    # V4
    [1.125, 0.127, -0.086],    # V5
    [0.831, 0.076, 0.230],     # V6
])

# Frontal-plane part of leads I and aVF (= II - I/2) as a map from (X, Y): used to turn a
# wanted electrical axis (the angle clinicians read from I and aVF) into a dipole direction.
_FRONTAL = np.array([[DOWER[0, 0], DOWER[0, 1]],
                     [DOWER[1, 0] - DOWER[0, 0] / 2, DOWER[1, 1] - DOWER[0, 1] / 2]])


@dataclass(frozen=True)
class SynthRanges:
    """Ranges the generator draws from (uniformly unless said otherwise)."""
    hr_bpm: tuple[float, float] = (45.0, 130.0)      # bpm, mean heart rate
    axis_deg: tuple[float, float] = (-30.0, 100.0)   # deg, frontal QRS axis (0 = lead I, 90 = aVF)
    turn_deg: tuple[float, float] = (-20.0, 20.0)    # deg, turn about the vertical (V transition)
    r_mv: tuple[float, float] = (0.9, 1.9)           # mV, length of the main QRS (R) vector
    qrs_ms: tuple[float, float] = (80.0, 115.0)      # ms, QRS duration
    pr_ms: tuple[float, float] = (120.0, 200.0)      # ms, PR interval (P onset to QRS onset)
    qtc_ms: tuple[float, float] = (380.0, 450.0)     # ms, heart-rate corrected QT (Bazett)
    t_mv: tuple[float, float] = (0.2, 0.6)           # mV, length of the T vector
    t_inverted_p: float = 0.1                        # probability that T points against the QRS
    p_mv: tuple[float, float] = (0.1, 0.25)          # mV, length of the P vector
    rr_jitter: tuple[float, float] = (0.01, 0.04)    # fraction of RR, random beat-to-beat spread
    rsa: tuple[float, float] = (0.0, 0.05)           # fraction of RR, respiratory sinus arrhythmia
    resp_hz: tuple[float, float] = (0.15, 0.35)      # Hz, breathing rate (RR, amplitude and wander)
    ectopic_p: float = 0.15                          # probability of one ectopic beat per record
    wander_mv: tuple[float, float] = (0.02, 0.15)    # mV, baseline wander amplitude per lead
    noise_mv: tuple[float, float] = (0.003, 0.025)   # mV, std of white (EMG-like) noise per lead
    powerline_mv: tuple[float, float] = (0.0, 0.015)  # mV, mains hum amplitude (50 or 60 Hz)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _rotation(axis: str, deg: float) -> np.ndarray:
    """3x3 rotation matrix about Frank axis 'y' or 'z' by ``deg`` degrees."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    if axis == "z":   # frontal plane; with Y pointing to the feet, +deg turns toward aVF
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    if axis == "y":   # horizontal plane; +deg turns the left (X) toward the back (Z)
        return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
    raise ValueError(f"rotation axis must be 'y' or 'z', got {axis!r}")


def _frontal_angle(axis_deg: float) -> float:
    """Dipole angle in the X-Y plane (deg) whose projection on I and aVF reads ``axis_deg``.

    The Dower leads are not exactly the hexaxial ideal, so rotating by the axis itself would
    misplace it by up to ~20 deg; solving the 2x2 frontal map puts it where asked.
    """
    a = np.radians(axis_deg)
    x, y = np.linalg.solve(_FRONTAL, [np.cos(a), np.sin(a)])
    return float(np.degrees(np.arctan2(y, x)))


def _waves(offsets_s, left_s, right_s, vectors_mv) -> dict[str, np.ndarray]:
    """A beat template: per wave its peak offset from the R peak, left/right widths, 3-D vector."""
    return {"offset": np.asarray(offsets_s, float), "left": np.asarray(left_s, float),
            "right": np.asarray(right_s, float), "vector": np.asarray(vectors_mv, float)}


def _sinus_template(rng: np.random.Generator, rr_s: float, r: SynthRanges) -> tuple[dict, dict]:
    """Draw the P-QRS-T morphology of a normal (sinus) beat; also return the drawn parameters."""
    p = {"axis_deg": _uniform(rng, r.axis_deg), "turn_deg": _uniform(rng, r.turn_deg),
         "r_mv": _uniform(rng, r.r_mv), "qrs_ms": _uniform(rng, r.qrs_ms),
         "pr_ms": _uniform(rng, r.pr_ms), "qtc_ms": _uniform(rng, r.qtc_ms),
         "t_mv": _uniform(rng, r.t_mv), "p_mv": _uniform(rng, r.p_mv),
         "t_inverted": bool(rng.random() < r.t_inverted_p)}
    qrs = p["qrs_ms"] / 1000.0
    p["qt_ms"] = p["qtc_ms"] * np.sqrt(rr_s)          # Bazett: QT = QTc * sqrt(RR / 1 s)
    # Vectors drawn at axis 0 (along lead I), then turned as a whole: septal q to the right and
    # front, main R to the left and slightly back, terminal S up and back (deep S in V1-V2).
    jitter = rng.normal(0.0, 0.08, size=(3, 3))
    q_vec = np.array([-0.10, 0.0, -0.12]) + 0.15 * jitter[0]
    r_vec = np.array([1.0, 0.0, 0.35]) + jitter[1] * 0.5
    s_vec = np.array([-0.15, -0.15, 0.55]) + jitter[2]
    t_dir = np.array([0.85, 0.0, -0.30]) @ _rotation("z", float(rng.normal(0.0, 20.0))).T
    t_vec = (-1.0 if p["t_inverted"] else 1.0) * p["t_mv"] * t_dir / np.linalg.norm(t_dir)
    turn = _rotation("z", _frontal_angle(p["axis_deg"])) @ _rotation("y", p["turn_deg"])
    qrs_t = np.stack([q_vec, r_vec / np.linalg.norm(r_vec), s_vec, t_vec]) @ turn.T
    qrs_t[:3] *= p["r_mv"]                             # QRS scales together; T has its own size
    # P stays near +60 deg whatever the QRS axis (atria are not rotated with the ventricles).
    p_vec = p["p_mv"] * np.array([0.5, 0.85, -0.15])
    sig_p = 0.022
    sig_t = 0.045 * np.sqrt(rr_s) + 0.01
    t_peak = p["qt_ms"] / 1000.0 - 0.45 * qrs - 2.0 * sig_t     # T ends ~2 sigma after its peak
    p_peak = -0.45 * qrs - p["pr_ms"] / 1000.0 + 2.0 * sig_p     # P starts ~2 sigma before its peak
    template = _waves(
        offsets_s=[p_peak, -0.28 * qrs, 0.0, 0.28 * qrs, t_peak],
        left_s=[sig_p, 0.08 * qrs, 0.11 * qrs, 0.09 * qrs, 1.5 * sig_t],   # T rises slower
        right_s=[sig_p, 0.08 * qrs, 0.11 * qrs, 0.10 * qrs, sig_t],
        vectors_mv=np.vstack([p_vec, qrs_t]))
    return template, p


def _ectopic_template(rng: np.random.Generator, sinus: dict) -> dict:
    """A wide, P-less ventricular beat with a random QRS direction and a discordant T."""
    direction = rng.normal(size=3)
    qrs_vec = _uniform(rng, (1.5, 2.5)) * direction / np.linalg.norm(direction)
    width = _uniform(rng, (0.13, 0.17))            # s, wide QRS
    t_offset = float(sinus["offset"][-1]) + 0.04
    return _waves(offsets_s=[0.0, 0.3 * width, t_offset],
                  left_s=[0.2 * width, 0.2 * width, 0.07],
                  right_s=[0.2 * width, 0.2 * width, 0.05],
                  vectors_mv=[qrs_vec, 0.3 * qrs_vec, -0.3 * qrs_vec])


def _beat_times(rng: np.random.Generator, rr_s: float, duration_s: float,
                r: SynthRanges) -> tuple[np.ndarray, np.ndarray, dict]:
    """R-peak times (s) and beat kinds (0 sinus, 1 ectopic) covering [-RR, duration + RR]."""
    jitter, rsa = _uniform(rng, r.rr_jitter), _uniform(rng, r.rsa)
    resp_hz, resp_phase = _uniform(rng, r.resp_hz), _uniform(rng, (0, 2 * np.pi))
    times, t = [], -rng.uniform(0.0, rr_s)             # start mid-cycle, like a real recording
    while t < duration_s + rr_s:
        times.append(t)
        breath = np.sin(2 * np.pi * resp_hz * t + resp_phase)
        t += rr_s * (1.0 + rsa * breath + jitter * rng.standard_normal())
    times, kinds = np.array(times), np.zeros(len(times), dtype=int)
    inside = np.flatnonzero((times > 1.0) & (times < duration_s - 1.0))
    if rng.random() < r.ectopic_p and inside.size:
        k = int(rng.choice(inside))
        times[k] = times[k - 1] + 0.6 * (times[k] - times[k - 1])   # premature, then the sinus
        kinds[k] = 1                                                 # schedule resumes (pause)
    drawn = {"rr_jitter": jitter, "rsa": rsa, "resp_hz": resp_hz, "resp_phase": resp_phase}
    return times, kinds, drawn


def _dipole(t: np.ndarray, r_times: np.ndarray, kinds: np.ndarray, templates: list[dict],
            scales: np.ndarray) -> np.ndarray:
    """Heart vector ``(n_samples, 3)`` mV: the sum of every beat's asymmetric Gaussian waves."""
    vcg = np.zeros((t.size, 3))
    for r_time, kind, scale in zip(r_times, kinds, scales):
        w = templates[kind]
        dt = t[:, None] - (r_time + w["offset"])[None, :]            # (n, n_waves) s
        width = np.where(dt < 0, w["left"], w["right"])
        vcg += scale * np.exp(-0.5 * (dt / width) ** 2) @ w["vector"]
    return vcg


def _artefacts(rng: np.random.Generator, t: np.ndarray, fs: int, resp: dict,
               r: SynthRanges) -> tuple[np.ndarray, dict]:
    """Baseline wander, white noise and mains hum for each independent lead, ``(n, 8)`` mV."""
    n_leads = len(INDEPENDENT_LEADS)
    wander_mv, noise_mv = _uniform(rng, r.wander_mv), _uniform(rng, r.noise_mv)
    slow_hz = _uniform(rng, (0.03, 0.1))              # drift slower than breathing (electrode)
    gains = wander_mv * rng.uniform(0.3, 1.0, size=(2, n_leads))
    phases = rng.uniform(0, 2 * np.pi, size=(2, n_leads))
    wander = (gains[0] * np.sin(2 * np.pi * resp["resp_hz"] * t[:, None] + phases[0])
              + gains[1] * np.sin(2 * np.pi * slow_hz * t[:, None] + phases[1]))
    noise = noise_mv * rng.standard_normal((t.size, n_leads))
    mains_hz = float(rng.choice([50.0, 60.0]))
    mains_mv = _uniform(rng, r.powerline_mv)
    mains_phase = rng.uniform(0, 2 * np.pi, size=n_leads)
    if mains_hz < fs / 2:                             # above Nyquist it would alias: leave it out
        noise += mains_mv * np.sin(2 * np.pi * mains_hz * t[:, None] + mains_phase)
    drawn = {"wander_mv": wander_mv, "noise_mv": noise_mv, "powerline_hz": mains_hz,
             "powerline_mv": mains_mv if mains_hz < fs / 2 else 0.0}
    return wander + noise, drawn


def synth_record(rng: np.random.Generator, cfg: SignalConfig = SignalConfig(),
                 ranges: SynthRanges = SynthRanges()) -> tuple[np.ndarray, dict]:
    """Draw one synthetic 12-lead ECG.

    Returns ``signal`` ``(round(cfg.duration_s * cfg.fs), 12)`` in mV, ``LEAD_NAMES`` order,
    sampled at ``cfg.fs`` Hz, and a JSON-serialisable dict of the drawn parameters (heart rate
    in bpm, axis in deg, intervals in ms, amplitudes in mV, R-peak times in s, ...).
    ``axis_deg`` is the direction of the main (R) QRS vector as read on leads I and aVF (within
    ~5 deg median); the net-area axis clinicians compute reads ~25 deg lower, because of S.
    """
    hr_bpm = _uniform(rng, ranges.hr_bpm)
    rr_s = 60.0 / hr_bpm
    sinus, params = _sinus_template(rng, rr_s, ranges)
    ectopic = _ectopic_template(rng, sinus)
    r_times, kinds, resp = _beat_times(rng, rr_s, cfg.duration_s, ranges)
    t = np.arange(int(round(cfg.duration_s * cfg.fs))) / cfg.fs
    # Breathing moves the heart a little: QRS-T amplitude follows the respiration (+-5%).
    scales = 1.0 + 0.05 * np.sin(2 * np.pi * resp["resp_hz"] * r_times + resp["resp_phase"])
    scales *= 1.0 + 0.02 * rng.standard_normal(r_times.size)
    vcg = _dipole(t, r_times, kinds, [sinus, ectopic], scales)        # (n, 3) mV
    leads = vcg @ DOWER.T                                             # (n, 8) mV
    artefacts, drawn = _artefacts(rng, t, cfg.fs, resp, ranges)
    leads += artefacts
    signal = assemble({name: leads[:, i] for i, name in enumerate(INDEPENDENT_LEADS)})
    seen = (r_times >= 0) & (r_times < cfg.duration_s)
    params.update(**resp, **drawn, heart_rate_bpm=hr_bpm, fs=cfg.fs, duration_s=cfg.duration_s,
                  r_peaks_s=[round(float(x), 4) for x in r_times[seen]],
                  ectopic_s=[round(float(x), 4) for x in r_times[seen & (kinds == 1)]])
    return signal, {k: _plain(v) for k, v in params.items()}


def _plain(value):
    """numpy scalars -> Python numbers, so the params dict goes straight into json.dump."""
    return value.item() if isinstance(value, np.generic) else value


def synth_records(n: int, seed: int, cfg: SignalConfig = SignalConfig(),
                  ranges: SynthRanges = SynthRanges()) -> list[tuple[str, np.ndarray, dict]]:
    """``n`` records named ``syn00000``, ``syn00001``, ...: ``(name, signal (n, 12) mV, params)``.

    Record ``k`` comes from child ``k`` of ``SeedSequence(seed)``, so it is the same whatever
    ``n`` is (asking for more records only appends).
    """
    children = np.random.SeedSequence(seed).spawn(n)
    out = []
    for k, child in enumerate(children):
        signal, params = synth_record(np.random.default_rng(child), cfg, ranges)
        params.update(seed=seed, index=k)
        out.append((f"syn{k:05d}", signal, params))
    return out


# ---------------------------------------------------------------------------------------------
# Summary statistics, for comparing synthetic with real records.

def detect_r_peaks(signal: np.ndarray, fs: int) -> np.ndarray:
    """Sample indices of QRS complexes, found on all leads at once.

    Uses the summed 5-20 Hz energy of every lead, so it does not depend on which lead has a
    large QRS (a -30 deg axis makes lead II small).
    """
    sos = sps.butter(2, [5.0, min(20.0, 0.45 * fs)], btype="band", fs=fs, output="sos")
    band = sps.sosfiltfilt(sos, np.asarray(signal, float), axis=0)
    energy = np.convolve((band ** 2).sum(axis=1), np.ones(max(1, int(0.08 * fs))), mode="same")
    height = 0.3 * np.percentile(energy, 99)
    peaks, _ = sps.find_peaks(energy, height=height, distance=int(0.25 * fs))   # <= 240 bpm
    return peaks


def signal_stats(signal: np.ndarray, fs: int) -> dict:
    """One record's summary: heart rate (bpm), per-lead RMS and peak-to-peak (mV), spectrum.

    ``signal`` is ``(n_samples, 12)`` mV in ``LEAD_NAMES`` order at ``fs`` Hz. Keys:
    ``heart_rate_bpm`` (from the median RR), ``n_beats``, ``rms_<lead>`` (mV, mean removed),
    ``p2p_<lead>`` (mV), ``frac_below_1Hz`` and ``frac_above_40Hz``. The spectral
    fractions are of the summed Welch power of all leads (mean removed): below 1 Hz (baseline
    wander) and above 40 Hz (noise, mains).
    """
    s = np.asarray(signal, float)
    peaks = detect_r_peaks(s, fs)
    hr = 60.0 / float(np.median(np.diff(peaks)) / fs) if peaks.size >= 2 else float("nan")
    freqs, power = sps.welch(s, fs=fs, nperseg=min(s.shape[0], 4 * fs), axis=0)
    total = power.sum()
    centred = s - s.mean(axis=0)
    out = {"heart_rate_bpm": hr, "n_beats": int(peaks.size)}
    out.update({f"rms_{n}": float(np.sqrt(np.mean(centred[:, i] ** 2)))
                for i, n in enumerate(LEAD_NAMES)})
    out.update({f"p2p_{n}": float(np.ptp(s[:, i])) for i, n in enumerate(LEAD_NAMES)})
    out["frac_below_1Hz"] = float(power[freqs < 1.0].sum() / total) if total else float("nan")
    out["frac_above_40Hz"] = float(power[freqs > 40.0].sum() / total) if total else float("nan")
    return out


def stats_table(records, fs: int | None = None, label: str | None = None) -> pd.DataFrame:
    """``signal_stats`` of many records, one row each, indexed by record name.

    Each item is ``(name, signal, fs)``, or a ``Record``-like object with ``name``, ``signal``
    and ``fs``; for ``synth_records`` output ``(name, signal, params)`` pass ``fs``. ``label``
    (e.g. ``'synthetic'`` / ``'real'``) fills a ``group`` column for side-by-side summaries.
    """
    rows, names = [], []
    for item in records:
        if hasattr(item, "signal"):
            name, sig, item_fs = item.name, item.signal, item.fs
        else:
            name, sig, third = item
            item_fs = third if isinstance(third, (int, np.integer)) else fs
        if item_fs is None:
            raise ValueError(f"record {name!r} carries no sampling rate; pass fs= (Hz)")
        rows.append(signal_stats(sig, int(item_fs)))
        names.append(name)
    table = pd.DataFrame(rows, index=pd.Index(names, name="record"))
    if label is not None:
        table.insert(0, "group", label)
    return table
