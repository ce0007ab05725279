"""`scorer bench` runs end to end and reports sane figures (speed itself is not asserted: the
benchmark measures, tests do not time)."""
import json

import pytest

from streams.cli import main
from streams.tools.bench_read_api import ANSWERS, WARMUP

pytestmark = pytest.mark.slow


def test_bench_prints_the_figures(capsys, monkeypatch, tmp_path, redis_url, postgres_url):
    monkeypatch.setenv("SCORER_REDIS_URL", redis_url)
    monkeypatch.setenv("SCORER_DATABASE_URL", postgres_url)
    monkeypatch.setenv("SCORER_TOPIC_PREFIX", "bench.")
    assert main(["bench", "--events", "2500", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["records"] >= 2000
    for key in ("raw_consumer_records_per_s", "validating_consumer_records_per_s", "faust_agent_records_per_s",
                "pipeline_records_per_s", "worker_records_per_s", "two_workers_records_per_s"):
        assert figures[key] > 0
    assert figures["worker_vs_raw"] > 0
    assert figures["latency_records"] > 0 and figures["latency_p50_s"] is not None
    # the model scored the export's labelled students with and without reasons
    assert figures["model_students"] > 0 and figures["model_scores_with_reasons_per_s"] > 0
    assert figures["reasons_cost_ratio"] > 0  # a ratio of two timings: measured, not asserted (a CI run read 0.82)
    loads = figures["model_load"]  # the version's two published forms: the workers' copy leaves the windows out
    assert 0 < loads["scoring_copy"]["kb"] < loads["full"]["kb"] and loads["scoring_copy"]["held_kb"] > 0
    assert loads["full"]["load_ms"] > 0 and loads["scoring_copy"]["load_ms"] > 0
    # a worker beside a `scorer train` process: it read everything, and the trainer learned labels
    assert figures["worker_external_trainer_records_per_s"] > 0
    assert figures["event_loop_lag_external_trainer"]["trainer_labels_learned"] > 0
    for run in ("event_loop_lag_inline_trainer", "event_loop_lag_external_trainer"):
        assert figures[run]["max_s"] is not None and figures[run]["max_s"] >= 0
    # the worker's read API, asked once per answer, and the two Postgres calls of a student answer
    api = figures["read_api"]
    for route in ("student", "at_risk"):
        assert api[route]["answers"] == ANSWERS
        assert 0 < api[route]["p50_ms"] <= api[route]["p95_ms"] <= api[route]["p99_ms"]
    assert api["student_query_p50_ms"] > 0 and api["record_p50_ms"] > 0
    assert 0 < api["record_share"] < 1 and api["record_share_of_answer"] > 0
    # every read the section made was recorded (the worker's two routes and its own calls, warm-ups included)
    assert api["bench_reads_recorded"] == 3 * (ANSWERS + WARMUP)
    # a full-size surrogate refit beside an event loop: it fitted, and the loop's waits were measured
    fit = figures["surrogate_fit"]
    assert fit["enrolments"] == 3000 and fit["rows"] > fit["enrolments"] and fit["refit_s"] > 0
    assert 0 <= fit["loop_wait_p99_s"] <= fit["loop_wait_max_s"]
