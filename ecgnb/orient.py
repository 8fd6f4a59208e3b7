"""Which way up a page is: read it as given and, when that reading is doubtful, turned by 90,
180 and 270 degrees; keep the turn whose reading is most credible.

A page's own confidence does not tell upright from upside down (a page turned by 180 degrees
still shows rows of traces on a grid), so the score of a reading adds what every true 12-lead
page obeys and a turned one does not: Einthoven's law on the limb leads printed side by side
(II = I + III, aVR + aVL + aVF = 0; ``lead_consistency``) and calibration pulses, which are
found only at the start of upright rows. On the eight ECG-Image-Kit dev pages the upright
reading scores 0.65-0.98 in consistency, turned ones -1.7 to 0.7.
"""
from __future__ import annotations

import numpy as np

from .leads import LEAD_NAMES
from .reading import LAYOUT_CONFIDENCE_MIN, Reading, ReadOptions

ROTATIONS = (0, 90, 180, 270)   # deg, counter-clockwise, the page is turned before reading
ACCEPT_CONSISTENCY = 0.75       # a reading as given at least this consistent (and confident)
                                # is kept without trying the turns
MIN_OVERLAP_S = 0.5             # s of samples the leads of one relation must share to be judged
CONFIDENCE_WEIGHT = 0.5         # score = consistency + this x confidence + PULSE_BONUS if pulses
PULSE_BONUS = 0.25
PREFER_AS_GIVEN = 0.1           # a turned reading must score this much more to be kept
# Relations between limb leads: coefficients whose weighted sum is 0 on any true recording.
RELATIONS = ({"I": 1.0, "III": 1.0, "II": -1.0}, {"aVR": 1.0, "aVL": 1.0, "aVF": 1.0})


def lead_consistency(signal: np.ndarray, fs: float,
                     lead_names: tuple[str, ...] = LEAD_NAMES) -> float | None:
    """How well ``signal`` ``(n, 12)`` mV obeys Einthoven's law: 1 exactly, ~0 for unrelated
    traces, below 0 for contradicting ones; None when no relation's leads overlap in time.

    Per relation, ``1 - |sum of weighted leads|^2 / sum |weighted lead|^2`` over the samples all
    its leads share (each lead's median removed); the mean over the relations that can be judged.
    """
    index = {n: i for i, n in enumerate(lead_names)}
    scores = []
    for rel in RELATIONS:
        cols = signal[:, [index[n] for n in rel]]                             # (n, 3) mV
        shared = np.isfinite(cols).all(axis=1)
        if shared.sum() < MIN_OVERLAP_S * fs:
            continue
        x = (cols[shared] - np.median(cols[shared], axis=0)) * np.array(list(rel.values()))
        energy = float((x ** 2).sum())
        if energy > 0:
            scores.append(1.0 - float((x.sum(axis=1) ** 2).sum()) / energy)
    return float(np.mean(scores)) if scores else None


def has_pulses(reading: Reading) -> bool:
    """True if a calibration pulse was found on any row of the reading's layout."""
    return any(r.calibration and "mm_per_mv" in r.calibration for r in reading.layout.rows)


def judge(reading: Reading) -> dict:
    """Plain-JSON credibility of one reading: confidence, consistency, pulses and their score."""
    cons = lead_consistency(reading.signal, reading.fs, reading.lead_names)
    conf, pulses = reading.confidence, has_pulses(reading)
    score = (cons if cons is not None else 0.0) + CONFIDENCE_WEIGHT * conf + PULSE_BONUS * pulses
    return {"confidence": round(conf, 3), "consistency": None if cons is None else round(cons, 3),
            "pulses": pulses, "score": round(score, 3)}


def turned(image: np.ndarray, deg: int) -> np.ndarray:
    """``image`` turned ``deg`` (a multiple of 90) counter-clockwise, contiguous."""
    assert deg % 90 == 0, f"turns are multiples of 90 deg, got {deg}"
    return np.ascontiguousarray(np.rot90(image, (deg // 90) % 4)) if deg % 360 else image


def most_credible(attempts, label: str, later_errors: type | tuple = ValueError
                  ) -> tuple[Reading, object, list[dict]]:
    """``(reading, key, tried)``: the most credible of ``attempts``, ``(key, read)`` pairs with
    ``read() -> Reading``, the likeliest first.

    The first attempt's reading is kept at once when it is confident (``LAYOUT_CONFIDENCE_MIN``)
    and consistent (``ACCEPT_CONSISTENCY``); otherwise every attempt is read and the best
    ``judge`` score kept, the first unless another beats it by ``PREFER_AS_GIVEN``. ``tried``
    holds each attempt's verdict (or its error) under ``label``. Refusals (``ValueError``) of
    the first attempt and ``later_errors`` of the others are recorded, not raised; if none
    reads, the first error is raised.
    """
    tried, readings, first_error = [], {}, None
    for i, (key, read) in enumerate(attempts):
        try:
            reading = read()
        except (ValueError if i == 0 else later_errors) as exc:
            first_error = first_error or exc
            tried.append({label: key, "error": str(exc)})
            continue
        verdict = judge(reading)
        tried.append({label: key, **verdict})
        readings[key] = (reading, verdict["score"] - (PREFER_AS_GIVEN if i else 0.0))
        if i == 0 and verdict["confidence"] >= LAYOUT_CONFIDENCE_MIN \
                and (verdict["consistency"] or 0.0) >= ACCEPT_CONSISTENCY:
            break
    if not readings:
        raise first_error
    best = max(readings, key=lambda k: readings[k][1])
    return readings[best][0], best, tried


def read_upright(reader, image: np.ndarray, options: ReadOptions,
                 rotate: str | int = "auto") -> tuple[Reading, int, list[dict]]:
    """``(reading, rotated_deg, tried)``: ``image`` read the way up that reads best.

    ``rotate`` a number of degrees reads the page turned by it, once. ``"auto"`` reads it as
    given and keeps that when it is confident and consistent; otherwise also turned by 90, 180
    and 270 degrees, keeping the most credible (``most_credible``). ``tried`` holds each turn's
    ``judge`` (or its error). If no turn can be read, the first turn's error is raised; on a
    turned page any failure counts as a refusal, on the page as given only a refusal does (a
    bug there is shown).
    """
    turns = ROTATIONS if rotate == "auto" else (int(rotate) % 360,)
    attempts = [(deg, lambda deg=deg: reader.read(turned(image, deg), options)) for deg in turns]
    return most_credible(attempts, "rotated_deg", later_errors=Exception)
