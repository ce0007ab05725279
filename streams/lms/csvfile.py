"""Raw rows of one LMS CSV file, with the rows that are not even well-formed CSV set aside.

Nothing is parsed here beyond splitting fields: a row with the wrong number of fields or broken
quoting becomes a RejectedRow (it goes to the dead-letter topic on replay) instead of an
exception, so one broken line never costs the whole export.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class RejectedRow:
    """A source row that could not be used. `reason` is "label: detail"; `raw` is the source
    line (or the would-be record as JSON), enough to fix it and replay it."""

    file: str
    line: int | None
    reason: str
    raw: str


class ExportFormatError(ValueError):
    """A whole file is unusable (e.g. a column the seed documents is missing from its header)."""


@dataclass(frozen=True)
class RawTable:
    file: str
    header: list[str]
    lines: list[int]  # 1-based line number of each row (the header is line 1)
    rows: list[list[str]]
    texts: list[str]  # each row's source line, for the dead-letter topic


def decode(data: bytes) -> str:
    """LMS exports come as UTF-8 (often with a BOM from Excel) or, from older tools, cp1251."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")


def sniff_delimiter(header_line: str) -> str:
    """Excel in a Russian locale saves with ';'; the seed export uses ','."""
    return max(DELIMITERS, key=header_line.count)


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader((line,), delimiter=delimiter, strict=True), [])


def read_raw(path: Path) -> tuple[RawTable, list[RejectedRow]]:
    """Split a file into rows of exactly as many fields as the header has.

    One physical line is one record: the LMS fields (user agents, tag comments) never hold a
    newline, and an unbalanced quote must cost its own line only, not swallow the file."""
    lines_text = decode(path.read_bytes()).split("\n")
    header_line = lines_text[0].rstrip("\r") if lines_text else ""
    delimiter = sniff_delimiter(header_line)
    header = [name.strip() for name in _split(header_line, delimiter)]
    lines: list[int] = []
    rows: list[list[str]] = []
    texts: list[str] = []
    rejected: list[RejectedRow] = []
    for number, line in enumerate(lines_text[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            fields = _split(line, delimiter)
        except csv.Error as exc:
            rejected.append(RejectedRow(path.name, number, f"bad_quoting: {exc}", line))
            continue
        if len(fields) == len(header):
            lines.append(number)
            rows.append(fields)
            texts.append(line)
        else:
            rejected.append(RejectedRow(path.name, number, f"field_count: expected {len(header)} fields, "
                                        f"got {len(fields)}", line))
    return RawTable(path.name, header, lines, rows, texts), rejected
