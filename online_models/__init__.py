"""Online (River) models for final progress, P(dropout) and P(success), trained from late labels.

models: the learners and their version-0 priors; labels: outcome -> Label; trainer: weekly
snapshots + the single lock-holding trainer; registry: versions in Redis and the workers'
hot-swapping cache; evaluate/baseline/plot: the time-ordered comparison with the seed's
per-week forests (`scorer evaluate`).
"""
from online_models.labels import Label, label_from_outcome
from online_models.models import Scores, ScoringModels, model_input
from online_models.registry import ModelCache, ModelRegistry
from online_models.trainer import LockHeldElsewhere, SnapshotStore, Trainer

__all__ = [
    "Label",
    "LockHeldElsewhere",
    "ModelCache",
    "ModelRegistry",
    "Scores",
    "ScoringModels",
    "SnapshotStore",
    "Trainer",
    "label_from_outcome",
    "model_input",
]
