"""The registry of digitizers: one name per method, made through one call.

Every caller (the command line, ``ecgnb.evaluate``, notebooks, benchmarks, tests) gets its
digitizer here and never branches on which one it holds::

    reader = digitizers.get("classical")                    # or "crop_model", checkpoint=...
    reading = reader.read(image, ReadOptions(layout="3x4+1", fs=500))

Adding a method is one module with a class that follows ``ecgnb.reading.Digitizer`` plus one
line in ``METHODS``. Implementations are imported only when asked for (the crop model needs
torch); they import ``ecgnb.reading``, never this module, so there is no import cycle.
"""
from __future__ import annotations

import importlib

from .reading import Digitizer

# name -> "module:Class" (relative to the ecgnb package); the class takes its settings as
# keyword arguments (e.g. ``checkpoint=``) and loads heavy state once, in ``__init__``.
METHODS: dict[str, str] = {
    "classical": "digitize:ClassicalDigitizer",     # no learning: ecgnb.digitize
    "crop_model": "model:CropModelDigitizer",       # the multimodal crop model: ecgnb.model
    "rectified": "rectified:RectifiedDigitizer",    # photos and scans: flatten, then read
    "trace_net": "trace_reader:TraceNetDigitizer",  # per-pixel trace network's ink, then read
    "trace_model": "model:TraceModelDigitizer",     # the multimodal model on trace_net's front
}
# The command's default: the method ahead of the classical digitizer on our test split, on
# eik-dev and on photos-dev (reports/benchmarks/trace_net.md beside external.md).
DEFAULT = "trace_net"
# Older names, still accepted (the command said "baseline" and "model" before the registry).
ALIASES: dict[str, str] = {"baseline": "classical", "model": "crop_model"}


def names() -> list[str]:
    """Registered method names (aliases not included)."""
    return list(METHODS)


def canonical(name: str) -> str:
    """The registered name of ``name`` (an alias maps to its method); ``ValueError`` if unknown."""
    key = ALIASES.get(name, name)
    if key not in METHODS:
        known = ", ".join(METHODS) + " (aliases: " + ", ".join(f"{a}={m}" for a, m in ALIASES.items()) + ")"
        raise ValueError(f"unknown method {name!r}; known: {known}")
    return key


def get(name: str, **settings) -> Digitizer:
    """Make the digitizer registered as ``name`` (or an alias) with ``settings``."""
    module, cls = METHODS[canonical(name)].split(":")
    return getattr(importlib.import_module(f".{module}", __package__), cls)(**settings)
