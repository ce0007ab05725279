"""The dead-letter record: enough to find, fix and replay what the scorer could not use.

A dead letter must itself fit the producer's request limit, so the raw value is cut to its
first MAX_VALUE_BYTES; its size and SHA-256 say what the whole one was.
"""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from streams.contract.codec import InvalidEvent

MAX_VALUE_BYTES = 16 * 1024
MAX_KEY_BYTES = 256


def _text(raw: bytes, limit: int) -> str:
    return raw[:limit].decode("utf-8", "backslashreplace")


def dead_letter(
    source_topic: str, error: InvalidEvent, *, value: bytes | None, key: bytes | None,
    partition: int | None = None, offset: int | None = None,
) -> dict[str, Any]:
    raw = value or b""
    return {
        "topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": _text(key, MAX_KEY_BYTES) if key is not None else None,
        "value": _text(raw, MAX_VALUE_BYTES),
        "value_bytes": len(raw),
        "value_sha256": hashlib.sha256(raw).hexdigest(),
        "value_truncated": len(raw) > MAX_VALUE_BYTES,
        "reason": error.reason,
        "error": error.detail[:1000],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
