"""The console's page frame and small HTML fragments. Every value passes through `esc`; the
pages carry no script, and the Content-Security-Policy below allows none, so an injected
`<script>` in a theme's name could not run even if escaping were missed somewhere."""
from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterable, Sequence
from contextvars import ContextVar

from streams.console.svg import esc
from streams.console.words import holding, language, say, term
from streams.tokens import Reader

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:8px 20px;display:flex;gap:18px;align-items:center}
header a{color:#fff;text-decoration:none}header form{margin-left:auto}
main{padding:12px 20px;max-width:1100px}h1{font-size:20px}h2{font-size:16px;margin-top:26px}
table{border-collapse:collapse;background:#fff;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#eceff1}td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{width:100%;max-width:760px;background:#fff;border:1px solid #ddd;display:block;margin:6px 0}
.chart .axis{stroke:#555}.chart .cut{stroke:#555;stroke-dasharray:4 3}.chart .tick{font-size:11px;fill:#444}
.chart .muted{fill:#888}.chart .corner{font-size:12px;font-weight:bold}
.note{color:#555;font-size:13px}.error{color:#b71c1c}
.status-active{color:#2e7d32}.status-dozing{color:#e65100}.status-asleep{color:#c62828}.status-finished{color:#607d8b}
.trend-up{color:#c62828;font-weight:bold}.trend-down{color:#2e7d32;font-weight:bold}.trend-flat,.trend-none{color:#777}
ul.reasons{margin:0;padding-left:16px}.guess{color:#777;font-size:12px}.who{margin-right:10px;color:#cfd8dc}
"""
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
#: No script, no remote anything; only this page's own <style> and same-origin forms.
CSP = (f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


_READER: ContextVar[Reader | None] = ContextVar("console_reader", default=None)


def signed_in_as(reader: Reader) -> contextlib.AbstractContextManager[None]:
    """Pages made inside name `reader` in their header (and the courses they are limited to): on a shared
    computer a curator sees whose session it is, and one limited to some courses why they see those only."""
    return holding(_READER, reader)


def _who() -> str:
    reader = _READER.get()
    if reader is None:
        return ""
    courses = "" if reader.courses is None else " · " + say("nav.courses_only", courses=", ".join(
        str(course) for course in sorted(reader.courses)))
    return f'<span class="who">{esc(reader.name + courses)}</span>'


def layout(title: str, body: str, signed_in: bool = True) -> str:
    """A whole page in the request's language: the navigation (and who is signed in), `title` as its heading,
    then `body` (already HTML)."""
    nav = (f'<a href="/console/">{esc(say("nav.courses"))}</a><a href="/console/model">{esc(say("nav.model"))}</a>'
           f'<form method="post" action="/console/logout">{_who()} '
           f'<button type="submit">{esc(say("nav.logout"))}</button></form>' if signed_in else "")
    return (f"<!doctype html><html lang=\"{language()}\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<link rel=\"icon\" href=\"data:,\"><title>{esc(title)} · edu-scorer</title>"
            f"<style>{CSS}</style></head><body><header><strong>{esc(say('console'))}</strong>{nav}</header>"
            f"<main><h1>{esc(title)}</h1>{body}</main></body></html>")


def link(href: str, text: object) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def number(value: float | int | None, digits: int = 2) -> str:
    """A table cell's number: '–' when unknown."""
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def status(value: str) -> str:
    return f'<span class="status-{esc(value)}">{esc(term(value))}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: frozenset[int] = frozenset(),
          table_id: str | None = None) -> str:
    """A table whose headers and cells are already HTML (escape values first: headers may be links)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    id_attr = f' id="{esc(table_id)}"' if table_id else ""
    return f"<table{id_attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bullets(items: Iterable[str]) -> str:
    lines = "".join(f"<li>{esc(item)}</li>" for item in items)
    return f'<ul class="reasons">{lines}</ul>' if lines else "–"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'
