"""`scorer check`'s Kafka access finding: whether the broker's ACLs let the settings' principal do what the
scorer's processes do with each topic and consumer group.

The shipped deployments (deploy/) run every process under one Kafka user (SCORER_KAFKA_SASL_USERNAME in one
ConfigMap), so the principal is checked for all of them at once; each missing grant names the process that
needs it, for a cluster that gives each process a principal of its own.
"""
from __future__ import annotations

import asyncio

from streams.contract.topics import INPUT_TOPICS, Topic
from streams.kafka.authorized import Operation, Rights, principal_rights
from streams.kafka.connection import kafka_connection
from streams.settings import Settings
from streams.tools.check_findings import ERROR, OK, SKIPPED, TIMEOUT_S, WARN, Finding, consumer_groups

Uses = tuple[tuple[Operation, str], ...]
_INPUT: Uses = ((Operation.READ, "the workers read it"),
                (Operation.WRITE, "the ingest door and `scorer replay` publish to it"))
#: What the scorer's processes do with each topic.
TOPIC_USES: dict[Topic, Uses] = {
    **{topic: _INPUT for topic in INPUT_TOPICS},
    Topic.ALERTS: ((Operation.WRITE, "the workers publish alerts to it"),
                   (Operation.READ, "`scorer notify` reads it")),
    Topic.DEAD_LETTERS: ((Operation.WRITE, "the workers, the ingest door and `scorer replay` dead-letter to it"),
                         (Operation.READ, "`scorer redrive` and `scorer dead-letters` read it")),
    Topic.NOTIFY_DEAD_LETTERS: ((Operation.WRITE, "`scorer notify` dead-letters to it"),
                                (Operation.READ, "`scorer dead-letters --notify` reads it")),
}


async def access_finding(settings: Settings, missing_topics: set[str]) -> Finding:
    """The principal's rights as the broker reports them (streams.kafka.authorized), against what the scorer
    needs. Skipped where the broker does not report them (no Metadata version 8, or an authorizer that does
    not compute them: the embedded broker)."""
    names = {topic.physical(settings.topic_prefix): uses for topic, uses in TOPIC_USES.items()}
    try:
        rights = await asyncio.wait_for(principal_rights(kafka_connection(settings), sorted(names),
                                                         [group for group, *_ in consumer_groups(settings)]),
                                        TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - an optional question: the other findings stand without it
        return Finding("kafka", "access", SKIPPED, " ".join(f"the broker did not say what this principal may do: "
                                                            f"{type(error).__name__}: {error}".split()))
    judged = [name for name in names if rights.topics.get(name) is not None]
    judged_groups = [group for group, allowed in rights.groups.items() if allowed is not None]
    creating = _cannot_create(rights, missing_topics)
    if not judged and not judged_groups and not creating:
        return Finding("kafka", "access", SKIPPED, "the broker does not report what this principal may do on the "
                                                   "scorer's topics and groups (KIP-430): no authorizer that does, "
                                                   "or none of them exists yet")
    lacking = [f"{op.name.title()} on topic {name} ({why})" for name, uses in names.items()
               for op, why in uses if not _allows(rights.topics.get(name), op)]
    lacking += [f"Read on group {group} ({whose})" for group, _topics, whose in consumer_groups(settings)
                if not _allows(rights.groups[group], Operation.READ)]
    sasl = settings.kafka_security_protocol.startswith("SASL_") and settings.kafka_sasl_username
    principal = f"User:{settings.kafka_sasl_username}" if sasl else "this client's principal"
    if lacking:
        return Finding("kafka", "access", ERROR, f"{principal} may not: {'; '.join(lacking)}. Grant these ACLs "
                                                 "(each process holds its work on the first one it lacks, as in "
                                                 "an outage)")
    if creating:
        return Finding("kafka", "access", WARN, f"{principal} may not Create on the cluster, and {creating} "
                                                "missing: create them beforehand, or allow Create on their names")
    return Finding("kafka", "access", OK, f"{principal} may do what the scorer does on the {len(judged)} topic(s) "
                                          f"and {len(judged_groups)} group(s) the broker reported its rights on")


def acl_commands(settings: Settings, principal: str) -> list[str]:
    """`kafka-acls.sh` commands that grant `principal` what the scorer's processes do (TOPIC_USES, the two consumer
    groups) and Create on the cluster, which only the processes that create missing topics at start need."""
    base = f"kafka-acls.sh --bootstrap-server $BROKERS --add --allow-principal {principal}"
    by_operations: dict[tuple[Operation, ...], list[str]] = {}  # one line for the topics with the same uses
    for topic, uses in TOPIC_USES.items():
        operations = tuple(sorted({op for op, _why in uses}))
        by_operations.setdefault(operations, []).append(topic.physical(settings.topic_prefix))
    lines = [base + "".join(f" --operation {op.name.title()}" for op in operations)
             + "".join(f" --topic {name}" for name in names) for operations, names in by_operations.items()]
    lines.append(f"{base} --operation Read" + "".join(f" --group {group}" for group, *_ in consumer_groups(settings)))
    return [*lines, f"{base} --operation Create --cluster  # only if the processes are to create missing topics"]


def _allows(allowed: frozenset[Operation] | None, op: Operation) -> bool:
    """None (not reported: a missing topic, or a group the broker had nothing to say about) is not held against it."""
    return allowed is None or op in allowed


def _cannot_create(rights: Rights, missing_topics: set[str]) -> str:
    if not missing_topics or rights.cluster is None or Operation.CREATE in rights.cluster:
        return ""
    return f"{len(missing_topics)} topic(s) are" if len(missing_topics) > 1 else f"topic {min(missing_topics)} is"
