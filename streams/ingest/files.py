"""Export files of the three formats -> contract records in event-time order (for `scorer replay`).

- `xapi`: statements as JSON lines, a JSON array, or an LRS's StatementResult
  (`{"statements": [...]}`, what `GET /statements` returns). A statement id seen earlier in the
  file is dropped (`ignored` `duplicate_statement`), or rejected when its content differs
  (`invalid` `conflicting_statement_id`). Statements need a `timestamp` or `stored`.
- `openedx`: a tracking log, one event per line (a syslog prefix before the `{` is skipped).
- `moodle`: a CSV export of `logstore_standard_log` (header row; `,`, `;` or tab).

A name ending in `.gz` is read through gzip (rotated tracking logs are).
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson

from features.eventtime import parse_ts
from streams.contract import same_time_rank
from streams.ingest import moodle, openedx, xapi
from streams.ingest.base import IGNORED, INVALID, Mapped, Record, Rejection, digest, split
from streams.ingest.mapping import IdMapping

FORMATS = ("xapi", "openedx", "moodle")


def read_text(path: Path) -> str:
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return raw.decode("utf-8-sig", "replace")


def _statements(text: str) -> list[tuple[str, Any]]:
    """(ref, statement or the unparsable line) of an xAPI export."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            loaded = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass
        else:
            return [(str(i), s) for i, s in enumerate(loaded, 1)] if isinstance(loaded, list) else [("1", loaded)]
    if stripped.startswith("{"):
        try:
            whole = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass  # JSON lines
        else:
            if isinstance(whole, dict) and isinstance(whole.get("statements"), list):
                return [(str(i), s) for i, s in enumerate(whole["statements"], 1)]
            return [("1", whole)]
    out: list[tuple[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((str(number), orjson.loads(line)))
            except orjson.JSONDecodeError:
                out.append((str(number), _Unparsed(line)))
    return out


class _Unparsed(str):
    """A line that is not JSON."""


def map_xapi_text(text: str, mapping: IdMapping) -> list[Mapped]:
    out: list[Mapped] = []
    seen: dict[str, str] = {}
    for ref, statement in _statements(text):
        if isinstance(statement, _Unparsed):
            out.append(Mapped(ref, str(statement), rejection=Rejection(
                "malformed_json", "the line is not JSON", str(statement), INVALID, xapi.SOURCE, f"line {ref}")))
            continue
        mapped = xapi.map_statement(statement, mapping)
        sid = mapped.ref
        if sid is not None:
            content = digest(statement)
            if sid in seen:
                same = seen[sid] == content
                mapped = Mapped(sid, statement, rejection=Rejection(
                    "duplicate_statement" if same else "conflicting_statement_id",
                    "a copy of an earlier statement" if same else "an earlier statement has this id and other content",
                    statement, IGNORED if same else INVALID, xapi.SOURCE, sid))
            else:
                seen[sid] = content
        out.append(mapped)
    return out


def map_file(path: Path, fmt: str, mapping: IdMapping) -> list[Mapped]:
    """Every item of the file, mapped (in file order)."""
    text = read_text(path)
    if fmt == "xapi":
        return map_xapi_text(text, mapping)
    if fmt == "openedx":
        return openedx.map_lines(text.splitlines(), mapping)
    if fmt == "moodle":
        return moodle.map_rows(moodle.read_csv(text), mapping)
    raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")


def in_event_time_order(records: list[Record]) -> list[Record]:
    """Stable: at equal time a student's profile before their activity, and their outcome after it."""
    return sorted(records, key=lambda tr: (parse_ts(tr[1]["ts"]), same_time_rank(tr[0])))


def load_file(path: Path, fmt: str, mapping: IdMapping) -> tuple[list[Record], list[Rejection]]:
    """Records in event-time order, and every rejection (ignored ones included; see `dead_lettered`)."""
    records, rejections = split(map_file(path, fmt, mapping))
    return in_event_time_order(records), rejections
