"""The per-student step: (document, new events, watermark, schedules, settings, scorer) -> (document, outputs).

Everything the worker decides about one student happens here, as a plain function with no
I/O, so it is tested in memory and the pipeline around it only loads, sends, writes and
commits (the shape of bytewax's `stateful_map`). A student's records share one Kafka key and
one document; statuses, scores, rows and labels are per *enrolment*: one flow of one course,
which a student may hold several of (two courses at once, or the same course again later).
In order:

1. apply the new events to the student's facts, each once (streams.core.event_ids: an offset fence
   per topic-partition against Kafka redeliveries, event ids against LMS copies), and open an
   enrolment for each new (course, flow) profile;
2. give each enrolment the activity that concerns it (see `_concerns`) and its outcome, and
   advance its status machine to the watermark: every transition that happened by then, up to
   the end of its lifecycle (the outcome, or the flow's schedule end plus `grace`);
3. re-score an enrolment when something changed or `score_every` of event time passed, and hand
   the trainer each finished course week's features, and its outcome at `label_release` (with the
   rest of its flow's: the outcome waits in the document until then; the step reports each
   enrolment and outcome to the store's flow index, `flow_marks`, which says when a flow is complete);
4. build the alerts (critical points; those of an enrolment in the notification holdout marked
   so, streams.contract.holdout) and the score rows, and say when the student next needs
   a look (`next_due`), so inactivity is found without scanning students;
5. compact the facts no later step will read one by one (`_compaction_horizon`), so a student's
   document and the cost of their next event stay flat however long their history.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, NamedTuple, Protocol, TypeVar

from features import engagement
from features.activity_status import (
    FINISHED,
    NEW,
    StatusMachine,
    Thresholds,
)
from features.compacted import day_bounds
from features.eventtime import DAY, WEEK, parse_ts
from features.hypotheses import Language
from features.schedule import CourseSchedule, ScheduleKey, page_key
from features.state import FeatureState, attempt_facts, compact, handed_in_at
from streams.contract.holdout import held_out
from streams.contract.outputs import Alert, ScoreRow, Scores, enrolment_key
from streams.contract.topics import ACTIVITY_TOPICS, Topic
from streams.core.alerts import early_warning, is_online, score_row, status_alert
from streams.core.documents import (
    MAX_WAITING_OUTCOMES,
    EnrolmentDoc,
    StudentDoc,
    StudentEvent,
    learner_key,
    new_doc,
)
from streams.core.event_ids import apply_once, forget_event_ids


class Scorer(Protocol):
    """The model, as the step needs it."""

    def score(self, features: dict[str, float]) -> Scores: ...


@dataclass(frozen=True)
class StepConfig:
    thresholds: Thresholds
    score_every: float  # seconds of event time between re-scorings
    grace: float = 7 * DAY  # an enrolment's lifecycle ends this long after its schedule's last opening
    #: a flow's outcomes reach the trainer together: once all are in, or at the latest this long after
    #: its schedule's last opening (one arriving later, when it arrives); None: each when it arrives
    #: (see `label_release`)
    learn_after: float | None = 28 * DAY
    at_risk_on: float = 0.6  # an active enrolment whose P(dropout) reaches this gets an early warning,
    at_risk_off: float = 0.45  # and a new one only after it fell below this (hysteresis) or went quiet
    online_only: bool = True  # alert only students the seed's online filter keeps (the others are kept)
    language: Language = "ru"  # of the reasons' sentences
    holdout_share: float = 0.0  # this share of enrolments get their alerts marked held out (streams.contract.holdout)
    holdout_salt: str = ""
    #: Facts are compacted a week at a time: often enough to keep the raw part to a few weeks of
    #: activity, rarely enough that compacting is a small share of a student's steps. None: never
    #: (the document keeps every fact; `scorer bench --scale` measures the difference).
    compact_every: float | None = WEEK


@dataclass(frozen=True)
class OutcomeLabel:
    """A module outcome that arrived for an enrolment, with how long it had been inactive by then."""

    learner: str  # learner_key of the enrolment
    outcome: dict[str, Any]
    days_inactive: float


class FlowMark(NamedTuple):
    """What the store's flow index learns from a step: an enrolment of a flow, with its outcome's
    time once it has one. A flow whose every enrolment has an outcome is complete (see `FlowsDone`)."""

    course_id: int
    flow: int | None
    outcome_at: float | None


@dataclass
class StepResult:
    doc: StudentDoc
    alerts: list[Alert] = field(default_factory=list)
    score_rows: list[ScoreRow] = field(default_factory=list)
    weeks: list[tuple[str, int, dict[str, float]]] = field(default_factory=list)  # (learner, course week, features)
    labels: list[OutcomeLabel] = field(default_factory=list)
    next_due: float | None = None  # when the student next needs a look (None: at their next event)
    flow_marks: list[FlowMark] = field(default_factory=list)
    status_delta: Counter[str] = field(default_factory=Counter)  # status -> enrolments gained (+) or lost (-)
    #: ("applied" | "duplicate_offset" | "duplicate_event_id" | "late" | "behind_fence", topic) -> records
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    stored: bool = True  # False: nothing to keep (only a redelivered copy of a student never stored)


Schedules = Callable[[ScheduleKey], "CourseSchedule | None"]
#: A complete flow's last outcome time: when every enrolment of the flow the store has heard of
#: (`FlowMark`) has its outcome; None while one has not (or for a flow never reported).
FlowsDone = Callable[[ScheduleKey], "float | None"]


def no_flow_done(key: ScheduleKey) -> float | None:
    """Without a flow index every flow's outcomes wait the whole `learn_after`."""
    return None


def step(user_id: int, doc: StudentDoc | None, events: Sequence[StudentEvent], watermarks: dict[int, float],
         schedules: Schedules, config: StepConfig, scorer: Scorer, flows_done: FlowsDone = no_flow_done) -> StepResult:
    """One student's new events and the watermarks of the worker's partitions -> the new document
    and everything it implies. `doc` is changed in place (and returned)."""
    doc = doc or new_doc()
    result = StepResult(doc)
    applied = apply_once(doc, events, result.counts)
    if doc["partition"] is None:
        result.stored = False
        return result
    opened = _open_enrolments(doc, applied)
    plans = {key: schedules((e["course_id"], e["flow"])) for key, e in sorted(doc["enrolments"].items())}
    machines = {key: StatusMachine.from_json(user_id, e["machine"], scope=key) for key, e in doc["enrolments"].items()}
    for key in opened:
        _seed(machines[key], doc["facts"], doc["enrolments"][key]["started"], key, plans)
    _attribute(applied, doc["facts"], doc["enrolments"], machines, plans, opened, result.counts)
    if len(machines) > 1:
        for key, machine in machines.items():
            if machine.status != FINISHED:
                _resync(machine, doc["facts"], doc["enrolments"][key]["started"], key, plans)
    outcomes = _assign_outcomes(doc, applied)
    mark = watermarks.get(doc["partition"])
    dues = []
    for key, schedule in plans.items():
        enrolment, machine = doc["enrolments"][key], machines[key]
        if not enrolment.get("in_flow_index"):
            result.flow_marks.append(FlowMark(enrolment["course_id"], enrolment["flow"], None))
            enrolment["in_flow_index"] = True
        done = flows_done((enrolment["course_id"], enrolment["flow"]))
        old_status = machine.status
        _step_enrolment(user_id, key, enrolment, machine, schedule, outcomes.get(key, []), doc["facts"], mark,
                        config, scorer, result, done)
        if machine.status != old_status:
            if old_status != NEW:
                result.status_delta[old_status] -= 1
            if machine.status != NEW:
                result.status_delta[machine.status] += 1
        enrolment["machine"] = machine.to_json()
        dues.append(_next_due(machine, schedule, enrolment, config, done))
    result.next_due = min((d for d in dues if d is not None), default=None)
    horizon = _compaction_horizon(doc["enrolments"], machines, plans, mark)
    compacted, every = doc["facts"].get("compacted"), config.compact_every
    if horizon is not None and every is not None and (compacted is None or horizon >= compacted["horizon"] + every):
        compact(doc["facts"], horizon)
        forget_event_ids(doc, doc["facts"]["compacted"]["horizon"])
    return result


#: How far behind the watermark facts stay raw (for a late record, a snapshot a little behind).
KEEP_RAW = 2 * WEEK


def _compaction_horizon(enrolments: dict[str, EnrolmentDoc], machines: dict[str, StatusMachine],
                        plans: dict[str, CourseSchedule | None], mark: float | None) -> float | None:
    """The moment before which no later step reads a fact one by one: every features-as-of still
    to come (a score at the watermark or at a lifecycle's end, a course week's end not yet handed
    to the trainer) and every activity a status machine may still re-derive (`_resync`) lie after
    it. None: keep everything raw (no watermark yet, an enrolment without its schedule or status)."""
    if mark is None or not enrolments:
        return None
    bounds = [mark - KEEP_RAW]
    for key, enrolment in enrolments.items():
        machine, schedule = machines[key], plans[key]
        if machine.status == FINISHED:
            continue
        if schedule is None or machine.horizon is None:
            return None
        bounds += [machine.horizon, schedule.start + (enrolment["weeks_kept"] + 1) * WEEK]
        if machine.end is not None:
            bounds.append(machine.end)
    return min(bounds)


def _step_enrolment(user_id: int, key: str, enrolment: EnrolmentDoc, machine: StatusMachine,
                    schedule: CourseSchedule | None, outcomes: list[dict[str, Any]], facts: FeatureState,
                    mark: float | None, config: StepConfig, scorer: Scorer, result: StepResult,
                    flow_done: float | None) -> None:
    """Advance, score and report one enrolment (see the module docstring, steps 2-4)."""
    was_finished = machine.status == FINISHED
    if schedule is not None:  # the inactivity clock runs from the flow's start; the schedule may
        machine.start = schedule.start  # still be filling in, but no clock runs until it is read
    # recomputed each step, never accumulated: a schedule still filling in has an early end
    # that the rest of its rows move later
    ends = (enrolment["outcome_ts"], None if schedule is None else schedule.end + config.grace)
    machine.end = min((t for t in ends if t is not None), default=None)
    if mark is None:
        # no event time is known for the partition yet (the worker just started or took it over):
        # the facts are kept, but nothing is advanced, scored or written until there is one (a
        # score row as of a fact's time would run ahead of the watermark and shadow later rows)
        _hold_labels(enrolment, outcomes, machine, result)
        result.counts["outcome_held", Topic.OUTCOMES.value] += len(outcomes)
        return
    transitions = machine.advance(mark, config.thresholds)
    _hold_labels(enrolment, outcomes, machine, result)
    release = partial(label_release, schedule=schedule, learn_after=config.learn_after, flow_done=flow_done)
    result.labels += _due_labels(user_id, key, enrolment, release, mark, len(outcomes), result.counts)
    if was_finished:
        return  # its last row and alert are out: a finished enrolment is never scored again
    as_of = machine.since if machine.status == FINISHED and machine.since is not None else mark
    scored_at = enrolment["scored_at"]
    rescore = bool(transitions or outcomes) or scored_at is None or as_of - scored_at >= config.score_every
    features: dict[str, float] = {}
    if rescore:
        features = engagement.compute(facts, schedule, as_of)
        learner = learner_key(user_id, key)
        result.weeks += [(learner, week, x) for week, x in _finished_weeks(enrolment, facts, schedule, as_of)]
        enrolment["scores"], enrolment["scored_at"] = scorer.score(features).to_json(), as_of
    scores = Scores.from_json(enrolment["scores"])
    alerts = [status_alert(t, enrolment, schedule, scores, facts, config.language) for t in transitions]
    warning = early_warning(user_id, key, enrolment, machine, schedule, scores, facts, as_of, config.at_risk_on,
                            config.at_risk_off, config.language)
    if warning is not None:
        alerts.append(warning)
    holdout = held_out(user_id, key, config.holdout_share, config.holdout_salt)
    result.alerts += [replace(a, holdout=True) if holdout else a
                      for a in alerts if not config.online_only or is_online(facts, a.at)]
    if machine.status != NEW and (rescore or transitions):
        result.score_rows.append(score_row(user_id, key, enrolment, machine, scores, features, as_of,
                                           config.language))


def label_release(outcome_at: float, schedule: CourseSchedule | None, learn_after: float | None,
                  flow_done: float | None = None) -> float:
    """When an outcome that arrived at `outcome_at` reaches the trainer: with the rest of its flow's,
    once every enrolment of the flow has its outcome (`flow_done`, never before the flow's schedule
    end: enrolments may still join until then) or `learn_after` past that end, whichever comes first
    (or on arrival, if later or if the schedule is unknown).

    Why: outcomes arrive sorted by result (withdrawals all through a module; in the OULAD import
    fails a week after its end and passes at the exam, 16-23 days after), and a learner refit on
    part of a flow learns its leavers without the classmates who stayed; its next refit may be
    hundreds of labels later, so every flow running beside it is scored by that fit for weeks.
    Measured in strict time order (BBB's students dealt into four presentations, three deals;
    docs/models.md, "Several presentations"): learned on arrival the online model trailed the seed's
    forest in 1-6 of weeks 2-10 on each measure; held to 28 days after the end, in at most one.
    Where a flow's outcomes all come soon after its end (the generated school: within a week)
    its completion releases them then instead of weeks later. The dropout label still *arrives*
    at withdrawal time (the lifecycle ends, the row is written then); only learning waits."""
    if learn_after is None or schedule is None:
        return outcome_at
    release = schedule.end + learn_after
    if flow_done is not None:
        release = min(release, max(schedule.end, flow_done))
    return max(outcome_at, release)


def _hold_labels(enrolment: EnrolmentDoc, outcomes: list[dict[str, Any]], machine: StatusMachine,
                 result: StepResult) -> None:
    """Keep each arrived outcome, with how long the enrolment had been inactive at its time, until
    its `label_release` (computed at each step: a schedule still filling in moves its end later, a
    flow completing moves it earlier), and report it to the flow index."""
    held = enrolment.setdefault("held_labels", [])
    for outcome in outcomes:
        at = parse_ts(outcome["ts"])
        held.append((outcome, max(0.0, (at - (machine.last or at)) / DAY), at))
        result.flow_marks.append(FlowMark(enrolment["course_id"], enrolment["flow"], at))


def _due_labels(user_id: int, key: str, enrolment: EnrolmentDoc, release: Callable[[float], float], mark: float,
                fresh: int, counts: Counter[tuple[str, str]]) -> list[OutcomeLabel]:
    """The held outcomes whose `release` the watermark has reached, as labels for the trainer; counts the
    `fresh` (the last held, this step's) that stay and the earlier ones that go: the outcomes waiting."""
    held = enrolment.get("held_labels", [])
    due = [release(at) <= mark for _, _, at in held]
    waited = len(held) - fresh
    counts["outcome_held", Topic.OUTCOMES.value] += fresh - sum(due[waited:])
    counts["outcome_released", Topic.OUTCOMES.value] += sum(due[:waited])
    enrolment["held_labels"] = [h for h, ready in zip(held, due) if not ready]
    return [OutcomeLabel(learner_key(user_id, key), outcome, days) for (outcome, days, _), ready in zip(held, due)
            if ready]


def _open_enrolments(doc: StudentDoc, applied: Iterable[StudentEvent]) -> list[str]:
    """An enrolment per (course, flow) of the student's profiles, started at its earliest one;
    returns the keys opened by these events."""
    opened = []
    for topic, _, _, record, ts in applied:
        if topic is not Topic.STUDENTS:
            continue
        flow = None if record.get("flow_num") is None else int(record["flow_num"])
        key = enrolment_key(record["course_id"], flow)
        enrolment = doc["enrolments"].get(key)
        if enrolment is None:
            doc["enrolments"][key] = {
                "course_id": record["course_id"], "flow": flow, "started": ts, "machine": None, "outcome_ts": None,
                "weeks_kept": 0, "history_day": None, "scores": {}, "scored_at": None, "at_risk_since": None,
            }
            opened.append(key)
        elif ts < enrolment["started"]:
            enrolment["started"] = ts  # an earlier profile arrived later (replays are not ordered across topics)
    return opened


def _claims(schedule: CourseSchedule | None, topic: Topic, record: dict[str, Any]) -> bool:
    """Is the record about this course? A page view or exercise result of one of its rows is."""
    if schedule is None:
        return False
    if topic is Topic.PAGE_VIEWS:
        return page_key(record["page_type"], record["page_id"]) in schedule.pages
    if topic is Topic.EXERCISE_RESULTS:
        return int(record["activity_id"]) in schedule.activities
    return False


def _concerns(key: str, enrolment: EnrolmentDoc, topic: Topic, record: dict[str, Any], ts: float,
              plans: dict[str, CourseSchedule | None]) -> bool:
    """Does an activity count for this enrolment? Only from its start; a page view or exercise
    result of a course's row counts for that course's enrolments only, while logins, webinar
    events and pages no enrolment's schedule knows count for every enrolment of the student."""
    if ts < enrolment["started"]:
        return False
    claimed_by = [k for k, schedule in plans.items() if _claims(schedule, topic, record)]
    return not claimed_by or key in claimed_by


def _attribute(applied: Sequence[StudentEvent], facts: FeatureState, enrolments: dict[str, EnrolmentDoc],
               machines: dict[str, StatusMachine], plans: dict[str, CourseSchedule | None], opened: list[str],
               counts: Counter[tuple[str, str]]) -> None:
    """Each new activity to the machines of the enrolments it concerns (those opened now were
    seeded from all the facts, these included); late ones counted once per record."""
    for topic, _, _, record, ts in applied:
        if topic not in ACTIVITY_TOPICS or not _is_handing_in(facts, topic, record, ts):
            continue
        late = False
        for key, enrolment in enrolments.items():
            if key not in opened and _concerns(key, enrolment, topic, record, ts, plans):
                late = not machines[key].add(ts) or late
        if late:
            counts["late", topic.value] += 1


def _is_handing_in(facts: FeatureState, topic: Topic, record: dict[str, Any], ts: float) -> bool:
    """Is the record the student's own activity? A hand-in (`pending`) is. A later grade of an
    attempt the LMS names (a regrade) is the grader's: the attempt stays handed in at its earliest
    time, as the facts hold it (features.state.attempt_facts). A regrade read before the attempt's
    first record has counted by then, and stays counted."""
    attempt_id = record.get("attempt_id") if topic is Topic.EXERCISE_RESULTS else None
    if attempt_id is None or record.get("pending") is True:
        return True
    return handed_in_at(facts, str(record["activity_id"]), attempt_id) == int(ts // 1)


def _seed(machine: StatusMachine, facts: FeatureState, started: float, key: str,
          plans: dict[str, CourseSchedule | None]) -> None:
    """A new enrolment's machine: its registration, and the student's activity since it started
    that concerns it (activity may arrive before the profile that opens the enrolment)."""
    for ts in _concerning_times(facts, started, key, plans):
        machine.add(ts)


def _resync(machine: StatusMachine, facts: FeatureState, started: float, key: str,
            plans: dict[str, CourseSchedule | None]) -> None:
    """A student with several enrolments: which of them an activity concerns depends on the
    schedules, which may still be filling in when it arrives (topics are read in any order). So
    the activity the machine has not yet consumed is re-derived from the facts with the schedules
    as they are now; by the time the watermark passes an activity, every schedule row before it
    has been read, so the machine consumes it attributed as a complete schedule would. Activity at
    or behind the horizon was queued this step (late or exactly at it) and stays."""
    horizon = machine.horizon
    kept = [] if horizon is None else [ts for ts in machine.pending if ts <= horizon]
    fresh = [ts for ts in _concerning_times(facts, started, key, plans) if horizon is None or ts > horizon]
    machine.pending = sorted(kept + fresh)


def _concerning_times(facts: FeatureState, started: float, key: str,
                      plans: dict[str, CourseSchedule | None]) -> list[float]:
    """The enrolment's registration and the student's activity since it started that concerns it."""
    times: list[float] = [started]  # the inactivity clock starts at enrolment
    # compacted days give their first and last activity, which is what the machine's gaps read;
    # they are attributed to every enrolment (only a new enrolment that started before the
    # compaction horizon reads them: `_resync` re-derives activity after the machine's horizon)
    times += [float(ts) for day in day_bounds(facts.get("compacted")) for ts in day if ts >= started]
    times += [float(ts) for ts in facts["logins"] if ts >= started]
    times += [float(f[0]) for facts_ in facts["webinars"].values() for f in facts_ if f[0] >= started]
    for page, views in facts["views"].items():
        record = {"page_type": "занятие" if page[0] == "t" else "активность", "page_id": int(page[1:])}
        if any(_claims(s, Topic.PAGE_VIEWS, record) for s in plans.values()) and not _claims(
                plans[key], Topic.PAGE_VIEWS, record):
            continue
        times += [float(ts) for ts in views if ts >= started]
    for activity, attempts in attempt_facts(facts).items():
        record = {"activity_id": int(activity)}
        if any(_claims(s, Topic.EXERCISE_RESULTS, record) for s in plans.values()) and not _claims(
                plans[key], Topic.EXERCISE_RESULTS, record):
            continue
        times += [float(a[0]) for a in attempts if a[0] >= started]
    return times


def _assign_outcomes(doc: StudentDoc, applied: Sequence[StudentEvent]) -> dict[str, list[dict[str, Any]]]:
    """Each new outcome (and each still waiting for an enrolment) to its enrolment (`outcome_owner`);
    one with no such enrolment yet waits in the document."""
    enrolments = doc["enrolments"]
    arrived = [(record, ts) for topic, _, _, record, ts in applied if topic is Topic.OUTCOMES]
    out: dict[str, list[dict[str, Any]]] = {}
    waiting = []
    starts = {key: (e["started"], e["course_id"], e["flow"]) for key, e in enrolments.items()}
    for record, ts in [*doc.get("waiting_outcomes", []), *arrived]:
        key = outcome_owner(record, ts, starts)
        if key is None:
            waiting.append((record, ts))
            continue
        enrolment = enrolments[key]
        enrolment["outcome_ts"] = ts if enrolment["outcome_ts"] is None else min(enrolment["outcome_ts"], ts)
        out.setdefault(key, []).append(record)
    doc["waiting_outcomes"] = waiting[-MAX_WAITING_OUTCOMES:]  # outcomes of courses never enrolled in stay facts
    return out


#: How a caller names an enrolment: the worker by its key ("course:flow"), the offline tools by (course, flow).
EnrolmentId = TypeVar("EnrolmentId", str, tuple[int, int | None])


def outcome_owner(record: dict[str, Any], ts: float,
                  starts: Mapping[EnrolmentId, tuple[float, int | None, int | None]]) -> EnrolmentId | None:
    """The enrolment an outcome at `ts` belongs to, among (started, course, flow) by enrolment: the
    one of its course and flow when it names both; else of its course (any, when it names none), the
    latest one started by its time (or the earliest, for an outcome older than every start); None
    when no enrolment fits (yet)."""
    course, flow = record.get("course_id"), record.get("flow_num")
    candidates = sorted((started, key) for key, (started, c, f) in starts.items()
                        if (course is None or c == course) and (flow is None or course is None or f == int(flow)))
    if not candidates:
        return None
    before = [key for started, key in candidates if started <= ts]
    return before[-1] if before else candidates[0][1]


def _finished_weeks(enrolment: EnrolmentDoc, facts: FeatureState, schedule: CourseSchedule | None,
                    as_of: float) -> list[tuple[int, dict[str, float]]]:
    """Each course week that ended since the last look, up to the schedule's last week, with the
    features as of its end: the trainer learns (week's features, final outcome) pairs from them
    when the label arrives."""
    if schedule is None:
        return []
    finished = min(schedule.week_of(as_of) - 1, schedule.weeks) if as_of >= schedule.start else 0
    weeks = [(week, engagement.compute(facts, schedule, schedule.start + week * WEEK))
             for week in range(enrolment["weeks_kept"] + 1, finished + 1)]
    enrolment["weeks_kept"] = max(enrolment["weeks_kept"], finished)
    return weeks


def _next_due(machine: StatusMachine, schedule: CourseSchedule | None, enrolment: EnrolmentDoc,
              config: StepConfig, flow_done: float | None) -> float | None:
    held = enrolment.get("held_labels", [])
    dues = [machine.next_due(config.thresholds),
            *(label_release(at, schedule, config.learn_after, flow_done) for _, _, at in held)]
    if machine.status != FINISHED and schedule is not None and enrolment["weeks_kept"] < schedule.weeks:
        dues.append(schedule.start + (enrolment["weeks_kept"] + 1) * WEEK)
    return min((d for d in dues if d is not None), default=None)
