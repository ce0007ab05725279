"""What the broker lets the settings' principal do on each topic and the cluster (Kafka's KIP-430).

A missing ACL shows up in a worker only when it first reads or writes the topic, as an authorization error
that looks like a broker outage from outside. A Metadata request of version 8 asks the broker for each
topic's authorized operations and the cluster's, read-only and with the principal's own rights, so that
`scorer check` can name the grant missing before going live. aiokafka knows Metadata up to version 5 only;
the request and response below are version 8 of Kafka's schema (its last one before flexible encoding), and
DescribeGroups version 3 asks the same of a consumer group.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
from aiokafka.protocol.admin import DescribeGroupsResponse_v3
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int16, Int32, Schema, String

#: What a broker puts in an authorized-operations field it did not compute (Integer.MIN_VALUE).
NOT_REPORTED = -(2 ** 31)


class Operation(IntEnum):
    """Kafka's AclOperation codes: bit `code` of an authorized-operations field is set when it is allowed."""
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


class _MetadataResponseV8(Response):  # type: ignore[misc]  # aiokafka has no type hints
    API_KEY = 3
    API_VERSION = 8
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("brokers", Array(("node_id", Int32), ("host", String("utf-8")), ("port", Int32),
                          ("rack", String("utf-8")))),
        ("cluster_id", String("utf-8")),
        ("controller_id", Int32),
        ("topics", Array(("error_code", Int16), ("name", String("utf-8")), ("is_internal", Boolean),
                         ("partitions", Array(("error_code", Int16), ("partition_index", Int32),
                                              ("leader_id", Int32), ("leader_epoch", Int32),
                                              ("replica_nodes", Array(Int32)), ("isr_nodes", Array(Int32)),
                                              ("offline_replicas", Array(Int32)))),
                         ("topic_authorized_operations", Int32))),
        ("cluster_authorized_operations", Int32),
    )


class _MetadataRequestV8(RequestStruct):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 8
    RESPONSE_TYPE = _MetadataResponseV8
    SCHEMA = Schema(("topics", Array(String("utf-8"))), ("allow_auto_topic_creation", Boolean),
                    ("include_cluster_authorized_operations", Boolean),
                    ("include_topic_authorized_operations", Boolean))


class AuthorizedMetadata(Request[_MetadataRequestV8]):  # type: ignore[misc]
    """Metadata for `topics` with the operations the principal may perform; never creates a topic."""
    API_KEY = 3

    def __init__(self, topics: list[str]) -> None:
        self._topics = topics

    def build(self, request_struct_class: type[_MetadataRequestV8]) -> _MetadataRequestV8:
        return request_struct_class(self._topics, False, True, True)


class _DescribeGroupsRequestV3(RequestStruct):  # type: ignore[misc]
    API_KEY = 15
    API_VERSION = 3
    RESPONSE_TYPE = DescribeGroupsResponse_v3
    SCHEMA = Schema(("groups", Array(String("utf-8"))), ("include_authorized_operations", Boolean))


class AuthorizedGroup(Request[_DescribeGroupsRequestV3]):  # type: ignore[misc]
    """A consumer group with the operations the principal may perform in it (aiokafka builds DescribeGroups up to
    version 2, which does not carry them)."""
    API_KEY = 15

    def __init__(self, group: str) -> None:
        self._group = group

    def build(self, request_struct_class: type[_DescribeGroupsRequestV3]) -> _DescribeGroupsRequestV3:
        return request_struct_class([self._group], True)


@dataclass(frozen=True)
class Rights:
    """What the principal may do, by topic and by group name, and on the cluster; None where the broker did not
    say (no such topic, or a broker that does not compute it); the empty set where it may not even Describe."""
    topics: dict[str, frozenset[Operation] | None]
    groups: dict[str, frozenset[Operation] | None]
    cluster: frozenset[Operation] | None


def operations(field: int) -> frozenset[Operation] | None:
    if field == NOT_REPORTED:
        return None
    return frozenset(op for op in Operation if field & (1 << op))


def _topics(response: Any) -> dict[str, frozenset[Operation] | None]:
    topics: dict[str, frozenset[Operation] | None] = {}
    for error_code, name, _internal, _partitions, authorized in response.topics:
        if error_code == TopicAuthorizationFailedError.errno:
            topics[name] = frozenset()
        else:
            topics[name] = operations(authorized) if error_code == 0 else None
    return topics


async def _group(client: Any, group: str) -> frozenset[Operation] | None:
    try:
        coordinator = await client.coordinator_lookup(CoordinationType.GROUP, group)
    except GroupAuthorizationFailedError:
        return frozenset()
    ((error_code, *fields),) = (await client.send(coordinator, AuthorizedGroup(group))).groups
    if error_code == GroupAuthorizationFailedError.errno:
        return frozenset()
    return operations(fields[-1]) if error_code == 0 else None


async def principal_rights(connection: dict[str, Any], topics: list[str], groups: list[str]) -> Rights:
    """Ask the brokers, over the scorer's own `connection` (streams.kafka.connection). Raises
    IncompatibleBrokerVersion or NotImplementedError where a broker has neither Metadata version 8 nor
    DescribeGroups version 3 (Kafka before 2.3)."""
    client = AIOKafkaClient(**connection)
    try:
        await client.bootstrap()
        metadata = await client.send(client.get_random_node(), AuthorizedMetadata(topics))
        return Rights(_topics(metadata), {group: await _group(client, group) for group in groups},
                      operations(metadata.cluster_authorized_operations))
    finally:
        await client.close()
