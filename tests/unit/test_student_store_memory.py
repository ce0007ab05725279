"""The StudentStore contract (helpers.store_cases) on the in-memory store the unit tests use."""
from __future__ import annotations

import pytest

from helpers.store_cases import *  # noqa: F403 - the contract's tests run here against memory
from storage.students import InMemoryStudentStore


@pytest.fixture
def store() -> InMemoryStudentStore:
    return InMemoryStudentStore()
