"""Annotators turn teacher replies into training targets: CoT prompting, CLEAR."""

from elad.annotation.base import Annotation, Annotator, Rejection, TeacherAnnotator
from elad.annotation.clear import ClearAnnotator
from elad.annotation.cot import CotAnnotator
from elad.registry import Registry

ANNOTATORS: Registry[Annotator] = Registry("annotator")
ANNOTATORS.register("cot")(CotAnnotator)
ANNOTATORS.register("clear")(ClearAnnotator)


def build_annotator(annotation_config, teacher_config, task, teacher, ledger, seed: int = 0) -> Annotator:
    """The configured annotator (`annotation.method`), with the teacher's sampling settings, the few-shot
    count and the gold check from the config; `seed` picks the few-shot exemplars."""
    return ANNOTATORS.create(
        annotation_config.method, task, teacher, ledger, teacher_config.max_tokens,
        temperature=teacher_config.temperature, few_shot=annotation_config.few_shot,
        gold_check=annotation_config.gold_check, seed=seed,
    )


__all__ = [
    "ANNOTATORS", "Annotation", "Annotator", "ClearAnnotator", "CotAnnotator", "Rejection", "TeacherAnnotator",
    "build_annotator",
]
