"""Teachers: LLM backends behind one protocol, and the cost ledger. Knows nothing else in elad."""

from elad.registry import Registry
from elad.teachers.base import Completion, Request, Response, Teacher, TeacherContext
from elad.teachers.ledger import Budget, BudgetExhausted, Ledger, Price, Spent
from elad.teachers.replay import ReplayTeacher

TEACHERS: Registry[Teacher] = Registry("teacher backend")
TEACHERS.register("replay")(ReplayTeacher)

__all__ = [
    "TEACHERS", "Budget", "BudgetExhausted", "Completion", "Ledger", "Price", "ReplayTeacher", "Request",
    "Response", "Spent", "Teacher", "TeacherContext",
]
