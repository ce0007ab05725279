"""The worker's batch logic against real Redis and Postgres: any split into batches, any
interleaving of topics and any redelivery must give the pure fold's state and the reference
transitions, each alert exactly once."""
import json
import random

import pytest

from features import canonical, fold
from features.activity_status import DAY, Thresholds, reference_transitions
from storage.sink import PostgresSink
from storage.student_store import StudentStore
from streams.contract import TOPIC_SCHEMA, Topic, encode, format_ts, key_of
from streams.pipeline import InputRecord, Pipeline

START = 1_701_388_800.0  # 2023-12-01
ACTIVITY = [Topic.AUTHORIZATIONS, Topic.PAGE_VIEWS, Topic.EXERCISE_RESULTS, Topic.WEBINAR_EVENTS]


def _record(topic: Topic, user_id: int, ts: float, rng: random.Random) -> dict:
    base = {"user_id": user_id, "ts": format_ts(ts)}
    if topic is Topic.AUTHORIZATIONS:
        return base
    if topic is Topic.PAGE_VIEWS:
        return {**base, "page_type": "активность", "page_id": rng.randint(1, 20), "module": 2}
    if topic is Topic.EXERCISE_RESULTS:
        return {**base, "activity_id": rng.randint(1, 20), "result": rng.choice([None, 40, 100]),
                "success": rng.randint(0, 1)}
    return {**base, "event": rng.choice(["Подключение", "Отключение"]), "webinar_id": 5, "conn_format": "онлайн"}


def _history(rng: random.Random, students: int) -> list[tuple[Topic, dict]]:
    """Students with bursts of activity and silences of up to 25 days, in event-time order."""
    events = []
    for user_id in range(1, students + 1):
        events.append((Topic.STUDENTS, {"user_id": user_id, "ts": format_ts(START), "course_id": 3, "flow_num": 1,
                                        "payment": 1, "tags": ["#онлайн"], "online": True}))
        t = START + rng.uniform(0, 2) * DAY
        while t < START + 90 * DAY:
            topic = rng.choice(ACTIVITY)
            events.append((topic, _record(topic, user_id, t, rng)))
            t += rng.choice([0.1, 0.5, 1, 2, 9, 25]) * DAY * rng.random()
    events.sort(key=lambda item: _ts(item[1]))
    return events


def _ts(record: dict) -> float:
    from streams.contract import parse_ts
    return parse_ts(record["ts"])


class _Log:
    """Topic-partitions as lists, the way Kafka would hold them (4 partitions, keyed)."""

    def __init__(self, prefix: str, events):
        self.parts: dict[tuple[str, int], list[InputRecord]] = {}
        for topic, record in events:
            name = topic.physical(prefix)
            partition = record["user_id"] % 4
            log = self.parts.setdefault((name, partition), [])
            log.append(InputRecord(name, partition, len(log), key_of(topic, record), encode(record), 0.0))


async def _run(settings, events, rng, *, redeliver: bool, bad: int = 0):
    store = StudentStore.from_url(settings.redis_url, settings.topic_prefix)
    sent: list[tuple[str, dict]] = []

    async def send(topic, key, value):
        sent.append((topic, json.loads(value)))

    sink = await PostgresSink.open(settings.database_url)
    pipeline = Pipeline(settings, store, send, sink=sink)
    log = _Log(settings.topic_prefix, events)
    for i in range(bad):
        name = Topic.PAGE_VIEWS.physical(settings.topic_prefix)
        part = log.parts.setdefault((name, 0), [])
        part.insert(rng.randrange(len(part) + 1), InputRecord(name, 0, -1, b"0", b'{"user_id": "oops"}', 0.0))
    for part in log.parts.values():  # renumber offsets after inserting bad records
        for offset, r in enumerate(part):
            part[offset] = InputRecord(r.topic, r.partition, offset, r.key, r.value, r.timestamp)
    positions = {tp: 0 for tp in log.parts}
    while any(positions[tp] < len(recs) for tp, recs in log.parts.items()):
        # the consumer reads a random chunk from a random topic-partition that has data
        tp = rng.choice([tp for tp, recs in log.parts.items() if positions[tp] < len(recs)])
        take = rng.randint(1, 40)
        batch = log.parts[tp][positions[tp]:positions[tp] + take]
        positions[tp] += len(batch)
        offsets = {t: (positions[t], len(recs)) for t, recs in log.parts.items()}
        await pipeline.process(batch, offsets)
        if redeliver and rng.random() < 0.2:  # crash after processing, before the commit: redelivered
            await pipeline.process(batch, offsets)
    await pipeline.process([], {t: (len(recs), len(recs)) for t, recs in log.parts.items()})
    return store, pipeline, sent


@pytest.mark.parametrize("seed", [1, 2])
async def test_stream_equals_pure_fold_and_reference_alerts(settings, seed):
    rng = random.Random(seed)
    events = _history(rng, students=12)
    store, pipeline, sent = await _run(settings, events, rng, redeliver=True, bad=3)

    expected_states = fold((TOPIC_SCHEMA[t], r) for t, r in events)
    loaded = await store.load(expected_states)
    for user_id, state in expected_states.items():
        assert canonical(loaded[user_id][1]["state"]) == canonical(state), user_id

    watermark = max(_ts(r) for _, r in events) - settings.allowed_lateness_hours * 3600
    expected_alerts = []
    for user_id in expected_states:
        times = [_ts(r) for t, r in events if r["user_id"] == user_id and t in ACTIVITY]
        registration = min(_ts(r) for t, r in events if r["user_id"] == user_id and t is Topic.STUDENTS)
        expected_alerts += reference_transitions(user_id, [registration, *times], watermark, Thresholds())
    alerts = [a for topic, a in sent if topic.endswith("scorer.alerts")]
    assert sorted(a["alert_id"] for a in alerts) == sorted(t.alert_id for t in expected_alerts)
    assert len(expected_alerts) > 5  # the history really has dozing and asleep spells
    assert {a["to_status"] for a in alerts} >= {"dozing", "asleep", "active"}

    dead = [d for topic, d in sent if topic.endswith("scorer.dead_letters")]
    # at-least-once: a redelivered bad record may be dead-lettered twice, with the same source offset
    assert len({(d["partition"], d["offset"]) for d in dead}) == 3
    assert {d["reason"] for d in dead} == {"missing_field"}
    counts = await store.status_counts()
    assert sum(counts.values()) == 12
    await store.close()
