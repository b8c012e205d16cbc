"""The output formats the commands write, as types: `--format` offers exactly these."""

from __future__ import annotations

from typing import Literal, get_args

ScorecardFormat = Literal["table", "csv", "json", "xlsx", "parquet", "html"]
SCORECARD_FORMATS: tuple[ScorecardFormat, ...] = get_args(ScorecardFormat)
FrameFormat = Literal["table", "csv", "json"]  # `callqa sql`
FRAME_FORMATS: tuple[FrameFormat, ...] = get_args(FrameFormat)
CallFormat = Literal["text", "json"]  # `callqa show`
CALL_FORMATS: tuple[CallFormat, ...] = get_args(CallFormat)
