"""A course of N students in Postgres, written by the worker's own RowWriter: a score row per
student per event-day (history), their current rows with every engagement feature and the
model's reasons, status transitions with the place each student stopped, and a week of model
versions. Shaped like what the worker writes, at a size a generated export cannot reach in a
test's time; `python tests/helpers/console_rows.py URL` times the console's pages on it."""
from __future__ import annotations

import random
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from features.engagement import FEATURE_NAMES
from features.hypotheses import Factor
from storage.postgres.row_writer import RowWriter

START = datetime(2024, 2, 1, 9, 0)


def _features(rng: random.Random, days_inactive: float, day: int) -> dict[str, float]:
    features = {name: round(rng.random() * 10, 3) for name in FEATURE_NAMES}
    features.update(days_inactive=days_inactive,
                    active_days_last_14=float(max(0, 14 - int(days_inactive)) * rng.random()),
                    success_index=rng.random(), course_week=float(day // 7 + 1), days_since_course_start=float(day))
    return features


def _factors(rng: random.Random) -> list[dict[str, Any]]:
    picks = rng.sample([("progress", "activities_done_share"), ("regularity", "active_days_last_14"),
                        ("timeliness", "missed_deadlines"), ("early_success", "early_result")], 2)
    return [Factor(h, f, rng.random(), 0.6, "cohort", 0.05 + rng.random() / 5).to_json("en") for h, f in picks]


def fill_course(database_url: str, course_id: int, students: int, days: int, seed: int = 1,
                first_user: int = 1) -> None:
    """Write the course's rows (on top of what is there)."""
    rng = random.Random(seed)
    writer = RowWriter(database_url, batch_size=2000)
    for user in range(first_user, first_user + students):
        stops = rng.random() < 0.4
        last_day = rng.randrange(days // 3, days) if stops else days - 1
        enrolment = f"{course_id}:1"
        scores, transitions = [], []
        status, p_dropout = "active", rng.random() * 0.3
        for day in range(days):
            at = START + timedelta(days=day, hours=rng.random() * 8)
            inactive = max(0.0, day - last_day)
            new = "active" if inactive < 7 else "dozing" if inactive < 20 else "asleep"
            changed = new != status
            if changed:
                transitions.append({
                    "alert_id": f"console:{user}:{day}", "user_id": user, "enrolment": enrolment,
                    "course_id": course_id, "flow_num": 1, "from_status": status, "to_status": new, "at": at,
                    "days_inactive": inactive, "last_activity_at": START + timedelta(days=last_day),
                    "course_week": last_day // 7 + 1, "module": last_day // 21 + 1, "theme_id": last_day // 5,
                    "theme": f"Theme {last_day // 5}", "task_id": last_day, "task_name": f"Task {last_day}",
                    "p_dropout": p_dropout, "reasons": ["quiet"], "factors": _factors(rng)})
                status = new
            if inactive and not changed and day != days - 1:
                continue  # no event that day: no score row
            p_dropout = min(1.0, max(0.0, p_dropout + rng.uniform(-0.05, 0.08) + inactive / 100))
            scores.append({"user_id": user, "enrolment": enrolment, "course_id": course_id, "flow_num": 1,
                           "status": status, "status_since": at, "last_activity_at": START + timedelta(days=last_day),
                           "days_inactive": inactive, "progress_pred": 100 * (1 - p_dropout),
                           "p_dropout": p_dropout, "p_success": 1 - p_dropout, "model_version": 1 + day // 7,
                           "features": _features(rng, inactive, day), "factors": _factors(rng), "updated_at": at,
                           "basis": dict.fromkeys(("progress", "p_dropout", "p_success"),
                                                  "guess" if user % 3 == 0 else "learned")})
        writer.add_scores(scores)
        writer.add_transitions(transitions)
        if user % 200 == 0:
            writer.flush()
    for week in range(days // 7 + 1):
        writer.add_model_version({"model": "week_blend", "version": week + 1, "n_labels": 40 * week,
                                  "created_at": START + timedelta(days=7 * week),
                                  "metrics": {"dropout_auc": 0.6 + week / 100, "success_auc": 0.65,
                                              "progress_mae": 20 - week / 2, "dropout_logloss": 0.5},
                                  "metrics_by_week": {  # what a version learned by then, per course week
                                      str(w): {"dropout_auc": 0.55 + w / 50, "success_auc": 0.6 + w / 60,
                                               "progress_mae": 25 - w, "dropout_logloss": 0.6 - w / 50,
                                               "examples": 40 * (week - w + 1)} for w in range(1, week + 1)}})
    writer.close()


def time_pages(database_url: str, course_id: int, user_id: int, repeat: int = 3) -> dict[str, float]:
    """Milliseconds per page build (queries + view-models + HTML), the best of `repeat` runs."""
    from streams.console import data, pages

    builds = {
        "course": lambda: pages.course_page(data.course_view(database_url, course_id, "p_dropout")),
        "course?sort=days_inactive": lambda: pages.course_page(data.course_view(database_url, course_id,
                                                                                "days_inactive")),
        "student": lambda: pages.student_page(user_id, *data.student_view(database_url, user_id)),
        "model": lambda: pages.model_page(*data.model_view(database_url)),
    }
    out = {}
    for name, build in builds.items():
        best = float("inf")
        for _ in range(repeat):
            began = time.perf_counter()
            build()
            best = min(best, time.perf_counter() - began)
        out[name] = best * 1000
    return out


if __name__ == "__main__":
    url = sys.argv[1]
    began = time.perf_counter()
    fill_course(url, course_id=501, students=2000, days=90)
    print(f"filled 2000 students in {time.perf_counter() - began:.1f} s")
    for page, ms in time_pages(url, 501, 1).items():
        print(f"{page}: {ms:.0f} ms")
