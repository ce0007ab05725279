"""The late label: what a module's outcome says about a student, in the three targets we model.

Definitions (and why). When the LMS gives its own verdict (the outcome's `result`: passed,
failed or withdrawn) that decides success and dropout: a real withdrawal is what "dropped out"
means, and the inactivity rule below is only the fallback for an LMS that does not record one
(the seed's export does not). Otherwise:
- success: `attestation >= 50 and progress >= 50`, exactly the seed analysts' SQL filter for
  "successful" students. A missing value ('Не сдана' attestation, 'Нет данных' progress,
  both null in the outcome record) fails the test.
- dropout: not successful AND the student had gone quiet by the time the module ended, i.e.
  inactive for at least `asleep_days` (the seed's "asleep" status, 20+ days). A student with
  no progress data at all ('Нет данных') also counts as dropped out: the LMS never saw them
  finish anything. A student who failed while still active did not drop out; they stayed and
  failed, which is a different intervention.
- progress: the final module progress 0..100, or None when the LMS has no data; the progress
  regressor skips such labels rather than inventing a number.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from features.activity_status import DEFAULT_THRESHOLDS

SUCCESS_THRESHOLD = 50
#: The outcome's `result` values (streams/contract/schemas/outcome.schema.json) the labels read.
PASSED, WITHDRAWN = "passed", "withdrawn"


@dataclass(frozen=True)
class Label:
    progress: float | None
    dropout: bool
    success: bool


def is_success(progress: float | None, attestation: float | None) -> bool:
    return (
        progress is not None
        and attestation is not None
        and attestation >= SUCCESS_THRESHOLD
        and progress >= SUCCESS_THRESHOLD
    )


def label_from_outcome(outcome: dict[str, Any], days_inactive_at_end: float,
                       asleep_days: float = DEFAULT_THRESHOLDS.asleep_days) -> Label:
    """Turn an `outcome` record into a Label; `days_inactive_at_end` is measured at the outcome's ts."""
    progress = outcome.get("progress")
    result = outcome.get("result")
    if result is not None:
        success, dropout = result == PASSED, result == WITHDRAWN
    else:
        success = is_success(progress, outcome.get("attestation"))
        dropout = not success and (progress is None or days_inactive_at_end >= asleep_days)
    return Label(progress=None if progress is None else float(progress), dropout=dropout, success=success)
