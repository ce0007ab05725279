"""Files read again once replaced (streams.followed): a renewal or a changed people's file takes effect without a
restart, and a replacement that does not read keeps what worked, logged once per state of the files."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge

from streams.followed import FollowedFiles
from streams.settings import Settings
from streams.tokens import Presented
from streams.web import api_tokens

ANNA, BORIS = "anna-s-own-token-0123456789", "boris-s-own-token-0123456789"


def _replace(path: Path, text: str) -> None:
    """As Kubernetes replaces a mounted Secret's file: a new file swapped in whole."""
    Path(f"{path}.new").write_text(text)
    os.replace(f"{path}.new", path)


def test_a_replaced_file_is_read_again_and_a_bad_one_keeps_what_worked(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "number"
    path.write_text("1")
    stale = Gauge("stale", "", ["file"], registry=CollectorRegistry())
    followed = FollowedFiles([str(path)], lambda: int(path.read_text()), "the number", stale)

    def marked() -> float:
        return stale.labels("the number")._value.get()

    assert followed.value == 1 and not followed.refresh() and marked() == 0
    _replace(path, "2")
    assert followed.refresh() and followed.value == 2 and not followed.refresh()
    with caplog.at_level(logging.WARNING, logger="streams.followed"):
        _replace(path, "two")  # int() refuses it
        assert not followed.refresh() and not followed.refresh() and followed.value == 2 and marked() == 1
        path.unlink()
        assert not followed.refresh() and not followed.refresh() and followed.value == 2
    kept = [r.getMessage() for r in caplog.records]
    assert len(kept) == 2 and "the number: kept the one read before" in kept[0] and "FileNotFoundError" in kept[1]
    _replace(path, "3")
    assert followed.refresh() and followed.value == 3 and marked() == 0
    path.rename(tmp_path / "away")  # moved away, then back as it was: nothing to read again, nothing stale
    assert not followed.refresh() and marked() == 1
    (tmp_path / "away").rename(path)
    assert not followed.refresh() and marked() == 0 and followed.value == 3


def test_someone_removed_from_the_people_file_is_refused_without_a_restart(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    people = tmp_path / "people"
    people.write_text(f"Anna {ANNA}\nBoris {BORIS} courses=3\n")
    tokens = api_tokens(Settings(api_tokens_file=str(people)))
    assert tokens.value.presented(BORIS) is Presented.PERSON
    _replace(people, f"Anna {ANNA}\n")  # Boris has left
    assert tokens.refresh()
    assert tokens.value.presented(BORIS) is Presented.WRONG and tokens.value.presented(ANNA) is Presented.PERSON
    with caplog.at_level(logging.WARNING, logger="streams.followed"):
        _replace(people, f"Anna {ANNA}\nCarla short\n")  # a mistake: the line is refused, the file kept as it was
        assert not tokens.refresh() and tokens.value.presented(ANNA) is Presented.PERSON
    assert "line 2 (Carla)" in caplog.text and ANNA not in caplog.text
    assert not api_tokens(Settings(api_token="shared-token-0123456789")).refresh()  # no file: nothing to follow
