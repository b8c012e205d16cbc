"""The one date-range rule of every command: `--since D` starts at the first moment of day D and `--until D`
includes all of day D (calls started before the next midnight)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from .errors import UsageError


class DateRange(NamedTuple):
    since: date | None = None  # first day included
    until: date | None = None  # last day included

    def check(self) -> "DateRange":
        if self.since and self.until and self.since > self.until:
            raise UsageError(f"--since {self.since} is after --until {self.until}")
        return self

    def where(self, column: str = "started_at") -> tuple[list[str], list[Any]]:
        """SQL conditions on a TIMESTAMP column, with their parameters."""
        where: list[str] = []
        params: list[Any] = []
        if self.since:
            where.append(f"{column} >= ?")
            params.append(datetime.combine(self.since, time()))
        if self.until:
            where.append(f"{column} < ?")
            params.append(datetime.combine(self.until + timedelta(days=1), time()))
        return where, params
