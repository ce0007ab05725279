"""The seed's method as a school without history could run it live: the yardstick on the strict replay's
information.

The seed's per-week forest (`forest`) is trained with hindsight on the earlier flows' outcomes, which in
time order arrive after many of the test flows' early weeks are scored; the strict replay cannot have them.
Here each test snapshot is scored by a week forest fitted, with the seed's settings, on exactly the
outcomes the strict replay had learned when it scored that snapshot (every enrolment's, train or test flow,
learned before the week's end, as `Student.learned_at` releases them). Where fewer than MIN_LABELS of them
had arrived the school has no forest yet and the snapshot is left out (`not_scored`); the online model is
compared on the snapshots the forest could score, the same students for both.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from online_models.evaluation.forest import Predictions, WeeklyForest
from online_models.evaluation.students import Student, flows_done, in_learning_order, labels_of

#: Outcomes a course week's forest needs before the school has one (the online model's own threshold for
#: learning progress: learners' week models answer from 40 labels).
MIN_LABELS = 40


class ForestInTime:
    """The school's week forests as outcomes arrive: one fit per number of outcomes learned (a prefix of the
    learning order), so a week's flows scored at the same stage share it."""

    def __init__(self, students: Sequence[Student], names: Sequence[str], seed: int) -> None:
        done = flows_done(students)
        self.order = in_learning_order(students, done)
        self.learned_at = [s.learned_at(done) for s in self.order]
        self.by_id = {s.id: s for s in students}
        self.label_of = labels_of(students)
        self.weekly = {s.id: s.weekly for s in students}
        self.courses = {s.id: s.course_id for s in students}
        self.names, self.seed = list(names), seed

    def scores(self, users: Sequence[int], week: int) -> Predictions:
        """Week `week`'s scores of `users` (test students open at that week), each by a forest fitted on the
        outcomes learned before its week ended (at equal times the score comes first, as in the replay); the
        users with fewer than MIN_LABELS such outcomes are not in the result."""
        by_count: dict[int, list[int]] = {}  # outcomes learned by then -> the users scored with that many
        for user in users:
            by_count.setdefault(bisect_left(self.learned_at, self.by_id[user].week_end(week)), []).append(user)
        out: Predictions = {}
        for count, scored in sorted(by_count.items()):
            if count < MIN_LABELS:
                continue
            taught = {s.id: self.label_of[s.id] for s in self.order[:count]}
            out.update(WeeklyForest(week, self.names, self.seed).fit(self.weekly, taught, self.courses)
                       .scores(self.weekly, scored))
        return out
