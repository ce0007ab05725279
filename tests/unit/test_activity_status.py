"""The status machine fed in watermark-driven batches must equal the all-at-once reference."""
import random

from features import DAY, DEFAULT_THRESHOLDS, StatusMachine, Thresholds, reference_transitions


def _key(transitions):
    return [(t.from_status, t.to_status, t.at, t.alert_id) for t in transitions]


def test_thresholds_from_the_seed():
    out = reference_transitions(1, [0.0, 30 * DAY], 31 * DAY)
    assert [(t.from_status, t.to_status, t.at / DAY) for t in out] == [
        ("active", "dozing", 7.0), ("dozing", "asleep", 20.0), ("asleep", "active", 30.0)]
    assert out[1].days_inactive == 20.0


def test_activity_just_before_threshold_does_not_flap():
    out = reference_transitions(1, [0.0, 7 * DAY - 1, 14 * DAY - 2], 14 * DAY - 2)
    assert out == []


def test_batches_driven_by_watermark_equal_reference():
    rng = random.Random(42)
    for trial in range(300):
        times = sorted(rng.uniform(0, 120 * DAY) for _ in range(rng.randint(1, 25)))
        if rng.random() < 0.5:  # long silences make dozing/asleep likely
            times = [t for t in times if not 30 * DAY < t < 70 * DAY]
        end = 130 * DAY
        expected = reference_transitions(7, times, end, Thresholds(7, 20))
        machine, got, i = StatusMachine(7), [], 0
        marks = [*sorted(rng.uniform(0, end) for _ in range(rng.randint(1, 15))), end]
        for mark in marks:
            while i < len(times) and times[i] <= mark:  # everything up to the watermark has arrived
                machine.add(times[i])
                i += 1
            for extra in times[i:i + rng.randint(0, 2)]:  # and maybe some early birds beyond it
                machine.add(extra)
                i += 1
            got += machine.advance(mark, Thresholds(7, 20))
            machine = StatusMachine.from_json(7, machine.to_json())  # survives a trip through Redis
        assert _key(got) == _key(expected), trial


def _asleep_since_day_20() -> StatusMachine:
    machine = StatusMachine(1)
    machine.add(0.0)
    machine.advance(40 * DAY, DEFAULT_THRESHOLDS)
    assert machine.status == "asleep" and machine.horizon == 40 * DAY
    return machine


def test_old_late_activity_neither_wakes_nor_back_dates():
    """Day 25 activity learnt at day 40: the student has been quiet for 15 days there, so the
    alerts already sent stand and none is added (the reference would have woken them on day 25)."""
    machine = _asleep_since_day_20()
    assert machine.add(25 * DAY) is False  # late
    assert machine.advance(41 * DAY, DEFAULT_THRESHOLDS) == []
    assert machine.status == "asleep" and machine.last == 25 * DAY  # the clock runs from it now


def test_recent_late_activity_wakes_at_the_horizon_never_before():
    machine = _asleep_since_day_20()
    machine.add(36 * DAY)  # four days before the horizon: they are active at day 40
    (woke,) = machine.advance(41 * DAY, DEFAULT_THRESHOLDS)
    assert (woke.from_status, woke.to_status, woke.at) == ("asleep", "active", 40 * DAY)
    assert woke.last_activity == 36 * DAY and woke.days_inactive == 4.0
    assert machine.next_due(DEFAULT_THRESHOLDS) == 43 * DAY  # dozing 7 days after day 36


def test_late_activity_of_an_active_student_only_moves_the_clock():
    machine = StatusMachine(1)
    machine.add(0.0)
    machine.advance(5 * DAY, DEFAULT_THRESHOLDS)
    machine.add(3 * DAY)
    assert machine.advance(9 * DAY, DEFAULT_THRESHOLDS) == []  # not dozing at day 7 any more
    assert machine.next_due(DEFAULT_THRESHOLDS) == 10 * DAY


def test_next_due_points_at_the_threshold():
    machine = StatusMachine(1)
    machine.add(DAY)
    machine.advance(2 * DAY, DEFAULT_THRESHOLDS)
    assert machine.next_due(DEFAULT_THRESHOLDS) == 8 * DAY


def test_nobody_dozes_before_the_course_starts():
    # enrolled and logged in on day 0, the course starts on day 30: the clock starts then
    out = reference_transitions(1, [0.0], 60 * DAY, DEFAULT_THRESHOLDS, start=30 * DAY)
    assert [(t.to_status, t.at / DAY, t.days_inactive) for t in out] == [("dozing", 37.0, 7.0), ("asleep", 50.0, 20.0)]
    assert out[0].last_activity == 0.0


def test_start_survives_a_round_trip():
    machine = StatusMachine(3, start=5.0)
    assert StatusMachine.from_json(3, machine.to_json()).start == 5.0


def test_the_lifecycle_end_stops_the_inactivity_clock() -> None:
    out = reference_transitions(1, [0.0], 60 * DAY, DEFAULT_THRESHOLDS, end=15 * DAY)
    assert [(t.to_status, t.at / DAY) for t in out] == [("dozing", 7.0), ("finished", 15.0)]
    quiet = reference_transitions(1, [0.0], 60 * DAY, DEFAULT_THRESHOLDS, end=5 * DAY)
    assert [(t.from_status, t.to_status) for t in quiet] == [("active", "finished")]


def test_an_end_learnt_after_the_horizon_finishes_at_the_horizon() -> None:
    machine = StatusMachine(1)
    machine.add(0.0)
    machine.advance(10 * DAY, DEFAULT_THRESHOLDS)
    machine.end = 3 * DAY  # the outcome dated day 3 arrived only now
    (finished,) = machine.advance(11 * DAY, DEFAULT_THRESHOLDS)
    assert (finished.from_status, finished.to_status, finished.at) == ("dozing", "finished", 10 * DAY)
    machine.add(12 * DAY)
    assert machine.advance(40 * DAY, DEFAULT_THRESHOLDS) == [] and machine.next_due(DEFAULT_THRESHOLDS) is None


def test_scopes_keep_two_enrolments_alert_ids_apart() -> None:
    first = reference_transitions(1, [0.0], 10 * DAY, DEFAULT_THRESHOLDS, scope="3:1")
    second = reference_transitions(1, [0.0], 10 * DAY, DEFAULT_THRESHOLDS, scope="5:1")
    assert first[0].alert_id != second[0].alert_id
