"""`scorer bench --json`: throughput and latency of the full pipeline, with the raw limit beside it.

One run, one machine, so the figures compare (these machines are noisy):
- raw: an aiokafka consumer reading the same records with getmany and doing nothing: the limit
  (the fastest of RAW_ROUNDS reads: a single read varies threefold with the broker's warm-up);
- validating_consumer: the same consumer also decoding and validating every record against the
  contract, the worker's first step: the ceiling of any consumer that checks its input in Python;
- faust_agent: a Faust agent that only counts the same records (why the worker does not read
  through a Faust agent: see streams.kafka.consumer);
- pipeline: the worker's BatchConsumer and Pipeline (with model scoring) in this process, no trainer;
- worker: the real `scorer worker` process, from its partition assignment to its last record;
- two_workers: two worker processes in one consumer group, the same way (scale-out);
- latency: with the worker caught up, records are produced at a steady rate; p50/p99 of
  produced -> scored come from the worker's own histogram;
- model: the default model family, trained on the export's outcomes, scoring the export's
  students' features with and without their reasons (online_models.explain asks the model
  again once per hypothesis): scores per second and the cost ratio; and the version as published, its full
  form (what the trainer learns on) beside its scoring copy (what workers load): bytes, the memory a load
  holds, and the fastest of MODEL_LOADS loads;
- read_api: the external-trainer worker's read API, once it and its trainer process are idle, asked
  sequentially over loopback (each answer timed by the client), and the two Postgres calls of one student
  answer (the query and the record of the read) timed in this process: see streams.tools.bench_read_api;
- surrogate_fit: the trainer's refit of the label-free guess (online_models.surrogate) at full size,
  in a thread beside an event loop as the worker's inline trainer runs it: how long reading the weekly
  store's sample and fitting it take, and the longest wait the loop saw (the worker phases above do not
  reach a refit: the trainer refits every SCORER_SURROGATE_EVERY_MINUTES).
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from features import FlowSchedules, compute, fold, last_activity, outcome
from features.eventtime import format_ts, parse_ts
from online_models.evaluation.students import load_students
from online_models.labels import label_from_outcome
from online_models.learners import ScoringModels, model_input
from online_models.surrogate import MAX_ENROLMENTS
from online_models.weekly_features import WeeklyFeatureStore
from streams.contract import INPUT_TOPICS, TOPIC_SCHEMA, InvalidEvent, Topic, decode, encode, key_of
from streams.kafka.admin import ensure_topics, new_producer
from streams.kafka.connection import kafka_connection
from streams.kafka.consumer import BATCH_MAX, BatchConsumer, InputRecord, Offsets, PartitionCounts
from streams.lms.events import Event
from streams.lms.synthetic import generate
from streams.loop_lag import watch_event_loop
from streams.pipeline import Pipeline
from streams.redis_clients import async_redis_client, redis_client
from streams.runtime import running
from streams.settings import Settings
from streams.tools import bench_read_api
from streams.tools.embedded import embedded_stack, free_port
from streams.tools.processes import (
    LOOPBACK_HTTP,
    histogram_buckets,
    histogram_quantile,
    samples,
    scrape,
    scrape_if_up,
    stop,
    trainer_process,
    worker_process,
)
from streams.tools.replay import load_records, replay

LATENCY = "scorer_processing_latency_seconds"
LOOP_LAG = "scorer_event_loop_lag_seconds"
RAW_ROUNDS = 3


async def _drain(settings: Settings, expected: int, validating: bool = False) -> float:
    """Seconds for a bare aiokafka consumer to read `expected` records (from the first one); with
    `validating`, it also decodes and validates each record against the contract, as the worker does
    before anything else (the least any consumer that trusts no input must do)."""
    logical = {t.physical(settings.topic_prefix): t for t in INPUT_TOPICS}
    topics = list(logical)
    consumer = AIOKafkaConsumer(**kafka_connection(settings), enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    partitions = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    seen, started = 0, None
    try:
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH_MAX)
            records = sum(len(rs) for rs in batch.values())
            if validating:
                for tp, rs in batch.items():
                    for r in rs:
                        try:
                            decode(logical[tp.topic], r.value)
                        except InvalidEvent:
                            pass
            if records and started is None:
                started = time.perf_counter()
            seen += records
    finally:
        await consumer.stop()
    return time.perf_counter() - (started or time.perf_counter())


class _Counting:
    """The pipeline, timed from its first record until it has processed `expected` of them."""

    def __init__(self, pipeline: Pipeline, expected: int) -> None:
        self.pipeline, self.expected = pipeline, expected
        self.seen, self.started, self.finished = 0, 0.0, asyncio.Event()
        self.quarantine, self.forget, self.note_history = pipeline.quarantine, pipeline.forget, pipeline.note_history

    async def process(self, records: list[InputRecord], offsets: Offsets, partitions: PartitionCounts) -> None:
        if records and not self.started:
            self.started = time.perf_counter()
        await self.pipeline.process(records, offsets, partitions)
        self.seen += len(records)
        if self.seen >= self.expected:
            self.finished.set()


async def _pipeline_seconds(settings: Settings, expected: int) -> float:
    """The worker's own Runtime and BatchConsumer in this process: the worker without Faust and HTTP."""
    settings = settings.copy(app_id=f"{settings.app_id}-bench-pipeline")
    async with running(settings) as runtime:
        assert runtime.pipeline is not None
        counting = _Counting(runtime.pipeline, expected)
        consumer = BatchConsumer(settings, counting, runtime)
        consuming = asyncio.create_task(consumer.run())
        waiting = asyncio.create_task(counting.finished.wait())
        try:
            await asyncio.wait([consuming, waiting], return_when=asyncio.FIRST_COMPLETED)
            if consuming.done():
                consuming.result()  # it can only have stopped by failing: raise that
            return time.perf_counter() - counting.started
        finally:
            consumer.stop()
            waiting.cancel()
            await asyncio.gather(consuming, waiting, return_exceptions=True)


def _workers_rate(settings: Settings, expected: int, work: Path,
                  count: int = 1) -> tuple[float, list[int], list[subprocess.Popen[bytes]]]:
    """`count` worker processes in one group: seconds from the first partition assignment (the
    workers' own clock reading) until they have read `expected` records between them."""
    ports = [free_port() for _ in range(count)]
    processes = [worker_process(settings, port, work / f"bench-worker-{port}.log") for port in ports]
    started = None
    try:
        while True:
            for port, process in zip(ports, processes):
                if process.poll() is not None:
                    tail = (work / f"bench-worker-{port}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"worker exited with {process.returncode}:\n{tail}")
            figures = [scrape_if_up(port) for port in ports]
            assigned_at = [f["scorer_assignment_timestamp_seconds"] for f in figures
                           if f.get("scorer_assignment_timestamp_seconds")]
            if started is None and assigned_at:
                started = min(assigned_at)
            if sum(f.get("scorer_events_consumed_total", 0) for f in figures) >= expected:
                assert started is not None  # a worker reads only after an assignment, which sets the gauge
                return time.time() - started, ports, processes
            time.sleep(0.05)
    except BaseException:
        stop(processes)
        raise


def _faust_agent_seconds(settings: Settings, expected: int, work: Path, timeout: float = 600) -> float:
    result = work / "faust-probe.txt"
    with (work / "faust-probe.log").open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "streams.cli", "faust-probe", str(expected), str(result)],
                                   env={**os.environ, **settings.to_env()}, stdout=log, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout)
        finally:
            if process.poll() is None:
                process.kill()
    if not result.exists():
        raise RuntimeError(f"faust probe failed: {(work / 'faust-probe.log').read_text(errors='replace')[-3000:]}")
    return float(result.read_text())


def _wait_idle(port: int, quiet_polls: int = 4) -> None:
    """Until the worker has scored nothing new for `quiet_polls` half-second polls."""
    last, quiet = -1.0, 0
    while quiet < quiet_polls:
        count = scrape(port).get(f"{LATENCY}_count", 0.0)
        quiet = quiet + 1 if count == last else 0
        last = count
        time.sleep(0.5)


async def _steady_load(settings: Settings, records: list[Event], rate: float, seconds: float) -> int:
    """Produce fresh logins and page views (new event times after the history) at `rate` per second;
    returns how many were produced."""
    activity = [(t, r) for t, r in records if t in (Topic.AUTHORIZATIONS, Topic.PAGE_VIEWS)]
    producer = new_producer(settings, linger_ms=0)
    await producer.start()
    sent, started = 0, time.perf_counter()
    last_ts = max(parse_ts(r["ts"]) for _, r in records)
    try:
        while time.perf_counter() - started < seconds:
            topic, record = activity[sent % len(activity)]
            fresh = {**record, "ts": format_ts(last_ts + 60 + sent)}
            await producer.send(topic.physical(settings.topic_prefix), encode(fresh), key=key_of(topic, fresh))
            sent += 1
            await asyncio.sleep(max(0.0, sent / rate - (time.perf_counter() - started)))
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def run(events: int = 50_000, as_json: bool = False) -> int:
    """`scorer bench`: generate ~`events` records, measure, print the figures as JSON."""
    with TemporaryDirectory() as tmp:
        work = Path(tmp)
        students = max(20, events // 120)  # the generator writes ~120 records a student
        generate(work / "lms", students=students, seed=1)
        records, _ = load_records(work / "lms")
        base = Settings.from_env().copy(state_dir=str(work / "var"), **LOOPBACK_HTTP)
        with embedded_stack(base) as settings:
            figures = asyncio.run(_measure(settings, records, work))
    figures["students"] = students
    figures.update(_model_figures(records))
    print(json.dumps(figures, indent=None if as_json else 2))
    return 0


async def _measure(settings: Settings, events: list[Event], work: Path) -> dict[str, Any]:
    expected = len(events)
    await ensure_topics(settings)
    await replay(settings, work / "lms", progress=False)
    raw = min([await _drain(settings, expected) for _ in range(RAW_ROUNDS)])
    validating = min([await _drain(settings, expected, validating=True) for _ in range(RAW_ROUNDS)])
    faust_agent_seconds = await asyncio.to_thread(_faust_agent_seconds, settings, expected, work)
    await _forget_state(settings)  # a Redis kept from an earlier run would fence every record off
    pipeline_seconds = await _pipeline_seconds(settings, expected)
    await _forget_state(settings)  # the worker must do the same work again, not find it fenced
    worker_seconds, (port,), processes = await asyncio.to_thread(_workers_rate, settings, expected, work)
    inline_lag = _loop_lag(port)
    try:
        await asyncio.to_thread(_wait_idle, port)  # the backlog's last batches must not count as latency
        before = histogram_buckets(samples(port), LATENCY)
        sent = await _steady_load(settings, events, rate=500, seconds=5)
        await asyncio.sleep(2)
        after = histogram_buckets(samples(port), LATENCY)
    finally:
        stop(processes)
    await _forget_state(settings)
    pair = settings.copy(app_id=f"{settings.app_id}-bench-pair")  # a new group: reads from the start
    pair_records = expected + sent  # the latency phase added records
    pair_seconds, _, processes = await asyncio.to_thread(_workers_rate, pair, pair_records, work, 2)
    stop(processes)
    external_seconds, external_lag, read_api = await _external_trainer_run(settings, expected + sent, work)
    surrogate_fit = await _surrogate_fit_lag(settings, work / "lms")
    delta = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    return {
        "records": expected,
        "raw_consumer_records_per_s": round(expected / raw, 1),
        "validating_consumer_records_per_s": round(expected / validating, 1),
        "validating_consumer_vs_raw": round(raw / validating, 4),
        "faust_agent_records_per_s": round(expected / faust_agent_seconds, 1),
        "pipeline_records_per_s": round(expected / pipeline_seconds, 1),
        "worker_records_per_s": round(expected / worker_seconds, 1),
        "faust_agent_vs_raw": round(raw / faust_agent_seconds, 4),
        "pipeline_vs_raw": round(raw / pipeline_seconds, 4),
        "worker_vs_raw": round(raw / worker_seconds, 4),
        "two_workers_records_per_s": round(pair_records / pair_seconds, 1),
        "two_workers_vs_one": round(pair_records / pair_seconds / (expected / worker_seconds), 3),
        "latency_records": sent,
        "latency_p50_s": histogram_quantile(delta, 0.5),
        "latency_p99_s": histogram_quantile(delta, 0.99),
        "event_loop_lag_inline_trainer": inline_lag,
        "worker_external_trainer_records_per_s": round((expected + sent) / external_seconds, 1),
        "event_loop_lag_external_trainer": external_lag,
        "read_api": read_api,
        "surrogate_fit": surrogate_fit,
    }


def _loop_lag(port: int) -> dict[str, float | None]:
    """The worker's event-loop lag so far: p99 (from the histogram) and the longest wait."""
    found = samples(port)
    longest = [value for name, _, value in found if name == "scorer_event_loop_lag_max_seconds"]
    return {"p99_s": histogram_quantile(histogram_buckets(found, LOOP_LAG), 0.99),
            "max_s": round(longest[0], 4) if longest else None}


async def _external_trainer_run(settings: Settings, expected: int,
                                work: Path) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """One worker with SCORER_TRAINER=external and a `scorer train` process beside it, from an empty
    state: its rate, its event-loop lag, and how many labels the trainer process learned meanwhile; then,
    with both idle, its read API's figures (the read_api section)."""
    await _forget_state(settings)
    # Its read API takes a person's token, so the records of its answers name the bench (bench_read_api).
    tokens_file, token = bench_read_api.token_file(work)
    external = settings.copy(app_id=f"{settings.app_id}-bench-external", trainer="external",
                             trainer_metrics_port=free_port(), api_tokens_file=str(tokens_file))
    trainer = trainer_process(external, work / "bench-trainer.log")
    try:
        seconds, (port,), processes = await asyncio.to_thread(_workers_rate, external, expected, work)
        lag: dict[str, Any] = _loop_lag(port)
        try:  # the worker runs on: outcomes released once it has read everything (a flow complete) still go
            lag.update(await asyncio.to_thread(_trainer_caught_up, external.trainer_metrics_port))
            # Only now: the inline trainer of the first worker learns the history's outcomes for some 15 s after
            # the latency phase, on a thread that holds the interpreter, and its answers took 3-4 times as long.
            read_api = await asyncio.to_thread(bench_read_api.measure, external.database_url, port, token)
        finally:
            stop(processes)
    finally:
        stop([trainer])
    return seconds, lag, read_api


#: The trainer has caught up once its queue is empty and it has learned nothing new for this long.
SETTLED_S = 3.0


def _trainer_caught_up(port: int, timeout: float = 120.0) -> dict[str, Any]:
    """Seconds from the worker having read everything until the trainer process had learned every label
    queued (its queue empty, nothing new learned for SETTLED_S), and how many it learned."""
    began = time.monotonic()
    learned, changed = 0.0, began
    while time.monotonic() - began < timeout:
        figures = scrape_if_up(port)
        if figures.get("scorer_labels_total", 0) != learned:
            learned, changed = figures["scorer_labels_total"], time.monotonic()
        if learned and figures.get("scorer_labels_queued") == 0 and time.monotonic() - changed >= SETTLED_S:
            break
        time.sleep(0.2)
    return {"trainer_labels_learned": int(learned), "trainer_caught_up_after_worker_s": round(changed - began, 2)}


def _model_figures(events: list[Event]) -> dict[str, Any]:
    """Scoring alone, with and without reasons, on every student's features at their last activity."""
    states = fold((TOPIC_SCHEMA[t], r) for t, r in events if t is not Topic.SCHEDULE)
    schedules = FlowSchedules(record for topic, record in events if topic is Topic.SCHEDULE)
    models, xs = ScoringModels(), []
    for state in states.values():
        known, last = outcome(state), last_activity(state)
        if known is None or last is None:
            continue
        flows = [p[5] for p in state["profiles"].values() if p[0] == known["course_id"]]
        flow = None if not flows or flows[-1] is None else int(flows[-1])
        schedule = schedules.get((int(known["course_id"]), flow))
        if schedule is None:
            continue
        x = model_input(compute(state, schedule, last))
        models.learn_weeks([x], label_from_outcome(known, x["days_inactive"]))
        xs.append(x)
    blobs = {"full": models.to_bytes(), "scoring_copy": models.to_bytes(scoring_only=True)}
    loads = {form: _load_figures(blob) for form, blob in blobs.items()}
    models = ScoringModels.from_bytes(blobs["scoring_copy"])  # as a worker gets it: published, then loaded
    began = time.perf_counter()
    for x in xs:
        models.predict(x)
    plain = time.perf_counter() - began
    began = time.perf_counter()
    for x in xs:
        models.explain(x, models.predict(x).p_dropout)  # as the worker asks (online_models.scoring)
    explained = time.perf_counter() - began
    return {"model_students": len(xs), "model_scores_per_s": round(len(xs) / plain, 1),
            "model_scores_with_reasons_per_s": round(len(xs) / explained, 1),
            "reasons_cost_ratio": round(explained / plain, 2), "model_load": loads}


MODEL_LOADS = 3


def _load_figures(blob: bytes) -> dict[str, float]:
    """A published form's size, the memory its load holds, and the fastest of MODEL_LOADS loads."""
    tracemalloc.start()
    models = ScoringModels.from_bytes(blob)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del models
    seconds = []
    for _ in range(MODEL_LOADS):
        began = time.perf_counter()
        ScoringModels.from_bytes(blob)
        seconds.append(time.perf_counter() - began)
    return {"kb": round(len(blob) / 1e3, 1), "held_kb": round(held / 1e3, 1), "load_ms": round(1e3 * min(seconds), 2)}


SURROGATE_ROUNDS = 3
#: The probe's period: it sleeps this long and counts any longer wait as the loop's lag.
TICK_S = 0.005


async def _surrogate_fit_lag(settings: Settings, export: Path) -> dict[str, Any]:
    """SURROGATE_ROUNDS refits, each reading a sample of MAX_ENROLMENTS enrolments from a weekly store in the
    bench's Redis (the export's students' weeks, repeated under other ids to fill it) and fitting it, in a
    thread as the trainer does: the slowest refit's seconds, and the waits of this event loop meanwhile."""
    students = load_students(export, weeks=10)
    client = redis_client(settings.redis_url)
    prefix = f"{settings.topic_prefix}bench-surrogate:"
    store = WeeklyFeatureStore(client, prefix=prefix)
    copies = -(-MAX_ENROLMENTS // len(students))
    await asyncio.to_thread(store.put_many, [(f"{copy}-{s.id}", week, x) for copy in range(copies)
                                             for s in students for week, x in s.weekly.items()])
    models = ScoringModels()
    gc.freeze()  # as the worker does once started (streams/worker.py): the bench's own heap is not the worker's
    waits: list[float] = []
    slowest = 0.0
    surrogate = None
    probe = asyncio.create_task(watch_event_loop(TICK_S, waits.append))
    try:
        for _ in range(SURROGATE_ROUNDS):
            began = time.perf_counter()
            surrogate = await asyncio.to_thread(lambda: models.refit_surrogate(store.sample(MAX_ENROLMENTS)))
            slowest = max(slowest, time.perf_counter() - began)
    finally:
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
        client.close()
        aclient = async_redis_client(settings.redis_url)
        await delete_keys(aclient, f"{prefix}*")
        await aclient.aclose()
    waits.sort()
    return {"enrolments": surrogate.enrolments if surrogate else 0, "rows": surrogate.rows if surrogate else 0,
            "refit_s": round(slowest, 3), "loop_wait_max_s": round(waits[-1], 4),
            "loop_wait_p99_s": round(waits[int(0.99 * (len(waits) - 1))], 4)}


async def _forget_state(settings: Settings) -> None:
    """Delete every scorer key in Redis: a measured phase must find no state from an earlier one."""
    client = async_redis_client(settings.redis_url)
    try:
        await delete_keys(client, f"{settings.topic_prefix}scorer:*")
    finally:
        await client.aclose()


async def delete_keys(client: aioredis.Redis, pattern: str, chunk: int = 1000) -> None:
    """Delete the keys matching `pattern` only (the Redis may be shared), `chunk` per round trip."""
    keys = [key async for key in client.scan_iter(pattern, count=chunk)]
    for start in range(0, len(keys), chunk):
        await client.delete(*keys[start:start + chunk])
