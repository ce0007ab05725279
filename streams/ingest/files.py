"""Export files of each format -> contract records in event-time order (for `scorer replay`).

- `xapi`: statements as JSON lines, a JSON array, or an LRS's StatementResult
  (`{"statements": [...]}`, what `GET /statements` returns). A statement id seen earlier in the
  file is dropped (`ignored` `duplicate_statement`), or rejected when its content differs
  (`invalid` `conflicting_statement_id`). Statements need a `timestamp` or `stored`.
- `caliper`: Caliper events or Envelopes (`{sensor, sendTime, dataVersion, data: [...]}`, as a
  sensor sends them; a malformed one is one `invalid` rejection), as JSON lines, a JSON array, or
  one JSON object. An event id seen earlier is dropped (`ignored` `duplicate_event`), or rejected
  when its content differs (`invalid` `conflicting_event_id`).
- `openedx`: a tracking log, one event per line (a syslog prefix before the `{` is skipped).
- `moodle`: a CSV export of `logstore_standard_log` (header row; `,`, `;` or tab).

A name ending in `.gz` is read through gzip (rotated tracking logs are).
"""
from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from features.eventtime import parse_ts
from streams.contract import same_time_rank
from streams.ingest import caliper, moodle, openedx, xapi
from streams.ingest.base import IGNORED, INVALID, Mapped, Record, Rejection, digest, split
from streams.ingest.mapping import IdMapping
from streams.unusable import UnusableInput

#: The formats `scorer replay --format` reads (besides the seed's CSV export directory).
FORMATS = (xapi.SOURCE, caliper.SOURCE, openedx.SOURCE, moodle.SOURCE)


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (gzip.BadGzipFile, EOFError) as error:  # truncated or not gzip: the file's fault, named
            raise UnusableInput(f"{path}: unreadable gzip ({error})") from None
    return raw.decode("utf-8-sig", "replace")


def _json_items(text: str) -> list[tuple[str, Any]]:
    """(ref, value) of a JSON export: the items of a JSON array, one JSON object, or JSON lines (a
    line that is not JSON: an `_Unparsed`)."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            loaded = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass  # JSON lines
        else:
            return [(str(i), item) for i, item in enumerate(loaded, 1)] if isinstance(loaded, list) else [("1", loaded)]
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


def _unparsed(ref: str, line: _Unparsed, source: str) -> Mapped:
    return Mapped(ref, str(line), rejection=Rejection("malformed_json", "the line is not JSON", str(line), INVALID,
                                                      source, f"line {ref}"))


class _FirstOfEachId:
    """Items of one file by their id: a later copy is dropped (`ignored` `duplicate_<what>`), a later
    item with the same id and other content is `invalid` (`conflicting_<what>_id`)."""

    def __init__(self, source: str, what: str) -> None:
        self.source, self.what = source, what
        self.seen: dict[str, str] = {}

    def __call__(self, mapped: Mapped) -> Mapped:
        if mapped.ref is None:
            return mapped
        content = digest(mapped.raw)
        if mapped.ref not in self.seen:
            self.seen[mapped.ref] = content
            return mapped
        same = self.seen[mapped.ref] == content
        return Mapped(mapped.ref, mapped.raw, rejection=Rejection(
            f"duplicate_{self.what}" if same else f"conflicting_{self.what}_id",
            f"a copy of an earlier {self.what}" if same else f"an earlier {self.what} has this id and other content",
            mapped.raw, IGNORED if same else INVALID, self.source, mapped.ref))


def map_xapi_text(text: str, mapping: IdMapping) -> list[Mapped]:
    items = _json_items(text)
    if text.lstrip().startswith("{") and len(items) == 1 and isinstance(items[0][1], dict) \
            and isinstance(items[0][1].get("statements"), list):  # a StatementResult
        items = [(str(i), s) for i, s in enumerate(items[0][1]["statements"], 1)]
    once = _FirstOfEachId(xapi.SOURCE, "statement")
    return [_unparsed(ref, statement, xapi.SOURCE) if isinstance(statement, _Unparsed)
            else once(xapi.map_statement(statement, mapping)) for ref, statement in items]


def map_caliper_text(text: str, mapping: IdMapping) -> list[Mapped]:
    once = _FirstOfEachId(caliper.SOURCE, "event")
    out: list[Mapped] = []
    for ref, item in _json_items(text):
        if isinstance(item, _Unparsed):
            out.append(_unparsed(ref, item, caliper.SOURCE))
        elif caliper.is_envelope(item):
            out.extend(once(mapped) for mapped in caliper.map_envelope(item, mapping, f"envelope {ref}"))
        else:
            out.append(once(caliper.map_event(item, mapping)))
    return out


def map_file(path: Path, fmt: str, mapping: IdMapping) -> list[Mapped]:
    """Every item of the file, mapped (in file order)."""
    text = read_text(path)
    if fmt == "xapi":
        return map_xapi_text(text, mapping)
    if fmt == "caliper":
        return map_caliper_text(text, mapping)
    if fmt == "openedx":
        return openedx.map_lines(text.splitlines(), mapping)
    if fmt == "moodle":
        return moodle.map_rows(moodle.read_csv(text), mapping)
    raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")


def map_item(fmt: str, item: Any, mapping: IdMapping, received_at: datetime | None = None) -> list[Mapped]:
    """One item as a dead letter keeps it (an xAPI statement, a Caliper event or envelope, an Open edX event, a
    Moodle row), mapped again: what `scorer redrive` makes of it once the mapping knows its ids."""
    if fmt == xapi.SOURCE:
        return [xapi.map_statement(item, mapping, received_at)]
    if fmt == caliper.SOURCE:
        return caliper.map_envelope(item, mapping) if caliper.is_envelope(item) else [caliper.map_event(item, mapping)]
    if fmt == openedx.SOURCE:
        return [openedx.map_event(item, mapping)]
    if fmt == moodle.SOURCE:
        return [moodle.map_row(item, mapping)]
    raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")


def in_event_time_order(records: list[Record]) -> list[Record]:
    """Stable: at equal time a student's profile before their activity, and their outcome after it."""
    return sorted(records, key=lambda tr: (parse_ts(tr[1]["ts"]), same_time_rank(tr[0])))


def load_file(path: Path, fmt: str, mapping: IdMapping) -> tuple[list[Record], list[Rejection]]:
    """Records in event-time order, and every rejection (ignored ones included; see `dead_lettered`)."""
    records, rejections = split(map_file(path, fmt, mapping))
    return in_event_time_order(records), rejections
