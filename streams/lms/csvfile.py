"""Raw rows of one LMS CSV file, with the rows that are not even well-formed CSV set aside.

Nothing is parsed here beyond splitting fields: a row with the wrong number of fields or broken
quoting becomes a RejectedRow (it goes to the dead-letter topic on replay) instead of an
exception, so one broken line never costs the whole export.
"""
from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streams.unusable import UnusableInput

DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class RejectedRow:
    """A source row that could not be used. `reason` is "label: detail"; `raw` is the source
    line (or the would-be record as JSON), enough to fix it and replay it."""

    file: str
    line: int | None
    reason: str
    raw: str


class ExportFormatError(UnusableInput):
    """A whole file or export is unusable (a column the seed documents missing from a header, a required file
    missing from the directory)."""


@dataclass(frozen=True)
class RawTable:
    file: str
    header: list[str]
    lines: list[int]  # 1-based line number of each row (the header is line 1)
    rows: list[list[str]]
    texts: list[str]  # each row's source line, for the dead-letter topic


CHUNK_ROWS = 200_000  # rows split at a time: a large export's raw strings never all live at once
_PROBE_BYTES = 1 << 20


def encoding_of(path: Path) -> str:
    """LMS exports come as UTF-8 (often with a BOM from Excel) or, from older tools, cp1251:
    UTF-8 unless some byte of the file says otherwise (checked block by block, nothing kept)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as source:
        try:
            while block := source.read(_PROBE_BYTES):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1251"
    return "utf-8-sig"


def sniff_delimiter(header_line: str) -> str:
    """Excel in a Russian locale saves with ';'; the seed export uses ','."""
    return max(DELIMITERS, key=header_line.count)


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader((line,), delimiter=delimiter, strict=True), [])


def read_raw(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[RawTable, list[RejectedRow]]]:
    """Split a file into rows of exactly as many fields as the header has, `chunk_rows` rows at a
    time (at least one chunk, empty for a file with a header only).

    One physical line is one record: the LMS fields (user agents, tag comments) never hold a
    newline, and an unbalanced quote must cost its own line only, not swallow the file."""
    with path.open(encoding=encoding_of(path), newline="\n") as source:
        header_line = next(source, "").rstrip("\n").rstrip("\r")
        delimiter = sniff_delimiter(header_line)
        header = [name.strip() for name in _split(header_line, delimiter)]
        table, rejected = RawTable(path.name, header, [], [], []), []
        yielded = False
        for number, line in enumerate(source, start=2):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            try:
                fields = _split(line, delimiter)
            except csv.Error as exc:
                rejected.append(RejectedRow(path.name, number, f"bad_quoting: {exc}", line))
                continue
            if len(fields) != len(header):
                rejected.append(RejectedRow(path.name, number, f"field_count: expected {len(header)} fields, "
                                            f"got {len(fields)}", line))
                continue
            table.lines.append(number)
            table.rows.append(fields)
            table.texts.append(line)
            if len(table.rows) == chunk_rows:
                yield table, rejected
                table, rejected, yielded = RawTable(path.name, header, [], [], []), [], True
        if table.rows or rejected or not yielded:
            yield table, rejected
