"""A course's at-risk list as CSV, for curators who work through it in a spreadsheet or a CRM: every enrolment of
the course (up to EXPORT_LIMIT) in the page's order, with what the page shows of each.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula, so a text cell starting so is
written behind an apostrophe (OWASP's "CSV injection"). A byte-order mark leads, so Excel reads the Russian
reasons as UTF-8.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from streams.console.words import reasons

#: The most rows one export holds: a course's enrolments, bounded so one request cannot read a whole table.
EXPORT_LIMIT = 20_000
COLUMNS = ("user_id", "flow_num", "status", "days_inactive", "last_activity_at", "p_dropout", "p_dropout_basis",
           "p_dropout_a_week_earlier", "p_success", "progress_forecast", "model_version", "reasons")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _number(value: float | None, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def _basis(row: dict[str, Any]) -> str:
    basis = row.get("basis")
    return str(basis.get("p_dropout", "")) if isinstance(basis, dict) else ""


def at_risk_csv(rows: Iterable[dict[str, Any]], earlier: dict[tuple[int, str], float | None]) -> str:
    """`rows` (students_current, in the list's order) as CSV; `earlier`: each enrolment's P(dropout) a week
    before the course's newest score, as the page's trend arrows read it."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([
            row["user_id"], "" if row["flow_num"] is None else row["flow_num"], _text(row["status"]),
            _number(row["days_inactive"], 1), _time(row["last_activity_at"]), _number(row["p_dropout"], 3),
            _text(_basis(row)), _number(earlier.get((row["user_id"], row["enrolment"])), 3),
            _number(row["p_success"], 3), _number(row["progress_pred"], 1),
            "" if row["model_version"] is None else row["model_version"],
            _text(" | ".join(reasons(row["factors"]))),
        ])
    return out.getvalue()
