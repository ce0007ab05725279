"""The school's daily time-series dataset (`scorer dataset DIR --out FILE`), from an LMS export.

    scorer dataset DIR --out dataset.csv [--days 210] [--online-only] [--workers N]
    scorer dataset DIR --out dataset.parquet

Speed: one features.engagement.compute per row (~0.2 ms): a 300-student export of the
synthetic 10-week course (71 rows each) takes ~5 s, with --days 210 ~20 s; `workers` spreads
the students over processes on a machine with CPUs to spare (the seed's 2734 x 210 rows).

The seed's `20241024_dataset_timeseries_with_metrics`: one row per student per day, the seed's
39 columns in the seed's order (SEED_COLUMNS). The feature values are computed by the very code
the streaming worker scores with (features.engagement.compute, on the state features.fold
builds from the same contract records replay publishes), as of the END of the row's day
(23:59:59, so every fact of that day counts and nothing later).

Rows: from the day the student's flow opens (the first date_shown of the schedule the student
follows, by course and flow as the worker chooses it) through the day the course's last task
falls due (features.task_due_times: the last lesson plus a typical task length), at most 210
days (the seed's span); `days` asks for exactly that many rows per student instead, e.g. 210
for the seed's shape. Students without a known course schedule get no rows.

Column provenance (the seed carries identifiers and labels in the same table; so does this):
- identifiers, never model inputs: user_id, unti_id (the newest profile's; 0 unknown),
  course_id and flow_num (of the schedule the rows are measured against), cur_date (the
  row's day, a date).
- LABELS, never model inputs: m2_progress, m2_attestation and module are the module outcome
  the LMS reports when the module is over; every row of a student carries the final value, as
  the seed's table did (the seed's SQL writes -1 for 'Нет данных' / 'Не сдана'; so does this,
  and -1 when no outcome arrived; module 0 then). A model must not read them: they come from
  after every row's cur_date.
- features (features.engagement.DESCRIPTIONS), as of the end of cur_date: payment, time_zone,
  age, tg_bot (from the profile version known by then: 0 before the student's first profile),
  m2_delay, and sum_auth .. progress.

CSV is written with a leading unnamed row-number column, as the seed's file was ("при загрузке
датасета в pandas следует указывать параметр index_col=0"): `pd.read_csv(path, index_col=0)`
gives exactly the 39 columns. Parquet (.parquet / .pq) is written with pyarrow.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import DAY, CourseSchedule, FeatureState, ScheduleKey, compute, outcome, profile, task_due_times
from online_models.evaluation.history import History, HistoryPart, load_history
from streams.unusable import UnusableInput

SEED_DAYS = 210
SEED_COLUMNS: tuple[str, ...] = (
    "user_id", "payment", "time_zone", "age", "unti_id", "course_id", "flow_num", "tg_bot", "m2_progress",
    "m2_attestation", "module", "m2_delay", "sum_auth", "sum_schedule_activities", "sum_required_activity",
    "sum_attestation_activity", "view_delay_first", "view_delay_sum", "sum_activity_viewed",
    "sum_required_activity_viewed", "sum_attestation_activity_viewed", "w_view_hours", "sum_exercise",
    "sum_required_exercises", "sum_attestation_exercises", "exercise_delay_first", "exercise_delay_sum",
    "result_delay_mean", "result_delay_sum", "sum_exercise_attempts_mean", "mean_required_result",
    "mean_non_req_result", "mean_attestation_result", "sum_result", "conn", "online_rate", "mean_result",
    "progress", "cur_date",
)
IDENTIFIER_COLUMNS = ("user_id", "unti_id", "course_id", "flow_num", "cur_date")
LABEL_COLUMNS = ("m2_progress", "m2_attestation", "module")
#: The columns that are features.engagement features, computed as of the end of cur_date.
FEATURE_COLUMNS: tuple[str, ...] = tuple(c for c in SEED_COLUMNS
                                         if c not in IDENTIFIER_COLUMNS and c not in LABEL_COLUMNS)
NO_LABEL = -1
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")


class DatasetError(UnusableInput):
    """The dataset cannot be written as asked (unknown file type, Parquet without an engine)."""


def first_day(schedule: CourseSchedule) -> float:
    """Midnight of the day the schedule first opens."""
    return schedule.start - schedule.start % DAY


def course_days(schedule: CourseSchedule) -> int:
    """Days from the first opening's day through the day the last task falls due, at most SEED_DAYS."""
    last_due = max(task_due_times(schedule).values())
    return min(SEED_DAYS, int((last_due - first_day(schedule)) // DAY) + 1)


def day_ends(schedule: CourseSchedule, days: int | None = None) -> list[float]:
    """The as-of moment of each row: the last second of each day of the span."""
    start = first_day(schedule)
    return [start + (d + 1) * DAY - 1 for d in range(course_days(schedule) if days is None else days)]


def _labels(state: FeatureState, schedule: CourseSchedule) -> dict[str, int]:
    result = outcome(state)
    if result is None:
        return {"m2_progress": NO_LABEL, "m2_attestation": NO_LABEL, "module": 0}

    def known(value: Any) -> int:
        return NO_LABEL if value is None else int(value)

    return {"m2_progress": known(result["progress"]), "m2_attestation": known(result["attestation"]),
            "module": int(result["module"])}


def student_rows(user_id: int, state: FeatureState, key: ScheduleKey, schedule: CourseSchedule,
                 moments: Sequence[float]) -> dict[str, list[Any]]:
    """One student's rows (column -> values) as of each moment: the seed's columns, the feature
    columns by features.engagement.compute exactly as the worker calls it."""
    known = profile(state, math.inf) or {}
    fixed = {"user_id": user_id, "unti_id": int(known.get("unti_id") or 0), "course_id": key[0],
             "flow_num": 0 if key[1] is None else key[1], **_labels(state, schedule)}
    columns: dict[str, list[Any]] = {name: [value] * len(moments) for name, value in fixed.items()}
    snapshots = [compute(state, schedule, as_of) for as_of in moments]
    for name in FEATURE_COLUMNS:
        columns[name] = [features[name] for features in snapshots]
    columns["cur_date"] = [math.floor(as_of / DAY) * DAY for as_of in moments]
    return columns


#: One student's job: (user_id, state, schedule key, schedule, as-of moments).
_Job = tuple[int, FeatureState, ScheduleKey, CourseSchedule, list[float]]


def _run_jobs(jobs: list[_Job]) -> list[dict[str, list[Any]]]:
    return [student_rows(*job) for job in jobs]


def _part_jobs(part: HistoryPart, days: int | None) -> list[_Job]:
    return [(e.user_id, e.state, e.key, e.schedule, day_ends(e.schedule, days))
            for e in part.enrolments() if e.key is not None and e.schedule is not None]


def dataset_frame(history: History, *, days: int | None = None, workers: int = 1) -> pd.DataFrame:
    """Every enrolment's daily rows (see the module docstring), ordered by user_id, flow start, cur_date;
    `workers` > 1 computes students in that many processes (the same rows, in the same order). Each
    part of the history becomes typed columns before the next is read: Python lists of a whole school's
    rows would take many times the frame's memory."""
    frames: list[pd.DataFrame] = []
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        for part in history.parts():
            jobs = _part_jobs(part, days)
            if pool is not None and len(jobs) > 1:
                size = max(1, -(-len(jobs) // (4 * workers)))  # a few chunks per worker: even load
                chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
                frames.append(_frame([rows for chunk in pool.map(_run_jobs, chunks) for rows in chunk]))
            else:
                frames.append(_frame(_run_jobs(jobs)))
    return pd.concat(frames, ignore_index=True) if frames else _frame([])


def _frame(students: list[dict[str, list[Any]]]) -> pd.DataFrame:
    """Students' rows as the dataset's typed columns."""
    parts: dict[str, list[Any]] = {name: [] for name in SEED_COLUMNS}
    for rows in students:
        for name in SEED_COLUMNS:
            parts[name].extend(rows[name])
    frame = pd.DataFrame(parts, columns=list(SEED_COLUMNS))
    for name in ("user_id", "unti_id", "course_id", "flow_num", *LABEL_COLUMNS):
        frame[name] = frame[name].astype("int64")
    for name in FEATURE_COLUMNS:
        frame[name] = frame[name].astype("float64")
    frame["cur_date"] = pd.to_datetime(np.asarray(parts["cur_date"], dtype="float64"), unit="s").normalize()
    return frame


def build_dataset(directory: str | Path, *, days: int | None = None, online_only: bool = False,
                  workers: int = 1) -> pd.DataFrame:
    """The dataset of an export directory."""
    return dataset_frame(load_history(Path(directory), online_only=online_only), days=days, workers=workers)


def write_dataset(frame: pd.DataFrame, path: Path) -> None:
    """CSV (with the seed's leading row-number column) or Parquet, by the file's extension."""
    if _known_format(path).endswith(_PARQUET):
        frame.to_parquet(path, index=False)
    else:
        out = frame.copy()
        out["cur_date"] = out["cur_date"].dt.strftime("%Y-%m-%d")
        out.to_csv(path, index=True)


def _known_format(path: Path) -> str:
    """The file's name in lower case; DatasetError unless it names a format `write_dataset` writes."""
    name = path.name.lower()
    if not name.endswith(_PARQUET + _CSV):
        raise DatasetError(f"{path}: unknown dataset format; use .csv (optionally .gz/.bz2/.zip/.xz) or .parquet")
    return name


def read_dataset(path: Path) -> pd.DataFrame:
    """A written dataset back as the frame dataset_frame built (the seed's 39 columns)."""
    if path.name.lower().endswith(_PARQUET):
        return pd.read_parquet(path)
    frame = pd.read_csv(path, index_col=0)
    frame["cur_date"] = pd.to_datetime(frame["cur_date"])
    return frame


def run(directory: Path, out: Path, *, days: int | None = None, online_only: bool = False,
        workers: int = 1) -> int:
    """`scorer dataset`: build and write the dataset, print a one-line JSON summary."""
    began = time.perf_counter()
    _known_format(out)  # refused before the dataset is built, not after
    frame = build_dataset(directory, days=days, online_only=online_only, workers=workers)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_dataset(frame, out)
    print(json.dumps({"out": str(out), "rows": len(frame), "students": int(frame["user_id"].nunique()),
                      "columns": len(frame.columns), "seconds": round(time.perf_counter() - began, 2)}))
    return 0
