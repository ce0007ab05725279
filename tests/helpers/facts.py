"""What a stored state must equal: the pure fold, compacted as far as the stored one was."""
from __future__ import annotations

import json

from features import FeatureState, canonical
from features.state import compact


def folded_as_stored(folded: FeatureState, stored: FeatureState) -> str:
    """The fold's state compacted to the stored state's horizon (if it has one), canonical JSON."""
    copy = json.loads(json.dumps(folded))
    if "compacted" in stored:
        compact(copy, stored["compacted"]["horizon"])
    return canonical(copy)
