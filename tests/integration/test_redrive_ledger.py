"""The redrive ledger on a real Redis: a record's mark lasts as long as a letter of it is on the
dead-letter topic, so a record goes back once while the ledger stays the size of the topic."""
from __future__ import annotations

from typing import Any

from streams.tools.redrive import Ledger


def test_a_complete_run_forgets_the_records_whose_letters_are_gone(redis_server: Any) -> None:
    redis_server.flushall()
    ledger = Ledger(redis_server, "t.")
    redis_server.sadd("t.redrive:sent", "gone", "kept")  # marks an earlier release wrote, unscored
    assert ledger.sent(["gone", "kept", "new"]) == [True, True, False]  # a dry run sees them as they are

    ledger.adopt_unscored()  # the first real run: read "kept" and "fresh" again, sends "new"
    ledger.read_again(["kept", "fresh"], 100.0)
    ledger.mark(["new"], 100.0)
    assert ledger.trim(100.0) == 1  # "gone": no letter of it was read
    assert ledger.sent(["gone", "kept", "new", "fresh"]) == [False, True, True, False]  # "fresh" was never sent

    ledger.read_again(["new"], 200.0)  # the next run: "kept"'s letters have left the topic (retention)
    assert ledger.trim(200.0) == 1
    assert ledger.sent(["kept", "new"]) == [False, True]
    assert not redis_server.exists("t.redrive:sent")
