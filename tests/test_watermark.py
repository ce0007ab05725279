from streams.watermark import WatermarkTracker

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
    w.set_offsets("a", 0, 0, 1)
    w.set_offsets("b", 0, 0, 0)  # empty topic: caught up
    w.observe("a", 0, 0, 100 * H)
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
    w.set_offsets("a", 0, 1, 1)
    w.observe("a", 0, 0, 100.0)
    assert w.watermark(0, now=1_000_000.0) == 1_000_000.0 - H
