"""Errors that ecgnb raises for bad input; each message says what is wrong and what to do."""
from __future__ import annotations


class EcgnbError(Exception):
    """Base class of every error ecgnb raises on purpose."""


class SignalError(EcgnbError, ValueError):
    """A signal or record is unusable: missing leads, NaN, wrong rate, too short."""


class ImageError(EcgnbError, ValueError):
    """An image is unusable: missing, corrupt, or not an ECG page."""


class LayoutError(EcgnbError, ValueError):
    """A page layout is unknown or could not be recognised."""


class MissingInputError(EcgnbError, FileNotFoundError):
    """An input a step needs does not exist (the message names the step that makes it)."""
