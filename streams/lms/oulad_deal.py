"""`scorer oulad-deal RAW_DIR --out RAW_OUT --presentations 4 [--seed 0]`: one OULAD module-presentation's
students dealt at random into several presentations of the module, as raw OULAD tables.

Why: learning across flows in strict time order needs several flows of one course, and the shared
dataset holds one presentation (BBB 2013B). Dealt into 2013B, 2013J, 2014B, 2014J, ... (B and J
overlap in time as OULAD's do: `oulad.default_anchor`), each student keeps their own rows, days and
result; the module's own tables (courses, vle, assessments) are copied to every presentation, with
ids moved up a power of ten per presentation so no two share a site or an assessment (their order
within a presentation, which the importer follows, is kept). `scorer import oulad` reads the result;
the "Several presentations" figures in docs/models.md come from it. The flows are one cohort dealt apart, so
this checks learning from earlier flows, not a cohort that changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from streams.lms.oulad_tables import OuladFormatError, find_table
from streams.unusable import UnusableInput

PRESENTATIONS = ("2013B", "2013J", "2014B", "2014J", "2015B", "2015J")
TABLES = ("courses", "vle", "assessments", "studentInfo", "studentRegistration", "studentVle", "studentAssessment")
#: Ids of the module's own rows, unique per presentation in OULAD.
IDS = ("id_site", "id_assessment")


@dataclass(frozen=True)
class Dealt:
    module: str
    students: dict[str, int]  # presentation -> students dealt to it


def deal(raw_dir: Path, out_dir: Path, presentations: int, seed: int = 0) -> Dealt:
    """Write the dealt tables to `out_dir` (plain CSV); UnusableInput unless `raw_dir` holds exactly one
    module-presentation and 2..len(PRESENTATIONS) presentations are asked for."""
    if not 2 <= presentations <= len(PRESENTATIONS):
        raise UnusableInput(f"--presentations must be 2..{len(PRESENTATIONS)}")
    tables = {name: _read(raw_dir, name) for name in TABLES}
    info = tables["studentInfo"]
    [module, *others] = sorted(set(info["code_module"])) or [""]
    if others or len(set(info["code_presentation"])) != 1:
        raise OuladFormatError("deal needs the tables of one module-presentation")
    students = sorted(set(info["id_student"].astype(int)))
    draw = np.random.default_rng(seed).integers(0, presentations, len(students))
    to = pd.Series(draw, index=students)
    steps = {column: _power_above(tables, column) for column in IDS}
    out_dir.mkdir(parents=True, exist_ok=True)
    names = PRESENTATIONS[:presentations]
    for name, table in tables.items():
        parts = [_part(table, k, presentation, to, steps) for k, presentation in enumerate(names)]
        pd.concat(parts).to_csv(out_dir / f"{name}.csv", index=False)
    return Dealt(module, {presentation: int((draw == k).sum()) for k, presentation in enumerate(names)})


def _read(raw_dir: Path, name: str) -> pd.DataFrame:
    path = find_table(raw_dir, name)
    if path is None:
        raise OuladFormatError(f"{raw_dir} has no {name}.csv")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _power_above(tables: dict[str, pd.DataFrame], column: str) -> int:
    """The smallest power of ten above every id in `column`: presentation k's ids move up k of them."""
    largest = max((int(pd.to_numeric(t[column]).max()) for t in tables.values() if column in t and len(t)), default=0)
    return int(10 ** len(str(largest)))


def _part(table: pd.DataFrame, k: int, presentation: str, to: pd.Series, steps: dict[str, int]) -> pd.DataFrame:
    """Presentation k's share of `table`: its students' rows, or all of the module's rows, re-labelled."""
    part = table.copy()
    if "id_student" in part:
        part = part[to.reindex(part["id_student"].astype(int)).to_numpy() == k].copy()
    if "code_presentation" in part:
        part["code_presentation"] = presentation
    for column, step in steps.items():
        if column in part:
            part[column] = (part[column].astype(int) + k * step).astype(str)
    return part
