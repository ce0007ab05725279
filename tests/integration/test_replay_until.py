"""`scorer replay --until` on a real broker: the history as it stood then is on the topics, nothing later."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from features.eventtime import parse_ts
from helpers.topics import read_topic
from streams.contract import Topic
from streams.lms.synthetic import generate
from streams.settings import Settings
from streams.tools.demo import middle_of_newest_flow
from streams.tools.replay import load_records, replay


async def test_a_replay_until_a_moment_publishes_the_history_as_it_stood_then(kafka_url: str, prefix: str,
                                                                               tmp_path: Path) -> None:
    generate(tmp_path, students=40, seed=5)
    events, _ = load_records(tmp_path)
    until = middle_of_newest_flow(events)
    assert until is not None
    settings = Settings(kafka_url=kafka_url, topic_prefix=prefix, partitions=4, state_dir=str(tmp_path))

    report = await replay(settings, tmp_path, progress=False, until=until)

    by_then = Counter(t.value for t, r in events if t is Topic.SCHEDULE or parse_ts(r["ts"]) <= until)
    assert dict(report.published) == dict(by_then)
    assert report.held_back == len(events) - sum(by_then.values()) > 0
    assert report.as_dict()["held_back"] == report.held_back
    assert report.newest_ts is not None and report.newest_ts <= until
    outcomes = await read_topic(settings, Topic.OUTCOMES)
    assert len(outcomes) == by_then[Topic.OUTCOMES.value] > 0
    assert max(parse_ts(o["ts"]) for o in outcomes) <= until
    assert len(await read_topic(settings, Topic.SCHEDULE)) == sum(t is Topic.SCHEDULE for t, _ in events)
