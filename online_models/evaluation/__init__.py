"""Offline tools over an LMS export, never imported by the worker: `scorer evaluate` (the online
models replayed in strict time order against the seed's per-week random forests), `scorer
dataset` (the school's daily 39-column time series, by the worker's own feature code) and
`scorer hypotheses` (the school's four hypotheses tested against outcomes)."""
