"""Small text helpers shared by the terminal, the HTML report and the exports (no heavy imports here:
`callqa show` must not load pandas)."""

from __future__ import annotations

import math

# C0 controls except tab and newline, DEL, the C1 controls (0x9B is an 8-bit CSI) and the bidirectional
# overrides (U+202A-U+202E, U+2066-U+2069) that reorder what a terminal shows: file names, manifest and sidecar
# values and transcripts never reach a terminal raw.
_TERMINAL_UNSAFE = dict.fromkeys(
    [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F),
     *range(0x2066, 0x206A)],
    "?",
)
_LINE_BREAKS = dict.fromkeys([0x0A, 0x09], " ")


def terminal_safe(value: object, one_line: bool = False) -> str:
    """``value`` as text a terminal shows as written: control and escape characters become '?'; with
    ``one_line``, newlines and tabs become spaces too."""
    text = "" if value is None else str(value)
    text = text.translate(_TERMINAL_UNSAFE)
    return text.translate(_LINE_BREAKS) if one_line else text


def missing(value: object) -> bool:
    """None, NaN or NaT (pandas' missing values without importing pandas: NaT is not equal to itself)."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or (value != value)


def clock(seconds: float | None) -> str:
    """Seconds from the start of a call as m:ss (h:mm:ss past an hour); empty when unknown."""
    if seconds is None or missing(seconds):
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
