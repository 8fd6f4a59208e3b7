"""ecgnb: digitize 12-lead paper ECG images (a reproducible study)."""
__version__ = "0.1.0"
