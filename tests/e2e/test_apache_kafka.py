"""The Kafka behaviour the scorer relies on, checked against a real Apache Kafka 4.x broker.

Tansu (the embedded default) keeps nothing on restart and answers ListOffsets 'latest'
wrongly, so durability, committed offsets, end offsets and transactions are checked here on
the broker production runs. Skipped, with the reason, where Java 17+ or Maven is missing.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import InvalidReplicationFactorError, KafkaError, TopicAuthorizationFailedError
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry, Gauge

from helpers.topics import records_committed
from streams import metrics
from streams.contract import Topic
from streams.contract.topics import GROUP_TOPICS
from streams.failures import dependency_of
from streams.kafka.admin import ensure_topics, new_producer
from streams.kafka.authorized import Operation
from streams.kafka.connection import followed_client_certificate, kafka_connection
from streams.kafka.consumer import BatchConsumer
from streams.settings import Settings
from streams.tls import ClientCertificate
from streams.tools.apache_kafka import ApacheKafkaBroker, missing_requirements
from streams.tools.check_access import TOPIC_USES, acl_commands
from streams.tools.preflight import ERROR, OK, WARN, Finding, kafka_findings
from streams.tools.preflight import findings as preflight_findings

pytestmark = pytest.mark.slow
PARTITIONS = 4
SASL_USER = ("scorer", "s3cret")
ACL_USER = ("limited", "l1mited")  # allowed only what a test grants it
TOPIC_RESOURCE, GROUP_RESOURCE = 2, 3  # Kafka's ResourceType codes


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafkaBroker]:
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(reason)
    with ApacheKafkaBroker(tmp_path_factory.mktemp("apache-kafka"), sasl_ssl_user=SASL_USER,
                           acl_user=ACL_USER, mtls=True) as running:
        yield running


async def new_topic(broker: ApacheKafkaBroker, name: str) -> list[TopicPartition]:
    """Created explicitly: the broker's auto-create would give num.partitions=1."""
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    return [TopicPartition(name, p) for p in range(PARTITIONS)]


async def drain(broker: ApacheKafkaBroker, partitions: list[TopicPartition],
                isolation: str = "read_uncommitted", timeout: float = 60.0) -> list[ConsumerRecord]:
    """Every record from the beginning up to the end offsets (the LSO under read_committed), via getmany."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, isolation_level=isolation)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            assert time.monotonic() < deadline, f"not drained within {timeout}s: {len(records)} records read"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def produce_keyed(broker: ApacheKafkaBroker, topic: str, count: int) -> Counter[int]:
    """`count` records over 37 keys; returns records per partition as the broker acknowledged them."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(topic, key=f"student-{i % 37}".encode(), value=str(i).encode())
                for i in range(count)]
        acknowledged = await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return Counter(metadata.partition for metadata in acknowledged)


async def test_keyed_records_round_trip(broker: ApacheKafkaBroker) -> None:
    topic = f"keyed-{uuid.uuid4().hex[:8]}"
    partitions = await new_topic(broker, topic)
    per_partition = await produce_keyed(broker, topic, 1000)

    records = await drain(broker, partitions)

    assert len(records) == 1000
    assert sorted(int(r.value) for r in records) == list(range(1000))
    assert Counter(r.partition for r in records) == per_partition
    partitions_of: defaultdict[bytes, set[int]] = defaultdict(set)
    values_of: defaultdict[bytes, list[int]] = defaultdict(list)
    for record in records:
        partitions_of[record.key].add(record.partition)
        values_of[record.key].append(int(record.value))
    assert all(len(found) == 1 for found in partitions_of.values()), "a key landed on two partitions"
    assert all(values == sorted(values) for values in values_of.values()), "a key's records out of order"
    assert len(per_partition) > 1, "37 keys all hashed to one partition"


async def test_restart_keeps_records_and_committed_offsets(broker: ApacheKafkaBroker) -> None:
    topic, group = f"durable-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    partitions = await new_topic(broker, topic)
    per_partition = await produce_keyed(broker, topic, 300)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        seen = 0
        deadline = time.monotonic() + 60
        while seen < 300:
            assert time.monotonic() < deadline, f"group consumer read only {seen} of 300"
            seen += sum(len(batch) for batch in (await consumer.getmany(timeout_ms=500)).values())
        await consumer.commit()
        committed = {tp: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()
    assert committed == {tp: per_partition[tp.partition] for tp in partitions}

    broker.restart()

    checker = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    await checker.start()
    try:
        assert {tp: await checker.committed(tp) for tp in partitions} == committed
        assert await checker.end_offsets(partitions) == {tp: per_partition[tp.partition] for tp in partitions}
        assert await checker.beginning_offsets(partitions) == dict.fromkeys(partitions, 0)
    finally:
        await checker.stop()
    assert sorted(int(r.value) for r in await drain(broker, partitions)) == list(range(300))


async def test_the_scorers_clients_reach_a_cluster_over_sasl_ssl(broker: ApacheKafkaBroker) -> None:
    """A managed cluster asks for a user and password over TLS: the scorer's admin, producer and consumer
    settings (streams.kafka.connection) create its topics, send and read back; a wrong password, or a broker
    certificate no trusted CA signed, gets nothing through."""
    prefix = f"tls-{uuid.uuid4().hex[:8]}."
    settings = _over_sasl_ssl(broker, prefix, SASL_USER)
    await ensure_topics(settings, (Topic.ALERTS,))
    topic = Topic.ALERTS.physical(prefix)
    producer = new_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"over TLS", key=b"7")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, **kafka_connection(settings), group_id=f"tls-{prefix}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        assert [r.value for records in batch.values() for r in records] == [b"over TLS"]
        await consumer.commit()
    finally:
        await consumer.stop()
    for refused in (settings.copy(kafka_sasl_password="wrong"), settings.copy(kafka_ssl_ca_file="")):
        stranger = new_producer(refused, request_timeout_ms=3000)
        with pytest.raises(KafkaError):
            try:
                await stranger.start()
                await stranger.send_and_wait(topic, b"refused")
            finally:
                await stranger.stop()


async def test_a_renewed_client_certificate_reaches_the_broker_without_a_restart(broker: ApacheKafkaBroker,
                                                                                tmp_path: Path) -> None:
    """A listener that asks every client for a certificate (mTLS). The process's shared context, followed, shows
    the renewed certificate from its next connection on, after the first one has expired; a context made from
    the same files before the renewal and never followed (a process that reads them only at start) is refused
    then; nothing sent is lost."""
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    first_expires = datetime.now(UTC) + timedelta(seconds=20)
    broker.issue_client_certificate(cert_file, key_file, first_expires)
    prefix = f"mtls-{uuid.uuid4().hex[:8]}."
    settings = Settings(kafka_url=f"kafka://127.0.0.1:{broker.mtls_port}", topic_prefix=prefix,
                        kafka_security_protocol="SSL", kafka_ssl_ca_file=str(broker.ca_file),
                        kafka_ssl_cert_file=str(cert_file), kafka_ssl_key_file=str(key_file))
    topic = prefix + "alerts"
    partitions = await new_topic(broker, topic)
    registry = CollectorRegistry()
    expiry = Gauge("expiry_seconds", "", ["server"], registry=registry)
    (followed,) = followed_client_certificate(settings, expiry, Gauge("stale", "", ["file"], registry=registry))
    assert int(expiry.labels("kafka_client")._value.get()) == int(first_expires.timestamp())
    early = new_producer(settings)
    await early.start()
    try:
        await early.send_and_wait(topic, b"first certificate")
        read_at_start = ClientCertificate(str(broker.ca_file), str(cert_file), str(key_file))
        broker.issue_client_certificate(cert_file, key_file, datetime.now(UTC) + timedelta(days=1))
        assert followed.refresh()
        await asyncio.sleep(max(0.0, (first_expires - datetime.now(UTC)).total_seconds()) + 2)
        late = new_producer(settings)  # a new connection, from the same shared context
        await late.start()
        try:
            await late.send_and_wait(topic, b"renewed certificate")
        finally:
            await late.stop()
        await early.send_and_wait(topic, b"the producer from before the renewal")
    finally:
        await early.stop()
    stale = AIOKafkaProducer(**{**kafka_connection(settings), "ssl_context": read_at_start.context},
                             request_timeout_ms=3000)
    with pytest.raises(KafkaError):  # the expired certificate: the broker refuses the handshake
        try:
            await stale.start()
            await stale.send_and_wait(topic, b"refused")
        finally:
            await stale.stop()
    assert sorted(record.value for record in await drain(broker, partitions)) == sorted(
        [b"first certificate", b"renewed certificate", b"the producer from before the renewal"])


def _over_sasl_ssl(broker: ApacheKafkaBroker, prefix: str, user: tuple[str, str]) -> Settings:
    return Settings(kafka_url=f"kafka://127.0.0.1:{broker.secure_port}", topic_prefix=prefix, partitions=2,
                    kafka_security_protocol="SASL_SSL", kafka_sasl_username=user[0], kafka_sasl_password=user[1],
                    kafka_ssl_ca_file=str(broker.ca_file))


async def test_topics_are_created_as_configured_and_a_refusal_names_the_topic(broker: ApacheKafkaBroker) -> None:
    """The broker answers CreateTopics per topic, and a refusal used to pass unnoticed (the worker then waited on a
    topic never made): more replicas than this one broker has is refused, and the process says which topic and
    why. Within what the cluster has, the topics get SCORER_PARTITIONS partitions and the replicas asked for."""
    prefix = f"created-{uuid.uuid4().hex[:8]}."
    settings = Settings(kafka_url=broker.url, topic_prefix=prefix, partitions=3)
    with pytest.raises(InvalidReplicationFactorError, match=f"topic {prefix}scorer.alerts not created"):
        await ensure_topics(settings.copy(topic_replication_factor=2), (Topic.ALERTS,))
    await ensure_topics(settings, (Topic.ALERTS,))
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([Topic.ALERTS.physical(prefix)])
    finally:
        await admin.close()
    assert described["error_code"] == 0
    assert sorted(len(partition["replicas"]) for partition in described["partitions"]) == [1, 1, 1]
    found = {f.check: f for f in await asyncio.to_thread(preflight_findings, settings) if f.dependency == "kafka"}
    assert found[f"topic {prefix}scorer.alerts"].detail == "3 partitions, 1 replica(s), min.insync.replicas 1"
    assert found[f"group {settings.notify_group}"].detail == (
        "0 record(s) behind over 3 partitions: no offsets committed yet, so it starts at the earliest")


async def _committed_at_2(broker: ApacheKafkaBroker, settings: Settings, topic: Topic = Topic.AUTHORIZATIONS,
                          group: str | None = None) -> TopicPartition:
    """Six records on a partition of `topic`, `group` (the workers') committed after 2 of them."""
    await ensure_topics(settings)
    partition = TopicPartition(topic.physical(settings.topic_prefix), 0)
    await records_committed(settings, partition, 6, group or settings.app_id, 2)
    return partition


async def _delete_before(broker: ApacheKafkaBroker, partition: TopicPartition, offset: int) -> None:
    """Move the log start to `offset`, as retention does (DeleteRecords)."""
    from aiokafka.admin.records_to_delete import RecordsToDelete

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.delete_records({partition: RecordsToDelete(before_offset=offset)})
    finally:
        await admin.close()


async def _lost_to_retention(broker: ApacheKafkaBroker, settings: Settings) -> TopicPartition:
    """Committed after 2 of 6 logins, then the log start moved past 5: 3 were never read."""
    partition = await _committed_at_2(broker, settings)
    await _delete_before(broker, partition, 5)
    return partition


async def test_scorer_check_says_when_a_group_lost_records_to_retention(broker: ApacheKafkaBroker) -> None:
    settings = Settings(kafka_url=broker.url, topic_prefix=f"retention-{uuid.uuid4().hex[:8]}.", partitions=2)
    await _lost_to_retention(broker, settings)
    found = {f.check: f for f in await asyncio.to_thread(preflight_findings, settings) if f.dependency == "kafka"}
    group = found[f"group {settings.app_id}"]
    assert group.level == "warn" and group.detail.startswith(
        f"1 record(s) behind over {2 * len(GROUP_TOPICS)} partitions; 3 record(s) were deleted (retention) before it "
        "read them")


async def _grant(broker: ApacheKafkaBroker, user: str, grants: list[tuple[int, str, Operation]]) -> None:
    """Allow `user` each (resource type, literal name, operation), over the plain listener (a super user)."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.admin import CreateAclsRequest

    client = AIOKafkaClient(bootstrap_servers=broker.bootstrap)
    await client.bootstrap()
    try:
        for resource_type, name, operation in grants:
            request = CreateAclsRequest(resource_type, name, 3, f"User:{user}", "*", operation, 3)  # literal, allow
            response = await client.send(client.get_random_node(), request)
            assert [code for code, _message in response.creation_responses] == [0]
    finally:
        await client.close()


async def _access_once(settings: Settings, level: str, timeout: float = 30.0) -> Finding:
    """`scorer check`'s access finding once it reads `level`: the broker's authorizer takes new ACLs from the
    metadata log a moment after CreateAcls answers."""
    deadline = time.monotonic() + timeout
    while True:
        (found,) = [f for f in await kafka_findings(settings) if f.check == "access"]
        if found.level == level or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


def _needed(settings: Settings) -> list[tuple[int, str, Operation]]:
    """Every grant the scorer's processes need, as literal ACLs."""
    needed = [(TOPIC_RESOURCE, topic.physical(settings.topic_prefix), operation)
              for topic, uses in TOPIC_USES.items() for operation, _why in uses]
    return needed + [(GROUP_RESOURCE, group, Operation.READ) for group in (settings.app_id, settings.notify_group)]


async def test_scorer_check_names_each_acl_the_principal_lacks_and_who_needs_it(broker: ApacheKafkaBroker) -> None:
    """A user allowed all the scorer does but the workers' Write on the alerts topic and the notifier's Read on its
    group: `scorer check` fails naming those two and why each is needed; once granted, it passes."""
    prefix = f"acl-{uuid.uuid4().hex[:8]}."
    await ensure_topics(Settings(kafka_url=broker.url, topic_prefix=prefix, partitions=2))
    settings = _over_sasl_ssl(broker, prefix, ACL_USER)
    alerts = Topic.ALERTS.physical(prefix)
    needed = _needed(settings)
    held_back = [(TOPIC_RESOURCE, alerts, Operation.WRITE), (GROUP_RESOURCE, settings.notify_group, Operation.READ)]
    await _grant(broker, ACL_USER[0], [grant for grant in needed if grant not in held_back])
    found = await _access_once(settings, ERROR)
    assert (found.level, found.detail) == (ERROR, (
        f"User:limited may not: Write on topic {alerts} (the workers publish alerts to it); Read on group "
        f"{settings.notify_group} (`scorer notify` joins it and commits in it). Grant these ACLs (each process holds "
        "its work on the first one it lacks, as in an outage)"))
    await _grant(broker, ACL_USER[0], held_back)
    found = await _access_once(settings, OK)
    assert (found.level, found.detail) == (OK, "User:limited may do what the scorer does on the 10 topic(s) and 2 "
                                               "group(s) the broker reported its rights on")


async def test_scorer_check_warns_when_the_topics_are_missing_and_the_principal_may_not_create_them(
        broker: ApacheKafkaBroker) -> None:
    """Allowed to use every topic, which nobody created yet, and not to create topics: the workers would fail to
    start (they create missing topics), so `scorer check` says to create them beforehand."""
    settings = _over_sasl_ssl(broker, f"acl-missing-{uuid.uuid4().hex[:8]}.", ACL_USER)
    await _grant(broker, ACL_USER[0], _needed(settings))
    found = await _access_once(settings, WARN)
    assert (found.level, found.detail) == (WARN, "User:limited may not Create on the cluster, and 10 topic(s) are "
                                                 "missing: create them beforehand, or allow Create on their names")


async def test_the_acls_scorer_check_prints_are_all_a_principal_needs(broker: ApacheKafkaBroker) -> None:
    """`scorer check --grants`'s kafka-acls lines, granted as they say (their syntax was run once by hand through
    Apache Kafka 4.4.0's AclCommand, which is not among the broker's jars), and nothing else: access is OK."""
    prefix = f"acl-grants-{uuid.uuid4().hex[:8]}."
    await ensure_topics(Settings(kafka_url=broker.url, topic_prefix=prefix, partitions=2))
    settings = replace(_over_sasl_ssl(broker, prefix, ACL_USER), app_id=f"{prefix}workers",
                       notify_group=f"{prefix}notify")  # groups none granted yet
    assert (await _access_once(settings, ERROR, timeout=5)).level == ERROR
    grants = []
    for line in acl_commands(settings, f"User:{ACL_USER[0]}")[:-1]:  # all but Create on the cluster
        words = line.split()
        operations = [Operation[words[i + 1].upper()] for i, word in enumerate(words) if word == "--operation"]
        grants += [(TOPIC_RESOURCE if word == "--topic" else GROUP_RESOURCE, words[i + 1], operation)
                   for i, word in enumerate(words) if word in ("--topic", "--group") for operation in operations]
    await _grant(broker, ACL_USER[0], grants)
    assert (await _access_once(settings, OK)).level == OK


async def test_a_write_the_acls_refuse_is_an_outage_to_the_worker_not_the_records_fault(
        broker: ApacheKafkaBroker) -> None:
    """What the scorer's producer raises when the broker refuses it a topic (the user may read it, not write
    it) is taken for Kafka unavailable: the worker holds the batch, where the records' own error would have
    quarantined them one by one (tests/unit/test_consumer_failures.py)."""
    prefix = f"acl-write-{uuid.uuid4().hex[:8]}."
    await ensure_topics(Settings(kafka_url=broker.url, topic_prefix=prefix, partitions=2), (Topic.ALERTS,))
    settings = _over_sasl_ssl(broker, prefix, ACL_USER)
    alerts = Topic.ALERTS.physical(settings.topic_prefix)
    await _grant(broker, ACL_USER[0], [(TOPIC_RESOURCE, alerts, Operation.READ)])
    producer = new_producer(settings, request_timeout_ms=5000)
    await producer.start()
    try:
        with pytest.raises(KafkaError) as refused:
            await producer.send_and_wait(alerts, b"{}", key=b"7")
    finally:
        await producer.stop()
    assert isinstance(refused.value, TopicAuthorizationFailedError)
    assert dependency_of(refused.value) == "kafka"


async def _first_batch(consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
    """The consumer's first non-empty fetch (within 20 s)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if batch := await consumer.getmany(timeout_ms=1000):
            return batch
    raise AssertionError("nothing fetched within 20 s")


class _Handler:
    """The pipeline's place: takes every record."""

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.topics: set[str] = set()

    def note_history(self, history: bool) -> None:
        pass

    async def process(self, records: list[Any], offsets: Any, partitions: Any) -> None:
        self.offsets += [r.offset for r in records]
        self.topics.update(r.topic for r in records)

    async def forget(self, partitions: list[tuple[str, int]]) -> None:
        pass


async def test_a_worker_counts_the_records_retention_deleted_before_it_read_them(broker: ApacheKafkaBroker) -> None:
    """aiokafka moves a partition whose next records are gone to its first record without a word
    (auto_offset_reset). Here they go while the worker owns the partition (a worker holding a batch through a
    long outage): it counts what was skipped when it reads the partition, once, and goes on with what is there."""
    settings = Settings(kafka_url=broker.url, topic_prefix=f"retained-{uuid.uuid4().hex[:8]}.", partitions=2)
    logins = await _committed_at_2(broker, settings)
    lost = ("scorer_records_lost_to_retention_total", {"topic": logins.topic})
    handler = _Handler()
    worker = BatchConsumer(settings, handler, None)  # type: ignore[arg-type]
    worker.consumer.assign([logins])
    await worker.consumer.start()
    try:
        await worker.on_partitions_assigned({logins})
        await _delete_before(broker, logins, 5)
        batch = await _first_batch(worker.consumer)
        await worker._handle(batch)
        await worker._handle(batch)  # read again (a redelivery): counted once
    finally:
        await worker.consumer.stop()
    assert handler.offsets[:1] == [5] and metrics.REGISTRY.get_sample_value(*lost) == 3


class _Told:
    """The notifier's and its store's place: takes every alert."""

    def __init__(self) -> None:
        self.offsets: list[int] = []

    async def handle(self, source: Any) -> None:
        self.offsets.append(source.offset)

    async def replicated(self) -> None:
        pass

    async def release_due(self, partition: int, caught_up: bool) -> None:
        pass

    async def backlog(self, partitions: list[int]) -> int:
        return 0


async def test_the_notifier_counts_the_alerts_retention_deleted_before_it_read_them(broker: ApacheKafkaBroker) -> None:
    """Those students were never told: as for the worker, counted when the notifier reads the partition, once."""
    from streams.notify import metrics as notify_metrics
    from streams.notify.consumer import NotifyConsumer

    settings = Settings(kafka_url=broker.url, topic_prefix=f"told-{uuid.uuid4().hex[:8]}.", partitions=2)
    alerts = await _committed_at_2(broker, settings, Topic.ALERTS, settings.notify_group)
    before = notify_metrics.REGISTRY.get_sample_value("notify_alerts_lost_to_retention_total") or 0.0
    told = _Told()
    notifier = NotifyConsumer(kafka_connection(settings), alerts.topic, settings.notify_group, told, told)  # type: ignore[arg-type]
    notifier.consumer.assign([alerts])
    await notifier.consumer.start()
    try:
        await notifier.on_partitions_assigned({alerts})
        await _delete_before(broker, alerts, 5)
        batch = await _first_batch(notifier.consumer)
        for _ in range(2):  # read again (a redelivery): counted once
            await notifier._partition(alerts, batch[alerts])
    finally:
        await notifier.consumer.stop()
    assert told.offsets[:1] == [5]
    assert notify_metrics.REGISTRY.get_sample_value("notify_alerts_lost_to_retention_total") == before + 3


async def _until(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout}s"
        await asyncio.sleep(0.2)


async def test_a_worker_the_broker_refuses_its_group_or_a_topic_waits_for_the_grant_and_then_reads(
        broker: ApacheKafkaBroker, caplog: pytest.LogCaptureFixture) -> None:
    """aiokafka raises a refusal from every poll, at once; it used to end the consumer's loop and the worker
    with it. Refused its group's Read, then an input topic's, the worker holds (Kafka reported down, no
    record processed, one warning) and reads that topic's records at the first poll after the last grant."""
    caplog.set_level("INFO", "streams.kafka.refusals")
    prefix = f"refused-{uuid.uuid4().hex[:8]}."
    await ensure_topics(Settings(kafka_url=broker.url, topic_prefix=prefix, partitions=2))
    settings = replace(_over_sasl_ssl(broker, prefix, ACL_USER), app_id=f"{prefix}workers")  # a group none granted
    page_views = Topic.PAGE_VIEWS.physical(prefix)
    await produce_keyed(broker, page_views, 5)
    topic_read = (TOPIC_RESOURCE, page_views, Operation.READ)
    group_read = (GROUP_RESOURCE, settings.app_id, Operation.READ)
    await _grant(broker, ACL_USER[0], [grant for grant in _needed(settings) if grant not in (topic_read, group_read)])
    kafka_up = ("scorer_dependency_up", {"dependency": "kafka"})
    handler = _Handler()
    worker = BatchConsumer(settings, handler, None)  # type: ignore[arg-type]
    running = asyncio.create_task(worker.run())
    try:
        for missing in (group_read, topic_read):
            metrics.DEPENDENCY_UP.labels("kafka").set(1)
            await _until(lambda: metrics.REGISTRY.get_sample_value(*kafka_up) == 0, "reported down")
            await asyncio.sleep(5)  # refused polls meanwhile
            assert not running.done() and metrics.REGISTRY.get_sample_value(*kafka_up) == 0
            assert handler.offsets == []
            await _grant(broker, ACL_USER[0], [missing])
        await _until(lambda: page_views in handler.topics and metrics.REGISTRY.get_sample_value(*kafka_up) == 1,
                     "read")
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
    assert len(handler.offsets) == 5
    assert [r.levelname for r in caplog.records if r.name == "streams.kafka.refusals"] == ["WARNING", "INFO"]


async def test_a_notifier_the_broker_refuses_its_group_waits_for_the_grant_and_then_joins(
        broker: ApacheKafkaBroker) -> None:
    """The same for `scorer notify`, whose gauge says the broker refuses it."""
    from streams.notify import metrics as notify_metrics
    from streams.notify.consumer import NotifyConsumer

    prefix = f"refused-notify-{uuid.uuid4().hex[:8]}."
    await ensure_topics(Settings(kafka_url=broker.url, topic_prefix=prefix, partitions=2), (Topic.ALERTS,))
    settings = _over_sasl_ssl(broker, prefix, ACL_USER)
    alerts = Topic.ALERTS.physical(prefix)
    await _grant(broker, ACL_USER[0], [(TOPIC_RESOURCE, alerts, Operation.READ)])
    told = _Told()
    group = f"{prefix}notify"  # none granted
    notifier = NotifyConsumer(kafka_connection(settings), alerts, group, told, told)  # type: ignore[arg-type]
    running = asyncio.create_task(notifier.run())
    try:
        await _until(lambda: notify_metrics.REGISTRY.get_sample_value("notify_broker_refusing") == 1, "refused")
        await asyncio.sleep(3)
        assert not running.done() and not notifier.consumer.assignment()
        await _grant(broker, ACL_USER[0], [(GROUP_RESOURCE, group, Operation.READ)])
        await _until(lambda: len(notifier.consumer.assignment()) == 2
                     and notify_metrics.REGISTRY.get_sample_value("notify_broker_refusing") == 0, "joined")
    finally:
        notifier.stop()
        await asyncio.wait_for(running, 30)


async def test_read_committed_sees_only_committed_transactions(broker: ApacheKafkaBroker) -> None:
    topic = f"tx-{uuid.uuid4().hex[:8]}"
    partitions = await new_topic(broker, topic)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(10):
                await producer.send_and_wait(topic, key=f"k{i}".encode(), value=f"committed-{i}".encode())
        await producer.begin_transaction()
        for i in range(5):  # written to the log (send_and_wait), then aborted
            await producer.send_and_wait(topic, key=f"k{i}".encode(), value=f"aborted-{i}".encode())
        await producer.abort_transaction()
    finally:
        await producer.stop()

    committed = await drain(broker, partitions, isolation="read_committed")
    everything = await drain(broker, partitions, isolation="read_uncommitted")

    assert sorted(r.value for r in committed) == sorted(f"committed-{i}".encode() for i in range(10))
    assert sorted(r.value for r in everything if r.value.startswith(b"aborted")) == [
        f"aborted-{i}".encode() for i in range(5)]
