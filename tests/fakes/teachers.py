"""In-process teachers for unit tests: scripted replies, usage in words, optional delay and faults."""

import threading
import time
from collections.abc import Callable

from elad.teachers.base import Completion, Request, Response, TeacherBase, TeacherError, TeacherReplyError


def words(text: str) -> int:
    return len(text.split())


class ScriptedTeacher(TeacherBase):
    """Replies with `reply(request)` (or the next item of a list); an item that is an exception class or
    instance is raised instead. Records every request; counts the most requests in flight at once."""

    backend = "scripted"

    def __init__(self, replies, model: str = "scripted-model", delay: float = 0.0, supports_json_schema=False):
        self.replies, self.model, self.delay = replies, model, delay
        self.supports_json_schema = supports_json_schema
        self.requests: list[Request] = []
        self.active = self.peak = 0
        self._lock = threading.Lock()

    def _next(self, request: Request):
        if callable(self.replies) and not isinstance(self.replies, list):
            return self.replies(request)
        with self._lock:
            if not self.replies:
                raise AssertionError("the scripted teacher ran out of replies")
            return self.replies.pop(0)

    def complete(self, request: Request, attempts=None) -> Response:  # never retries: `attempts` unused
        with self._lock:
            self.requests.append(request)
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            reply = self._next(request)
        finally:
            with self._lock:
                self.active -= 1
        if isinstance(reply, BaseException) or (isinstance(reply, type) and issubclass(reply, BaseException)):
            raise reply
        prompt = sum(words(m["content"]) for m in request.messages)
        completion = Completion(reply, prompt, min(words(reply), request.max_tokens))
        return Response(completions=[completion] * request.n, backend=self.backend, model=self.model)


def reply_error(usage=(3, 2), raw="{broken") -> TeacherReplyError:
    return TeacherReplyError("not JSON", usage=usage, raw=raw)


def unreachable() -> TeacherError:
    return TeacherError("connection refused")


ReplyFn = Callable[[Request], str]
