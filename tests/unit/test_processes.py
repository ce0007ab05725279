"""The dev tools' reading of a worker's /metrics (histograms as Prometheus reads them)."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.tools.processes import histogram_buckets, histogram_quantile, nearest_rank, totals


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 50.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.1)
    assert histogram_quantile(buckets, 0.75) == pytest.approx(0.55)
    assert histogram_quantile([], 0.5) is None


def test_buckets_and_totals_from_an_exposition() -> None:
    registry = CollectorRegistry()
    latency = Histogram("lat_seconds", "x", buckets=(0.1, 1.0), registry=registry)
    for value in (0.05, 0.05, 0.5, 3.0):
        latency.observe(value)
    text = generate_latest(registry).decode()
    found = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]
    assert histogram_buckets(found, "lat_seconds") == [(0.1, 2.0), (1.0, 3.0), (float("inf"), 4.0)]
    assert totals(found)["lat_seconds_count"] == 4.0
    assert histogram_quantile(histogram_buckets(found, "lat_seconds"), 0.5) == pytest.approx(0.1)


def test_nearest_rank_is_a_measured_value() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted
    assert [nearest_rank(values, q) for q in (0.0, 0.5, 0.95, 0.99, 1.0)] == [1.0, 50.0, 95.0, 99.0, 100.0]
    assert nearest_rank([7.0], 0.99) == 7.0 and nearest_rank([], 0.5) is None
