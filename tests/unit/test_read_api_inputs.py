"""The read API's guards without a server: id and limit parsing, the bearer check, the view
wrapper, /metrics with Redis down, the Faust app's bind and pages, and Postgres' hidden parameters.

(Hypothesis is not in the venv, so the validators are checked over parametrized hostile inputs.)
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from storage.postgres.db import make_engine
from streams import tokens
from streams.metrics import REDIS_MAY_EVICT, REGISTRY, STUDENTS_BY_STATUS
from streams.runtime import Runtime
from streams.settings import Settings, SettingsError
from streams.tokens import (
    PREVIOUS_READER,
    SHARED_READER,
    DoorTokens,
    Person,
    Presented,
    Reader,
    bearer_credentials,
    read_people,
    token_matches,
)
from streams.web import (
    DEFAULT_LIMIT,
    MAX_ID,
    MAX_LIMIT,
    Admitted,
    InvalidParameter,
    ReadLog,
    Refusal,
    api_tokens,
    check_bearer,
    parse_id,
    parse_limit,
    refresh_store_gauges,
    student_data,
)

HOSTILE_IDS = ["", "²", "１２", "١٢", "-1", "+1", "0", "00", "1.0", "1e3", " 1", "1 ", "\t1", "1\n", "9" * 5000,
               str(MAX_ID + 1), "99999999999999999999", "0" * 19 + "1", "%00", "\x00", "abc", "0x10", "1_000",
               "٣", "𝟙", "Ⅻ"]
HOSTILE_LIMITS = ["", "abc", "0", "1001", "-5", "+5", "1e3", "1.5", " 5", "５", "²", "9" * 5000, "%00", "\x00"]


@pytest.mark.parametrize("raw", HOSTILE_IDS, ids=repr)
def test_hostile_ids_are_refused_by_name(raw: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        parse_id(raw, "user_id")
    assert refused.value.parameter == "user_id" and "user_id" in str(refused.value)


@pytest.mark.parametrize(("raw", "value"), [("1", 1), ("42", 42), ("007", 7), (str(MAX_ID), MAX_ID),
                                            ("0" * 18 + "1", 1)])
def test_ascii_ids_in_the_bigint_range_are_accepted(raw: str, value: int) -> None:
    assert parse_id(raw, "course_id") == value


def test_every_id_of_at_most_19_ascii_digits_parses_exactly_in_range() -> None:
    for value in [1, 9, 10, 2**31, 2**32 + 1, 10**18, MAX_ID - 1, MAX_ID]:
        assert parse_id(str(value), "user_id") == value
    for value in [MAX_ID + 1, 10**19 - 1, 10**19, 2**64]:
        with pytest.raises(InvalidParameter):
            parse_id(str(value), "user_id")


@pytest.mark.parametrize("raw", HOSTILE_LIMITS, ids=repr)
def test_hostile_limits_are_refused_by_name(raw: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        parse_limit(raw)
    assert refused.value.parameter == "limit"


def test_limit_default_and_range() -> None:
    assert parse_limit(None) == DEFAULT_LIMIT
    assert [parse_limit(raw) for raw in ("1", "5", "050", str(MAX_LIMIT))] == [1, 5, 50, MAX_LIMIT]


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"), (None, None), ("", None),
    ("Bearer", None), ("Bearer ", None), ("Basic YTpi", None), ("abc", None), ("Token abc", None),
])
def test_bearer_credentials(header: str | None, token: str | None) -> None:
    assert bearer_credentials(header) == token


def test_token_comparison_takes_any_text() -> None:
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cret", "s3cret!") and not token_matches("", "s3cret")
    # compare_digest raises TypeError on non-ASCII str: bytes never do, lone surrogates included
    assert not token_matches("sécret", "s3cret") and not token_matches("\udcff\ud800", "s3cret")
    assert token_matches("sécret", "sécret")


def test_bearer_check_refuses_missing_wrong_and_unconfigured() -> None:
    assert check_bearer("Bearer right", DoorTokens("right"), "read_api") == Admitted(Reader(SHARED_READER))
    for header in (None, "", "Bearer", "Basic cmlnaHQ=", "Bearer wrong", "Bearer right2", "Bearer RIGHT"):
        refusal = check_bearer(header, DoorTokens("right", "old"), "read_api")
        assert isinstance(refusal, Refusal) and refusal.status == 401, header
        assert refusal.headers["WWW-Authenticate"].startswith("Bearer")
    for header in (None, "Bearer ", "Bearer anything", "Bearer old"):  # no token configured: closed, never open
        refusal = check_bearer(header, DoorTokens("", "old"), "read_api")
        assert isinstance(refusal, Refusal) and refusal.status == 503 and "not configured" in refusal.error


ANNA, BORIS = "anna-s-own-token-0123456789", "boris-s-own-token-0123456789"


def test_people_open_the_door_with_their_own_tokens_with_or_without_a_shared_one() -> None:
    for shared in ("shared-token-0123456789", ""):
        tokens = DoorTokens(shared, "old-token-0123456789", (Person("Anna Petrova", ANNA), Person("Boris", BORIS)))
        assert tokens.configured
        assert [check_bearer(f"Bearer {t}", tokens, "read_api") for t in (ANNA, BORIS)] == [
            Admitted(Reader("Anna Petrova")), Admitted(Reader("Boris"))]
        assert [tokens.match(t) for t in (ANNA, BORIS, ANNA + "x")] == [
            (Presented.PERSON, Reader("Anna Petrova")), (Presented.PERSON, Reader("Boris")), (Presented.WRONG, None)]
        refusal = check_bearer(f"Bearer {ANNA[:-1]}", tokens, "read_api")
        assert isinstance(refusal, Refusal) and refusal.wrong_token
    alone = DoorTokens("", "old-token-0123456789", (Person("Anna Petrova", ANNA),))
    assert alone.presented("old-token-0123456789") is Presented.WRONG  # the previous one alone opens nothing
    assert alone.presented("") is Presented.WRONG and alone.accepted() == ((ANNA, Reader("Anna Petrova")),)
    removed = DoorTokens("shared-token-0123456789")  # Boris has left: his line is gone
    refusal = check_bearer(f"Bearer {BORIS}", removed, "read_api")
    assert isinstance(refusal, Refusal) and refusal.status == 401


def test_a_person_may_read_only_the_courses_their_line_names() -> None:
    anna = Reader("Anna", frozenset({77, 78}))
    assert anna.may_read(77) and anna.may_read(78) and not anna.may_read(79)
    assert not anna.may_read(None)  # an enrolment of no known course: only a reader of every course
    assert Reader(SHARED_READER).may_read(79) and Reader(SHARED_READER).may_read(None)
    tokens = DoorTokens("", people=(Person("Anna", ANNA, frozenset({77})),))
    assert check_bearer(f"Bearer {ANNA}", tokens, "read_api") == Admitted(Reader("Anna", frozenset({77})))


def test_the_people_file_is_read_strictly_and_its_errors_show_no_token(tmp_path: Path) -> None:
    path = tmp_path / "people"
    path.write_text(f"# curators\n\nAnna Petrova {ANNA}\n  Boris\t{BORIS}  courses=78,77 \n")
    assert read_people(str(path)) == (Person("Anna Petrova", ANNA), Person("Boris", BORIS, frozenset({77, 78})))
    assert read_people("") == ()
    for bad, says in ((f"{ANNA}\n", "line 1: expected"), ("Anna short-token\n", "line 1 (Anna): a token of 11"),
                      (f"Anna {ANNA}\nAnna {BORIS}\n", "line 2 (Anna): a name or a token given twice"),
                      (f"Anna {ANNA}\nBoris {ANNA}\n", "line 2 (Boris)"),
                      (f"Anna {ANNA} courses=\n", "line 1: `courses=` takes course ids"),
                      (f"Anna {ANNA} courses=77,x\n", "line 1: `courses=` takes course ids"),
                      (f"Anna {ANNA} courses=0\n", "line 1: `courses=` takes course ids"),
                      ("courses=77\n", "line 1: expected")):
        path.write_text(bad)
        with pytest.raises(ValueError, match=re.escape(says)) as error:
            read_people(str(path))
        assert ANNA not in str(error.value) and BORIS not in str(error.value)
    with pytest.raises(OSError):
        read_people(str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="SCORER_API_TOKENS_FILE"):
        api_tokens(Settings(api_tokens_file=str(tmp_path / "missing")))


def test_during_a_rotation_both_tokens_open_the_door_and_the_previous_one_is_counted() -> None:
    def counted(door: str) -> float:
        return REGISTRY.get_sample_value("scorer_read_api_previous_tokens_total", {"door": door}) or 0.0

    rotating = DoorTokens("new-token", "old-token")
    before = counted("read_api"), counted("console")
    assert check_bearer("Bearer new-token", rotating, "read_api") == Admitted(Reader(SHARED_READER))
    assert (counted("read_api"), counted("console")) == before
    assert check_bearer("Bearer old-token", rotating, "read_api") == Admitted(Reader(PREVIOUS_READER))
    assert check_bearer("Bearer old-token", rotating, "console") == Admitted(Reader(PREVIOUS_READER))
    assert (counted("read_api"), counted("console")) == (before[0] + 1, before[1] + 1)
    refusal = check_bearer("Bearer old-token", DoorTokens("new-token"), "read_api")
    assert isinstance(refusal, Refusal) and refusal.wrong_token  # the rotation is over: the old token is a wrong one


# --------------------------------------------------------------------------------------------
# the wrapper every student-data view goes through, with stand-ins for Faust's View and Request
# --------------------------------------------------------------------------------------------

@dataclass
class Answer:
    body: Any
    status: int
    headers: dict[str, str]


class FakeView:
    def json(self, value: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
        return Answer(value, status, dict(headers or {}))


@dataclass
class FakeRequest:
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


async def _call(handler: Any, headers: dict[str, str], token: str = "right", **match: str) -> Answer:
    guarded = student_data(api_tokens(Settings(api_token=token)), "postgresql://nowhere/none")(handler)
    return cast(Answer, await guarded(FakeView(), FakeRequest(headers), **match))


async def test_the_wrapper_checks_the_token_before_the_handler_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "WRONG_TOKEN_DELAY_SECONDS", 0.0)
    calls: list[str] = []
    readers: list[ReadLog] = []

    async def student(web: FakeView, request: FakeRequest, reads: ReadLog, user_id: str) -> Answer:
        calls.append(user_id)
        readers.append(reads)
        return web.json({"user_id": parse_id(user_id, "user_id")})

    assert (await _call(student, {}, user_id="1")).status == 401
    assert (await _call(student, {"Authorization": "Bearer wrong"}, user_id="1")).status == 401
    assert (await _call(student, {"Authorization": "Bearer right"}, token="", user_id="1")).status == 503
    assert calls == []
    ok = await _call(student, {"Authorization": "Bearer right"}, user_id="12")
    assert (ok.status, ok.body) == (200, {"user_id": 12})
    assert readers == [ReadLog("postgresql://nowhere/none", "read_api", Reader(SHARED_READER))]
    bad = await _call(student, {"Authorization": "Bearer right"}, user_id="²")
    assert bad.status == 400 and bad.body["parameter"] == "user_id"


async def test_a_wrong_token_is_counted_and_answered_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guessing one token at a time takes a second a guess; a missing or right token is neither counted nor held."""
    monkeypatch.setattr(tokens, "WRONG_TOKEN_DELAY_SECONDS", 0.2)

    def counted() -> float:
        return REGISTRY.get_sample_value("scorer_read_api_wrong_tokens_total", {"door": "read_api"}) or 0.0

    async def student(web: FakeView, request: FakeRequest, reads: ReadLog, user_id: str) -> Answer:
        return web.json({})

    before, started = counted(), time.monotonic()
    assert (await _call(student, {"Authorization": "Bearer wrong"}, user_id="1")).status == 401
    assert time.monotonic() - started >= 0.2 and counted() == before + 1
    started = time.monotonic()
    assert [(await _call(student, headers, user_id="1")).status
            for headers in ({}, {"Authorization": "Bearer right"})] == [401, 200]
    assert time.monotonic() - started < 0.2 and counted() == before + 1


async def test_a_database_failure_is_a_503_logged_without_values(caplog: pytest.LogCaptureFixture) -> None:
    async def student(web: FakeView, request: FakeRequest, reads: ReadLog, user_id: str) -> Answer:
        raise OperationalError("SELECT ... WHERE user_id = %(id)s", {"id": 424242}, Exception("server closed"))

    with caplog.at_level(logging.WARNING, logger="streams.web"):
        answer = await _call(student, {"Authorization": "Bearer right"}, user_id="424242")
    assert answer.status == 503 and "424242" not in str(answer.body)
    assert "OperationalError" in caplog.text and "424242" not in caplog.text


# --------------------------------------------------------------------------------------------
# /metrics with Redis down
# --------------------------------------------------------------------------------------------

class FailingStore:
    async def status_counts(self) -> dict[str, int]:
        raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


class CountingStore:
    def __init__(self, eviction: tuple[bool, str] | None = (True, "allkeys-lru")) -> None:
        self.eviction = eviction

    async def status_counts(self) -> dict[str, int]:
        return {"asleep": 3}

    async def may_evict(self) -> tuple[bool, str] | None:
        return self.eviction

    async def state_lost_at(self) -> float | None:
        return None


async def test_store_gauges_are_best_effort(caplog: pytest.LogCaptureFixture) -> None:
    await refresh_store_gauges(cast(Runtime, SimpleNamespace(store=CountingStore())))
    gauge = STUDENTS_BY_STATUS.labels("asleep")
    assert gauge._value.get() == 3 and REDIS_MAY_EVICT._value.get() == 1
    with caplog.at_level(logging.WARNING, logger="streams.web"):
        await refresh_store_gauges(cast(Runtime, SimpleNamespace(store=FailingStore())))
    assert gauge._value.get() == 3 and REDIS_MAY_EVICT._value.get() == 1  # the last known values stay
    assert [r.levelno for r in caplog.records] == [logging.WARNING] and "ConnectionError" in caplog.text
    await refresh_store_gauges(cast(Runtime, SimpleNamespace(store=CountingStore(None))))  # CONFIG refused
    assert REDIS_MAY_EVICT._value.get() == 1
    await refresh_store_gauges(cast(Runtime, SimpleNamespace(store=CountingStore((False, "noeviction")))))
    assert REDIS_MAY_EVICT._value.get() == 0
    await refresh_store_gauges(cast(Runtime, SimpleNamespace(store=None)))  # not started yet: nothing to do


# --------------------------------------------------------------------------------------------
# the Faust app: bind address from the settings, none of Faust's own pages
# --------------------------------------------------------------------------------------------

@pytest.mark.heavy
def test_the_app_binds_the_configured_address_and_serves_no_faust_pages(tmp_path: Any) -> None:
    from streams.worker import build_app

    app = build_app(Settings(state_dir=str(tmp_path), web_port=6099))
    assert app.conf.web_bind == "127.0.0.1"
    assert build_app(Settings(state_dir=str(tmp_path), web_bind="0.0.0.0")).conf.web_bind == "0.0.0.0"
    mounted = {prefix for prefix, _ in app.web.blueprints._enabled}
    assert not mounted & {"/router", "/table", "/graph", "/performance"}, mounted
    served = [str(bp) for _, bp in app.web.blueprints._enabled]
    assert not any("stats" in bp for bp in served), served


# --------------------------------------------------------------------------------------------
# Postgres: bound values (student rows) never reach an error message or a log
# --------------------------------------------------------------------------------------------

def test_postgres_errors_and_logs_hide_the_bound_values() -> None:
    engine = make_engine("postgresql+psycopg2://scorer:PASSWORD@127.0.0.1:1/scorer")
    try:
        assert engine.hide_parameters
        row = {"user_id": 424242, "features": '{"secret_feature": 0.97}'}
        error = DBAPIError.instance("INSERT INTO students_current ...", row, Exception("boom"), Exception,
                                    hide_parameters=engine.hide_parameters)
        assert "424242" not in str(error) and "secret_feature" not in str(error)
        assert "hidden" in str(error)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# `scorer demo`: a token for its worker, and how to use it
# --------------------------------------------------------------------------------------------

def test_the_demo_generates_a_token_only_when_none_is_set() -> None:
    from streams.tools.demo import with_api_token

    generated, was_generated = with_api_token(Settings())
    assert was_generated and len(generated.api_token) >= 32
    assert with_api_token(Settings())[0].api_token != generated.api_token
    kept, was_generated = with_api_token(Settings(api_token="operators-own"))
    assert (kept.api_token, was_generated) == ("operators-own", False)


def test_the_demo_prints_a_curl_but_never_the_operators_token(capsys: pytest.CaptureFixture[str]) -> None:
    from streams.tools.demo import print_read_api

    url = "http://127.0.0.1:6066/courses/7/at-risk?limit=5"
    print_read_api(url, "generated-token", True, "HTTP 200, 5 students")
    out = capsys.readouterr().out
    assert f"curl -H \"Authorization: Bearer generated-token\" '{url}'" in out
    print_read_api(url, "operators-own", False, "HTTP 200, 5 students")
    out = capsys.readouterr().out
    assert "operators-own" not in out and "Bearer $SCORER_API_TOKEN" in out and url in out
