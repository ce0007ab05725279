"""The KIP-430 fields `scorer check` reads: an authorized-operations bit field decoded into Kafka's operations,
and a broker's silence (Integer.MIN_VALUE) kept apart from a principal allowed nothing."""
from __future__ import annotations

from streams.kafka.authorized import NOT_REPORTED, AuthorizedMetadata, Operation, operations


def test_the_bits_are_the_operations_codes() -> None:
    assert operations((1 << 3) | (1 << 8)) == {Operation.READ, Operation.DESCRIBE}
    assert operations(0) == frozenset()
    assert operations(NOT_REPORTED) is None
    assert operations((1 << 9) | (1 << 4)) == {Operation.WRITE}  # CLUSTER_ACTION is none of the scorer's


def test_the_request_asks_for_both_fields_and_never_creates_a_topic() -> None:
    (struct_class,) = AuthorizedMetadata._CLASSES
    request = AuthorizedMetadata(["a", "b"]).build(struct_class)
    assert (struct_class.API_KEY, struct_class.API_VERSION) == (3, 8)
    assert request.to_object() == {"topics": ["a", "b"], "allow_auto_topic_creation": False,
                                   "include_cluster_authorized_operations": True,
                                   "include_topic_authorized_operations": True}
