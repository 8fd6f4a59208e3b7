"""The 12 standard leads: their order and the relations between the limb leads.

Einthoven and Goldberger relations (all in mV):
    III = II - I,  aVR = -(I + II)/2,  aVL = I - II/2,  aVF = II - I/2.
Only I, II and V1-V6 are independent; every other lead is derived from them.
"""
from __future__ import annotations

import numpy as np

LEAD_NAMES: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)
LEAD_INDEX = {name: i for i, name in enumerate(LEAD_NAMES)}
_CANONICAL = {name.lower(): name for name in LEAD_NAMES}


def canonical_lead(name: str) -> str:
    """Map a lead name case-insensitively to its standard spelling (``'AVR'`` -> ``'aVR'``).

    Raises ``KeyError`` with the known names for anything else.
    """
    key = name.strip().lower()
    if key not in _CANONICAL:
        raise KeyError(f"unknown lead name {name!r}; expected one of {', '.join(LEAD_NAMES)}")
    return _CANONICAL[key]


def derive_limb_leads(lead_i: np.ndarray, lead_ii: np.ndarray) -> dict[str, np.ndarray]:
    """Return III, aVR, aVL and aVF (mV) computed from leads I and II (mV)."""
    return {
        "III": lead_ii - lead_i,
        "aVR": -(lead_i + lead_ii) / 2.0,
        "aVL": lead_i - lead_ii / 2.0,
        "aVF": lead_ii - lead_i / 2.0,
    }


def assemble(independent: dict[str, np.ndarray]) -> np.ndarray:
    """Build a ``(n_samples, 12)`` signal (mV) from I, II and V1-V6, deriving the rest."""
    derived = derive_limb_leads(independent["I"], independent["II"])
    full = {**independent, **derived}
    return np.stack([np.asarray(full[name], dtype=float) for name in LEAD_NAMES], axis=1)


def relation_errors(signal: np.ndarray) -> dict[str, float]:
    """Largest violation of each limb-lead relation, relative to the signal's RMS.

    ``signal`` is ``(n_samples, 12)`` in mV in ``LEAD_NAMES`` order; NaN samples are ignored.
    A value of 0.01 means the relation is off by 1% of RMS.
    """
    s = np.asarray(signal, dtype=float)
    i, ii = s[:, LEAD_INDEX["I"]], s[:, LEAD_INDEX["II"]]
    rms = float(np.sqrt(np.nanmean(s[:, :6] ** 2))) or 1.0
    out = {}
    for name, expected in derive_limb_leads(i, ii).items():
        diff = s[:, LEAD_INDEX[name]] - expected
        out[name] = float(np.nanmax(np.abs(diff)) / rms) if np.isfinite(diff).any() else 0.0
    return out
