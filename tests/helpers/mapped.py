"""What the adapter tests read of one mapped input item (streams.ingest.base.Mapped)."""
from __future__ import annotations

from streams.contract import validate
from streams.ingest.base import Mapped, Record


def accepted(mapped: Mapped) -> list[Record]:
    """The records of an item that was mapped, each one the contract accepts."""
    assert mapped.rejection is None, mapped.rejection
    for topic, record in mapped.records:
        validate(topic, record)
    return mapped.records


def refused(mapped: Mapped, source: str | None = None) -> tuple[str, str]:
    """(kind, reason) of an item that was rejected whole (no record), with a reason and a detail
    (and `source`, when given)."""
    assert mapped.rejection is not None and not mapped.records, mapped
    assert mapped.rejection.reason and mapped.rejection.detail
    assert source is None or mapped.rejection.source == source, mapped.rejection
    return mapped.rejection.kind, mapped.rejection.reason
