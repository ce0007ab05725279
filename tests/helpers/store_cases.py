"""What every StudentStore must do: imported by the test module of each implementation, which
provides the `store` fixture (the contract tests run once per store)."""
from __future__ import annotations

from storage.students import Commit, FlowRecord, Forgotten, StudentStore


async def test_commit_is_compare_and_set(store: StudentStore) -> None:
    assert (await store.load([1]))[1] == (0, None)
    assert await store.commit([Commit(1, 0, 0, {"a": 1}, 100.0, {"active": 1})]) == []
    version, doc = (await store.load([1]))[1]
    assert (version, doc) == (1, {"a": 1})
    # a second writer that read version 0 loses and is told to redo the student
    assert await store.commit([Commit(1, 0, 0, {"a": 2}, 100.0, {"active": 1})]) == [1]
    assert (await store.load([1]))[1] == (1, {"a": 1})
    assert await store.status_counts() == {"active": 1}


async def test_a_batch_larger_than_a_round_trip_is_loaded_and_committed_whole(store: StudentStore) -> None:
    """2,345 students (Redis sends them in round trips of 500): every document comes back, and a
    conflict in any round trip is reported."""
    students = range(1, 2346)
    assert await store.commit([Commit(u, 0, 0, {"u": u}, None, {"active": 1}) for u in students]) == []
    loaded = await store.load(students)
    assert loaded == {u: (1, {"u": u}) for u in students}
    stale = {7, 777, 1501, 2345}  # these writers read version 0 again: they lose
    commits = [Commit(u, 0, 0 if u in stale else 1, {"u": -u}, None) for u in students]
    assert sorted(await store.commit(commits)) == sorted(stale)
    assert (await store.load([777, 778])) == {777: (1, {"u": 777}), 778: (2, {"u": -778})}


async def test_loaded_documents_are_copies(store: StudentStore) -> None:
    await store.commit([Commit(1, 0, 0, {"a": [1]}, None, {"active": 1})])
    _, doc = (await store.load([1]))[1]
    assert doc is not None
    doc["a"].append(2)  # a caller's change is not stored without a commit
    assert (await store.load([1]))[1] == (1, {"a": [1]})


async def test_due_set_and_status_counts_follow_commits(store: StudentStore) -> None:
    await store.commit([Commit(1, 2, 0, {}, 10.0, {"active": 1}), Commit(2, 2, 0, {}, 50.0, {"active": 1})])
    assert await store.due(2, 20.0) == [1]
    assert await store.due(3, 100.0) == []  # another partition's students are not due here
    await store.commit([Commit(1, 2, 1, {}, None, {"active": -1, "asleep": 1})])
    assert await store.due(2, 100.0) == [2]
    assert await store.status_counts() == {"active": 1, "asleep": 1}


async def test_schedule_rows_are_idempotent(store: StudentStore) -> None:
    row = {"course_id": 3, "activity_id": 8719, "flows": 1, "ts": "2023-12-01T00:00:00"}
    await store.put_schedule([row])
    await store.put_schedule([row])
    assert await store.schedule_records(3) == [row]
    assert await store.schedule_records(4) == []
    assert await store.schedule_version() == 2


async def test_newest_event_time_is_the_groups_maximum(store: StudentStore) -> None:
    assert await store.raise_newest(100.0, 5.0) == (100.0, 5.0)
    assert await store.raise_newest(90.0, 9.0) == (100.0, 5.0)  # an older time never lowers it
    assert await store.raise_newest(100.5, 7.0) == (100.5, 7.0)


async def test_a_flow_is_done_when_every_student_of_it_has_an_outcome(store: StudentStore) -> None:
    """Done at its last outcome's time; recording again changes nothing; a student joining later
    makes it not done until they too have one; flows are apart (flow None included)."""
    flow, other = (3, 1), (3, None)
    assert await store.record_flows([FlowRecord(flow, 1, 0, None), FlowRecord(flow, 2, 1, None),
                                     FlowRecord(other, 1, 0, 50.0)]) == {other: 50.0}
    assert await store.record_flows([FlowRecord(flow, 1, 0, 100.0)]) == {}
    assert await store.flows_done([flow, other, (4, 1)]) == {other: 50.0}
    assert await store.record_flows([FlowRecord(flow, 2, 1, 90.5)]) == {flow: 100.0}
    assert await store.record_flows([FlowRecord(flow, 2, 1, 90.5)]) == {flow: 100.0}  # a redelivery
    assert await store.flows_done([flow]) == {flow: 100.0}
    await store.record_flows([FlowRecord(flow, 3, 0, None)])
    assert await store.flows_done([flow]) == {}
    assert await store.record_flows([FlowRecord(flow, 3, 0, 120.25)]) == {flow: 120.25}


async def test_waking_a_flow_makes_its_students_due_by_then_and_never_later(store: StudentStore) -> None:
    flow = (3, 1)
    await store.record_flows([FlowRecord(flow, 1, 0, 10.0), FlowRecord(flow, 2, 1, 10.0), FlowRecord(flow, 3, 1, 10.0)])
    await store.commit([Commit(1, 0, 0, {}, 500.0), Commit(2, 1, 0, {}, 5.0), Commit(4, 1, 0, {}, 180.0)])
    await store.wake_flows({flow: 100.0})
    assert await store.due(0, 100.0) == [1]  # was due at 500: now by 100
    assert await store.due(1, 99.0) == [2]  # due earlier stays earlier; 3 had no due time, 4 is not of the flow
    assert await store.due(1, 100.0) == [2, 3]


def _doc(*enrolments: tuple[int, int | None, str]) -> dict[str, object]:
    """A document with these (course, flow, status) enrolments: what `forget` reads of one."""
    return {"enrolments": {f"{course}:{flow}": {"course_id": course, "flow": flow, "machine": {"status": status}}
                           for course, flow, status in enrolments}}


async def test_forget_erases_the_document_its_due_entry_and_its_share_of_the_counters(store: StudentStore) -> None:
    await store.commit([Commit(1, 0, 0, _doc((3, 1, "dozing"), (4, None, "new")), 10.0, {"dozing": 1}),
                        Commit(2, 1, 0, _doc((3, 1, "dozing")), 20.0, {"dozing": 1}),
                        Commit(3, 1, 0, _doc((3, 1, "active")), 30.0, {"active": 1})])
    assert await store.forget([2], dry_run=True) == {2: Forgotten(True, 1, 0)}  # its one enrolment that left `new`
    assert (await store.load([2]))[2][0] == 1  # a dry run changes nothing
    forgotten = (await store.forget([2]))[2]
    assert (forgotten.document, forgotten.enrolments) == (True, 1)
    assert (await store.load([1, 2]))[2] == (0, None)
    assert (await store.load([1]))[1][1] == _doc((3, 1, "dozing"), (4, None, "new"))  # the others stay
    assert await store.due(1, 100.0) == [3] and await store.due(0, 100.0) == [1]
    assert {s: n for s, n in (await store.status_counts()).items() if n} == {"dozing": 1, "active": 1}
    assert await store.forget([2]) == {2: Forgotten(False, 0, 0)}  # nothing left: a second request is harmless


async def test_forget_takes_the_student_out_of_their_flows(store: StudentStore) -> None:
    """A flow the erased student alone held open (no outcome yet) is done at once and its students are woken;
    a flow whose last outcome was theirs is done at the others' last."""
    open_flow, closed = (3, 1), (4, 2)
    await store.record_flows([FlowRecord(open_flow, 1, 0, 100.0), FlowRecord(open_flow, 2, 1, None),
                              FlowRecord(closed, 2, 1, 300.0), FlowRecord(closed, 3, 0, 200.0)])
    await store.commit([Commit(1, 0, 0, _doc((3, 1, "finished")), 900.0, {"finished": 1}),
                        Commit(2, 1, 0, _doc((3, 1, "asleep"), (4, 2, "finished")), None,
                               {"asleep": 1, "finished": 1})])
    assert await store.flows_done([open_flow, closed]) == {closed: 300.0}
    assert await store.forget([2], dry_run=True) == {2: Forgotten(True, 2, 2)}
    assert await store.flows_done([open_flow, closed]) == {closed: 300.0}
    forgotten = (await store.forget([2]))[2]
    assert (forgotten.enrolments, forgotten.flows) == (2, 2)
    assert await store.flows_done([open_flow, closed]) == {open_flow: 100.0, closed: 200.0}
    assert await store.due(0, 100.0) == [1]  # woken: due by the flow's last outcome, not at 900
    assert await store.record_flows([FlowRecord(open_flow, 1, 0, 100.0)]) == {open_flow: 100.0}  # 2 stays out


async def test_forget_erases_many_students_at_once_as_one_by_one(store: StudentStore) -> None:
    """Erasing a flow's two open students in one call completes it as erasing them in turn would; a student
    never seen is reported, and the one left is untouched."""
    flow = (3, 1)
    await store.record_flows([FlowRecord(flow, 1, 0, 100.0), FlowRecord(flow, 2, 1, None),
                              FlowRecord(flow, 3, 0, None)])
    await store.commit([Commit(1, 0, 0, _doc((3, 1, "finished")), 900.0, {"finished": 1}),
                        Commit(2, 1, 0, _doc((3, 1, "asleep")), 50.0, {"asleep": 1}),
                        Commit(3, 0, 0, _doc((3, 1, "dozing")), 60.0, {"dozing": 1})])
    preview = await store.forget([2, 3, 4], dry_run=True)
    assert preview == {2: Forgotten(True, 1, 1), 3: Forgotten(True, 1, 1), 4: Forgotten(False, 0, 0)}
    assert await store.forget([2, 3, 4]) == preview
    assert (await store.load([2, 3]))[3] == (0, None) and await store.due(1, 1e9) == []
    assert await store.flows_done([flow]) == {flow: 100.0}  # 1 alone is left, with its outcome
    assert await store.due(0, 100.0) == [1]  # woken
    assert {s: n for s, n in (await store.status_counts()).items() if n} == {"finished": 1}


async def test_ping(store: StudentStore) -> None:
    assert await store.ping()
