"""Signed webhooks: a receiver tells the scorer's POSTs from anyone else's, and a fresh one from an old one
sent again.

With SCORER_NOTIFY_WEBHOOK_SECRET set, every POST carries `Edu-Scorer-Signature: t=<unix seconds>,v1=<hex>`,
<hex> being HMAC-SHA256 keyed by the secret over `<t>.` followed by the body's bytes (the scheme of Stripe's
and others' webhooks). A receiver recomputes it, compares in constant time and refuses a `t` more than a few
minutes off its clock; `verify` does that, for a receiver written in Python. A token in the URL, the other
way, reaches every proxy's access log.

While the secret is being replaced (SCORER_NOTIFY_WEBHOOK_SECRET_PREVIOUS set to the old one), the header
carries a second `v1=` signed with the old secret: a receiver accepts a POST when any `v1` matches, so it can
move to the new secret whenever it likes, before or after the scorer does, without refusing one POST.
"""
from __future__ import annotations

import hashlib
import hmac

HEADER = "Edu-Scorer-Signature"
#: How far a signature's time may lie from the receiver's clock (`verify`): clocks' skew, and a slow POST.
TOLERANCE_SECONDS = 300.0


def _mac(secret: str, body: bytes, t: int) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, at: float, previous: str = "") -> str:
    """The header's value for `body` sent at `at` (unix seconds), signed also with `previous` when given."""
    t = int(at)
    return ",".join([f"t={t}", *(f"v1={_mac(key, body, t)}" for key in (secret, previous) if key)])


def verify(secret: str, header: str | None, body: bytes, now: float, tolerance: float = TOLERANCE_SECONDS) -> bool:
    """Was `body` signed with `secret` (any of the header's `v1`), within `tolerance` of `now`?"""
    fields = [part.strip().split("=", 1) for part in (header or "").split(",") if "=" in part]
    times = [value for key, value in fields if key == "t"]
    t = times[0] if len(times) == 1 else ""
    if not (t.isascii() and t.isdigit() and len(t) <= 12) or abs(now - int(t)) > tolerance:
        return False
    expected = _mac(secret, body, int(t)).encode()
    matches = [hmac.compare_digest(value.encode("ascii", "replace"), expected) for key, value in fields if key == "v1"]
    return any(matches)
