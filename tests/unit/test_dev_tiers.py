"""`dev.py test` runs the server tier in the background beside the other steps: its output is shown, its
failure fails the run, and a failing step stops the steps after it but not the server tier, so a red run
names every failing test of that tier too."""
from __future__ import annotations

import importlib.util
import sys
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


def test_a_failing_step_stops_the_next_steps_and_the_background_tier_still_reports(dev, tmp_path, capfd) -> None:
    ran_on = tmp_path / "ran-on"
    background = _python(f"import time\ntime.sleep(1)\nopen({str(ran_on)!r}, 'w').close()\n"
                         "print('background failure'); raise SystemExit(2)")
    steps = (("failing step", _python("raise SystemExit(3)")), ("never run", _python("raise SystemExit(5)")))
    assert dev._run_beside(("background", background), steps, tmp_path / "log") == 3
    out = capfd.readouterr().out
    assert ran_on.exists() and "background failure" in out and "== background: FAILED (2)" in out
    assert "== failing step: FAILED (3)" in out and "never run" not in out
