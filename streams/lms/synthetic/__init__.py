"""A synthetic LMS (`scorer generate`): the seed's nine CSV files with ground truth. A dev tool:
the worker never imports it."""
from streams.lms.synthetic.generator import GenerationSummary, Shapes, generate

__all__ = ["GenerationSummary", "Shapes", "generate"]
