"""`callqa calibrate` and the `calibration` view: where the machine and the reviewers disagree, per criterion.

Per criterion, over the calls with a pass or fail on both sides (``na`` on either side drops the call):
``reviewed`` calls, ``agreement`` (the share with the same outcome), Cohen's ``kappa`` (agreement beyond what the two
sides' pass rates give by chance; NULL when both sides gave one and the same outcome to every call, where it is
undefined) and the two kinds of disagreement. The human side of a call is its latest review (``LATEST_REVIEWS``),
the same one the reviewed score uses. Where two reviewers reviewed the same call and criterion, the same figures
compare them (``comparison = 'reviewer_vs_reviewer'``). The view and the command run the same SQL, the command
over a filtered selection of ``call_scores``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from .calibration_sql import KAPPA_THRESHOLD, calibration_select


# The review that counts for a call's criterion: the latest one (then the reviewer's name, for a stable answer).
class CalibrationQuery(NamedTuple):
    rubric: str | None = None
    since: date | None = None
    until: date | None = None
    reviewer: str | None = None


def calibration_frame(db: Path | None, query: CalibrationQuery) -> pd.DataFrame:
    """The ``calibration`` view's columns over the calls the query selects."""
    from .errors import NotFoundError
    from .scorecards import ScorecardQuery, select_calls
    from .store import Store

    with Store(db, read_only=True) as store:
        selection = select_calls(store, ScorecardQuery((), query.since, query.until, None, query.rubric))
        if query.reviewer is not None and store.con.execute(
                "SELECT count(*) FROM human_reviews WHERE reviewer = ?", [query.reviewer]).fetchone() == (0,):
            raise NotFoundError(f"no reviews by {query.reviewer!r} in {store.path}")
        params = [*selection.params, *([query.reviewer] * 2 if query.reviewer is not None else [])]
        return store.con.execute(calibration_select(selection.sql, query.reviewer is not None), params).df()


def calibration_table(frame: pd.DataFrame) -> str:
    """For a terminal: rates to two decimals, flagged criteria marked."""
    if frame.empty:
        return "no reviewed calls match (import reviews with `callqa reviews import`)"
    shown = frame.copy()
    for column in ("agreement", "kappa"):
        shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    shown["flagged"] = shown["flagged"].map(lambda v: f"<- kappa < {KAPPA_THRESHOLD}" if v else "")
    return shown.to_string(index=False)
