"""The notification holdout: a stable, salted draw per enrolment, and the worker marking every
alert of a held-out enrolment (and only those) so a sender can skip them."""
from __future__ import annotations

import random

import fastjsonschema
import pytest

from helpers.pipeline_cases import ENROLMENT, Sent, drive, history
from online_models.scoring import NoScoring
from storage.row_sink import MemoryRowSink
from storage.students import InMemoryStudentStore
from streams.contract import schema
from streams.contract.holdout import held_out, holdout_draw
from streams.pipeline import Pipeline
from streams.runtime import pipeline_config
from streams.settings import Settings

IDS = [(user, f"{course}:{flow}") for user in range(1, 2001) for course, flow in ((3, 1), (5, 2))]


def test_the_draw_is_deterministic_and_uniform() -> None:
    assert holdout_draw(42, "3:1", "s") == holdout_draw(42, "3:1", "s")
    draws = [holdout_draw(u, e, "s") for u, e in IDS]
    assert all(0 <= d < 1 for d in draws)
    assert abs(sum(draws) / len(draws) - 0.5) < 0.02


def test_the_share_is_respected() -> None:
    for share in (0.1, 0.3, 0.5):
        held = sum(held_out(u, e, share, "s") for u, e in IDS)
        assert abs(held / len(IDS) - share) < 0.02, share  # 4000 draws: 3 standard errors at most ~0.022
    assert not any(held_out(u, e, 0.0, "s") for u, e in IDS)
    assert all(held_out(u, e, 1.0, "s") for u, e in IDS)


def test_a_student_is_drawn_per_enrolment_and_the_salt_reshuffles() -> None:
    one = {(u, e) for u, e in IDS if held_out(u, e, 0.3, "a")}
    other = {(u, e) for u, e in IDS if held_out(u, e, 0.3, "b")}
    assert len(one & other) < 0.5 * len(one)  # independent draws: about 30% overlap
    by_course = {u for u, e in one if e == "3:1"} ^ {u for u, e in one if e == "5:2"}
    assert by_course  # two enrolments of one student are drawn apart


async def test_the_worker_marks_every_alert_of_a_held_out_enrolment_and_records_the_same_alerts() -> None:
    """Holding out changes what a sender may deliver, never what is recorded: same alert ids."""
    events = history(random.Random(4), students=16)
    runs = {}
    for share in (0.0, 0.5):
        settings = Settings(topic_prefix="t.", holdout_share=share, holdout_salt="unit")
        sent, sink = Sent(), MemoryRowSink()
        pipeline = Pipeline(pipeline_config(settings), InMemoryStudentStore(), sent.send, NoScoring(), sink)
        await drive(pipeline, "t.", events, random.Random(0), redeliver=False)
        runs[share] = sent.on("scorer.alerts"), sink
    plain, held = runs[0.0][0], runs[0.5][0]
    assert sorted(a["alert_id"] for a in plain) == sorted(a["alert_id"] for a in held)
    assert not any(a["holdout"] for a in plain)
    expected = {a["alert_id"]: held_out(a["user_id"], ENROLMENT, 0.5, "unit") for a in held}
    assert {a["alert_id"]: a["holdout"] for a in held} == expected
    assert set(expected.values()) == {True, False}
    assert {k: a.holdout for k, a in runs[0.5][1].transitions.items()} == expected  # what Postgres gets
    check = fastjsonschema.compile(schema("alert"))
    for alert in held:
        check(alert)
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        check({**held[0], "holdout": "yes"})
