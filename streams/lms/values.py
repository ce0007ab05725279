"""Typed columns from the raw strings of the LMS export.

Each parser maps a whole column at once and leaves NA where a value is absent or unreadable;
the reader tells the two apart (a non-empty cell that parsed to NA is a bad value).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: The two date layouts of the export: most files write `2023-12-05 11:00:00`, webinars_logs and
#: users_logs write `23.12.2023 12:10`. Anything carrying a zone offset is refused: LMS times are
#: naive school-local and a stray offset would shift one row against the rest.
_ISO = r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
_DOTTED = r"^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}(?::\d{2})?$"


def parse_timestamps(raw: pd.Series) -> pd.Series:
    """Naive datetimes from either layout; NaT for empty or unreadable cells."""
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us]")
    iso = raw.str.match(_ISO)
    if iso.any():
        out[iso] = pd.to_datetime(raw[iso], format="ISO8601", errors="coerce").astype("datetime64[us]")
    dotted = raw.str.match(_DOTTED)
    if dotted.any():
        minutes = pd.to_datetime(raw[dotted], format="%d.%m.%Y %H:%M", errors="coerce")
        seconds = pd.to_datetime(raw[dotted], format="%d.%m.%Y %H:%M:%S", errors="coerce")
        out[dotted] = minutes.fillna(seconds).astype("datetime64[us]")
    return out


def _numbers(raw: pd.Series, nulls: frozenset[str]) -> pd.Series:
    present = raw.where(~raw.isin(nulls) & (raw != ""), None)
    if present.str.contains(",", regex=False).any():
        present = present.str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(present, errors="coerce").astype("float64")
    return numbers.where(np.isfinite(numbers))


def parse_ints(raw: pd.Series, nulls: frozenset[str] = frozenset()) -> pd.Series:
    """Nullable integers; `1.00` is read as 1 but `1.5` is unreadable. `nulls` are the export's
    words for "no value" in this column (e.g. 'Пропуск', 'Нет данных')."""
    numbers = _numbers(raw, nulls)
    return numbers.where(numbers == numbers.round()).astype("Int64")


def parse_floats(raw: pd.Series, nulls: frozenset[str] = frozenset()) -> pd.Series:
    """Nullable floats; a decimal comma (Russian Excel) is accepted."""
    return _numbers(raw, nulls).astype("Float64")


def parse_tg_bot(raw: pd.Series) -> pd.Series:
    """Telegram bot status: digits as written; '—'/'-'/empty = 0 (not connected); text mentioning
    'останов' (stopped) = 2; any other text = 1 (connected). Never unreadable."""
    lowered = raw.str.lower()
    digits = pd.to_numeric(raw.where(raw.str.fullmatch(r"\d+"), None), errors="coerce")
    text_code = np.where(lowered.isin(["", "—", "-", "–"]), 0, np.where(lowered.str.contains("останов"), 2, 1))
    return digits.fillna(pd.Series(text_code, index=raw.index)).astype("Int64")
