"""A version's scoring copy: the bundle pickled without what only learning reads, for the workers
(learners.ScoringModels.to_bytes; docs/models.md, "A worker loads a version without its windows")."""
from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any


def reduce_with(obj: object, changes: Mapping[str, Any]) -> tuple[Any, ...]:
    """`obj`'s pickle reduction with `changes` over its state (a pickler's dispatch_table entry): the copy is
    written without them, and `obj` itself is not touched."""
    reduced = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    if not isinstance(reduced, tuple):
        raise TypeError(f"{type(obj).__name__} does not pickle by its state")
    build, args, state, *rest = reduced
    return (build, args, {**state, **changes}, *rest)
