"""Gives the calling thread its name at the OS level too (Linux `comm`, 15 bytes), so `top -H`,
`ps -L` and bench/scale.py's "where the time goes" tell an agent's Python threads apart; Python
3.11 names them for itself only. Does nothing where it cannot."""
from __future__ import annotations

import ctypes
import sys

_PR_SET_NAME = 15


def set_name(name: str) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
