"""`scorer notify` never skips an alert because Redis or the broker is down, and never loops forever on one it
cannot handle: an outage is waited out, any other error is dead-lettered after a few tries."""
from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka.errors import KafkaConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError

from streams.notify.consumer import POISON_ATTEMPTS, settle
from streams.notify.notifier import Source

SOURCE = Source("scorer.alerts", 0, 7, b"1", b'{"alert_id": "a"}')


@dataclass
class Flaky:
    """Raises each error in turn, then handles; records what became of the record."""

    errors: list[Exception]
    handled: int = 0
    quarantined: list[BaseException] = field(default_factory=list)

    async def handle(self, source: Source) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.handled += 1

    async def quarantine(self, source: Source, error: BaseException) -> None:
        self.quarantined.append(error)


async def test_an_outage_is_waited_out_however_long():
    notifier = Flaky([RedisConnectionError("down")] * 10 + [KafkaConnectionError(), OSError("reset")])
    await settle(notifier, SOURCE, waits=(0.0,))
    assert notifier.handled == 1 and notifier.quarantined == []


async def test_an_alert_that_keeps_failing_for_another_reason_is_dead_lettered():
    notifier = Flaky([KeyError("x")] * (POISON_ATTEMPTS + 5))
    await settle(notifier, SOURCE, waits=(0.0,))
    assert notifier.handled == 0 and len(notifier.quarantined) == 1
    assert isinstance(notifier.quarantined[0], KeyError)


async def test_a_passing_failure_is_retried_not_dead_lettered():
    notifier = Flaky([ValueError("once")] * (POISON_ATTEMPTS - 1))
    await settle(notifier, SOURCE, waits=(0.0,))
    assert notifier.handled == 1 and notifier.quarantined == []
