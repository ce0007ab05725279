"""The at-risk list as CSV: the page's columns, nothing a spreadsheet would run as a formula, and Excel-readable
Russian."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from streams.console.export import COLUMNS, at_risk_csv


def _row(user_id: int, **values: Any) -> dict[str, Any]:
    return {"user_id": user_id, "enrolment": f"3:{user_id}", "flow_num": 2, "status": "dozing", "days_inactive": 9.04,
            "last_activity_at": datetime(2024, 2, 1, 10, 30), "p_dropout": 0.81234, "p_success": 0.1,
            "progress_pred": 42.26, "model_version": 7, "basis": {"p_dropout": "guess"},
            "factors": [{"text": "Регулярность: дней без активности 9.0"}, {"code": "progress.required_done"}],
            **values}


def _read(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")  # Excel reads the file as UTF-8 only behind a byte-order mark
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_each_row_says_what_the_page_says_in_the_list_order() -> None:
    rows = _read(at_risk_csv([_row(5), _row(4, p_dropout=None, basis=None, factors=None, flow_num=None,
                                            last_activity_at=None, model_version=None)], {(5, "3:5"): 0.7}))
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0] == {"user_id": "5", "flow_num": "2", "status": "dozing", "days_inactive": "9.0",
                       "last_activity_at": "2024-02-01T10:30:00", "p_dropout": "0.812", "p_dropout_basis": "guess",
                       "p_dropout_a_week_earlier": "0.700", "p_success": "0.100", "progress_forecast": "42.3",
                       "model_version": "7",
                       "reasons": "Регулярность: дней без активности 9.0 | progress.required_done"}
    assert rows[1]["user_id"] == "4" and rows[1]["p_dropout"] == rows[1]["p_dropout_basis"] == ""
    assert rows[1]["reasons"] == rows[1]["flow_num"] == rows[1]["p_dropout_a_week_earlier"] == ""


def test_no_text_cell_starts_a_formula() -> None:
    hostile = ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx"]
    rows = _read(at_risk_csv([_row(1, factors=[{"text": t}], basis={"p_dropout": t}) for t in hostile], {}))
    for text, row in zip(hostile, rows, strict=True):
        assert row["reasons"] == row["p_dropout_basis"] == "'" + text
    assert _read(at_risk_csv([_row(1, factors=[{"text": "a = b"}])], {}))[0]["reasons"] == "a = b"
