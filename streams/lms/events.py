"""An LMS export as the stream of contract records the LMS would have published live.

Every row becomes a record on its topic at the moment the LMS knew the fact: activity at its
own time, the schedule up front (it is planned in advance), a student's profile when the
student first appears and again at each tag change, and the module outcome late, when the
module is over. Records are validated against the contract here, so what replay publishes is
exactly what the worker accepts; a row that cannot become a valid record is returned as a
RejectedRow with the contract's reason instead of vanishing.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from streams.contract import OUTCOME_MODULE, InvalidEvent, Topic, same_time_rank, validate
from streams.lms.csvfile import RejectedRow
from streams.lms.readers import ENROLMENT_EVENTS, ENROLMENT_EVENTS_SPEC, LmsExport
from streams.lms.tags import has_payment, is_online, matches_seed_online_filter, tags_after, tags_before

TS_FORMAT = "%Y-%m-%dT%H:%M:%S"  # what streams.contract.format_ts writes
COURSE_TAIL = pd.Timedelta(days=7)  # a module ends a week after its last lesson is shown


#: (topic, file, time column, record field -> column)
_ACTIVITY_SOURCES: tuple[tuple[Topic, str, str, dict[str, str]], ...] = (
    (Topic.AUTHORIZATIONS, "authorization.csv", "created_at",
     {"user_id": "user_id", "user_agent": "user_agent", "window_size": "window_size"}),
    (Topic.PAGE_VIEWS, "activity_history_viewed.csv", "created_at",
     {"user_id": "user_id", "page_type": "page_type", "page_id": "page_id", "module": "module",
      "attestation": "attestation", "activity_type": "activity_type"}),
    (Topic.EXERCISE_RESULTS, "exercise_results.csv", "created_at",
     {"user_id": "user_id", "module": "module", "activity_id": "activity_id", "result": "result",
      "success": "success"}),
    (Topic.WEBINAR_EVENTS, "webinars_logs.csv", "datetime",
     {"user_id": "user_id", "event": "event_name", "webinar_id": "webinar_id", "conn_format": "conn_format",
      "intro": "webinar_vvod", "module": "module"}),
)
#: Every dated column: the export spans from the earliest to the latest of them.
_DATED = (("authorization", "created_at"), ("activity_history_viewed", "created_at"),
          ("exercise_results", "created_at"), ("webinars_logs", "datetime"), ("users_logs", "created_at"),
          ("schedule", "date_shown"), ("users", "m2_attestation_date"))

Event = tuple[Topic, dict[str, Any]]


@dataclass(slots=True)
class _Draft:
    at: int  # event time, epoch microseconds (sorting key)
    topic: Topic
    record: dict[str, Any]
    file: str
    line: int | None


def _py(series: pd.Series) -> list[Any]:
    """Column values as JSON-ready Python objects (None for NA, ISO strings for times)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        series = series.dt.strftime(TS_FORMAT)
    values: list[Any] = series.astype(object).where(series.notna(), None).tolist()
    return values


def _micros(series: pd.Series) -> list[int]:
    micros: list[int] = series.astype("datetime64[us]").astype("int64").tolist()
    return micros


def _rows(frame: pd.DataFrame, fields: dict[str, str]) -> Iterable[tuple[int, dict[str, Any]]]:
    """(source line, record) per row; `fields` maps record field -> column, converted column-wise."""
    names = list(fields)
    columns = [_py(frame[column]) for column in fields.values()]
    for line, values in zip(frame.index.tolist(), zip(*columns)):
        yield line, dict(zip(names, values))


def _timed(topic: Topic, file: str, frame: pd.DataFrame, when: pd.Series, fields: dict[str, str],
           **constant: Any) -> Iterable[_Draft]:
    """One draft per row at `when` (a time per row); `constant` fields follow ts in every record."""
    frame = frame.assign(ts=when, **constant)
    for at, (line, record) in zip(_micros(when), _rows(frame, {"ts": "ts", **{k: k for k in constant}, **fields})):
        yield _Draft(at, topic, record, file, line)


def _activity(export: LmsExport) -> Iterable[_Draft]:
    for topic, file, when, fields in _ACTIVITY_SOURCES:
        frame = export.table(file)
        yield from _timed(topic, file, frame, frame[when], fields)


def _schedule(export: LmsExport, start: pd.Timestamp) -> Iterable[_Draft]:
    """Schedule rows with the guide's details; a lesson row (or an activity the guide does not
    know) takes what it can from the guide's task."""
    guide = export.activities_guide
    by_activity = guide.drop_duplicates("activity_id").set_index("activity_id")
    by_task = guide.dropna(subset=["task_id"]).drop_duplicates("task_id").set_index("task_id")
    plan = export.schedule
    activity = by_activity.reindex(plan["activivty_id"]).set_axis(plan.index)
    task = by_task.reindex(plan["task_id"]).set_axis(plan.index)
    frame = pd.DataFrame({
        "course_id": plan["course_id"], "type": plan["type"], "task_id": plan["task_id"],
        "activity_id": plan["activivty_id"], "activity_type": plan["activity_type"].fillna(activity["activity_type"]),
        "is_attestation": plan["is_attestation"], "required": activity["obyaz_priznak"].fillna(0),
        "flows": plan["flows"], "date_shown": plan["date_shown"],
        "module": activity["modul"].fillna(task["modul"]), "theme_id": activity["theme_id"].fillna(task["theme_id"]),
        "task_position": activity["task_position"].fillna(task["task_position"]),
        "theme": activity["theme"].fillna(task["theme"]), "task_name": activity["exercise"].fillna(task["exercise"]),
        "activity_name": activity["activity"],
    }, index=plan.index)
    when = pd.Series(start, index=plan.index, dtype="datetime64[us]")
    yield from _timed(Topic.SCHEDULE, "schedule.csv", frame, when, {name: name for name in frame.columns})


def _course_dates(schedule: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """First and last date_shown per (course, flow) and per course."""
    dates = schedule.groupby(["course_id", "flows"])["date_shown"].agg(["min", "max"])
    return dates, schedule.groupby("course_id")["date_shown"].agg(["min", "max"])


def _flow_date(user: pd.DataFrame, flows: pd.DataFrame, courses: pd.DataFrame, which: str) -> pd.Series:
    """A date of the student's flow of their course, or of their course if the flow is unknown."""
    flow = user["flow_num"].round().astype("Int64")
    by_flow = flows[which].reindex(pd.MultiIndex.from_arrays([user["course_id"], flow])).to_numpy()
    by_course = courses[which].reindex(user["course_id"]).to_numpy()
    return pd.Series(by_flow, index=user.index).fillna(pd.Series(by_course, index=user.index))


def _first_seen(export: LmsExport) -> pd.Series:
    """Each user's earliest row of their own, across every per-user file."""
    parts = [export.table(file)[["user_id", when]].set_axis(["user_id", "at"], axis=1)
             for _, file, when, _ in _ACTIVITY_SOURCES]
    parts.append(export.users_logs[["user_id", "created_at"]].set_axis(["user_id", "at"], axis=1))
    return pd.concat(parts).groupby("user_id")["at"].min()


def _raw(frame: pd.DataFrame, line: int) -> str:
    """A parsed row as JSON, for the dead-letter topic."""
    text: str = frame.loc[[line]].to_json(orient="records", force_ascii=False, date_format="iso")
    return text


def _profiles(export: LmsExport) -> tuple[pd.DataFrame, list[RejectedRow]]:
    """One users.csv row per enrolment (student, course, flow) with the student's age and time
    zone; a student may take several courses, or the same course again in a later flow. A
    repeated enrolment is rejected."""
    users = export.users
    repeated = users.assign(flow=users["flow_num"].round()).duplicated(["user_id", "course_id", "flow"])
    rejected = [RejectedRow("users.csv", line, f"duplicate_enrolment: user_id {uid} already listed on this "
                            "course and flow", _raw(users, line))
                for line, uid in users.loc[repeated, "user_id"].items()]
    ages = export.users_age_timezone.drop_duplicates("user_id").set_index("user_id")
    users = users[~repeated]
    extra = ages.reindex(users["user_id"]).set_axis(users.index)
    return users.assign(age=extra["age"], time_zone=extra["time_zone"]), rejected


def _initial_tags(changes: list[tuple[int, int, str, str, str | None]]) -> list[str]:
    """Before a student's first tag change, their tags are what that change says they were."""
    comment = changes[0][4] if changes else None
    return (tags_before(comment) if comment else None) or []


def _enrolment_times(export: LmsExport, users: pd.DataFrame, start: pd.Timestamp, flows: pd.DataFrame,
                     courses: pd.DataFrame) -> pd.Series:
    """When each enrolment's profile is published: a student's first enrolment when the student
    first appears (else when its flow starts), a later one when its own flow starts."""
    flow_start = _flow_date(users, flows, courses, "min").fillna(start)
    seen = _first_seen(export).reindex(users["user_id"]).set_axis(users.index)
    earliest = flow_start.groupby(users["user_id"]).rank(method="first").eq(1)
    return seen.where(earliest).fillna(flow_start)


def _students(export: LmsExport, users: pd.DataFrame, start: pd.Timestamp, flows: pd.DataFrame,
              courses: pd.DataFrame) -> tuple[list[_Draft], list[RejectedRow]]:
    """Each enrolment's profile when it first appears, then again at each of the student's tag
    changes from then on (tags belong to the student, so every enrolment hears of them)."""
    rejected: list[RejectedRow] = []
    first = _enrolment_times(export, users, start, flows, courses)
    fields = {"user_id": "user_id", "unti_id": "unti_id", "course_id": "course_id", "flow_num": "flow_num",
              "tg_bot": "tg_bot", "age": "age", "time_zone": "time_zone"}
    enrolments: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
    for line, record in _rows(users, fields):
        enrolments.setdefault(record["user_id"], []).append((line, record))
    logs = export.users_logs.sort_values("created_at", kind="stable")
    changes_of: dict[Any, list[tuple[int, int, str, str, str | None]]] = {}
    for line, uid, at, ts, event, comment in zip(logs.index.tolist(), _py(logs["user_id"]), _micros(logs["created_at"]),
                                                  _py(logs["created_at"]), _py(logs["event"]), _py(logs["comment"])):
        changes_of.setdefault(uid, []).append((line, at, ts, event, comment))
        if uid not in enrolments:
            rejected.append(RejectedRow("users_logs.csv", line, f"unknown_user: {uid} is not in users.csv",
                                        _raw(logs, line)))
    first_at, first_ts = dict(zip(first.index.tolist(), _micros(first))), dict(zip(first.index.tolist(), _py(first)))
    drafts: list[_Draft] = []
    for uid, profiles in enrolments.items():
        timeline, timeline_rejects = _tag_timeline(changes_of.get(uid, []), logs)
        rejected.extend(timeline_rejects)
        for line, profile in profiles:
            at = first_at[line]
            tags = next((tags for change_at, _, _, tags in reversed(timeline) if change_at < at),
                        _initial_tags(changes_of.get(uid, [])))
            drafts.append(_Draft(at, Topic.STUDENTS, _student(profile, first_ts[line], tags), "users.csv", line))
            drafts.extend(_Draft(change_at, Topic.STUDENTS, _student(profile, ts, tags), "users_logs.csv", log_line)
                          for change_at, ts, log_line, tags in timeline if change_at >= at)
    return drafts, rejected


def _tag_timeline(changes: list[tuple[int, int, str, str, str | None]], logs: pd.DataFrame
                  ) -> tuple[list[tuple[int, str, int, list[str]]], list[RejectedRow]]:
    """(time, ts, source line, tags after it) for each tag change the student's log rows make,
    and the rows that are not tag changes."""
    rejected: list[RejectedRow] = []
    timeline: list[tuple[int, str, int, list[str]]] = []
    tags = _initial_tags(changes)
    for log_line, log_at, log_ts, event, comment in changes:
        if event != "tags-changed":
            rejected.append(RejectedRow("users_logs.csv", log_line, f"unsupported_event: {event}",
                                        _raw(logs, log_line)))
            continue
        try:
            tags = tags_after(comment or "", tags)
        except ValueError as exc:
            rejected.append(RejectedRow("users_logs.csv", log_line, f"unparsed_comment: {exc}", _raw(logs, log_line)))
            continue
        timeline.append((log_at, log_ts, log_line, tags))
    return timeline, rejected


def _student(profile: dict[str, Any], ts: str, tags: list[str]) -> dict[str, Any]:
    return {"ts": ts, **profile, "payment": int(has_payment(tags)),
            "tags": list(tags), "online": is_online(tags)}


def _enrolment_index(frame: pd.DataFrame) -> pd.MultiIndex:
    """(user, course, flow) of each row; an unknown flow is -1."""
    return pd.MultiIndex.from_arrays([frame["user_id"], frame["course_id"], frame["flow_num"].round().fillna(-1)])


def _results(export: LmsExport, users: pd.DataFrame) -> tuple[pd.DataFrame, list[RejectedRow]]:
    """Each enrolment's result row of the extension (the latest, if several; readers.ENROLMENT_EVENTS)
    as columns `result` and `result_at` aligned with `users`, and the rows naming an unknown event or
    enrolment."""
    events = export.enrolment_events
    known = events["event"].isin(ENROLMENT_EVENTS)
    results = events[known & (events["event"] != "enrolled")]
    owned = _enrolment_index(results).isin(_enrolment_index(users))
    rejected = [RejectedRow(ENROLMENT_EVENTS_SPEC.file, line, f"unsupported_event: {event}", _raw(events, line))
                for line, event in events.loc[~known, "event"].items()]
    rejected += [RejectedRow(ENROLMENT_EVENTS_SPEC.file, line, "unknown_enrolment: no such user, course and flow "
                             "in users.csv", _raw(results, line)) for line in results.index[~owned]]
    latest = results[owned].sort_values("created_at", kind="stable", na_position="first")
    latest = latest.set_axis(_enrolment_index(latest))
    latest = latest[~latest.index.duplicated(keep="last")].reindex(_enrolment_index(users))
    return pd.DataFrame({"result": latest["event"].to_numpy(), "result_at": latest["created_at"].to_numpy()},
                        index=users.index), rejected


def _outcomes(export: LmsExport, users: pd.DataFrame, end: pd.Timestamp, flows: pd.DataFrame,
              courses: pd.DataFrame) -> tuple[list[_Draft], list[RejectedRow]]:
    """Module 2's result, known when the LMS says it was (a withdrawal: when the student left),
    else when the attestation was taken, else when the student's flow ends (labels arrive late);
    with no schedule for the course, at the end of the export. The LMS's verdict, where the
    export has one, rides along as `result`."""
    results, rejected = _results(export, users)
    ends = _flow_date(users, flows, courses, "max") + COURSE_TAIL
    at = results["result_at"].fillna(users["m2_attestation_date"]).fillna(ends).fillna(end)
    fields = {"user_id": "user_id", "course_id": "course_id", "flow_num": "flow_num", "progress": "m2_progress",
              "attestation": "m2_attestation", "attestation_date": "m2_attestation_date", "result": "result"}
    drafts = list(_timed(Topic.OUTCOMES, "users.csv", users.assign(result=results["result"]), at, fields,
                         module=OUTCOME_MODULE))
    for draft in drafts:  # no verdict: the record (and so its event id) is what it was before results existed
        if draft.record["result"] is None:
            del draft.record["result"]
    return drafts, rejected


def event_id(topic: Topic, file: str, content: str, occurrence: int) -> str:
    """Deterministic: the same row of the same export always yields the same id; identical rows
    are told apart by how many of them came before."""
    return hashlib.sha1(f"{topic.value}|{file}|{content}|{occurrence}".encode()).hexdigest()[:32]


Span = tuple[pd.Timestamp, pd.Timestamp]


def export_span(export: LmsExport) -> Span | None:
    """The earliest and latest time the export names: the schedule is published at the first, and an
    outcome with no better time at the last."""
    times = pd.concat([export.table(f"{table}.csv")[column] for table, column in _DATED]).dropna()
    return (times.min(), times.max()) if len(times) else None


def seed_online_users(export: LmsExport) -> set[int]:
    """Users the customer's filter keeps: any users_logs comment matches the seed SQL's patterns."""
    logs = export.users_logs
    keep = [matches_seed_online_filter(c) for c in _py(logs["comment"])]
    return set(logs.loc[keep, "user_id"].astype(int).tolist())


def export_to_events(export: LmsExport, *, online_only: bool = False, span: Span | None = None
                     ) -> tuple[list[Event], list[RejectedRow]]:
    """Contract records in event-time order (stable; at equal time: schedule, students, activity,
    outcomes) and the rows that could not become valid records. `online_only` keeps only the
    students the customer's online filter selects (see streams.lms.tags for how it differs from
    the `online` flag on student records). `span` is the whole export's (export_span) when `export`
    is a part of it (LmsExport.users_between), so the part's records are the whole's."""
    span = span or export_span(export)
    if span is None:
        return [], []
    start, end = span
    flows, courses = _course_dates(export.schedule)
    users, rejected = _profiles(export)
    students, unusable = _students(export, users, start, flows, courses)
    rejected.extend(unusable)
    outcomes, unusable = _outcomes(export, users, end, flows, courses)
    rejected.extend(unusable)
    drafts = [*_schedule(export, start), *students, *_activity(export), *outcomes]
    if online_only:
        online = seed_online_users(export)
        drafts = [d for d in drafts if d.topic is Topic.SCHEDULE or d.record.get("user_id") in online]
    drafts.sort(key=lambda d: (d.at, same_time_rank(d.topic)))
    seen: Counter[tuple[Topic, str, str]] = Counter()
    events: list[Event] = []
    for draft in drafts:
        content = repr(tuple(draft.record.values()))
        key = (draft.topic, draft.file, content)
        record = {"event_id": event_id(draft.topic, draft.file, content, seen[key]), **draft.record}
        seen[key] += 1
        try:
            events.append((draft.topic, validate(draft.topic, record)))
        except InvalidEvent as exc:
            rejected.append(RejectedRow(draft.file, draft.line, f"{exc.reason}: {exc.detail}",
                                        json.dumps(record, ensure_ascii=False, default=str)))
    return events, rejected
