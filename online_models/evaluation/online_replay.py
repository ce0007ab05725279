"""The online model run as it would have run live: snapshots scored and outcomes learned in time order."""
from __future__ import annotations

import multiprocessing
from collections.abc import Container, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from features import DAY
from online_models.evaluation.progress import QUIET, Progress
from online_models.evaluation.students import Student, flows_done, in_learning_order, labels_of
from online_models.learners import ScoringModels
from streams.contract.outputs import ScoreBasis

#: The replay refits the surrogate (online_models.surrogate) once a day of event time; the live trainer
#: does every online_models.trainer.SURROGATE_EVERY_S of wall time, which a live school's day outnumbers.
SURROGATE_EVERY = DAY


#: Whose outcomes had taught a course week when a student's snapshot of it was scored: outcomes of the student's
#: own course, of other courses only (a course's level need not be another's), or none yet.
Taught = Literal["own_course", "other_courses", "none"]
TAUGHT: tuple[Taught, ...] = ("own_course", "other_courses", "none")


def taught(course_id: int, week_courses: Container[int]) -> Taught:
    """`Taught` of a snapshot of `course_id`, given the courses whose outcomes had taught its course week."""
    if course_id in week_courses:
        return "own_course"
    return "other_courses" if week_courses else "none"


@dataclass
class OnlineRun:
    """What the online model said about each (student, week), and how many labels it had seen."""

    predictions: dict[tuple[int, int], tuple[float, float, float]]
    labels_seen: dict[tuple[int, int], int]
    models: ScoringModels
    #: what answered each score (the learned model, or the label-free guess)
    bases: dict[tuple[int, int], ScoreBasis] = field(default_factory=dict)
    #: whose outcomes had taught the scored course week by then (`Taught`)
    taught: dict[tuple[int, int], Taught] = field(default_factory=dict)


def run_online(students: Sequence[Student], family: str, seed: int, warm: frozenset[int] = frozenset(),
               progress: Progress = QUIET, name: str = "online") -> OnlineRun:
    """Replay snapshots and labels in time order (at equal times a snapshot comes first: the
    label cannot have been used for it), each label when the live trainer would get it
    (`Student.learned_at`, ties in student order). A label teaches every snapshot taken before its outcome.
    Students in `warm` are learned up front, before time starts (a model bootstrapped from
    history, refit on all of it as `scorer bootstrap` publishes it), so their labels are not replayed.
    The surrogate is refit once per SURROGATE_EVERY of event time, on the enrolments not learned by then.
    `progress` is told each tenth of the replay, as `name`."""
    by_id = {s.id: s for s in students}
    label_of = labels_of(students)
    done = flows_done(students)
    models = ScoringModels(family=family, seed=seed)
    learned: set[int] = set()
    surrogate_at: float | None = None
    week_courses: dict[int, set[int]] = {}  # course week -> the courses whose outcomes have taught it

    def learn(student_id: int) -> None:
        student = by_id[student_id]
        weeks = student.open_week_numbers()
        models.learn_weeks([student.weekly[w] for w in weeks], label_of[student_id], student.course_id, student.flow)
        for week in weeks:
            week_courses.setdefault(week, set()).add(student.course_id)
        learned.add(student_id)

    for student in in_learning_order((by_id[u] for u in warm), done):
        learn(student.id)
    if warm:
        models.settle()  # as `scorer bootstrap` publishes it
        progress.say(f"{name}: learned the {len(warm):,} enrolments of its warm start")
    timeline: list[tuple[float, int, int, int]] = []  # (time, 0 snapshot / 1 label, user, week)
    for s in students:
        timeline += [(s.week_end(w), 0, s.id, w) for w in s.weekly if s.open_at(w)]
        if s.id in label_of and s.id not in warm:
            timeline.append((s.learned_at(done), 1, s.id, 0))
    timeline.sort()
    run = OnlineRun({}, {}, models)
    labels = len(warm)
    tell = progress.steps(len(timeline))
    for step, (time, is_label, student_id, week) in enumerate(timeline, 1):
        if step in tell:
            progress.say(f"{name}: {step:,} of {len(timeline):,} scores and outcomes replayed")
        s = by_id[student_id]
        if is_label:
            learn(student_id)
            labels += 1
        else:
            if surrogate_at is None or time - surrogate_at >= SURROGATE_EVERY:
                models.refit_surrogate(running_weeks(students, learned, time))
                surrogate_at = time
            scores = models.predict(s.weekly[week])
            run.predictions[(student_id, week)] = (scores.progress, scores.p_dropout, scores.p_success)
            run.bases[(student_id, week)] = scores.basis
            run.taught[(student_id, week)] = taught(s.course_id, week_courses.get(week, ()))
            run.labels_seen[(student_id, week)] = labels
    return run


def run_replays(replays: Mapping[str, tuple[Sequence[Student], frozenset[int]]], family: str, seed: int,
                workers: int = 1, progress: Progress = QUIET) -> dict[str, OnlineRun]:
    """`run_online` of each named (students, warm start): in this process, or with `workers` > 1 side by side
    in that many processes, each the same run as in this one (a replay depends on its inputs alone). Spawned,
    not forked: a fork of a process whose OpenMP threads have run (scikit-learn's) can hang in the child's
    first parallel region."""
    if workers < 2:
        return {name: run_online(students, family, seed, warm, progress, name)
                for name, (students, warm) in replays.items()}
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(replays)), mp_context=spawn) as pool:
        futures = {name: pool.submit(run_online, students, family, seed, warm, progress, name)
                   for name, (students, warm) in replays.items()}
        return {name: future.result() for name, future in futures.items()}


def online_runs(students: Sequence[Student], family: str, seed: int, train: set[int],
                workers: int = 1, progress: Progress = QUIET) -> dict[str, OnlineRun]:
    """The strict replay (`online`) and the warm one (`online_warm`, the forest's train students learned first):
    most of an evaluation's time; `workers`: see `run_replays`."""
    return run_replays({"online": (students, frozenset()), "online_warm": (students, frozenset(train))},
                       family, seed, workers, progress)


def running_weeks(students: Sequence[Student], learned: Container[int], at: float) -> list[dict[int, dict[str, float]]]:
    """What the live trainer's weekly store holds at `at`, and refits the surrogate on: the snapshots
    taken by then of every enrolment whose outcome it has not learned."""
    return [{w: x for w, x in s.weekly.items() if s.week_end(w) <= at and s.open_at(w)}
            for s in students if s.id not in learned]
