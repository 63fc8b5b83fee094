"""Teachers: LLM backends behind one protocol, the response cache, and the cost ledger.

Knows nothing else in elad (the local teacher borrows the students' loader when it is built).
"""

from elad.errors import EladError
from elad.registry import Registry
from elad.teachers.batch import BatchTeacher
from elad.teachers.base import (
    Completion, Request, Response, Teacher, TeacherContext, TeacherError, TeacherRefused, TeacherReplyError,
)
from elad.teachers.cache import CachedTeacher, ReplyCache
from elad.teachers.concurrent import complete_many, in_flight
from elad.teachers.ledger import Budget, BudgetExhausted, Ledger, Price, Spent, round_limit
from elad.teachers.local import LocalTeacher
from elad.teachers.openai_compat import OpenAITeacher
from elad.teachers.replay import ReplayTeacher

TEACHERS: Registry[Teacher] = Registry("teacher backend")
TEACHERS.register("replay")(ReplayTeacher)
TEACHERS.register("openai")(OpenAITeacher)
TEACHERS.register("local")(LocalTeacher)


def build_teacher(config, context: TeacherContext, cache: ReplyCache | None = None) -> Teacher:
    """The configured backend (`teacher.backend`), behind the response `cache` when `teacher.cache` is on
    and a cache is given (the run store's `ResponseCache`). `config` is a TeacherConfig."""
    teacher = TEACHERS.get(config.backend).from_config(config, context)
    if getattr(config, "batch", False):
        if cache is None:
            raise EladError("teacher.batch needs the run's response cache (teacher.cache: true), where batch ids are kept")
        teacher = BatchTeacher(teacher, log=cache, poll_seconds=config.batch_poll_seconds,
                               max_requests=config.batch_size)
    if getattr(config, "cache", True) and cache is not None:
        return CachedTeacher(teacher, cache)
    return teacher


def price_for(config) -> Price:
    """The prices a TeacherConfig names, at the batch share when its requests go in batches."""
    share = config.batch_price if config.batch else 1.0
    cached = None if config.price_cached_prompt is None else config.price_cached_prompt * share
    return Price(config.price_prompt * share, config.price_completion * share, cached)


__all__ = [
    "TEACHERS", "BatchTeacher", "Budget", "BudgetExhausted", "CachedTeacher", "Completion", "Ledger", "LocalTeacher",
    "OpenAITeacher", "Price", "ReplayTeacher", "Request", "Response", "ReplyCache", "Spent", "Teacher",
    "TeacherContext", "TeacherError", "TeacherRefused", "TeacherReplyError", "build_teacher", "complete_many", "in_flight", "price_for",
    "round_limit",
]
