"""One synthetic student living through module 2, day by day.

The behaviour is driven by two latent traits: motivation (how much the student wants to study)
and skill (how well attempts go). Engagement drifts around motivation and is what the LMS can
see: how often the student logs in, how much they do per session, whether they come to
webinars. Failing exercises lowers engagement, much more in the first three weeks (the seed's
hypothesis that early failure drives dropout). Low engagement makes the student doze off
(7-19 idle days) or fall asleep (20+ days); some come back, some leave for good. Those who
stay keep logging in now and then after the module (the next one has begun), so going quiet
for good is what leaving looks like in the export.

Planted effects: on top of what motivation does to everything, each of the seed's four
hypotheses (SPEC section 5) has a direct cause of leaving built in, so that `scorer
hypotheses` has known answers to find on generated data:
1. progress: the daily hazard of leaving grows with the backlog, the share of the opened
   graded activities not passed (BACKLOG_HAZARD);
2. regularity: `cadence`, a trait drawn independently of motivation, scales the chance of a
   session on any day; each time a week passes without a session, the student leaves for good
   with probability GAP_LEAVE (so students with long gaps between visits drop out more);
3. timeliness: each graded activity not passed when its lesson falls due (the next lesson
   opens) costs engagement (DEADLINE_HIT);
4. early success: a failed attempt costs much more engagement in the first three weeks
   (EARLY_HIT) and early failures raise the hazard (EARLY_FAILURE_HAZARD).
Planted effect of the notifications (off by default, for `scorer uplift`): the worker alerts a
student a week after their last activity (dozing); one who is notified (`nudge` > 0: online and
not in the holdout) comes back within NUDGE_DAYS with probability `nudge`, once per quiet spell,
even one who had decided to leave for good.
Planted nulls: age and time zone drive nothing (nothing here reads them), so they must not
separate the outcomes.

Realism R (0..1, `scorer generate --realism`; 0 by default, which writes exactly what the
generator wrote before R existed). At R = 0 the final progress is `round(100 * graded activities
passed / all graded)`, the `progress` feature at the course end, and only engagement the export
shows drives leaving, so models look better on this data than they can on real data. R > 0 adds
what the LMS does not see, with shares scaled by R (a `Life` per student, drawn from its own
random stream so that the main one is untouched):
(a) curated work: a share of each student's graded activities, the exam's excepted (uniform in
    0..CURATED_MAX x R), goes to a curator instead of the platform's checker; the grade counts in the final progress but
    reaches exercise_results.csv only CURATOR_DAYS (mean of an exponential) later, and never if
    that is after the module ended or if the curator keeps it in a sheet of their own
    (CURATOR_LOST of them); and of the rest, the checker's passes, a share (uniform in
    0..COPIED_MAX x R) is rejected later by a curator's review (copied solutions): passed in
    exercise_results.csv, not counted in the final progress;
(b) life shocks: a share SHOCK_SHARE x R of students meets an illness or a job change on a day
    drawn uniformly over the module, whatever their engagement: with probability SHOCK_LEAVE they
    leave for good that day, else they pause SHOCK_PAUSE days (a pause of 20+ days that outlasts
    the module is a dropout, as a long sleep is);
(c) heterogeneous students: QUIET_SHARE x R are quiet achievers (skill + QUIET_SKILL; they study
    from downloaded materials and send all their graded work to the curator, so before the exam
    week only QUIET_ONLINE of their study days leave a trace in the LMS: login, views, the
    inactivity the worker measures); BUSY_SHARE x R are busy strugglers (sessions x BUSY_SESSIONS,
    looks back at old lessons x BUSY_LOOKBACK, skill - BUSY_SKILL, failures cost x BUSY_SETBACK the
    engagement): outcomes that the clicks do not predict;
(d) exam noise: the attestation score of a student who sat the exam moves by N(0, EXAM_NOISE x R)
    points (an oral defence, a proctor, a bad day), clipped to 0..100.
The four planted effects stay in place for everyone (busy strugglers feel failures less);
`scorer hypotheses` still finds all four at R = 1, with smaller effect sizes. ground_truth.csv
describes this world:
final_progress is the school's count (curated work in, rejected work out), dropout and dropout_ts
include the shocks (dropout_ts stays the last thing the LMS saw the student do; a curator's late
grade may come after it).

Times are whole epoch seconds, naive school time read as UTC (the contract's convention).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from features.eventtime import DAY as _DAY
from streams.lms.synthetic.course import MODULE, WEBINAR_DAY, Activity, Course, Lesson
from streams.lms.tags import OFFLINE_TAG as OFFLINE
from streams.lms.tags import ONLINE_TAG as ONLINE

DAY = int(_DAY)  # whole seconds: the simulation steps through days with integer arithmetic
EARLY = 21 * DAY  # "the first weeks" of the seed's early-failure hypothesis
BACKLOG_HAZARD = 1.5  # hazard x (1 + this x share of opened graded activities not passed)
GAP_DAYS, GAP_LEAVE = 7, 0.2  # a week without a session: the chance of never coming back
DEADLINE_HIT = 0.03  # engagement lost per graded activity not passed when its lesson falls due
DEADLINE_HIT_MAX = 0.12  # ... at most this much per lesson
EARLY_HIT, LATE_HIT = 0.06, 0.015  # engagement lost per failed attempt, in the first three weeks / later
EARLY_FAILURE_HAZARD = 0.5  # hazard x (1 + this x early failures, at most 6)
HOLIDAYS = (datetime(2023, 12, 30), datetime(2024, 1, 9))  # New Year: everyone studies less
PAID, COMPLETED = "#M1-оплачен", "#M2-завершил"
NOTICED_DAYS = 7  # the worker's dozing threshold: the alert that may bring a student back
NUDGE_DAYS = 2  # a notified student who responds comes back 0..this many days after it
# Realism (see "Realism R" above); every share is multiplied by R.
CURATED_MAX = 0.8  # a student's share of graded work sent to the curator: uniform in 0..this
CURATOR_DAYS = 14  # mean delay of a curator's grade (exponential); lost if it lands after the module
CURATOR_LOST = 0.5  # share of curated grades kept in the curator's own sheet, never in the LMS
COPIED_MAX = 0.4  # a student's share of the checker's passes the curator later rejects: uniform in 0..this
SHOCK_SHARE, SHOCK_LEAVE, SHOCK_PAUSE = 0.3, 0.6, (14, 28)  # life events: who, for good, else a pause
QUIET_SHARE, QUIET_ONLINE, QUIET_SKILL = 0.12, 0.3, 1.5  # quiet achievers: share, study days online, skill
BUSY_SHARE, BUSY_SESSIONS, BUSY_LOOKBACK, BUSY_SKILL, BUSY_SETBACK = 0.12, 1.8, 4.0, 2.0, 0.3  # busy strugglers
EXAM_NOISE = 12.0  # points, standard deviation at R = 1
NEVER = 10 ** 9  # seconds: a curator's grade the LMS never gets


def epoch(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


_HOLIDAYS = tuple(epoch(d) for d in HOLIDAYS)


@dataclass(frozen=True)
class Traits:
    user_id: int
    unti_id: int
    course: Course
    flow: int
    motivation: float  # 0..1
    skill: float  # ~N(0, 1)
    hour: float  # usual session start, school time
    weekend: float  # activity multiplier on Saturdays and Sundays
    online: bool  # learning format at enrolment
    switch_day: int | None  # day after the flow start the format tag flips
    typo: str | None  # misspelt online tag at enrolment (the seed filter's #оулайн/#оглайн)
    paid_day: int | None  # day after the flow start the payment tag is added (< 0: at enrolment)
    set_form: bool  # enrolment logged as 'Установлен хештег "…"' instead of "Были хештеги: …"
    ghost: bool  # enrolled but never studies
    user_agent: str
    window: tuple[int, int]
    cadence: float = 1.0  # 0..1, independent of motivation: scales the daily chance of a session


@dataclass(frozen=True)
class Life:
    """What the LMS does not see of a student (realism, see the module docstring). The defaults
    are R = 0: they leave every formula as it was (x 1.0, + 0.0), so the output is unchanged."""

    curated: dict[int, int] = field(default_factory=dict)  # graded activity -> seconds until its grade shows
    rejected: frozenset[int] = frozenset()  # graded activities whose checker pass the curator rejects
    skill: float = 0.0  # added to the skill attempts use
    offline_days: frozenset[int] = frozenset()  # days after the flow start whose study the LMS does not see
    sessions: float = 1.0  # scales the daily chance of a session
    lookback: float = 1.0  # scales the chance of a look back at an earlier lesson
    setback: float = 1.0  # scales the engagement a failed attempt costs
    shock_day: int | None = None  # day after the flow start a life event strikes
    shock_pause: int = 0  # days it keeps the student away; 0 = for good
    exam_noise: float = 0.0  # points added to the exam score


def draw_life(realism: float, rng: random.Random, course: Course) -> Life:
    """A student's life outside the LMS at realism `realism`, from `rng`, a stream of its own. The
    same draws are made whatever R > 0 is, so with one seed a higher R adds to what a lower one did."""
    if not realism:
        return Life()
    kind, spread, copying = rng.random(), rng.random(), rng.random()
    quiet = kind < QUIET_SHARE * realism
    busy = not quiet and kind < (QUIET_SHARE + BUSY_SHARE) * realism
    share = 1.0 if quiet else CURATED_MAX * realism * spread
    curated, rejected = {}, set()
    for activity in course.graded:
        sent, copied, lost, delay = rng.random(), rng.random(), rng.random(), rng.expovariate(1 / CURATOR_DAYS)
        if activity.attestation:
            continue
        if sent < share:
            curated[activity.activity_id] = NEVER if lost < CURATOR_LOST else int(delay * DAY)
        elif copied < COPIED_MAX * realism * copying:
            rejected.add(activity.activity_id)
    exam_day = 7 * (course.weeks - 1)  # the attestation opens: it is taken on the platform
    offline = frozenset(d for d in range(-7, exam_day) if rng.random() >= QUIET_ONLINE)
    struck, day, leave, pause = rng.random(), rng.randrange(7 * course.weeks), rng.random(), rng.randint(*SHOCK_PAUSE)
    life = Life(curated, frozenset(rejected), shock_day=day if struck < SHOCK_SHARE * realism else None,
                shock_pause=0 if leave < SHOCK_LEAVE else pause, exam_noise=rng.gauss(0, EXAM_NOISE) * realism)
    if quiet:
        return replace(life, skill=QUIET_SKILL, offline_days=offline)
    if busy:
        return replace(life, skill=-BUSY_SKILL, sessions=BUSY_SESSIONS, lookback=BUSY_LOOKBACK, setback=BUSY_SETBACK)
    return life


@dataclass
class Rows:
    """Output rows per file, times as epoch seconds."""

    authorization: list[tuple[Any, ...]] = field(default_factory=list)
    views: list[tuple[Any, ...]] = field(default_factory=list)
    results: list[tuple[Any, ...]] = field(default_factory=list)
    webinars: list[tuple[Any, ...]] = field(default_factory=list)
    logs: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    progress: int  # share of the module's graded activities passed, 0..100
    attestation: int | None  # None = not passed
    attestation_ts: int | None
    dropout: bool  # left for good before the module ended, without succeeding
    dropout_ts: int | None  # the last thing the LMS saw of them
    attempted: bool  # tried any exercise; if not, the LMS may report 'Нет данных'

    @property
    def success(self) -> bool:
        """The seed analysts' rule: attestation >= 50 and progress >= 50."""
        return self.attestation is not None and self.attestation >= 50 and self.progress >= 50


def _minute(t: int) -> int:
    """Files with the dd.mm.yyyy HH:MM layout only keep minutes."""
    return t - t % 60


class StudentSim:
    def __init__(self, traits: Traits, rng: random.Random, rows: Rows, horizon: int, nudge: float = 0.0,
                 life: Life = Life()) -> None:
        """`horizon`: when the export was taken (epoch seconds), at or after this flow's end; `nudge`:
        the chance a dozing alert brings the student back (0: no notification reaches them); `life`:
        what the LMS does not see (realism; none by default)."""
        self.s, self.rng, self.rows, self.horizon, self.life = traits, rng, rows, horizon, life
        course = traits.course
        self.start = epoch(course.shown(traits.flow, 0))
        self.day0 = self.start - self.start % DAY
        self.end = epoch(course.end(traits.flow))
        self.shown = [epoch(course.shown(traits.flow, w)) for w in range(course.weeks)]
        self.next_activity = [0] * len(course.lessons)
        self.best: dict[int, int] = {}  # graded activity -> best result
        self.passed: set[int] = set()
        self.engagement = min(0.98, max(0.02, traits.motivation + rng.gauss(0, 0.1)))
        self.early_failures = 0
        self.last: int | None = None  # the last time the LMS saw the student do anything
        self.started = False  # has done anything, seen or not (a quiet achiever may study unseen)
        self.enrolled = 0
        self.attestation_ts: int | None = None
        self.tags: list[str] = []
        self.switch_ts = None if traits.switch_day is None else self.day0 + traits.switch_day * DAY + 10 * 3600
        graded = [sum(a.graded for a in lesson.activities) for lesson in course.lessons]
        self.graded_opened = [sum(graded[:k]) for k in range(len(graded) + 1)]  # graded in the first k lessons
        self.due = [*self.shown[1:], self.end]  # a lesson falls due when the next one opens
        self.due_seen = 0  # lessons whose due time has been taken into account
        self.last_session = self.start
        self.gap_counted = False  # the current gap between sessions already had its chance to end it all
        self.nudge = nudge
        self.noticed: int | None = None  # the quiet spell (its clock base) whose alert was already read
        self.shocked = False  # the life event, if any, has struck
        self.offline = False  # studying today without the LMS seeing it (a quiet achiever)

    # -- tags -------------------------------------------------------------------------------
    def online_at(self, t: int) -> bool:
        flipped = self.switch_ts is not None and t >= self.switch_ts
        return self.s.online != flipped

    def _tag_log(self, t: int, before: list[str], after: list[str]) -> None:
        comment = f"Были хештеги: {' '.join(before)}, стали: {' '.join(after)}"
        self.rows.logs.append((self.s.user_id, _minute(t), "tags-changed", comment))

    def enrol(self) -> int:
        """Enrolment tags a few days before the flow starts, then the administrative changes:
        typo fix, payment, format switch. Returns the enrolment time."""
        s, rng = self.s, self.rng
        t = self.day0 - rng.randint(1, 6) * DAY + rng.randint(9 * 3600, 20 * 3600)
        fmt = ONLINE if s.online else OFFLINE
        if s.set_form:
            tags = [fmt]
            self.rows.logs.append((s.user_id, _minute(t), "tags-changed", f'Установлен хештег "{fmt}"'))
        else:
            tags = ["#entry-email", s.typo or fmt] + ([PAID] if s.paid_day is not None and s.paid_day < 0 else [])
            self._tag_log(t, [], tags)
        changes: list[tuple[int, str]] = []
        if s.typo:
            changes.append((t + rng.randint(1, 3) * DAY, "typo"))
        if s.paid_day is not None and s.paid_day >= 0:
            changes.append((self.day0 + s.paid_day * DAY + rng.randint(9 * 3600, 21 * 3600), "paid"))
        if self.switch_ts is not None:
            changes.append((self.switch_ts, "switch"))
        for when, kind in sorted(changes):
            after = list(tags)
            if kind == "typo":
                assert s.typo is not None  # a "typo" change is only queued for a student with one
                after[after.index(s.typo)] = ONLINE
            elif kind == "paid":
                after.append(PAID)
            else:
                old, new = (ONLINE, OFFLINE) if s.online else (OFFLINE, ONLINE)
                after = [new if tag == old else tag for tag in after]
            self._tag_log(when, tags, after)
            tags = after
        self.tags = tags
        return t

    # -- activity ---------------------------------------------------------------------------
    def seen(self, t: int) -> bool:
        """Whether the LMS sees the student act at `t`; if so, it is the last sight of them so far."""
        self.started = True
        if not self.offline:
            self.last = t
        return not self.offline

    def login(self, t: int) -> None:
        width, height = self.s.window
        height -= self.rng.choice((0, 0, 14, 28))  # browser bars come and go, as in the seed's 932/918
        if self.seen(t):
            self.rows.authorization.append((self.s.user_id, t, self.s.user_agent, f"{width}x{height}"))

    def view(self, t: int, lesson: Lesson, activity: Activity | None) -> None:
        if not self.seen(t):
            return
        if activity is None:
            self.rows.views.append((self.s.user_id, t, "занятие", lesson.task_id, MODULE, lesson.attestation, ""))
        else:
            self.rows.views.append((self.s.user_id, t, "активность", activity.activity_id, MODULE, lesson.attestation,
                                    activity.kind))

    def attempt(self, t: int, activity: Activity) -> int:
        """Attempts at one graded activity until it is passed, skipped or given up; returns the
        time after the last attempt."""
        rng, s = self.rng, self.s
        if rng.random() < 0.03 + 0.12 * (1 - self.engagement):
            self.result(t, activity, "Пропуск", 0)
            self.best.setdefault(activity.activity_id, 0)
            self.seen(t)
            return t
        skill = s.skill + self.life.skill
        for tries in range(4):
            logit = 1.3 * skill + 1.5 * (self.engagement - 0.5) - activity.difficulty + 0.5 * tries
            if rng.random() < 1 / (1 + math.exp(-logit)):
                result = 100 if activity.kind == "question" or rng.random() < 0.6 else rng.randint(60, 99)
                self.passed.add(activity.activity_id)
                self.engagement = min(0.98, self.engagement + 0.015)
            else:
                result = 0 if activity.kind == "question" else rng.randint(0, 59)
                early = t - self.start < EARLY
                self.early_failures += early
                self.engagement = max(0.02, self.engagement - (EARLY_HIT if early else LATE_HIT) * self.life.setback)
            self.result(t, activity, str(result), int(result >= 60))
            self.best[activity.activity_id] = max(result, self.best.get(activity.activity_id, 0))
            if activity.attestation:
                self.attestation_ts = t
            if result >= 60 or rng.random() > 0.4 + 0.5 * self.engagement:
                break
            t += rng.randint(120, 900)
        self.seen(t)
        return t

    def result(self, t: int, activity: Activity, result: str, success: int) -> None:
        """The exercise_results row of an attempt at `t`; curated work shows when the curator grades
        it, and not at all if that is after the module (realism (a)); other work done offline never."""
        delay = self.life.curated.get(activity.activity_id, 0)
        if (delay and t + delay >= self.end) or (self.offline and not delay):
            return
        self.rows.results.append((MODULE, activity.activity_id, self.s.user_id, t + delay, result, success))

    def pick_lesson(self, t: int, rush: bool) -> int | None:
        """The earliest open lesson with work left; the attestation first when `rush`."""
        lessons = self.s.course.lessons
        open_ = [i for i, shown in enumerate(self.shown)
                 if shown <= t and self.next_activity[i] < len(lessons[i].activities)]
        if not open_:
            return None
        return open_[-1] if rush and lessons[open_[-1]].attestation else open_[0]

    def usual_time(self, day: int) -> int:
        """A moment of `day` (midnight, epoch) near the hour this student usually studies."""
        hour = min(23.5, max(6.5, self.s.hour + self.rng.gauss(0, 1.0)))
        return day + int(hour * 3600) + self.rng.randint(0, 59)

    def session(self, day: int) -> None:
        """A study day; a quiet achiever's offline day leaves no trace in the LMS (realism (c))."""
        self.offline = (day - self.day0) // DAY in self.life.offline_days
        self.study(day)
        self.offline = False

    def study(self, day: int) -> None:
        rng, lessons = self.rng, self.s.course.lessons
        t = self.usual_time(day)
        self.login(t)
        self.last_session, self.gap_counted = t, False
        if rng.random() < 0.2:  # a second device or an expired token
            self.login(t + rng.randint(60, 1800))
        budget = 1 + int(rng.expovariate(1 / (2 + 9 * self.engagement)))
        rush = rng.random() < 0.8
        current = None
        while budget > 0:
            index = self.pick_lesson(t, rush)
            if index is None:
                return
            lesson = lessons[index]
            if index != current:
                t += rng.randint(20, 120)
                self.view(t, lesson, None)
                current = index
            if rng.random() < 0.08 * self.life.lookback and index > 0:  # a look back at an earlier lesson
                back = lessons[rng.randrange(index)]
                t += rng.randint(30, 300)
                self.view(t, back, rng.choice(back.activities))
            activity = lesson.activities[self.next_activity[index]]
            t += rng.randint(30, 240)
            self.view(t, lesson, activity)
            if activity.graded:
                t = self.attempt(t + rng.randint(120, 1200), activity)
            else:
                t += rng.randint(60, 600)
            self.next_activity[index] += 1
            budget -= 1

    def webinar(self, week: int) -> None:
        """Connect/disconnect pairs; sometimes the connection drops and comes back."""
        rng, s = self.rng, self.s
        start = self.shown[week] + int(WEBINAR_DAY.total_seconds())
        joined = start + rng.randint(-300, 1200)
        left = joined + rng.randint(900, 5400)
        fmt = "онлайн" if self.online_at(joined) else "офлайн"
        intro = int(week == 0)
        webinar_id = s.course.webinar_id(s.flow, week)
        moments = [joined, left]
        if rng.random() < 0.15:
            drop = rng.randint(joined + 300, left - 300)
            moments = [joined, drop, drop + rng.randint(60, 300), left]
        for i, moment in enumerate(moments):
            event = "Подключение" if i % 2 == 0 else "Отключение"
            self.rows.webinars.append((s.user_id, _minute(moment), event, webinar_id, fmt, intro, MODULE))
        self.last, self.started = left, True

    # -- the module -------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return all(n == len(lesson.activities) for n, lesson in zip(self.next_activity, self.s.course.lessons))

    def backlog(self, day: int) -> float:
        """Share of the graded activities opened by `day` not passed yet (planted effect 1)."""
        opened = self.graded_opened[sum(shown <= day for shown in self.shown)]
        return 1 - len(self.passed) / opened if opened else 0.0

    def deadlines(self, day: int) -> None:
        """Lessons that fell due by `day`: each graded activity not passed costs engagement (effect 3)."""
        lessons = self.s.course.lessons
        while self.due_seen < len(lessons) and self.due[self.due_seen] <= day:
            missed = sum(a.graded and a.activity_id not in self.passed for a in lessons[self.due_seen].activities)
            self.engagement = max(0.02, self.engagement - min(DEADLINE_HIT_MAX, DEADLINE_HIT * missed))
            self.due_seen += 1

    def hazard(self, day: int) -> float:
        """The daily chance of leaving for good: apathy, mostly early in the module, raised by
        early failures and the backlog (effects 1 and 4)."""
        apathy = 1 - self.engagement
        phase = 1.5 - min(1.0, max(0.0, (day - self.start) / (self.end - self.start)))  # most leave early
        return ((0.0001 + 0.003 * apathy ** 3 * phase) * (1 + EARLY_FAILURE_HAZARD * min(self.early_failures, 6))
                * (1 + BACKLOG_HAZARD * self.backlog(day)))

    def gives_up_after_a_gap(self, day: int) -> bool:
        """A week without a session ends it for good with probability GAP_LEAVE, once per gap (effect 2)."""
        if self.gap_counted or day - self.last_session < GAP_DAYS * DAY:
            return False
        self.gap_counted = True
        return self.rng.random() < GAP_LEAVE

    def notified_back(self, day: int) -> int | None:
        """The day a dozing alert brings the student back (None: no alert due, or it does not work).
        The worker's inactivity clock runs from the later of the last activity and the flow start."""
        if not self.nudge or self.last is None:
            return None
        base = max(self.last, self.start)
        if base == self.noticed or day < base + NOTICED_DAYS * DAY:
            return None
        self.noticed = base
        if not self.online_at(day) or self.rng.random() >= self.nudge:
            return None
        back = day + self.rng.randint(0, NUDGE_DAYS) * DAY
        return back if back < self.end else None

    def life_event(self, d: int) -> int | None:
        """Days the life event keeps the student away from day `d` on (0: for good), once, on the first
        day at or after it the student would study; None: nothing strikes (realism (b))."""
        if self.shocked or self.life.shock_day is None or d < self.life.shock_day:
            return None
        self.shocked = True
        return self.life.shock_pause

    def dozes_off(self, apathy: float) -> int | None:
        """Days of a break that starts today (7-19: dozing, 20+: asleep); None: no break."""
        if self.rng.random() < 0.003 + 0.03 * apathy ** 2:
            return self.rng.randint(7, 19) if self.rng.random() < 0.6 else self.rng.randint(20, 35)
        return None

    def _day_factor(self, day: int) -> float:
        weekend = self.s.weekend if (day // DAY + 3) % 7 >= 5 else 1.0  # 1970-01-01 was a Thursday
        return weekend * (0.45 if _HOLIDAYS[0] <= day < _HOLIDAYS[1] else 1.0)

    def run(self) -> Outcome:
        rng, s = self.rng, self.s
        self.enrolled = self.enrol()
        if s.ghost:
            if rng.random() < 0.5:
                self.login(self.enrolled + rng.randint(3600, 5 * DAY))
            return self._outcome(dropped_at=self.last_seen)
        for _ in range(int(rng.random() * 10 * s.motivation)):  # module 1, before this one
            self.login(self.usual_time(self.day0 - rng.randint(8, 49) * DAY))
        webinar_days = {(shown + int(WEBINAR_DAY.total_seconds()) - self.day0) // DAY: w
                        for w, shown in enumerate(self.shown)}
        idle_until, dropped_at, resume = -99, None, self.end
        for d in range(-3, (self.end - self.day0) // DAY):
            day = self.day0 + d * DAY
            resume = day + DAY
            back = self.notified_back(day) if d >= 0 else None
            if back is not None:  # a notification brings them back, from a break or after leaving
                dropped_at = None
                self.session(back)
                if self.finished:
                    break
                idle_until = (back - self.day0) // DAY + 1
                continue
            if dropped_at is not None:  # left: gone for good once this spell's alert did not work
                if self.noticed == max(dropped_at, self.start):
                    break
                continue
            if d < idle_until:
                continue
            if d == idle_until:  # back from a break, with some of the old drive
                self.engagement = (self.engagement + s.motivation) / 2
            if self.started and d >= 0:
                self.deadlines(day)
                apathy = 1 - self.engagement
                shock = self.life_event(d)
                if shock == 0:  # a life event: gone for good, whatever their engagement
                    dropped_at = self.last_seen
                    break
                if shock is None and (rng.random() < self.hazard(day) or self.gives_up_after_a_gap(day)):
                    dropped_at = self.last_seen  # leaves for good (unless a notification brings them back)
                    if not self.nudge:
                        break
                    continue
                idle = shock or self.dozes_off(apathy)
                if idle:
                    idle_until = d + idle
                    resume = self.day0 + idle_until * DAY
                    if resume >= self.end:  # the break outlasts the module: asleep = gone, dozing = back later
                        dropped_at = self.last_seen if idle >= 20 else None
                        break
                    continue
            self.engagement = min(0.98, max(0.02, self.engagement + 0.08 * (s.motivation - self.engagement)
                                            + rng.gauss(0, 0.03)))
            if d in webinar_days and rng.random() < 0.1 + 0.55 * self.engagement:
                self.webinar(webinar_days[d])
            if rng.random() < (0.15 + 0.6 * self.engagement) * self._day_factor(day) * s.cadence * self.life.sessions:
                self.session(day)
                if self.finished:
                    break
        if dropped_at is None:
            self.linger(resume)
        return self._outcome(dropped_at)

    @property
    def last_seen(self) -> int:
        """When a student who leaves now was last seen: their last act the LMS saw, else the enrolment."""
        return self.enrolled if self.last is None else self.last

    def linger(self, first_day: int) -> None:
        """A student who stayed keeps logging in now and then after finishing the module: the
        next module has begun, which this export does not cover."""
        for day in range(first_day, self.horizon, DAY):
            if self.rng.random() < (0.1 + 0.3 * self.s.motivation) * self._day_factor(day):
                self.login(self.usual_time(day))

    def _outcome(self, dropped_at: int | None) -> Outcome:
        course = self.s.course
        graded = course.graded
        accepted = self.passed - self.life.rejected
        progress = round(100 * sum(a.activity_id in accepted for a in graded) / len(graded))
        exam = [a for a in graded if a.attestation]
        noise = self.life.exam_noise if self.attestation_ts is not None else 0.0  # only for who sat the exam
        score = min(100, max(0, round(sum(self.best.get(a.activity_id, 0) for a in exam) / len(exam) + noise)))
        attestation = score if score >= 50 else None
        passed = Outcome(progress, attestation, self.attestation_ts if attestation is not None else None,
                         False, None, bool(self.best))
        if attestation is not None:
            assert self.attestation_ts is not None  # a passing exam score means an exam attempt set it
            self.tags_completed(self.attestation_ts)
        if dropped_at is None or passed.success:
            return passed
        return replace(passed, dropout=True, dropout_ts=dropped_at)

    def tags_completed(self, t: int) -> None:
        """The LMS tags a student who passed the module (the seed's #M2-завершил)."""
        self._tag_log(t + 3600, self.tags, [*self.tags, COMPLETED])
