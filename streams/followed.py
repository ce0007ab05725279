"""Files a running process reads again once they are replaced, without a restart: a renewed TLS certificate
(streams.tls), the people's tokens when someone leaves or joins (streams.web). Kubernetes replaces a mounted
Secret's files as a whole (a symlink swapped), an operator may edit one in place: either changes what `os.stat`
says of the file, which is all that is watched.

A reading that fails (a half-written file, a line the reader refuses) keeps what was read before, logged once
per state of the files and tried again at each look, so a mistake never takes away what worked; and its gauge
(`scorer_followed_file_stale{file}`) says 1 meanwhile: what was kept may be what the change meant to take away
(a person's token, a certificate about to expire)."""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from prometheus_client import Gauge

log = logging.getLogger(__name__)
T = TypeVar("T")
#: What the files looked like: per file its modification time, size and inode; () where one could not be read.
Stamp = tuple[float, ...]
#: The errors a reading may raise that mean "not these files": anything else is a bug, and propagates.
Refused = (OSError, ValueError)


def stamp(paths: Sequence[str]) -> Stamp:
    """Each file's modification time, size and inode (following symlinks); OSError when one cannot be read."""
    stats = [os.stat(path) for path in paths]
    return tuple(value for found in stats for value in (found.st_mtime, found.st_size, found.st_ino))


class FollowedFiles(Generic[T]):
    """`value`, read from `paths` by `read` (here, at start: its errors stop the start), and read again by
    `refresh` once the files changed. `what` names it in the logs and in `stale`'s `file` label (never the files'
    contents)."""

    def __init__(self, paths: Sequence[str], read: Callable[[], T], what: str, stale: Gauge | None = None) -> None:
        self.paths, self._read, self.what = tuple(paths), read, what
        self._stale = None if stale is None else stale.labels(what)
        self._stamp = stamp(self.paths)
        self.value = read()
        self._refused: Stamp | None = None
        self._mark(False)

    def refresh(self) -> bool:
        """Read the files again if they changed since the last good reading; True if that changed `value`."""
        try:
            now = stamp(self.paths)
        except OSError as error:
            return self._refuse((), f"{type(error).__name__}: {error.strerror}")
        if now == self._stamp:  # unchanged, or back as it was read (a file moved away and back)
            if self._refused is not None:
                self._refused = None
                self._mark(False)
            return False
        try:
            value = self._read()
        except Refused as error:
            return self._refuse(now, str(error))
        self.value, self._stamp, self._refused = value, now, None
        self._mark(False)
        log.info("%s: read again from %s", self.what, ", ".join(self.paths))
        return True

    def _refuse(self, now: Stamp, why: str) -> bool:
        if now != self._refused:
            log.warning("%s: kept the one read before: %s did not load (%s)", self.what, ", ".join(self.paths), why)
        self._refused = now
        self._mark(True)
        return False

    def _mark(self, stale: bool) -> None:
        if self._stale is not None:
            self._stale.set(int(stale))


class Refreshable(Protocol):
    def refresh(self) -> bool: ...


async def follow(followed: Sequence[Refreshable], every_seconds: float) -> None:
    """Refresh each every `every_seconds` (off the event loop: it reads files) until cancelled."""
    if not followed:
        return
    while True:
        await asyncio.sleep(every_seconds)
        for files in followed:
            await asyncio.to_thread(files.refresh)
