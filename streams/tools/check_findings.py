"""What `scorer check`'s parts share: a finding and its levels, how long a server may take, and the consumer groups
the settings name (streams.tools.preflight asks most questions, streams.tools.check_access the grants)."""
from __future__ import annotations

from dataclasses import dataclass

from streams.contract.topics import GROUP_TOPICS, Topic
from streams.settings import Settings

OK, WARN, ERROR, SKIPPED = "ok", "warn", "error", "skipped"
#: Seconds any one server may take to answer before it counts as unreachable.
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Finding:
    dependency: str  # kafka | redis | postgres
    check: str
    level: str  # OK, WARN, ERROR or SKIPPED
    detail: str


def consumer_groups(settings: Settings) -> list[tuple[str, tuple[Topic, ...], str]]:
    """The consumer groups the settings name, the topics each commits offsets on, and whose it is."""
    return [(settings.app_id, GROUP_TOPICS, "the workers join it and commit in it"),
            (settings.notify_group, (Topic.ALERTS,), "`scorer notify` joins it and commits in it")]
