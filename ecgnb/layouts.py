"""Page layouts as data: which lead is printed where, and over which time span.

A layout is a grid of ``rows x cols`` short panels, each showing ``duration / cols`` seconds of
one lead (column ``c`` shows the span ``[c, c+1) * duration / cols``), followed by full-length
rhythm strips. Adding a layout means adding an entry to ``LAYOUTS``; no code changes.
"""
from __future__ import annotations

from dataclasses import dataclass

LAYOUTS: dict[str, dict] = {
    "3x4+1": {
        "grid": [["I", "aVR", "V1", "V4"],
                 ["II", "aVL", "V2", "V5"],
                 ["III", "aVF", "V3", "V6"]],
        "rhythm": ["II"],
    },
    "3x4+3": {
        "grid": [["I", "aVR", "V1", "V4"],
                 ["II", "aVL", "V2", "V5"],
                 ["III", "aVF", "V3", "V6"]],
        "rhythm": ["II", "V1", "V5"],
    },
    "3x4": {
        "grid": [["I", "aVR", "V1", "V4"],
                 ["II", "aVL", "V2", "V5"],
                 ["III", "aVF", "V3", "V6"]],
        "rhythm": [],
    },
    "6x2": {
        "grid": [["I", "V1"], ["II", "V2"], ["III", "V3"],
                 ["aVR", "V4"], ["aVL", "V5"], ["aVF", "V6"]],
        "rhythm": [],
    },
    "12x1": {
        "grid": [["I"], ["II"], ["III"], ["aVR"], ["aVL"], ["aVF"],
                 ["V1"], ["V2"], ["V3"], ["V4"], ["V5"], ["V6"]],
        "rhythm": [],
    },
}


@dataclass(frozen=True)
class Panel:
    """One printed trace: ``lead`` shown from ``t0_s`` to ``t1_s`` (s) in row ``row``, column ``col``.

    Rhythm strips have ``col = 0`` and span the whole row.
    """

    lead: str
    row: int
    col: int
    n_cols: int
    t0_s: float
    t1_s: float
    rhythm: bool


def get_layout(name: str) -> dict:
    """Return the layout named ``name``; a clear ``ValueError`` lists the known ones."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; known layouts: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def panels(name: str, duration_s: float = 10.0) -> list[Panel]:
    """All panels of layout ``name`` for a record of ``duration_s`` seconds, top row first."""
    layout = get_layout(name)
    out: list[Panel] = []
    for r, row in enumerate(layout["grid"]):
        n = len(row)
        for c, lead in enumerate(row):
            out.append(Panel(lead, r, c, n, c * duration_s / n, (c + 1) * duration_s / n, False))
    base = len(layout["grid"])
    for k, lead in enumerate(layout["rhythm"]):
        out.append(Panel(lead, base + k, 0, 1, 0.0, duration_s, True))
    return out


def n_rows(name: str) -> int:
    """Number of printed rows (grid rows plus rhythm strips)."""
    layout = get_layout(name)
    return len(layout["grid"]) + len(layout["rhythm"])
