"""The worker's pure core: the per-student step and the event-time watermark. No I/O, no asyncio."""
from streams.core.documents import StudentDoc, StudentEvent, new_doc
from streams.core.step import OutcomeLabel, Scorer, StepConfig, StepResult, step
from streams.core.watermark import WatermarkTracker

__all__ = [
    "OutcomeLabel",
    "Scorer",
    "StepConfig",
    "StepResult",
    "StudentDoc",
    "StudentEvent",
    "WatermarkTracker",
    "new_doc",
    "step",
]
