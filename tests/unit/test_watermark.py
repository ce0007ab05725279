from streams.core.watermark import WatermarkTracker

H = 3600.0


def test_min_over_topics_with_unread_records():
    w = WatermarkTracker(lateness=H)
    w.set_offsets("a", 0, 0, 10)
    w.set_offsets("b", 0, 0, 10)
    w.observe("a", 0, 0, 100 * H)
    assert w.watermark(0) is None  # b has unread records we have not seen
    w.observe("b", 0, 0, 50 * H)
    assert w.watermark(0) == 50 * H


def test_caught_up_topic_does_not_hold_back_and_cap_applies():
    w = WatermarkTracker(lateness=H)
    w.observe("a", 0, 0, 100 * H)
    w.set_offsets("a", 0, 0, 1)
    w.set_offsets("b", 0, 0, 0)  # empty topic: caught up
    assert w.watermark(0) == 99 * H


def test_never_goes_backwards_and_partitions_are_separate():
    w = WatermarkTracker(lateness=0)
    w.set_offsets("a", 0, 0, 5)
    w.set_offsets("a", 1, 0, 5)
    w.observe("a", 0, 0, 10.0)
    w.observe("a", 1, 0, 3.0)
    assert w.watermark(0) == 10.0 and w.watermark(1) == 3.0
    w.observe("a", 0, 1, 4.0)
    assert w.watermark(0) == 10.0


def test_live_clock_advances_idle_partitions():
    w = WatermarkTracker(lateness=H, live=True)
    w.observe("a", 0, 0, 100.0)
    w.set_offsets("a", 0, 1, 1)
    assert w.watermark(0, now=1_000_000.0) == 1_000_000.0 - H


def test_unread_schedule_holds_back_every_partition():
    w = WatermarkTracker(lateness=0, shared=frozenset({"schedule"}))
    w.set_offsets("schedule", 3, 0, 2)  # course-keyed: its partition 3 matters to student partition 0
    w.set_offsets("a", 0, 0, 5)
    w.observe("a", 0, 0, 10.0)
    assert w.watermark(0) is None
    assert w.partitions() == {0}
    w.observe("schedule", 3, 1, 1.0)
    w.set_offsets("schedule", 3, 2, 2)  # read to the end: no longer holds anything back
    assert w.watermark(0) == 10.0


def test_a_quiet_schedule_read_to_its_end_does_not_hold_back_streaming_activity():
    """Activity keeps arriving, so every reading of the quiet schedule log is older than the newest
    record: the schedule read to its end still lets the watermark move (unread rows hold it back)."""
    w = WatermarkTracker(lateness=0, shared=frozenset({"schedule"}))
    w.set_offsets("schedule", 1, 0, 1, read_at=100.0)
    w.observe("schedule", 1, 0, 1.0, produced_at=50.0)
    w.set_offsets("a", 0, 0, 10, read_at=100.0)
    w.observe("a", 0, 0, 20.0, produced_at=200.0)  # produced after every reading so far
    w.observe("a", 0, 1, 30.0, produced_at=201.0)
    assert w.watermark(0) == 30.0
    w.set_offsets("schedule", 1, 1, 2, read_at=300.0)  # a new schedule row, not read yet
    w.observe("a", 0, 2, 40.0, produced_at=301.0)
    assert w.watermark(0) == 30.0


def test_stale_highwater_reading_cannot_fake_caught_up():
    w = WatermarkTracker(lateness=0)
    w.set_offsets("a", 0, 0, 10)
    w.set_offsets("b", 0, 0, 10)
    w.observe("a", 0, 4, 5.0)
    w.observe("b", 0, 9, 50.0)  # b fully read
    w.set_offsets("a", 0, 5, 3)  # a reading older than the last one: must not mark a as read
    assert w.watermark(0) == 5.0


def test_log_end_read_before_the_newest_record_is_not_trusted():
    """A paused partition keeps an old reading; the log may have grown since."""
    w = WatermarkTracker(lateness=0)
    w.set_offsets("a", 0, 0, 3, read_at=0.0)  # read long ago
    w.observe("a", 0, 2, 5.0)  # we have read up to that old log end
    w.set_offsets("b", 0, 0, 10)
    w.observe("b", 0, 0, 40.0)
    assert w.watermark(0) == 5.0  # a is not taken as fully read
    w.set_offsets("a", 0, 3, 3)  # a fresh reading: a really is at its end
    assert w.watermark(0) == 40.0


def test_a_reading_taken_after_the_newest_record_was_produced_is_fresh():
    """Under continuous traffic every batch raises the newest time; readings taken before the
    batch but after its records were produced must still count, or quiet partitions stall."""
    w = WatermarkTracker(lateness=0)
    w.set_offsets("empty", 0, None, 0, read_at=100.0)  # an empty partition, read at t=100
    w.set_offsets("a", 0, 0, 1, read_at=100.0)
    w.observe("a", 0, 0, 50.0, produced_at=99.0)
    assert w.watermark(0) == 50.0
    w.observe("a", 0, 1, 60.0, produced_at=101.0)  # produced after the last reading
    w.set_offsets("a", 0, None, 2, read_at=100.0)
    assert w.watermark(0) == 50.0  # the empty partition's reading predates it: not trusted


def test_a_newer_time_seen_by_another_worker_moves_quiet_partitions():
    """A worker whose partitions are fully read is capped by the group's newest time, not its own."""
    w = WatermarkTracker(lateness=10)
    w.set_offsets("a", 0, 0, 1, read_at=100.0)
    w.observe("a", 0, 0, 50.0, produced_at=99.0)
    assert w.watermark(0) == 40.0
    w.adopt_newest(80.0, 99.5)  # another worker read a record of t=80, produced before our reading
    assert w.watermark(0) == 70.0
    w.adopt_newest(90.0, 150.0)  # produced after our reading: our log end may be stale now
    assert w.watermark(0) == 70.0
    w.adopt_newest(60.0, 1.0)  # older than what we know: ignored
    assert w.newest == (90.0, 150.0)
