"""Readers for the nine CSV files of the LMS export, exactly as the seed document describes them.

Each reader returns the seed's normalised table (its snake_case SQL column names, typos
included: `activivty_id`, `modul`, ...) with real dtypes, indexed by the source line number,
plus the rows it had to reject. A bad row is never fatal: replay sends it to the dead-letter
topic with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, NamedTuple

import pandas as pd

from streams.lms.csvfile import ExportFormatError, RawTable, RejectedRow, read_raw
from streams.lms.values import parse_floats, parse_ints, parse_tg_bot, parse_timestamps

Kind = Literal["int", "float", "ts", "str", "tg_bot"]


@dataclass(frozen=True)
class Column:
    raw: str  # header in the CSV
    name: str  # the seed's SQL column name
    kind: Kind
    required: bool = False  # an empty cell rejects the row
    nulls: frozenset[str] = frozenset()  # the export's words for "no value" in this column


@dataclass(frozen=True)
class FileSpec:
    file: str
    columns: tuple[Column, ...]
    optional: bool = True  # a missing optional file reads as an empty table


def _c(raw: str, name: str, kind: Kind, required: bool = False, nulls: tuple[str, ...] = ()) -> Column:
    return Column(raw, name, kind, required, frozenset(nulls))


SPECS: dict[str, FileSpec] = {spec.file: spec for spec in (
    FileSpec("users_age_timezone.csv", (
        _c("userID", "user_id", "int", True), _c("timeZone", "time_zone", "str"), _c("age", "age", "int"))),
    FileSpec("authorization.csv", (
        _c("user_id", "user_id", "int", True), _c("created_at", "created_at", "ts", True),
        _c("user_agent", "user_agent", "str"), _c("window size", "window_size", "str"))),
    FileSpec("schedule.csv", (
        _c("course_id", "course_id", "int", True), _c("type", "type", "str", True),
        _c("taskID", "task_id", "int", True), _c("activivtyID", "activivty_id", "int", True),
        _c("activityType", "activity_type", "str"), _c("isAttestation", "is_attestation", "int"),
        _c("visibility", "visibility", "str"), _c("flows", "flows", "int"),
        _c("dateShown", "date_shown", "ts", True)), optional=False),
    FileSpec("activity_history_viewed.csv", (
        _c("user_id", "user_id", "int", True), _c("created_at", "created_at", "ts", True),
        _c("page_type", "page_type", "str", True), _c("page_id", "page_id", "int", True),
        _c("module", "module", "int"), _c("attestation", "attestation", "int"),
        _c("activity_type", "activity_type", "str"))),
    FileSpec("webinars_logs.csv", (
        _c("userId", "user_id", "int", True), _c("dateTime", "datetime", "ts", True),
        _c("eventName", "event_name", "str", True), _c("webinarId", "webinar_id", "int", True),
        _c("формат подключения", "conn_format", "str"), _c("вводный вебинар", "webinar_vvod", "int"),
        _c("module", "module", "int"))),
    FileSpec("exercise_results.csv", (
        _c("module", "module", "int"), _c("activityID", "activity_id", "int", True),
        _c("userId", "user_id", "int", True), _c("createdAt", "created_at", "ts", True),
        _c("result", "result", "int", True, ("Пропуск",)), _c("success", "success", "int", True))),
    FileSpec("users_logs.csv", (
        _c("user_id", "user_id", "int", True), _c("created_a", "created_at", "ts", True),
        _c("event", "event", "str", True), _c("comment", "comment", "str"))),
    FileSpec("users.csv", (
        _c("unti_id", "unti_id", "int"), _c("userID", "user_id", "int", True),
        _c("course_id", "course_id", "int", True), _c("flow_num", "flow_num", "float"),
        _c("tgBot", "tg_bot", "tg_bot"), _c("M2_progress", "m2_progress", "int", nulls=("Нет данных",)),
        _c("M2_attestation", "m2_attestation", "int", nulls=("Не сдана", "Нет данных")),
        _c("M2_attestation_date", "m2_attestation_date", "ts")), optional=False),
    FileSpec("activities_guide.csv", (
        _c("courseID", "course_id", "int", True), _c("Курс", "course", "str"), _c("Провайдер", "provider", "str"),
        _c("Модуль", "modul", "int"), _c("themeID", "theme_id", "int"), _c("Тема", "theme", "str"),
        _c("taskID", "task_id", "int"), _c("Занятие", "exercise", "str"), _c("taskPosition", "task_position", "int"),
        _c("Признак Аттестации", "att_priznak", "int"), _c("activityID", "activity_id", "int", True),
        _c("Тип Активности", "activity_type", "str"), _c("Активность", "activity", "str"),
        _c("Признак Обязательного", "obyaz_priznak", "int"), _c("Видимость", "visibility", "str"))),
)}

#: Our extension beside the seed's nine files (written by `scorer import oulad`; an LMS that records
#: withdrawals can write it too): enrolment events, `event` one of ENROLMENT_EVENTS. A result row
#: (withdrawn, passed, failed) is the LMS's own verdict on the enrolment; its `created_at`, when
#: given, is when the LMS knew it: a withdrawal's outcome is published then.
ENROLMENT_EVENTS_SPEC = FileSpec("enrolment_events.csv", (
    _c("user_id", "user_id", "int", True), _c("course_id", "course_id", "int", True),
    _c("flow_num", "flow_num", "float"), _c("event", "event", "str", True), _c("created_at", "created_at", "ts")))
#: Values of enrolment_events.csv's `event`: `enrolled` is informational (the profile opens the
#: enrolment); the others are the outcome's `result` (streams/contract/schemas/outcome.schema.json).
ENROLMENT_EVENTS = ("enrolled", "withdrawn", "passed", "failed")
#: Every file an export may hold: the seed's nine and our extension.
EXPORT_SPECS: dict[str, FileSpec] = {**SPECS, ENROLMENT_EVENTS_SPEC.file: ENROLMENT_EVENTS_SPEC}


class Parsed(NamedTuple):
    frame: pd.DataFrame
    rejected: list[RejectedRow]


def _typed(raw: pd.Series, column: Column) -> pd.Series:
    if column.kind == "int":
        return parse_ints(raw, column.nulls)
    if column.kind == "float":
        return parse_floats(raw, column.nulls)
    if column.kind == "ts":
        return parse_timestamps(raw)
    if column.kind == "tg_bot":
        return parse_tg_bot(raw)
    return raw.where(raw != "", None).astype("string")


def _convert(table: RawTable, spec: FileSpec) -> Parsed:
    """Typed frame plus one RejectedRow per row holding a missing required value or a bad one
    (the first such column names the reason)."""
    missing = [c.raw for c in spec.columns if c.raw not in table.header]
    if missing:
        raise ExportFormatError(f"{spec.file}: header lacks {missing} (has {table.header})")
    positions = [table.header.index(c.raw) for c in spec.columns]
    index = pd.Index(table.lines, name="line", dtype="int64")
    frame = pd.DataFrame(index=index)
    reasons = pd.Series(None, index=index, dtype="object")
    for column, position in zip(spec.columns, positions):
        raw = pd.Series([row[position].strip() for row in table.rows], index=index, dtype="str")
        typed = _typed(raw, column)
        frame[column.name] = typed
        absent = (raw == "") | raw.isin(column.nulls)
        bad = typed.isna() & ~absent
        problems = pd.Series(None, index=index, dtype="object")
        problems[bad] = f"bad_{column.kind}: {column.raw}=" + raw[bad].str.slice(0, 60)
        if column.required:
            problems[raw == ""] = f"missing_value: {column.raw}"
        reasons = reasons.fillna(problems)
    failed = reasons.notna()
    texts = dict(zip(table.lines, table.texts))
    rejected = [RejectedRow(spec.file, line, reason, texts[line]) for line, reason in reasons[failed].items()]
    return Parsed(frame[~failed], rejected)


def read_file(path: Path, spec: FileSpec | None = None) -> Parsed:
    """Read one export file by the spec registered for its name."""
    spec = spec or EXPORT_SPECS[path.name]
    frames: list[pd.DataFrame] = []
    rejected: list[RejectedRow] = []
    for table, unsplit in read_raw(path):  # chunk by chunk: typed columns are far smaller than raw strings
        parsed = _convert(table, spec)
        frames.append(parsed.frame)
        rejected += [*unsplit, *parsed.rejected]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames)
    return Parsed(frame, sorted(rejected, key=lambda r: r.line or 0))


def empty_frame(spec: FileSpec) -> pd.DataFrame:
    """The table a missing optional file stands for: no rows, the right columns and dtypes."""
    return _convert(RawTable(spec.file, [c.raw for c in spec.columns], [], [], []), spec).frame


#: The files whose rows belong to one student (a `user_id` column); the others describe courses.
PER_STUDENT_FILES = ("users_age_timezone.csv", "authorization.csv", "activity_history_viewed.csv",
                     "webinars_logs.csv", "exercise_results.csv", "users_logs.csv", "users.csv",
                     ENROLMENT_EVENTS_SPEC.file)


@dataclass
class LmsExport:
    """All nine tables of one export (attribute = file name without .csv), our extension, and every
    row that could not be read."""

    users_age_timezone: pd.DataFrame
    authorization: pd.DataFrame
    schedule: pd.DataFrame
    activity_history_viewed: pd.DataFrame
    webinars_logs: pd.DataFrame
    exercise_results: pd.DataFrame
    users_logs: pd.DataFrame
    users: pd.DataFrame
    activities_guide: pd.DataFrame
    enrolment_events: pd.DataFrame  # the extension (ENROLMENT_EVENTS_SPEC); empty when the export has none
    rejected: list[RejectedRow] = field(default_factory=list)

    def table(self, file: str) -> pd.DataFrame:
        return getattr(self, file.removesuffix(".csv"))

    def user_ids(self) -> list[int]:
        """Every user id any per-student table names, ascending."""
        ids = pd.concat([self.table(file)["user_id"] for file in PER_STUDENT_FILES]).dropna().unique()
        return sorted(int(user_id) for user_id in ids)

    def users_between(self, first: int, last: int) -> LmsExport:
        """The export of students first..last (ids, inclusive) alone, the course tables whole: a large
        export is worked through part by part, each part's records and states freed before the next."""
        kept = {file.removesuffix(".csv"): self.table(file)[self.table(file)["user_id"].between(first, last)]
                for file in PER_STUDENT_FILES}
        return replace(self, **kept, rejected=[])


def load_export(directory: Path) -> LmsExport:
    """Read every file of an export directory; users.csv and schedule.csv must be there."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ExportFormatError(f"{directory}: no such directory")
    frames: dict[str, pd.DataFrame] = {}
    rejected: list[RejectedRow] = []
    for file, spec in EXPORT_SPECS.items():
        path = directory / file
        if path.exists():
            frame, bad = read_file(path, spec)
            rejected.extend(bad)
        elif spec.optional:
            frame = empty_frame(spec)
        else:
            raise ExportFormatError(f"{directory}: not an LMS export, it has no {file} (an export is the seed's CSV "
                                    "files: `scorer generate` and `scorer import oulad` write one)")
        frames[file.removesuffix(".csv")] = frame
    return LmsExport(**frames, rejected=rejected)
