#!/usr/bin/env python3
"""One entry point for a fresh machine that has only Python 3.11.

    python3 dev.py demo   # generate -> replay -> score, all on embedded servers
    python3 dev.py test   # the whole test suite

It creates `.venv/` next to this file and installs the project (with its embedded
servers and test tools) there, re-installing only when pyproject.toml changes.
Every other argument is passed on: `python3 dev.py test -k readers`,
`python3 dev.py scorer generate --out out/lms`.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-pyproject"


def _ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing into .venv (first run, or pyproject.toml changed) ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    log = VENV / "install.log"
    with log.open("w") as out:
        for args in (["install", "--upgrade", "pip"], ["install", "-e", f"{ROOT}[test]"]):
            if subprocess.call(pip + args, stdout=out, stderr=subprocess.STDOUT) != 0:
                sys.stderr.write(log.read_text()[-5000:])
                raise SystemExit(f"pip {' '.join(args)} failed; full log: {log}")
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "scorer", "bench"}:
        print(__doc__)
        return 2
    _ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "test":
        cmd = [str(BIN / "python"), "-m", "pytest", "-q", *rest]
    elif command == "scorer":
        cmd = [str(BIN / "scorer"), *rest]
    else:
        cmd = [str(BIN / "scorer"), command, *rest]
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
