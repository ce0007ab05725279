"""SCORER_DATABASE_URL over TLS with a school's private CA (`sslmode=verify-full&sslrootcert=...`), against a
PostgreSQL that accepts TLS only (pg_hba.conf: `hostssl`, and `hostnossl ... reject`): the migration, the worker's
row writer and sink, and the read API's query all work on the URL as a school writes it, over an encrypted
connection; a client that does not trust the CA, or does not encrypt, gets nothing."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from helpers import tls_postgres
from storage.postgres import queries
from storage.postgres.db import dispose_shared_engines, make_engine, shared_engine
from storage.postgres.migrate import upgrade
from storage.postgres.row_writer import RowWriter
from storage.postgres.sink import PostgresSink
from streams.contract.outputs import ScoreRow, Scores

pytestmark = pytest.mark.skipif(tls_postgres.missing() is not None, reason=str(tls_postgres.missing()))

T0 = datetime(2024, 3, 4, 10, 0)


@pytest.fixture(scope="module")
def server() -> Iterator[tls_postgres.TlsPostgres]:
    with tls_postgres.tls_postgres() as running:
        try:
            upgrade(running.url)
            yield running
        finally:
            dispose_shared_engines()  # the read API's pooled connections to this server


def _score(user_id: int, status: str, p_dropout: float, course_id: int = 77) -> dict[str, Any]:
    return {"user_id": user_id, "course_id": course_id, "enrolment": f"{course_id}:1", "status": status,
            "p_dropout": p_dropout, "updated_at": T0, "features": {"logins_7d": user_id % 5, "ratio": 0.25}}


def test_the_worker_writes_and_the_read_api_reads_over_tls(server: tls_postgres.TlsPostgres) -> None:
    upgrade(server.url)  # again, as every worker does at its start: at head already, nothing to do
    writer = RowWriter(server.url)
    writer.add_scores([_score(1, "active", 0.9), _score(2, "asleep", 0.3), _score(2, "dozing", 0.6, course_id=78)])
    writer.close()
    read = queries.student(server.url, 2)  # GET /students/2's query
    assert sorted((row["enrolment"], row["status"], row["p_dropout"]) for row in read) == [
        ("77:1", "asleep", 0.3), ("78:1", "dozing", 0.6)]
    with shared_engine(server.url).connect() as connection:  # the read API's own pool
        ssl, version = connection.execute(
            text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).one()
    assert ssl is True and version.startswith("TLSv1.")


async def test_the_sink_opens_and_writes_over_tls(server: tls_postgres.TlsPostgres) -> None:
    sink = await PostgresSink.open(server.url)
    try:
        await sink.write([ScoreRow(user_id=9, enrolment="77:1", course_id=77, flow_num=1, status="active",
                                   status_since=None, last_activity_at=None, days_inactive=0.5,
                                   scores=Scores(p_dropout=0.2), features={"logins_7d": 3.0},
                                   updated_at=T0.timestamp(), new_history_day=True)], [])
    finally:
        await sink.close()
    [row] = queries.student(server.url, 9)
    assert (row["status"], row["p_dropout"], row["features"]) == ("active", 0.2, {"logins_7d": 3.0})


def _other_ca(directory: Path) -> str:
    path = directory / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


@pytest.mark.parametrize(("trusting", "refusal"), [
    # libpq's default, ~/.postgresql/root.crt: absent here (and were it there, it would not hold this CA)
    ("nothing", "root certificate file .* does not exist|certificate verify failed"),
    ("the system's CAs", "certificate verify failed"),
    ("another CA", "certificate verify failed"),
])
def test_a_client_that_does_not_trust_the_ca_is_refused(server: tls_postgres.TlsPostgres, tmp_path: Path,
                                                        trusting: str, refusal: str) -> None:
    query = {"nothing": "sslmode=verify-full", "the system's CAs": "sslmode=verify-full&sslrootcert=system",
             "another CA": f"sslmode=verify-full&sslrootcert={_other_ca(tmp_path)}"}[trusting]
    with pytest.raises(OperationalError, match=refusal):
        upgrade(server.url_with(query))


def test_the_server_refuses_a_client_that_does_not_encrypt(server: tls_postgres.TlsPostgres) -> None:
    engine = make_engine(server.url_with("sslmode=disable"))
    try:
        with pytest.raises(OperationalError, match="no encryption"):  # pg_hba.conf: hostnossl ... reject
            engine.connect()
    finally:
        engine.dispose()
