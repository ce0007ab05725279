"""The pure parts of `scorer notify`: the kind policy, quiet hours across zones and midnight, the
retry schedule, and the message texts."""
from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, time, timedelta

import pytest

from streams.contract.codec import InvalidEvent
from streams.contract.outputs import Alert, Scores
from streams.notify.notifier import decode, notification
from streams.notify.policy import Policy, channel, reaches_student
from streams.notify.quiet_hours import QuietHours, parse_zone
from streams.notify.retry import MAX_RETRY_AFTER, PARK_MAX, backoff, park_wait, retry_after, verdict, wait_before
from streams.notify.senders import PrintSender
from streams.notify.templates import language_of, render
from streams.settings import Settings

DEFAULT = Policy.parse(Settings().notify_policy)
NIGHT = QuietHours.parse("22:00-09:00")


def _alert(**changes) -> dict:
    alert = Alert("a1", 7, 3, "active", "dozing", 0.0, 8.2, None, Scores(p_dropout=0.71),
                  ("Нет активности 8 дн.",), time_zone="+03:00", tg_bot=1)
    return {**alert.to_message(), **changes}


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("changes, action", [
    ({"to_status": "dozing"}, "nudge"),
    ({"to_status": "asleep", "from_status": "dozing"}, "urge"),
    ({"to_status": "active", "from_status": "asleep"}, "none"),  # a return to activity: nothing to say
    ({"kind": "at_risk", "to_status": "active", "from_status": "active"}, "curator"),
    ({"kind": "finished", "to_status": "finished"}, "cancel"),
    ({"kind": "something_new"}, "none"),  # a kind the table does not name is not sent
    ({"kind": None, "to_status": "asleep"}, "urge"),  # a version-1 alert had no kind: a status change
])
def test_the_default_policy_picks_the_action_by_situation(changes, action):
    assert DEFAULT.action_for(_alert(**changes)) == action


def test_the_policy_is_configurable_and_refuses_what_it_cannot_do():
    custom = Policy.parse("dozing=none, at_risk=nudge")
    assert custom.action_for(_alert()) == "none"
    assert custom.action_for(_alert(kind="at_risk", to_status="active")) == "nudge"
    for bad in ("dozing=shout", "dozing", "=nudge", "at_risk.gues=none", "dozing.guess=none"):
        with pytest.raises(ValueError):
            Policy.parse(bad)


@pytest.mark.parametrize("basis, action", [
    ({"progress": "learned", "p_dropout": "guess", "p_success": "guess"}, "none"),
    ({"progress": "guess", "p_dropout": "calibrated_guess", "p_success": "guess"}, "urge"),
    ({"progress": "guess", "p_dropout": "learned", "p_success": "guess"}, "curator"),  # not named: at_risk's
    (None, "curator"), ("guess", "curator"),  # an alert without a basis object (older, or hostile)
])
def test_an_early_warning_can_be_routed_by_what_answered_its_risk(basis, action):
    """A school that wants no curator note from a guess no outcome has leveled says at_risk.guess=none; a
    status change is a fact, not a model's, so its basis never matters."""
    policy = Policy.parse("at_risk=curator, at_risk.guess=none, at_risk.calibrated_guess=urge, asleep=urge")
    assert policy.action_for(_alert(kind="at_risk", to_status="active", basis=basis)) == action
    assert policy.action_for(_alert(to_status="asleep", basis=basis)) == "urge"


def test_only_student_messages_wait_for_quiet_hours_and_the_channel_follows_the_bot():
    assert [reaches_student(a) for a in ("nudge", "urge", "curator", "cancel")] == [True, True, False, False]
    assert channel(_alert()) == "telegram"
    assert channel(_alert(recipient={"tg_bot": 2})) == "email"
    assert channel(_alert(recipient="nonsense")) == "email"


@pytest.mark.parametrize("name, hours", [("+03:00", 3), ("+0500", 5), ("UTC+3", 3), ("GMT-05:00", -5), ("+7", 7),
                                         ("UTC", 0), ("Asia/Yekaterinburg", 5)])
def test_the_lms_zone_formats_are_read(name, hours):
    moment = datetime(2024, 1, 15, tzinfo=UTC)
    assert parse_zone(name).utcoffset(moment) == timedelta(hours=hours)


@pytest.mark.parametrize("name", [None, "", "Mars/Olympus", "+25:00", "03:00", "../etc/passwd"])
def test_an_unreadable_zone_is_none_so_the_school_zone_applies(name):
    assert parse_zone(name) is None


@pytest.mark.parametrize("now, zone, release", [
    ("2024-01-15T12:00:00", "+03:00", None),  # 15:00 local: a decent hour
    ("2024-01-15T19:30:00", "+03:00", "2024-01-16T06:00:00"),  # 22:30 local: until 09:00 tomorrow
    ("2024-01-15T22:30:00", "+03:00", "2024-01-16T06:00:00"),  # 01:30 local, past midnight: until 09:00 today
    ("2024-01-15T05:59:59", "+03:00", "2024-01-15T06:00:00"),  # 08:59:59 local: one second
    ("2024-01-15T06:00:00", "+03:00", None),  # 09:00 sharp: the window is over
    ("2024-01-15T18:59:59", "+03:00", None),  # 21:59:59: not yet
    ("2024-01-15T12:00:00", "+10:00", "2024-01-15T23:00:00"),  # noon in UTC is 22:00 in Vladivostok
    ("2024-01-15T12:00:00", "-05:00", "2024-01-15T14:00:00"),  # and 07:00 in New York: until 09:00 there
])
def test_quiet_hours_are_the_students_local_night(now, zone, release):
    assert NIGHT.release_at(_utc(now), parse_zone(zone)) == (None if release is None else _utc(release))


def test_quiet_hours_end_by_the_zone_clock_across_a_dst_change():
    berlin = parse_zone("Europe/Berlin")
    # the night of 30-31 March 2024 loses an hour at 02:00: 09:00 CEST is 07:00 UTC, not 08:00
    assert NIGHT.release_at(_utc("2024-03-30T22:00:00"), berlin) == _utc("2024-03-31T07:00:00")


def test_a_daytime_window_and_no_window():
    lunch = QuietHours.parse("12:00-13:30")
    assert lunch.release_at(_utc("2024-01-15T12:10:00"), UTC) == _utc("2024-01-15T13:30:00")
    assert lunch.release_at(_utc("2024-01-15T13:30:00"), UTC) is None
    assert QuietHours.parse("").release_at(_utc("2024-01-15T03:00:00"), UTC) is None
    assert QuietHours.parse("9:00 - 9:00") == QuietHours(time(9), time(9))
    with pytest.raises(ValueError):
        QuietHours.parse("late")


def test_the_backoff_doubles_is_capped_and_jittered_within_half_a_step():
    rng = random.Random(1)
    for retry in range(12):
        step = min(2.0 ** retry, 60.0)
        waits = [backoff(retry, 1.0, rng) for _ in range(200)]
        assert step / 2 <= min(waits) and max(waits) <= step
        assert max(waits) - min(waits) > step / 4  # jittered, not one fixed value


def test_a_parked_message_waits_a_minute_then_twice_as_long_each_time_up_to_half_an_hour():
    assert [park_wait(n) for n in range(1, 8)] == [60, 120, 240, 480, 960, 1800, 1800]
    assert park_wait(40) == PARK_MAX == 1800


def test_retry_after_is_honoured_in_both_forms_and_capped():
    now = _utc("2024-01-15T12:00:00")
    assert retry_after("7", now) == 7.0
    assert retry_after("Mon, 15 Jan 2024 12:00:30 GMT", now) == 30.0
    assert retry_after("Mon, 15 Jan 2024 11:00:00 GMT", now) == 0.0
    assert retry_after("99999", now) == MAX_RETRY_AFTER
    assert retry_after("soon", now) is None and retry_after(None, now) is None
    assert wait_before(0, 0.1, random.Random(0), "5", now) == 5.0  # the server asks for longer
    assert wait_before(0, 0.1, random.Random(0), None, now) < 0.1


@pytest.mark.parametrize("status, expected", [(200, "delivered"), (204, "delivered"), (500, "retry"),
                                              (503, "retry"), (429, "retry"), (408, "retry"),
                                              (400, "permanent"), (422, "permanent"), (410, "permanent"),
                                              (302, "permanent"), (401, "retry"), (403, "retry"), (407, "retry"),
                                              (404, "retry"), (405, "retry")])
def test_which_answers_are_retried(status, expected):
    assert verdict(status) == expected


def test_texts_follow_the_alerts_language_and_carry_no_student_id_to_the_student():
    ru = _alert(to_status="asleep", position={"task_name": "Циклы"})
    assert language_of(ru, "en") == "ru"
    texts = render("urge", ru, "ru")
    assert set(texts) == {"student", "curator"}
    assert "8 дн." in texts["student"] and "«Циклы»" in texts["student"] and "7" not in texts["student"]
    assert "Студент 7" in texts["curator"] and "Нет активности" in texts["curator"]
    en = _alert(kind="at_risk", reasons=["No activity for 8 days"])
    assert language_of(en, "ru") == "en"
    assert "(71%)" in render("curator", en, "en")["curator"]
    guessed = {**en, "basis": {"progress": "guess", "p_dropout": "guess", "p_success": "guess"}}
    assert "(71%, estimated from activity before any outcome)" in render("curator", guessed, "en")["curator"]
    leveled = {**guessed, "basis": {**guessed["basis"], "p_dropout": "calibrated_guess"}}
    assert "(71%)" in render("curator", leveled, "en")["curator"]
    assert "(71%, оценка по активности до первых итогов)" in render("curator", guessed, "ru")["curator"]
    assert language_of(_alert(reasons=[]), "en") == "en" and language_of(_alert(language="en"), "ru") == "en"
    assert render("cancel", ru, "ru") == {} == render("none", ru, "ru")


def test_hostile_alert_fields_do_not_break_the_texts():
    hostile = _alert(days_inactive="many", scores=None, position=[1], reasons="{user_id}", recipient=5, basis="guess")
    body = notification(hostile, "urge", language_of(hostile, "ru"))
    assert body["channel"] == "email" and "0 дн." in body["texts"]["student"]


@pytest.mark.parametrize("raw, reason", [(b"{", "malformed_json"), (b"[1]", "not_an_object"), (None, "malformed_json"),
                                         (b'{"user_id": 1}', "missing_field"), (b'{"alert_id": ""}', "missing_field"),
                                         (b'{"alert_id": 5}', "missing_field")])
def test_unreadable_alerts_get_a_reason(raw, reason):
    with pytest.raises(InvalidEvent) as caught:
        decode(raw)
    assert caught.value.reason == reason
    assert decode(b'{"alert_id": "x"}') == {"alert_id": "x"}


def test_the_notification_names_action_audience_channel_and_the_alert():
    body = notification(_alert(), "nudge", "ru")
    assert body["alert_id"] == "a1" and body["action"] == "nudge" and body["audience"] == ["student"]
    assert body["channel"] == "telegram" and body["alert"]["user_id"] == 7 and "student" in body["texts"]


async def test_without_a_webhook_each_notification_is_one_json_line():
    out = io.StringIO()
    sender = PrintSender(out)
    assert (await sender.send(notification(_alert(), "nudge", "ru"), "a1")).delivered
    assert (await sender.send({"alert_id": "a2", "texts": {}}, "a2")).delivered
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["alert_id"] for line in lines] == ["a1", "a2"]
    assert "Мы скучаем" in json.loads(lines[0])["texts"]["student"]
