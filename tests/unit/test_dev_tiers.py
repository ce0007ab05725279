"""`dev.py test` runs the server tier in the background beside the other steps: its output is shown, its
failure fails the run, and a failing step interrupts it (pytest then tears its servers down) instead of
leaving a broken run to wait for it."""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_entry_point", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_background_tier_is_shown_and_its_failure_fails_the_run(dev, tmp_path, capfd) -> None:
    background = ("background", _python("print('from the background'); raise SystemExit(4)"))
    assert dev._run_beside(background, (("step", _python("pass")),), tmp_path / "log") == 4
    out = capfd.readouterr().out
    assert "== step: ok" in out and "from the background" in out and "== background: FAILED (4)" in out


def test_a_failing_step_interrupts_the_background_tier(dev, tmp_path, capfd) -> None:
    ready, torn_down = tmp_path / "ready", tmp_path / "torn-down"
    waits = (f"import time\ntry:\n    open({str(ready)!r}, 'w').close()\n    time.sleep(120)\n"
             f"except KeyboardInterrupt:\n    open({str(torn_down)!r}, 'w').close()\n    raise SystemExit(2)\n")
    fails = f"import os, time\nwhile not os.path.exists({str(ready)!r}):\n    time.sleep(0.05)\nraise SystemExit(3)\n"
    began = time.monotonic()
    steps = (("failing step", _python(fails)), ("never run", _python("raise SystemExit(5)")))
    assert dev._run_beside(("background", _python(waits)), steps, tmp_path / "log") == 3
    assert time.monotonic() - began < 60 and torn_down.exists()
    out = capfd.readouterr().out
    assert "== stopping background" in out and "never run" not in out
