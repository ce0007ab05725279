"""Which enrolments are held out of notifications, so the notifications' effect can be measured.

A held-out enrolment's alerts are recorded (Postgres, the alert's `holdout` field) but not
delivered: comparing how often held-out and notified students come back (`scorer uplift`)
measures what the notifications do. The draw is a pure function of the ids and a salt, so every
worker, a replay and the synthetic generator agree on it without sharing any state, and a
student is in or out for all of an enrolment's alerts (a half-notified student measures nothing).
"""
from __future__ import annotations

import hashlib


def holdout_draw(user_id: int, enrolment: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by (salt, user, enrolment "course:flow")."""
    digest = hashlib.sha256(f"{salt}|{user_id}|{enrolment}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out(user_id: int, enrolment: str, share: float, salt: str) -> bool:
    """Is this enrolment in the holdout? About `share` of enrolments are; 0 holds out nobody.

    >>> held_out(42, "3:1", 0.0, "s"), held_out(42, "3:1", 1.0, "s")
    (False, True)
    """
    return share > 0 and holdout_draw(user_id, enrolment, salt) < share
