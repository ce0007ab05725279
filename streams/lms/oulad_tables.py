"""Finding and reading OULAD's raw tables for `streams.lms.oulad`.

Kept apart from the mapping because reading is its own problem: OULAD ships as `.csv` or
`.csv.gz`, with `?` or empty for missing values, whitespace around values and header names, and
tables of up to 10 M rows that must be parsed column by column (numbers straight into float64,
text as categories) to fit in memory. `streams.lms.oulad_deal` finds the same tables here.
"""
from __future__ import annotations

from collections.abc import Collection
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from streams.unusable import UnusableInput

KEYS = ["code_module", "code_presentation"]  # one module-presentation: one course flow

#: table: (required, columns read); every table but studentAssessment also has KEYS
TABLES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "studentInfo": (True, (*KEYS, "id_student", "age_band", "final_result")),
    "studentRegistration": (True, (*KEYS, "id_student", "date_registration", "date_unregistration")),
    "vle": (True, (*KEYS, "id_site", "activity_type", "week_from")),
    "studentVle": (True, (*KEYS, "id_student", "id_site", "date")),
    "assessments": (True, (*KEYS, "id_assessment", "assessment_type", "date", "weight")),
    "studentAssessment": (True, ("id_assessment", "id_student", "date_submitted", "is_banked", "score")),
    "courses": (False, (*KEYS, "module_presentation_length")),
}
_NUMERIC = {"id_student", "id_site", "id_assessment", "date", "date_registration", "date_unregistration",
            "week_from", "weight", "date_submitted", "is_banked", "score", "module_presentation_length"}
MISSING = "?"  # OULAD's missing value, beside an empty cell


class OuladFormatError(UnusableInput):
    """RAW_DIR is not an OULAD directory this importer understands."""


def find_table(raw_dir: Path, table: str) -> Path | None:
    """`table`.csv or `table`.csv.gz in `raw_dir`, if either is there."""
    for suffix in (".csv", ".csv.gz"):
        path = raw_dir / f"{table}{suffix}"
        if path.exists():
            return path
    return None


def read_tables(raw_dir: Path) -> dict[str, pd.DataFrame]:
    """The OULAD tables this importer reads, numbers as float64 (NaN = missing), text as str
    (stripped, missing = ''), but studentVle's keys as categories: a str per row would double it."""
    raw_dir = Path(raw_dir)
    tables: dict[str, pd.DataFrame] = {}
    for table, (required, columns) in TABLES.items():
        path = find_table(raw_dir, table)
        wanted = list(columns)
        if path is None:
            if required:
                raise OuladFormatError(f"{raw_dir}: no {table}.csv or {table}.csv.gz")
            tables[table] = pd.DataFrame({c: pd.Series(dtype="float64" if c in _NUMERIC else "str") for c in wanted})
            continue
        frame = _read(path, wanted)
        if table != "studentVle":
            for column in [c for c in wanted if c not in _NUMERIC]:
                frame[column] = _as_str(frame[column])
        if set(KEYS) <= set(wanted):
            frame = frame[(frame["code_module"] != "") & (frame["code_presentation"] != "")]
        tables[table] = frame.reset_index(drop=True)
    return tables


def select(tables: dict[str, pd.DataFrame], modules: Collection[str] = (),
           presentations: Collection[str] = ()) -> dict[str, int]:
    """Keep, in place, only the rows of the named modules and presentation codes (empty: every one), and say how
    many rows of each table went (`<table>: not selected`). The whole OULAD holds 22 presentations of 7 modules and
    published results are usually for some of them: a selection imports the same bytes as a directory that held
    only those. studentAssessment has no keys: its rows go with their assessment."""
    if not modules and not presentations:
        return {}
    held = sorted({f"{m} {p}" for m, p in zip(tables["studentInfo"]["code_module"],
                                               tables["studentInfo"]["code_presentation"])})
    before = {name: len(frame) for name, frame in tables.items()}
    for name, frame in tables.items():
        if set(KEYS) <= set(frame.columns):
            kept = np.ones(len(frame), dtype=bool)
            if modules:
                kept &= frame["code_module"].isin(modules).to_numpy(dtype=bool)
            if presentations:
                kept &= frame["code_presentation"].isin(presentations).to_numpy(dtype=bool)
            tables[name] = frame[kept].reset_index(drop=True)
    if tables["studentInfo"].empty:
        raise OuladFormatError(f"no student of module {sorted(modules) or 'any'} in presentation "
                               f"{sorted(presentations) or 'any'}; the directory holds {', '.join(held) or 'none'}")
    assessments = tables["studentAssessment"]
    tables["studentAssessment"] = assessments[
        assessments["id_assessment"].isin(tables["assessments"]["id_assessment"])].reset_index(drop=True)
    return {f"{name}: not selected": before[name] - len(frame) for name, frame in tables.items()}


def _read(path: Path, wanted: list[str]) -> pd.DataFrame:
    """The `wanted` columns of one file, cleaned as `read_tables` says, text as categories. Only
    they are parsed, numbers straight into float64 and text as categories (a few values repeated
    over up to 10 M rows): reading every cell as text took several times the table. A cell the
    parser cannot read as a number sends the file down the slow path: its numbers read as text,
    then coerced."""
    names = _columns_in(path, wanted)
    numeric = [names[c] for c in wanted if c in _NUMERIC]
    text = [name for name in names.values() if name not in numeric]
    read = partial(pd.read_csv, path, usecols=list(names.values()), keep_default_na=False, encoding="utf-8-sig")
    try:
        frame = read(dtype={**dict.fromkeys(text, "category"), **dict.fromkeys(numeric, "float64")},
                     na_values={name: [MISSING, ""] for name in numeric})
    except ValueError:
        frame = read(dtype={**dict.fromkeys(text, "category"), **dict.fromkeys(numeric, str)})
        for name in numeric:
            frame[name] = _number(frame[name])
    for name in text:
        frame[name] = _clean_text(frame[name])
    return frame.rename(columns={name: column for column, name in names.items()})[wanted]


def _columns_in(path: Path, wanted: list[str]) -> dict[str, str]:
    """wanted column -> its name in the file's header (the first one that is the column once stripped)."""
    found: dict[str, str] = {}
    for name in pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns:
        found.setdefault(str(name).strip(), name)
    missing = [c for c in wanted if c not in found]
    if missing:
        raise OuladFormatError(f"{path.name}: header lacks {missing}")
    return {c: found[c] for c in wanted}


def _stripped(text: pd.Series) -> pd.Series:
    """Cells without surrounding whitespace; a missing value (`?`) as ''."""
    return text.str.strip().replace(MISSING, "")


def _number(text: pd.Series) -> pd.Series:
    """A text column as float64: missing or not a number -> NaN."""
    text = _stripped(text)
    return pd.to_numeric(text.mask(text == ""), errors="coerce").astype("float64")


def _clean_text(column: pd.Series) -> pd.Series:
    """A categorical column cleaned by `_stripped` (its categories, not its cells), with sorted
    categories so that it sorts as its text does."""
    codes, categories = pd.factorize(_stripped(pd.Series(column.cat.categories, dtype=str)), sort=True)
    return pd.Series(pd.Categorical.from_codes(codes[column.cat.codes.to_numpy()], categories), index=column.index)


def _as_str(column: pd.Series) -> pd.Series:
    """A categorical column as str, by taking its categories: on 10 M rows a tenth of the time and
    memory of `astype(str)`."""
    return pd.Series(column.cat.categories.take(column.cat.codes.to_numpy()), index=column.index)
