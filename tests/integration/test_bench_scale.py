"""`scorer bench --scale` on a real Redis, small: the figures are there (named attempts' too), compaction
keeps the document flat where keeping every fact does not, and the bench leaves no key behind."""
from __future__ import annotations

import redis.asyncio as aioredis

from streams.tools.bench_scale import Scale, measure

SMALL = Scale(histories=(100, 3_000), student_counts=(200, 400), students_facts=100, touches=20, rounds=1)


async def test_the_scale_bench_measures_flat_documents_and_cleans_up(redis_url: str) -> None:
    figures = await measure(redis_url, SMALL)
    compacted, every_fact = figures["per_touch"]["compacted"], figures["per_touch"]["every_fact"]
    named = figures["per_touch"]["named_attempts"]  # a hand-in and a grade per attempt, graded versions kept whole
    assert named["3000"]["document_bytes"] > compacted["3000"]["document_bytes"]
    for touch in (compacted, every_fact, named):
        assert {"100", "3000", "cost_ratio_longest_to_shortest"} <= set(touch)
        assert all(touch[h]["mean_ms"] > 0 and touch[h]["p99_ms"] >= touch[h]["mean_ms"] for h in ("100", "3000"))
    growth = compacted["3000"]["document_bytes"] / compacted["100"]["document_bytes"]
    assert every_fact["3000"]["document_bytes"] > 2.5 * compacted["3000"]["document_bytes"]
    assert growth < 0.4 * every_fact["3000"]["document_bytes"] / every_fact["100"]["document_bytes"]
    per_student = [figures["students"][n]["redis_bytes_per_student"] for n in ("200", "400")]
    assert all(compacted["100"]["document_bytes"] / 2 < b < 4 * compacted["100"]["document_bytes"] for b in per_student)
    client = aioredis.Redis.from_url(redis_url)
    assert [key async for key in client.scan_iter("bench-*")] == []
    await client.aclose()
