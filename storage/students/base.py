"""What the pipeline needs from a student store, beside its implementations (Redis, in memory).

A student's document and its redelivery fence are swapped in together by compare-and-set on a
version, so "apply the event" and "remember it was applied" are one atomic step; the same
commit keeps a per-partition "due" index (when each student next needs a look) and the
per-status counters, so finding students who fell asleep never scans everyone.

The flow index says when every enrolment of a flow has its outcome, so the flow's outcomes
(waiting in its students' documents) are learned then: a fact about many students, which no
one student's document holds. Recording is idempotent (a redelivered batch records the same).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from features.activity_status import NEW
from features.schedule import ScheduleKey

#: A student's document as the store keeps it: a JSON object (see streams.core.documents.StudentDoc).
Document = Mapping[str, Any]


@dataclass
class Commit:
    user_id: int
    partition: int
    expected_version: int
    doc: Document
    due: float | None  # next time this student needs attention; None: never (until an event)
    status_delta: Mapping[str, int] = field(default_factory=dict)  # status -> enrolments gained (+) / lost (-)


@dataclass(frozen=True)
class FlowRecord:
    """An enrolment of a flow (a student on a partition), with its outcome's time once it has one."""

    flow: ScheduleKey  # (course id, flow number)
    user_id: int
    partition: int
    outcome_at: float | None


@dataclass(frozen=True)
class Forgotten:
    """What a student store held of one student, now deleted (`StudentStore.forget`)."""

    document: bool
    enrolments: int  # taken off the per-status counters
    flows: int  # flow index entries (a flow they alone held open is now complete, its students woken)


def counted_statuses(doc: Document) -> Counter[str]:
    """The per-status counters' share of one document: each enrolment once it left `new`."""
    return Counter(machine["status"] for e in _enrolments(doc)
                   if isinstance(machine := e.get("machine"), Mapping) and machine.get("status") not in (None, NEW))


def flows_of(doc: Document) -> list[ScheduleKey]:
    """The flows a document's enrolments belong to."""
    return [(int(e["course_id"]), None if e.get("flow") is None else int(e["flow"]))
            for e in _enrolments(doc) if e.get("course_id") is not None]


def _enrolments(doc: Document) -> list[Mapping[str, Any]]:
    """A document's enrolments as far as they can be read: erasing a student must work on a document the step
    cannot read (one a newer release wrote, say), which is when it is most needed."""
    enrolments = doc.get("enrolments")
    return [e for e in enrolments.values() if isinstance(e, Mapping)] if isinstance(enrolments, Mapping) else []


class StudentStore(Protocol):
    async def load(self, user_ids: Iterable[int]) -> dict[int, tuple[int, dict[str, Any] | None]]:
        """Version and document of each student (version 0, None for a student never seen)."""

    async def commit(self, commits: list[Commit]) -> list[int]:
        """Swap in new documents; returns the students whose version moved under us (to redo)."""

    async def due(self, partition: int, until: float, limit: int = 5000) -> list[int]:
        """Students of a partition whose next attention time has come."""

    async def record_flows(self, records: list[FlowRecord]) -> dict[ScheduleKey, float]:
        """Add enrolments and outcomes to the flow index; returns, of the flows these records gave an
        outcome, those now complete, with their last outcome's time."""

    async def flows_done(self, flows: Iterable[ScheduleKey]) -> dict[ScheduleKey, float]:
        """The complete ones of these flows, with their last outcome's time."""

    async def wake_flows(self, done: Mapping[ScheduleKey, float]) -> None:
        """Make every student of each flow due by that time at the latest (their outcomes are released)."""

    async def raise_newest(self, ts: float, produced_at: float) -> tuple[float, float]:
        """The group's newest event time (and when it was produced), raised to `ts` if newer."""

    async def status_counts(self) -> dict[str, int]:
        """Enrolments per status."""

    async def forget(self, user_ids: Collection[int], dry_run: bool = False) -> dict[int, Forgotten]:
        """Erase students: their documents, their places in the due index, the counters and the flow index
        (the school's duty on a request to erase someone's personal data, or once it need not keep them);
        `dry_run`: only say what is held. Any number of students at a cost of one pass over the due index."""

    async def put_schedule(self, records: list[dict[str, Any]]) -> None:
        """Course schedule rows; the same row twice is harmless, and the schedule version moves."""

    async def schedule_version(self) -> int:
        """Moves whenever schedule rows are put: cached schedules older than it are stale."""

    async def schedule_records(self, course_id: int) -> list[dict[str, Any]]:
        """Every schedule row of a course."""

    async def claim(self, history_read: bool, now: float) -> float | None:
        """Mark the store as the one holding this group's student state, once. `history_read`: the consumer
        group has committed offsets, so the state of what it read should be here. Returns when the state was
        found lost (history read, yet neither the mark nor any student's document is here: a Redis restarted
        empty), as long as the loss stands; None otherwise."""

    async def ping(self) -> bool:
        """Is the store reachable?"""

    async def replicated(self) -> None:
        """Return once every write acknowledged so far would survive a failover to a replica (as many replicas
        hold it as the store was asked to wait for; none asked: at once); else raise a timeout, an outage to
        the worker. The worker asks before it commits a batch's offsets: once they are committed, the batch
        is not read again, and a replica that had not received its writes would lose them."""

    async def close(self) -> None:
        """Release connections."""


def schedule_field(record: Mapping[str, Any]) -> str:
    """A schedule row's identity within its course: republishing it replaces it."""
    return f'{record.get("flows")}:{record["activity_id"]}'
