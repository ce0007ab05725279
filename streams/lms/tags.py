"""Student hashtags from users_logs.csv comments: the customer's online filter and the tag state.

Two readings of the same comments coexist on purpose:

(a) `matches_seed_online_filter` reproduces, literally, the LIKE patterns of the seed's SQL
    ("Фильтр выборки обучающихся", the customer's definition of an online student). It is a
    per-row test and a student is selected if *any* of their rows matches.
(b) `tags_after` parses the tag set a row leaves the student with; `is_online` / `has_payment`
    read that state. This is what a student's profile says at a given moment.

Where they disagree:
- A switch офлайн→онлайн ("Были хештеги: #entry-email #офлайн, стали: #entry-email #онлайн",
  the seed's first sample row): (a) False, because pattern 1 wants "онлайн" on both sides;
  (b) online. The customer's filter misses students who became online by switching.
- A switch онлайн→офлайн after an earlier matching row: (a) keeps the student selected for
  good; (b) is offline from that row on.
- LIKE matches substrings: "стали: #онлайн-интенсив" or an "Установлен ..." comment that merely
  mentions "онлайн" pass (a); (b) requires the exact tag #онлайн.
- The misspelt previous tags of patterns 4/5 (#оулайн, #оглайн) are matched by (a) only when
  #онлайн follows "стали:"; (b) ignores what the tags were before.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

ONLINE_TAG = "#онлайн"
OFFLINE_TAG = "#офлайн"

#: The seed SQL's patterns. The second one is broken in the document
#: ('Установлен хештег "#онлайн" --'%Установлен%онлайн%') and read as 'Установлен%онлайн%'.
SEED_ONLINE_PATTERNS = (
    "Были хештеги:%онлайн%стали:%онлайн%",
    "Установлен%онлайн%",
    "Были хештеги: , стали:%онлайн%",
    "Были хештеги%оулайн%стали:%онлайн%",
    "Были хештеги%оглайн%стали:%онлайн%",
)

_TAG = re.compile(r"#[^\s,\"'«»]+")
_CHANGED = re.compile(r"^\s*Были хештеги:(?P<before>.*?),?\s*стали:(?P<after>.*)$", re.S)
_SET = re.compile(r"^\s*Установлен\w*\s+хештег\w*(?P<tags>.*)$", re.S)
_PAYMENT = re.compile(r"#[MМ]\d+-оплачен")


@cache
def _like_regex(pattern: str) -> re.Pattern[str]:
    """PostgreSQL LIKE (case-sensitive, whole string): % = any run, _ = one character."""
    body = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.S)


def like(text: str, pattern: str) -> bool:
    return _like_regex(pattern).fullmatch(text) is not None


def matches_seed_online_filter(comment: str | None) -> bool:
    """(a): the customer's online filter on one users_logs comment, as the seed SQL has it."""
    return comment is not None and any(like(comment, p) for p in SEED_ONLINE_PATTERNS)


def _unique(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def tags_after(comment: str, previous: Sequence[str] = ()) -> list[str]:
    """(b): the student's tags once this change is applied.

    "Были хештеги: …, стали: …" lists the whole new set; "Установлен хештег "#x"" only names
    what was added, so it is applied to `previous`. Raises ValueError for any other comment,
    since guessing a tag set would silently corrupt the profile."""
    changed = _CHANGED.match(comment)
    if changed:
        return _unique(_TAG.findall(changed["after"]))
    added = _SET.match(comment)
    if added:
        return _unique([*previous, *_TAG.findall(added["tags"])])
    raise ValueError(f"not a tag change: {comment[:80]!r}")


def tags_before(comment: str) -> list[str] | None:
    """The tags a "Были хештеги" comment says the student had before; None for other forms."""
    changed = _CHANGED.match(comment)
    return _unique(_TAG.findall(changed["before"])) if changed else None


def is_online(tags: Sequence[str]) -> bool:
    return ONLINE_TAG in tags


def has_payment(tags: Sequence[str]) -> bool:
    """A payment tag like #M1-оплачен (Latin or Cyrillic M)."""
    return any(_PAYMENT.fullmatch(tag) for tag in tags)
