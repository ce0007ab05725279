"""Columns turned into the seed's CSV text, a chunk of rows at a time, for `streams.lms.oulad`.

Kept apart from the mapping because writing is its own problem: the export's largest file
(activity_history_viewed.csv, millions of rows) took over a gigabyte as text at once, so the
mapping hands over whole columns (values, epoch seconds to print as times, or one value for every
row) and this module formats and writes WRITE_ROWS rows at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

ISO = "%Y-%m-%d %H:%M:%S"
DOTTED = "%d.%m.%Y %H:%M"
WRITE_ROWS = 200_000  # rows turned into text at a time


@dataclass(frozen=True)
class Moments:
    """Epoch seconds (NaN/NA = no time) that `write` turns into text in `layout` a chunk at a time."""
    seconds: pd.Series | np.ndarray
    layout: str = ISO

    def __len__(self) -> int:
        return len(self.seconds)


#: a column to write: its values (already in row order), times, or one value (str/int) on every row
Column: TypeAlias = pd.Series | np.ndarray | list[Any] | Moments | str | int


def write(path: Path, header: list[str], columns: list[Column]) -> int:
    """Write columns as text under `header`, WRITE_ROWS rows at a time: the text of a whole
    activity_history_viewed.csv (millions of rows) took over a gigabyte."""
    rows = next(len(column) for column in columns if not isinstance(column, str | int))
    with path.open("w", encoding="utf-8", newline="") as handle:
        for start in range(0, max(rows, 1), WRITE_ROWS):
            chunk = pd.DataFrame({name: _cells(column, start, min(start + WRITE_ROWS, rows))
                                  for name, column in zip(header, columns)})
            chunk.to_csv(handle, index=False, header=start == 0, lineterminator="\n")
    return rows


def _cells(column: Column, start: int, stop: int) -> pd.Series:
    """Rows start:stop of a column as text."""
    if isinstance(column, str | int):
        values: Any = [column] * (stop - start)
    elif isinstance(column, Moments):
        values = _text(_slice(column.seconds, start, stop), column.layout)
    else:
        values = _slice(column, start, stop)
    return pd.Series(np.asarray(values, dtype=object)).astype(str)


def _slice(values: pd.Series | np.ndarray | list[Any], start: int, stop: int) -> pd.Series | np.ndarray | list[Any]:
    return values.iloc[start:stop] if isinstance(values, pd.Series) else values[start:stop]


def _text(seconds: pd.Series | np.ndarray, layout: str = ISO) -> pd.Series:
    """Epoch seconds (NaN/NA = no time) as text in the file's layout; '' where absent."""
    values = pd.Series(seconds, dtype="Float64")
    moments = pd.to_datetime(values.astype("float64"), unit="s")
    return moments.dt.strftime(layout).fillna("").astype(str)


def int_text(values: pd.Series) -> pd.Series:
    """Whole numbers as text, '' where missing."""
    return values.astype("Int64").astype(str).replace("<NA>", "")

