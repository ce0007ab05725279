"""An input a command cannot use (a mistyped path, a directory that is no export, a missing mapping file, a
broken gzip, a port another process holds) ends the command with one line naming it and exit status 2, never a
traceback."""
from __future__ import annotations

import gzip
import shutil
import socket
from pathlib import Path

import pytest

from streams.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(autouse=True)
def _no_servers(monkeypatch):
    for name in ("SCORER_KAFKA_URL", "SCORER_REDIS_URL", "SCORER_DATABASE_URL", "SCORER_INGEST_MAPPING"):
        monkeypatch.delenv(name, raising=False)


def _refused(capsys, argv: list[str]) -> str:
    """The one line of stderr `argv` was refused with (exit status 2)."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


@pytest.mark.parametrize("command", [["replay", "{}", "--dry-run"], ["evaluate", "{}", "--json"],
                                     ["hypotheses", "{}"], ["dataset", "{}", "--out", "{}/x.csv"],
                                     ["bootstrap", "{}", "--dry-run"]])
def test_a_directory_that_is_no_export_is_named(capsys, tmp_path, command):
    missing = tmp_path / "typo"
    line = _refused(capsys, [part.format(missing) for part in command])
    assert line == f"scorer {command[0]}: {missing}: no such directory"
    (tmp_path / "partial").mkdir()
    shutil.copy(FIXTURES / "seed_sample" / "users.csv", tmp_path / "partial")
    line = _refused(capsys, [part.format(tmp_path / "partial") for part in command])
    assert line.startswith(f"scorer {command[0]}: {tmp_path / 'partial'}: not an LMS export, it has no schedule.csv")


def test_an_lms_log_that_cannot_be_read_is_named(capsys, tmp_path):
    missing = tmp_path / "statements.jsonl"
    assert _refused(capsys, ["replay", str(missing), "--format", "xapi", "--dry-run"]) == (
        f"scorer replay: {missing}: No such file or directory")
    assert _refused(capsys, ["replay", str(tmp_path), "--format", "xapi", "--dry-run"]) == (
        f"scorer replay: {tmp_path}: Is a directory")
    cut = tmp_path / "statements.jsonl.gz"
    cut.write_bytes(gzip.compress((FIXTURES / "lms_formats" / "xapi_statements.jsonl").read_bytes())[:-20])
    assert _refused(capsys, ["replay", str(cut), "--format", "xapi", "--dry-run"]).startswith(
        f"scorer replay: {cut}: unreadable gzip (")


def test_a_missing_mapping_file_names_its_setting(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SCORER_INGEST_MAPPING", str(tmp_path / "mapping.yaml"))
    log = FIXTURES / "lms_formats" / "xapi_statements.jsonl"
    assert _refused(capsys, ["replay", str(log), "--format", "xapi", "--dry-run"]) == (
        f"scorer replay: SCORER_INGEST_MAPPING {tmp_path / 'mapping.yaml'}: No such file or directory")
    monkeypatch.setenv("SCORER_INGEST_MAPPING", str(FIXTURES / "lms_formats" / "mapping.yaml"))
    assert main(["replay", str(log), "--format", "xapi", "--dry-run"]) == 0  # the same log, a mapping it can read


def test_an_output_it_cannot_write_is_named_before_any_work(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = _refused(capsys, ["generate", "--out", str(blocker / "school"), "--students", "5", "--seed", "1"])
    assert line.startswith(f"scorer generate: {blocker / 'school'}: ")
    assert _refused(capsys, ["dataset", str(FIXTURES / "seed_sample"), "--out", str(tmp_path / "x.txt")]) == (
        f"scorer dataset: {tmp_path / 'x.txt'}: unknown dataset format; use .csv (optionally .gz/.bz2/.zip/.xz) "
        "or .parquet")


def test_the_subcommand_is_named_and_missing_settings_are_said(capsys, tmp_path):
    assert _refused(capsys, ["import", "oulad", str(tmp_path), "--out", str(tmp_path / "out")]).startswith(
        f"scorer import oulad: {tmp_path}: no studentInfo.csv")
    assert _refused(capsys, ["critical-points"]) == (
        "scorer critical-points: needs SCORER_DATABASE_URL (the Postgres the workers snapshot to)")
    assert _refused(capsys, ["redrive", "--dry-run"]) == (
        "scorer redrive: needs SCORER_KAFKA_URL and SCORER_REDIS_URL (the workers'; Redis keeps the ledger of what "
        "was sent)")
    assert _refused(capsys, ["replay", str(FIXTURES / "seed_sample")]).startswith(
        "scorer replay: needs SCORER_KAFKA_URL")
    assert _refused(capsys, ["uplift"]) == "scorer uplift: needs SCORER_DATABASE_URL (or --from-export DIR)"


def test_a_time_that_is_not_one_is_said(capsys, monkeypatch):
    monkeypatch.setenv("SCORER_KAFKA_URL", "kafka://127.0.0.1:9")  # never reached: the option is refused first
    assert _refused(capsys, ["dead-letters", "--since", "last tuesday"]).startswith(
        "scorer dead-letters: --since/--until: ")


def test_an_error_about_no_path_keeps_its_traceback(monkeypatch):
    """A connection refused or a bug is not the input's fault: it is raised, not reduced to a line."""
    import streams.cli as cli

    def broken(args):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(cli, "_critical_points", broken)
    monkeypatch.setenv("SCORER_DATABASE_URL", "postgresql://nowhere/db")
    with pytest.raises(ConnectionRefusedError):
        cli.main(["critical-points"])



@pytest.mark.parametrize(("command", "variable"), [("train", "SCORER_TRAINER_METRICS_PORT"),
                                                   ("notify", "SCORER_NOTIFY_METRICS_PORT"),
                                                   ("worker", "SCORER_WEB_PORT")])
def test_a_port_another_process_holds_is_said(capsys, monkeypatch, command, variable):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv(variable, str(port))
        monkeypatch.setenv("SCORER_WEB_BIND", "127.0.0.1")
        servers = {"SCORER_KAFKA_URL": "kafka://127.0.0.1:9", "SCORER_REDIS_URL": "redis://127.0.0.1:9/0",
                   "SCORER_DATABASE_URL": "postgresql://127.0.0.1:9/db"}
        for name, url in servers.items():  # never reached: the port is taken first
            monkeypatch.setenv(name, url)
        assert _refused(capsys, [command]) == f"scorer {command}: {variable} {port}: already in use by another process"
