"""A one-shot command whose server does not answer (a wrong URL, a server down) ends with one line naming the
server and the cause, exit status 1, no traceback and never the password of the URL. Real refused
connections: nothing listens on the port."""
from __future__ import annotations

import socket

import pytest

from streams.cli import main


@pytest.fixture(autouse=True)
def _only_the_one_server(monkeypatch):
    for name in ("SCORER_KAFKA_URL", "SCORER_REDIS_URL", "SCORER_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("argv", "variable", "url", "dependency"), [
    (["forget", "5", "--dry-run"], "SCORER_REDIS_URL", "redis://:s3cret-pw@127.0.0.1:{}/0", "redis"),
    (["reads"], "SCORER_DATABASE_URL", "postgresql+psycopg2://scorer:s3cret-pw@127.0.0.1:{}/scorer", "postgres"),
    (["dead-letters"], "SCORER_KAFKA_URL", "kafka://127.0.0.1:{}", "kafka"),
])
def test_a_server_it_cannot_reach_is_one_line_without_the_password(capsys, monkeypatch, argv, variable, url,
                                                                   dependency):
    monkeypatch.setenv(variable, url.format(_closed_port()))
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("scorer ")]
    assert lines and lines[-1].startswith(f"scorer {argv[0]}: {dependency} unavailable or refusing: ")
    assert "Traceback" not in err and "s3cret-pw" not in err
