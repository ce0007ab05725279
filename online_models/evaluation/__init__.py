"""Offline evaluation (`scorer evaluate`): the online models replayed in strict time order against
the seed's per-week random forests. Never imported by the worker."""
