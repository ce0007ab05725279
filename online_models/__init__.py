"""Online (River) models for final progress, P(dropout) and P(success), trained from late labels.

Core (pure): `learners` (the bundle of a version's learners, and what it answers), built from
`week_learners` (the River building blocks) by `families`, with `prequential` (its rolling metrics) and
`priors` (the version-0 guesses); `surrogate` (the label-free guess learned from the running flows) and
`labels` (outcome -> Label). Adapters
(Redis): `weekly_features` (each student's features per course week, kept until the label),
`trainer` (the single lock-holding trainer), `registry` (versions and the workers' hot-swapping
cache), `scoring` (what the pipeline calls). Offline: `evaluation` (the time-ordered comparison
with the seed's per-week forests, `scorer evaluate`).
"""
from online_models.labels import Label, label_from_outcome
from online_models.learners import Prediction, ScoringModels, model_input

__all__ = ["Label", "Prediction", "ScoringModels", "label_from_outcome", "model_input"]
