"""A synthetic LMS export: the seed's nine CSV files, in their raw formats, plus the ground truth.

Raw means raw: the seed's headers (typos included), both date layouts (webinars_logs and
users_logs write `23.12.2023 12:10`), the Russian literals ('Пропуск', 'Не сдана',
'Нет данных', '—'), flows as `1.00`. What the students do comes from
streams.lms.synthetic.student; ground_truth.csv says what really happened to each of them,
which the export itself only partly reveals. Deterministic for a given seed. `realism` R > 0
adds what real data has and the default leaves out (student.py, "Realism R"): the label stops
being a formula of what the export shows.
"""
from __future__ import annotations

import csv
import io
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streams.contract.holdout import held_out
from streams.contract.outputs import enrolment_key
from streams.lms.readers import SPECS
from streams.lms.synthetic.course import FLOWS, MODULE, Course, build_courses
from streams.lms.synthetic.student import Life, Outcome, Rows, StudentSim, Traits, draw_life, epoch

ISO = "%Y-%m-%d %H:%M:%S"
DOTTED = "%d.%m.%Y %H:%M"
_WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
_SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1"
USER_AGENTS = (
    f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_WEBKIT} Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
    f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_SAFARI} Safari/605.1.15",
    f"Mozilla/5.0 (X11; Linux x86_64) {_WEBKIT} Chrome/119.0.0.0 YaBrowser/23.11 Safari/537.36",
    f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) {_SAFARI} Mobile/15E148 Safari/604.1",
    f"Mozilla/5.0 (Linux; Android 13; SM-A536B) {_WEBKIT} Chrome/119.0.0.0 Mobile Safari/537.36",
)
WINDOWS = ((1872, 932), (1920, 969), (1366, 657), (1536, 730), (1440, 789), (1280, 631), (390, 664), (412, 783))
TIME_ZONES = (("+03:00", 0.72), ("+05:00", 0.08), ("+07:00", 0.06), ("+04:00", 0.05), ("+02:00", 0.04),
              ("+10:00", 0.03), ("+08:00", 0.02))
SCHOOL_OFFSET = 3  # LMS times are Moscow school time


@dataclass(frozen=True)
class Shapes:
    """Shapes of real exports that the default generation leaves out, so tests can meet them:
    more flows (later flows start after earlier ones' outcomes are in), a long course,
    students who take their course again in a later flow, and students in two courses at once.
    The defaults generate the same bytes as before these existed."""

    flows: int = FLOWS
    long_course_weeks: int | None = None  # the last course runs this many weeks instead of 10
    re_enrolled: float = 0.0  # share of students who take their course again in a later flow
    second_course: float = 0.0  # share of students also enrolled in another course
    notification_effect: float = 0.0  # chance a dozing alert brings a notified student back (student.py)
    holdout_share: float = 0.0  # enrolments held out of notifications, drawn as the worker draws them
    holdout_salt: str = ""

    def nudge(self, t: Traits) -> float:
        """The notification effect on this enrolment: none for a held-out one."""
        enrolment = enrolment_key(t.course.course_id, t.flow)
        if held_out(t.user_id, enrolment, self.holdout_share, self.holdout_salt):
            return 0.0
        return self.notification_effect


@dataclass(frozen=True)
class GenerationSummary:
    out_dir: Path
    students: int
    seed: int
    rows: dict[str, int]
    bad_rows: int
    seconds: float
    realism: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out_dir": str(self.out_dir), "seconds": round(self.seconds, 2)}


def _traits(n: int, seed: int, courses: list[Course], flows: int) -> tuple[list[Traits], list[tuple[Any, ...]]]:
    """Every student's latent traits and profile, drawn column-wise; also the users_age_timezone rows."""
    g = np.random.default_rng(seed)
    user_ids = g.choice(np.arange(1000, 1000 + max(100_000, 20 * n)), n, replace=False)
    unti_ids = 1_000_000 + g.choice(np.arange(200_000 + 20 * n), n, replace=False)
    course = g.choice(len(courses), n, p=[0.35, 0.25, 0.2, 0.2])
    flow = g.integers(1, flows + 1, n)
    motivation = g.beta(2.2, 1.8, n)
    skill = g.normal(0, 1, n)
    zones = g.choice(len(TIME_ZONES), n, p=[w for _, w in TIME_ZONES])
    local_hour = np.where(g.random(n) < 0.6, g.normal(20.5, 1.2, n), g.normal(13, 2.5, n))
    shift = np.array([int(TIME_ZONES[z][0][:3]) - SCHOOL_OFFSET for z in zones])
    online = g.random(n) < 0.85
    switch_day = np.where(g.random(n) < 0.07, g.integers(7, 50, n), -1)
    set_form = g.random(n) < 0.15
    typo = np.where(online & ~set_form & (g.random(n) < 0.04), np.where(g.random(n) < 0.5, "#оулайн", "#оглайн"), "")
    paid = g.random(n) < 0.35 + 0.4 * motivation
    paid_day = np.where(paid, np.where((g.random(n) < 0.4) & ~set_form, -1, g.integers(0, 30, n)), -99)
    ghost = g.random(n) < 0.03 + 0.05 * (1 - motivation)
    agent = g.choice(len(USER_AGENTS), n)
    window = g.choice(len(WINDOWS), n)
    weekend = g.uniform(0.5, 1.3, n)
    age = np.clip(np.round(g.normal(29, 9, n)), 14, 68).astype(int)
    has_age = g.random(n) < 0.97
    cadence = 1 - 0.65 * g.beta(1.2, 2.5, n)  # drawn last: the columns above keep their values for a seed
    traits = [Traits(int(user_ids[i]), int(unti_ids[i]), courses[course[i]], int(flow[i]), float(motivation[i]),
                     float(skill[i]), float(local_hour[i] - shift[i]), float(weekend[i]), bool(online[i]),
                     int(switch_day[i]) if switch_day[i] >= 0 else None, str(typo[i]) or None,
                     int(paid_day[i]) if paid_day[i] > -99 else None, bool(set_form[i]), bool(ghost[i]),
                     USER_AGENTS[agent[i]], WINDOWS[window[i]], float(cadence[i])) for i in range(n)]
    ages = [(int(user_ids[i]), TIME_ZONES[zones[i]][0], int(age[i])) for i in range(n) if has_age[i]]
    return traits, ages


def _more_enrolments(traits: list[Traits], seed: int, courses: list[Course], shapes: Shapes) -> list[Traits]:
    """Second enrolments of some students: the same course again in a later flow (a retake, up to
    0.2 more motivated and never a ghost), or another course at the same time."""
    g = np.random.default_rng([seed, 1])
    extra = []
    for t in traits:
        roll = g.random()
        if roll < shapes.re_enrolled and t.flow < shapes.flows:
            flow = int(g.integers(t.flow + 1, shapes.flows + 1))
            extra.append(replace(t, flow=flow, motivation=min(1.0, t.motivation + g.uniform(0, 0.2)), ghost=False))
        elif roll < shapes.re_enrolled + shapes.second_course:
            other = [c for c in courses if c.course_id != t.course.course_id]
            course = other[int(g.integers(len(other)))]
            extra.append(replace(t, course=course, flow=int(g.integers(1, shapes.flows + 1))))
    return extra


def _life(realism: float, seed: int, t: Traits) -> Life:
    """The enrolment's life outside the LMS, from a random stream of its own (seeded by the
    generation seed and the enrolment), so that realism never shifts the main stream's draws."""
    return draw_life(realism, random.Random(f"life:{seed}:{t.user_id}:{t.course.course_id}:{t.flow}"), t.course)


def _tg_bot(rng: random.Random, motivation: float) -> str:
    """'—' not connected; connected students are a little more motivated; some stopped the bot."""
    roll = rng.random()
    if roll < 0.15 + 0.3 * motivation:
        return "Подключен"
    return "Остановлен" if roll < 0.25 + 0.3 * motivation else "—"


def _schedule_rows(courses: list[Course]) -> list[tuple[Any, ...]]:
    rows = []
    for course in courses:
        for flow in range(1, len(course.flow_starts) + 1):
            for lesson in course.lessons:
                shown = epoch(course.shown(flow, lesson.week))
                rows.append((course.course_id, "занятие", lesson.task_id, lesson.task_id, "", lesson.attestation,
                             "{}", flow, shown))
                rows.extend((course.course_id, "активность", lesson.task_id, a.activity_id, a.kind, a.attestation,
                             "{}", flow, shown) for a in lesson.activities)
    return rows


def _guide_rows(courses: list[Course]) -> list[tuple[Any, ...]]:
    return [(c.course_id, c.name, "1T", MODULE, lesson.theme_id, lesson.theme, lesson.task_id, lesson.name,
             lesson.position, lesson.attestation, a.activity_id, a.kind, a.name, a.required, "{}")
            for c in courses for lesson in c.lessons for a in lesson.activities]


def _users_row(rng: random.Random, t: Traits, outcome: Outcome) -> tuple[Any, ...]:
    progress = str(outcome.progress) if outcome.attempted or rng.random() < 0.5 else "Нет данных"
    attestation = "Не сдана" if outcome.attestation is None else str(outcome.attestation)
    return (t.unti_id, t.user_id, t.course.course_id, f"{t.flow:.2f}", _tg_bot(rng, t.motivation), progress,
            attestation, outcome.attestation_ts)


def _truth_row(t: Traits, outcome: Outcome) -> tuple[Any, ...]:
    return (t.user_id, t.course.course_id, float(t.flow), outcome.progress,
            "" if outcome.attestation is None else outcome.attestation, int(outcome.success), int(outcome.dropout),
            outcome.dropout_ts, round(t.motivation, 3), round(t.cadence, 3))


def _frame(header: list[str], rows: list[tuple[Any, ...]], times: dict[int, str], chronological: bool) -> pd.DataFrame:
    """Epoch-second columns written in the file's date layout; a log file is in time order."""
    frame = pd.DataFrame(rows, columns=header)
    if chronological:
        frame = frame.sort_values(header[min(times)], kind="stable")
    for position, layout in times.items():
        column = pd.to_datetime(frame[header[position]], unit="s")
        frame[header[position]] = column.dt.strftime(layout).fillna("")
    return frame


def _csv_text(fields: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


#: Malformed rows for the dead-letter path: (file, how to spoil a real row of it).
_SPOILERS: tuple[tuple[str, Callable[[list[str]], list[str]]], ...] = (
    ("authorization.csv", lambda f: [f"id-{f[0]}", *f[1:]]),  # non-numeric id
    ("exercise_results.csv", lambda f: [*f[:3], "2023-13-45 25:61:00", *f[4:]]),  # impossible date
    ("webinars_logs.csv", lambda f: [*f[:2], "Переподключение", *f[3:]]),  # unknown event name
    ("activity_history_viewed.csv", lambda f: f[:-2]),  # fields missing
    ("users_logs.csv", lambda f: [f[0], "31.02.2024 10:00", *f[2:]]),  # impossible date, dotted layout
    ("exercise_results.csv", lambda f: [*f[:4], "сто", *f[5:]]),  # non-numeric result
    ("activity_history_viewed.csv", lambda f: [f[0], f[1], "страница", *f[3:]]),  # unknown page type
)


def _spoil(texts: dict[str, list[str]], count: int, rng: random.Random) -> None:
    """Insert `count` malformed rows at random places, cycling through the spoilers; each is made
    from a real row of its file, so it names a real student."""
    spoilers = [(file, spoil) for file, spoil in _SPOILERS if len(texts[file]) > 1]
    if count and not spoilers:
        raise ValueError("the export has no rows to spoil")
    originals = {file: texts[file][1:] for file, _ in spoilers}
    for k in range(count):
        file, spoil = spoilers[k % len(spoilers)]
        victim = next(csv.reader([rng.choice(originals[file])]))
        lines = texts[file]
        lines.insert(rng.randrange(1, len(lines) + 1), _csv_text(spoil(victim)))


def generate(out_dir: Path, students: int, seed: int, bad_rows: int = 0, shapes: Shapes = Shapes(),
             realism: float = 0.0) -> GenerationSummary:
    """Write the export and ground_truth.csv into `out_dir`; `bad_rows` malformed rows are mixed
    in so the dead-letter path can be exercised (none by default); `shapes` adds what real
    exports have (see Shapes); `realism` (0..1) how much of what the LMS does not see shapes the
    outcomes (0: the same bytes as before it existed)."""
    if not 0 <= realism <= 1:
        raise ValueError(f"realism must be within 0..1, not {realism}")
    began = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    courses = build_courses(rng, shapes.flows, shapes.long_course_weeks)
    traits, ages = _traits(students, seed, courses, shapes.flows)
    traits += _more_enrolments(traits, seed, courses, shapes)
    horizon = max(epoch(course.end(shapes.flows)) for course in courses)  # taken when the last flow ends
    rows = Rows()
    users, truth = [], []
    for t in traits:
        outcome = StudentSim(t, rng, rows, horizon, shapes.nudge(t), _life(realism, seed, t)).run()
        users.append(_users_row(rng, t, outcome))
        truth.append(_truth_row(t, outcome))
    tables = {  # file: (rows, time columns and their layout, in time order)
        "users_age_timezone.csv": (ages, {}, False),
        "authorization.csv": (rows.authorization, {1: ISO}, True),
        "schedule.csv": (_schedule_rows(courses), {8: ISO}, True),
        "activity_history_viewed.csv": (rows.views, {1: ISO}, True),
        "webinars_logs.csv": (rows.webinars, {1: DOTTED}, True),
        "exercise_results.csv": (rows.results, {3: ISO}, True),
        "users_logs.csv": (rows.logs, {1: DOTTED}, True),
        "users.csv": (users, {7: ISO}, False),
        "activities_guide.csv": (_guide_rows(courses), {}, False),
    }
    texts = {file: _frame([c.raw for c in SPECS[file].columns], *table).to_csv(index=False, lineterminator="\n")
             .rstrip("\n").split("\n") for file, table in tables.items()}
    _spoil(texts, bad_rows, rng)
    for file, lines in texts.items():
        (out_dir / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    header = ["user_id", "course_id", "flow_num", "final_progress", "attestation", "success", "dropout",
              "dropout_ts", "motivation", "cadence"]
    _frame(header, truth, {7: ISO}, False).to_csv(out_dir / "ground_truth.csv", index=False)
    return GenerationSummary(out_dir, students, seed, {f: len(lines) - 1 for f, lines in texts.items()}, bad_rows,
                             time.perf_counter() - began, realism)
