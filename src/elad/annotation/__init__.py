"""Annotators turn teacher replies into training targets: CoT prompting, CLEAR."""

from elad.annotation.base import Annotation, Annotator, Rejection
from elad.annotation.cot import CotAnnotator
from elad.registry import Registry

ANNOTATORS: Registry[Annotator] = Registry("annotator")
ANNOTATORS.register("cot")(CotAnnotator)

__all__ = ["ANNOTATORS", "Annotation", "Annotator", "Rejection"]
