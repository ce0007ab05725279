"""`scorer evaluate` tells how far it got on stderr; the library, unless asked, says nothing."""
from __future__ import annotations

import pickle

import pytest

from online_models.evaluation.progress import QUIET, Progress


def test_a_loop_tells_each_tenth_and_its_end(capsys: pytest.CaptureFixture[str]) -> None:
    told = Progress(enabled=True)
    assert sorted(told.steps(1620)) == [162, 324, 486, 648, 810, 972, 1134, 1296, 1458, 1620]
    assert sorted(told.steps(3)) == [1, 2, 3]  # a short loop tells each step once
    assert told.steps(0) == frozenset()
    told.say("week 1: the seed's forest fitted")
    assert capsys.readouterr().err.startswith("evaluate [    0 s] week 1")


def test_quiet_says_nothing_and_a_spawned_replay_keeps_the_clock(capsys: pytest.CaptureFixture[str]) -> None:
    assert QUIET.steps(1620) == frozenset()
    QUIET.say("anything")
    assert capsys.readouterr().err == ""
    told = Progress(enabled=True)
    assert pickle.loads(pickle.dumps(told)) == told  # what a spawned process gets: the same start
