"""The dead-letter record: enough to find, fix and replay what the scorer could not use."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streams.contract.codec import InvalidEvent


def dead_letter(
    source_topic: str, error: InvalidEvent, *, value: bytes | None, key: bytes | None,
    partition: int | None = None, offset: int | None = None,
) -> dict[str, Any]:
    return {
        "topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": key.decode("utf-8", "backslashreplace") if key is not None else None,
        "value": value.decode("utf-8", "backslashreplace") if value is not None else "",
        "reason": error.reason,
        "error": error.detail,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
