"""Module-scoped fixtures over a generated export, for the tests that evaluate or bootstrap models on one."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from online_models.evaluation.students import Student, load_students
from streams.lms.synthetic import generate

Fixture = Callable[..., Any]


def generated_export_fixtures(students: int, weeks: int, seed: int = 3) -> tuple[Fixture, Fixture]:
    """`export_dir` (`scorer generate` of `students` with `seed`) and `students` (it, loaded for
    `weeks` course weeks), each built once per module: assign them to those names in the module."""

    @pytest.fixture(scope="module", name="export_dir")
    def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
        directory = tmp_path_factory.mktemp("lms")
        generate(directory, students, seed=seed)
        return directory

    @pytest.fixture(scope="module", name="students")
    def loaded(export_dir: Path) -> list[Student]:
        return load_students(export_dir, weeks)

    return export_dir, loaded
