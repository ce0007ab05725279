"""`scorer bootstrap` against a real Redis: the version it publishes is one the registry loads and a
worker's ModelCache swaps to, its metadata says it is a bootstrap, it marks what it learned for the
live trainer when asked, and it refuses to publish under a running trainer or over live labels."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import create_engine, text

from features.eventtime import parse_ts
from helpers.exports import generated_export_fixtures
from online_models.learners import ScoringModels
from online_models.registry import ModelCache, ModelRegistry
from streams.cli import main
from streams.console import data, pages, views

STUDENTS = 24
PREFIX = "bs."
UNTIL = "2024-03-01T00:00:00"


export_dir, students = generated_export_fixtures(STUDENTS, weeks=10)


@pytest.fixture
def server(redis_server, monkeypatch):
    """An empty Redis, and the settings that make `scorer bootstrap` publish into it."""
    redis_server.flushall()
    monkeypatch.setenv("SCORER_REDIS_URL", f"unix://{redis_server.socket_file}")
    monkeypatch.setenv("SCORER_TOPIC_PREFIX", PREFIX)
    monkeypatch.delenv("SCORER_DATABASE_URL", raising=False)
    return redis_server


def _bootstrap(capsys, *args: str) -> tuple[int, dict | str]:
    code = main(["bootstrap", *args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else err


def test_a_bootstrap_version_is_loaded_by_the_registry_and_picked_up_by_workers(server, export_dir, students,
                                                                                  capsys):
    registry = ModelRegistry(server, prefix=f"{PREFIX}scorer:")
    now = [0.0]
    cache = ModelCache(registry, check_every=5.0, clock=lambda: now[0])  # a worker, already running
    assert cache.current().version == 0

    code, summary = _bootstrap(capsys, str(export_dir), "--until", UNTIL, "--mark-trained")
    assert code == 0, summary
    before = [s for s in students if s.label_ts is not None and s.label_ts < parse_ts(UNTIL)]
    assert summary["version"] == 1 and 0 < summary["enrolments"] == len(before) < STUDENTS

    models = registry.load()
    assert models.version == 1 and models.n_labels == summary["n_labels"] > 0
    meta = registry.metadata(1)
    assert meta["n_labels"] == models.n_labels
    assert meta["origin"] == {"kind": "bootstrap", "directory": str(export_dir.resolve()), "until": UNTIL,
                              "on_top_of": None, "enrolments": len(before), "marked_trained": True,
                              "live_labels": False}
    trained = {m.decode() for m in server.smembers(f"{PREFIX}scorer:trainer:trained")}
    assert trained == {f"{s.user_id}:{s.course_id}:{s.flow}" for s in before}  # the live trainer skips them
    assert server.get(f"{PREFIX}scorer:trainer:lock") is None  # the lock is given back

    now[0] = 5.0
    cache.refresh()
    assert cache.current().version == 1
    x = students[0].weekly[3]
    assert cache.current().predict(x) != ScoringModels().predict(x)


def test_it_refuses_under_a_running_trainer_and_over_live_labels(server, export_dir, students, capsys):
    registry = ModelRegistry(server, prefix=f"{PREFIX}scorer:")
    server.set(f"{PREFIX}scorer:trainer:lock", "another-trainer", px=30_000)
    code, err = _bootstrap(capsys, str(export_dir))
    assert code == 2 and "holds the lock" in err and registry.latest_version() == 0
    server.delete(f"{PREFIX}scorer:trainer:lock")

    live = ScoringModels()
    live.learn_weeks([students[0].weekly[1]], students[0].label)
    assert registry.publish(live) == 1  # the live trainer's version: no origin
    code, err = _bootstrap(capsys, str(export_dir), "--until", UNTIL)
    assert code == 2 and "--on-top" in err and registry.latest_version() == 1

    code, summary = _bootstrap(capsys, str(export_dir), "--until", UNTIL, "--on-top")
    assert code == 0 and summary["version"] == 2 and summary["on_top_of"] == 1 and summary["live_labels"]
    assert registry.load().n_labels == 1 + summary["weeks"]
    assert not server.exists(f"{PREFIX}scorer:trainer:trained")  # not asked to mark


def test_the_version_row_in_postgres_says_bootstrap(server, export_dir, capsys, db, monkeypatch):
    """The row the publish writes carries the origin and the metrics by course week, and the console's
    Model page shows those weeks from it."""
    monkeypatch.setenv("SCORER_DATABASE_URL", db)
    code, summary = _bootstrap(capsys, str(export_dir), "--until", UNTIL, "--family", "linear")
    assert code == 0, summary
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            row = connection.execute(text("SELECT n_labels, params, metrics_by_week FROM model_versions "
                                          "WHERE model = 'linear' AND version = :v"), {"v": summary["version"]}).one()
    finally:
        engine.dispose()
    assert row.n_labels == summary["n_labels"] > 0
    assert row.params["origin"]["kind"] == "bootstrap" and row.params["origin"]["until"] == UNTIL
    meta = ModelRegistry(server, prefix=f"{PREFIX}scorer:").metadata(summary["version"])
    assert row.metrics_by_week == meta["metrics_by_week"] and row.metrics_by_week
    assert sum(week["examples"] for week in row.metrics_by_week.values()) == row.n_labels

    page = pages.model_page(*data.model_view(db))
    weeks = sorted(int(week) for week in row.metrics_by_week)
    shown = re.search(r'<table id="course-weeks-linear">.*?<tbody>(.*?)</tbody>', page)
    assert shown is not None and 'aria-label="AUC by course week"' in page
    assert re.findall(r"<tr><td>([^<]*)</td>", shown.group(1)) == [
        views.course_week_label(w) for w in range(weeks[0], weeks[-1] + 1)]
