"""A StudentStore in process memory, with the Redis store's semantics, for fast tests and tools.

Documents are copied in and out as JSON, so a caller can never change what is stored
without a commit (as with Redis).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import orjson

from features.schedule import ScheduleKey
from storage.students.base import Commit, FlowRecord, Forgotten, counted_statuses, flows_of, schedule_field


class InMemoryStudentStore:
    def __init__(self) -> None:
        self.docs: dict[int, tuple[int, bytes]] = {}
        self.due_at: dict[int, dict[int, float]] = {}  # partition -> user -> due time
        self.counts: Counter[str] = Counter()
        self.newest: tuple[float, float] | None = None
        self.schedules: dict[int, dict[str, dict[str, Any]]] = {}
        self.schedule_puts = 0
        self.flow_members: dict[ScheduleKey, dict[int, int]] = {}  # flow -> user -> partition
        self.flow_outcomes: dict[ScheduleKey, dict[int, float]] = {}  # flow -> user -> outcome time

    async def load(self, user_ids: Iterable[int]) -> dict[int, tuple[int, dict[str, Any] | None]]:
        out: dict[int, tuple[int, dict[str, Any] | None]] = {}
        for user_id in user_ids:
            version, raw = self.docs.get(user_id, (0, b""))
            out[user_id] = (version, orjson.loads(raw) if raw else None)
        return out

    async def commit(self, commits: list[Commit]) -> list[int]:
        conflicts = []
        for c in commits:
            if self.docs.get(c.user_id, (0, b""))[0] != c.expected_version:
                conflicts.append(c.user_id)
                continue
            self.docs[c.user_id] = (c.expected_version + 1, orjson.dumps(c.doc))
            partition = self.due_at.setdefault(c.partition, {})
            if c.due is None:
                partition.pop(c.user_id, None)
            else:
                partition[c.user_id] = c.due
            for status, change in c.status_delta.items():
                self.counts[status] += change
        return conflicts

    async def due(self, partition: int, until: float, limit: int = 5000) -> list[int]:
        ready = sorted((at, user) for user, at in self.due_at.get(partition, {}).items() if at <= until)
        return [user for _, user in ready[:limit]]

    async def record_flows(self, records: list[FlowRecord]) -> dict[ScheduleKey, float]:
        for r in records:
            self.flow_members.setdefault(r.flow, {})[r.user_id] = r.partition
            if r.outcome_at is not None:
                self.flow_outcomes.setdefault(r.flow, {})[r.user_id] = r.outcome_at
        return await self.flows_done({r.flow for r in records if r.outcome_at is not None})

    async def flows_done(self, flows: Iterable[ScheduleKey]) -> dict[ScheduleKey, float]:
        done = {}
        for flow in flows:
            outcomes = self.flow_outcomes.get(flow, {})
            if outcomes and outcomes.keys() >= self.flow_members.get(flow, {}).keys():
                done[flow] = max(outcomes.values())
        return done

    async def wake_flows(self, done: Mapping[ScheduleKey, float]) -> None:
        for flow, at in done.items():
            for user, partition in self.flow_members.get(flow, {}).items():
                due = self.due_at.setdefault(partition, {})
                due[user] = min(due.get(user, at), at)

    async def raise_newest(self, ts: float, produced_at: float) -> tuple[float, float]:
        if self.newest is None or ts > self.newest[0]:
            self.newest = (ts, produced_at)
        return self.newest

    async def status_counts(self) -> dict[str, int]:
        return dict(self.counts)

    async def forget(self, user_ids: Collection[int], dry_run: bool = False) -> dict[int, Forgotten]:
        report: dict[int, Forgotten] = {}
        left: set[ScheduleKey] = set()
        for user_id in user_ids:
            _, raw = self.docs.get(user_id, (0, b""))
            doc = orjson.loads(raw) if raw else None
            statuses = counted_statuses(doc) if doc is not None else Counter()
            flows = [f for f in flows_of(doc) if user_id in self.flow_members.get(f, {})] if doc is not None else []
            report[user_id] = Forgotten(doc is not None, sum(statuses.values()), len(flows))
            if dry_run or doc is None:
                continue
            self.docs.pop(user_id)
            self.counts.subtract(statuses)
            for flow in flows:
                self.flow_members[flow].pop(user_id)
                self.flow_outcomes.get(flow, {}).pop(user_id, None)
            left.update(flows)
        if not dry_run:
            for due in self.due_at.values():
                for user_id in user_ids:
                    due.pop(user_id, None)
            await self.wake_flows(await self.flows_done(left))
        return report

    async def put_schedule(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.schedules.setdefault(record["course_id"], {})[schedule_field(record)] = dict(record)
        self.schedule_puts += 1

    async def schedule_version(self) -> int:
        return self.schedule_puts

    async def schedule_records(self, course_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.schedules.get(course_id, {}).values()]

    async def claim(self, history_read: bool, now: float) -> float | None:
        """Never lost: this store lives and dies with the process that reads the topics."""
        return None

    async def ping(self) -> bool:
        return True

    async def replicated(self) -> None:
        return None

    async def close(self) -> None:
        return None
