"""What a long `scorer evaluate` is doing, told on stderr: over a school of OULAD's size it runs for the best
part of an hour, and an hour without a word looks like a hang."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Progress:
    """Lines `evaluate [  123 s] what` on stderr, or none (`enabled` False: the library's default, and tests').
    Picklable, so a replay in a spawned process tells on the same clock (the system's monotonic one)."""

    enabled: bool = False
    began: float = field(default_factory=time.monotonic)

    def say(self, what: str) -> None:
        if self.enabled:
            print(f"evaluate [{time.monotonic() - self.began:5.0f} s] {what}", file=sys.stderr, flush=True)

    def steps(self, total: int, parts: int = 10) -> frozenset[int]:
        """The step numbers (1-based) after which a loop of `total` steps says how far it got: each tenth."""
        if not self.enabled or total < 1:
            return frozenset()
        return frozenset(-(-total * k // parts) for k in range(1, parts + 1))


#: Nothing told: the library's default
QUIET = Progress()
