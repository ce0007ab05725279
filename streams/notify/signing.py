"""Signed webhooks: a receiver tells the scorer's POSTs from anyone else's, and a fresh one from an old one
sent again.

With SCORER_NOTIFY_WEBHOOK_SECRET set, every POST carries `Edu-Scorer-Signature: t=<unix seconds>,v1=<hex>`,
<hex> being HMAC-SHA256 keyed by the secret over `<t>.` followed by the body's bytes (the scheme of Stripe's
and others' webhooks). A receiver recomputes it, compares in constant time and refuses a `t` more than a few
minutes off its clock; `verify` does that, for a receiver written in Python. A token in the URL, the other
way, reaches every proxy's access log.
"""
from __future__ import annotations

import hashlib
import hmac

HEADER = "Edu-Scorer-Signature"
#: How far a signature's time may lie from the receiver's clock (`verify`): clocks' skew, and a slow POST.
TOLERANCE_SECONDS = 300.0


def signature(secret: str, body: bytes, at: float) -> str:
    """The header's value for `body` sent at `at` (unix seconds)."""
    t = int(at)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str | None, body: bytes, now: float, tolerance: float = TOLERANCE_SECONDS) -> bool:
    """Was `body` signed with `secret`, within `tolerance` of `now`?"""
    fields = dict(part.strip().split("=", 1) for part in (header or "").split(",") if "=" in part)
    t, given = fields.get("t", ""), fields.get("v1", "")
    if not (t.isascii() and t.isdigit() and len(t) <= 12) or abs(now - int(t)) > tolerance:
        return False
    expected = signature(secret, body, int(t)).partition(",v1=")[2]
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode())
