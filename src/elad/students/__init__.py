"""Students: load Hugging Face models, generate explanations, train. Knows tasks only through text."""

from elad.students.common import TrainReport
from elad.students.models import KNOWN_MODELS, resolve_model
from elad.students.student import Student

__all__ = ["KNOWN_MODELS", "Student", "TrainReport", "resolve_model"]
