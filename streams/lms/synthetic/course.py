"""The synthetic LMS's course catalogue: module 2 of a few courses, and when each flow sees what.

Shaped on the seed: themes hold lessons ('занятие', one a week), lessons hold activities
(slide, CodeExercise, exercise, interactive, question, webinar); some activities are required
(Признак Обязательного) and the last lesson is the attestation. Each course runs several flows
that start two weeks apart from early December 2023; a lesson is shown to a flow at 11:00 on
its week's first day, like the seed's sample schedule.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

MODULE = 2
WEEKS = 10  # a course's length unless it is the long one (Shapes.long_course_weeks)
FLOWS = 3
FIRST_START = datetime(2023, 12, 1, 11, 0)
FLOW_GAP = timedelta(days=14)
GRADED = ("CodeExercise", "exercise", "question")  # the kinds that write exercise_results rows
WEBINAR_DAY = timedelta(days=2, hours=8)  # a lesson's webinar: two days after it opens, at 19:00

#: (course id, name, days after FIRST_START its flow 1 starts)
COURSES = ((3, "Нейро.PY", 0), (49, "Аналитика данных", 4), (71, "Веб-разработка на Python", 7),
           (77, "Data Science. Старт", 11))
THEMES = ("Основы синтаксиса", "Функции и классы", "Работа с файлами", "Библиотеки и API", "Итоговый проект")
LESSONS = ("Введение", "Практикум", "Функции и запроса данных", "Разбор задач", "Повторение")
ACTIVITY_NAMES = {"slide": "Слайд", "CodeExercise": "Тренажер", "exercise": "Задание", "interactive": "Интерактив",
                  "question": "Вопрос", "webinar": "Вебинар"}


@dataclass(frozen=True)
class Activity:
    activity_id: int
    kind: str
    name: str
    required: int
    attestation: int
    difficulty: float  # how hard an attempt is (graded kinds only)

    @property
    def graded(self) -> bool:
        return self.kind in GRADED


@dataclass(frozen=True)
class Lesson:
    task_id: int
    name: str
    theme_id: int
    theme: str
    position: int  # within its theme
    week: int
    attestation: int
    activities: tuple[Activity, ...]


@dataclass(frozen=True)
class Course:
    course_id: int
    name: str
    lessons: tuple[Lesson, ...]
    flow_starts: tuple[datetime, ...]

    @property
    def weeks(self) -> int:
        return len(self.lessons)

    def shown(self, flow: int, week: int) -> datetime:
        """When a flow (1-based) sees a week's lesson."""
        return self.flow_starts[flow - 1] + timedelta(weeks=week)

    def end(self, flow: int) -> datetime:
        """The module is over a week after its last lesson is shown."""
        return self.shown(flow, self.weeks)

    def webinar_id(self, flow: int, week: int) -> int:
        return 13300 + self.course_id * 100 + flow * 20 + week

    @property
    def graded(self) -> list[Activity]:
        return [a for lesson in self.lessons for a in lesson.activities if a.graded]


def _activities(rng: random.Random, first_id: int, week: int, attestation: bool) -> list[Activity]:
    if attestation:
        kinds = ["slide", "question", "CodeExercise", "CodeExercise"]
    else:
        kinds = (["slide"] * rng.randint(2, 4) + ["interactive"] * rng.randint(0, 1) + ["question"] * rng.randint(0, 1)
                 + ["CodeExercise"] * rng.randint(1, 2) + ["exercise"] * rng.randint(0, 1) + ["webinar"])
    counts: dict[str, int] = {}
    out = []
    for offset, kind in enumerate(kinds):
        counts[kind] = counts.get(kind, 0) + 1
        required = 1 if attestation or kind in ("CodeExercise", "exercise") else \
            int(kind == "question" and rng.random() < 0.5)
        difficulty = 0.0
        if kind in GRADED:  # later lessons and the attestation are harder
            difficulty = rng.gauss(0.1 * week - 0.4, 0.5) + (0.6 if attestation else 0.0)
        out.append(Activity(first_id + offset, kind, f"{ACTIVITY_NAMES[kind]} {counts[kind]}", required,
                            int(attestation), round(difficulty, 3)))
    return out


def build_courses(rng: random.Random, flows: int = FLOWS, long_course_weeks: int | None = None) -> list[Course]:
    """The catalogue; with `long_course_weeks` the last course runs that many weeks (real
    presentations run 30-40), its themes each spanning a run of weeks."""
    courses = []
    for index, (course_id, name, offset) in enumerate(COURSES):
        weeks = long_course_weeks if long_course_weeks and index == len(COURSES) - 1 else WEEKS
        per_theme = max(2, -(-weeks // len(THEMES)))
        lessons = []
        next_activity = 8719 + index * 1000
        for week in range(weeks):
            attestation = week == weeks - 1
            theme_index, position = divmod(week, per_theme)
            activities = _activities(rng, next_activity, week * WEEKS // weeks, attestation)
            next_activity += len(activities)
            lessons.append(Lesson(81 + index * 100 + week, "Итоговая аттестация" if attestation else
                                  f"{LESSONS[week % len(LESSONS)]}. Часть {position + 1}",
                                  13 + index * 10 + theme_index, THEMES[theme_index], position + 1, week,
                                  int(attestation), tuple(activities)))
        start = FIRST_START + timedelta(days=offset)
        courses.append(Course(course_id, name, tuple(lessons), tuple(start + k * FLOW_GAP for k in range(flows))))
    return courses
