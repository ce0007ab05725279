"""`scorer replay --dry-run`: what a replay would publish and what would be dead-lettered, without a broker, by the
loader and by the worker's own check of each record (`streams.pipeline.checked_record`)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from streams.cli import main
from streams.lms.synthetic import generate
from streams.tools.replay import load_records

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dry-run") / "lms"
    generate(out, students=30, seed=3, bad_rows=3)
    return out


def test_it_counts_what_the_loader_and_the_worker_would_refuse(export: Path, tmp_path: Path, capsys) -> None:
    events, rejected = load_records(export)
    edited = tmp_path / "lms"
    shutil.copytree(export, edited)
    student = next(r["user_id"] for _, r in events if "user_id" in r)
    with (edited / "authorization.csv").open("a", encoding="utf-8") as logins:
        logins.write(f'{student},2100-01-01 10:00:00,"Mozilla/5.0",1920x969\n')  # the loader takes it, a worker not

    assert main(["replay", str(edited), "--dry-run"]) == 0  # no SCORER_KAFKA_URL needed
    found = json.loads(capsys.readouterr().out)
    assert found["dry_run"] is True and found["held_back"] == 0
    assert sum(found["would_publish"].values()) == len(events)  # every record of the untouched export
    assert found["would_dead_letter"]["event_time_in_future"] == 1
    assert "ahead of its Kafka timestamp" in found["errors"]["event_time_in_future"][0]
    refused_by_loader = {reason: n for reason, n in found["would_dead_letter"].items() if reason.startswith("csv_")}
    assert sum(refused_by_loader.values()) == len(rejected) >= 3  # the generator's bad rows
    assert all(1 <= len(errors) <= 3 for errors in found["errors"].values())

    until = "2024-01-15T00:00:00"
    assert main(["replay", str(export), "--dry-run", "--until", until]) == 0
    cut = json.loads(capsys.readouterr().out)
    assert cut["held_back"] > 0
    assert sum(cut["would_publish"].values()) + cut["held_back"] == len(events)
