"""The cost ledger: every teacher call is counted, and a call that could overspend is never sent.

The ledger is thread-safe. Before a request is sent, its worst case (prompt estimate plus `max_tokens`
for each completion) is *reserved*; the reservation is released when the reply is charged. A request
whose worst case does not fit in what is left after the spent and the reserved amounts is refused, so
any number of requests in flight can never overspend together.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from elad.errors import EladError
from elad.teachers.base import Completion, Request, Response, Teacher, TeacherReplyError


class BudgetExhausted(EladError):
    """What is left of the budget cannot pay for the worst case of the next call."""


@dataclass
class Spent:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0
    failed: int = 0  # requests that got no reply at all (not charged, not counted in `calls`)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Budget:
    calls: int | None = None
    tokens: int | None = None
    dollars: float | None = None


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens."""

    prompt: float = 0.0
    completion: float = 0.0

    def of(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1e6


OnCall = Callable[[Request, Response, float], None]


class Ledger:
    """Counts calls, tokens and dollars, and refuses a call whose worst case could pass the budget.

    `count_tokens` estimates a request's prompt size before it is sent (plus `message_overhead` tokens
    per message for the chat template's markers, which the server counts too); `on_call` receives
    every charged response (with its cost) so the caller can persist it before anything else happens.
    Inside `deferred()`, `on_call` runs in the thread that opened it: at once for calls made in that
    thread, and at the next `flush()` for calls made in other threads (SQLite connections belong to one
    thread).

    With a teacher behind the response cache, a reply is marked booked in the cache once `on_call` has
    returned; replies an earlier process paid for but died before recording are charged and handed to
    `on_call` before this ledger's first call (`CachedTeacher.take_unbooked`): they were paid, so they
    count against the budget, and they are not asked again.
    """

    def __init__(
        self,
        budget: Budget,
        price: Price = Price(),
        count_tokens: Callable[[str], int] = lambda text: len(text) // 4 + 1,
        spent: Spent | None = None,
        on_call: OnCall | None = None,
        message_overhead: int = 4,
    ):
        self.budget, self.price, self.count_tokens = budget, price, count_tokens
        self.spent = spent or Spent()
        self.on_call = on_call
        self.message_overhead = message_overhead
        self.reserved = Spent()
        self._lock = threading.RLock()
        self._deferred: list[tuple] | None = None
        self._owner: int | None = None  # the thread that opened deferred()

    # --- what a request may cost -------------------------------------------------------------------

    def prompt_estimate(self, request: Request) -> int:
        return sum(self.count_tokens(m["content"]) + self.message_overhead for m in request.messages)

    def worst_case(self, request: Request) -> tuple[int, float]:
        prompt = self.prompt_estimate(request)
        completion = request.max_tokens * request.n
        return prompt + completion, self.price.of(prompt, completion)

    def affordable(self, request: Request) -> bool:
        tokens, dollars = self.worst_case(request)
        with self._lock:
            return self._fits(tokens, dollars)

    def _fits(self, tokens: int, dollars: float) -> bool:
        budget, spent, held = self.budget, self.spent, self.reserved
        return (
            (budget.calls is None or spent.calls + held.calls + 1 <= budget.calls)
            and (budget.tokens is None or spent.tokens + held.tokens + tokens <= budget.tokens)
            and (budget.dollars is None or spent.dollars + held.dollars + dollars <= budget.dollars + 1e-12)
        )

    def remaining(self) -> Budget:
        """What is left of each budget (None where there is no budget), reservations taken out."""
        with self._lock:
            b, s, r = self.budget, self.spent, self.reserved
            return Budget(
                None if b.calls is None else b.calls - s.calls - r.calls,
                None if b.tokens is None else b.tokens - s.tokens - r.tokens,
                None if b.dollars is None else b.dollars - s.dollars - r.dollars,
            )

    # --- calling -----------------------------------------------------------------------------------

    def call(self, teacher: Teacher, request: Request) -> Response:
        self._recover(teacher)
        lookup = getattr(teacher, "lookup", None)
        if lookup is not None:  # a cached answer costs nothing: it needs no room in the budget
            hit = lookup(request)
            if hit is not None:
                self._notify(request, hit, 0.0)
                return hit
        tokens, dollars = self.worst_case(request)
        with self._lock:
            if not self._fits(tokens, dollars):
                raise BudgetExhausted(
                    f"teacher budget {self.budget} cannot pay for another call (spent {self.spent})"
                )
            self._hold(1, tokens, dollars)
        try:
            response = teacher.complete(request)
        except TeacherReplyError as error:
            # The server answered (a provider may bill it): charge the usage it reported, else the prompt.
            prompt, completion = error.usage or (self.prompt_estimate(request), 0)
            failed = Response(
                completions=[Completion(text=error.raw, prompt_tokens=prompt, completion_tokens=completion,
                                        finish_reason="error")],
                backend=getattr(teacher, "backend", "?"), model=getattr(teacher, "model", "?"),
                meta={"error": str(error)},
            )
            self._charge(request, failed, tokens, dollars)
            raise
        except BaseException:
            with self._lock:
                self._hold(-1, -tokens, -dollars)
                self.spent.failed += 1
            raise
        self._charge(request, response, tokens, dollars, then=_booking(teacher, request, response))
        return response

    def _recover(self, teacher: Teacher) -> None:
        """Charge and report the replies an earlier process paid for but never recorded (once per teacher),
        before anything new is sent: no request can be reserved against a budget that misses them."""
        take = getattr(teacher, "take_unbooked", None)
        if take is None:
            return
        with self._lock:
            recovered = take()
            for request, response in recovered:
                cost = self.price.of(response.prompt_tokens, response.completion_tokens)
                self.spent.calls += 1
                self.spent.prompt_tokens += response.prompt_tokens
                self.spent.completion_tokens += response.completion_tokens
                self.spent.dollars += cost
                self._notify(request, response, cost, then=_booking(teacher, request, response))

    def _hold(self, calls: int, tokens: int, dollars: float) -> None:
        self.reserved.calls += calls
        self.reserved.prompt_tokens += tokens
        self.reserved.dollars += dollars

    def _charge(self, request: Request, response: Response, tokens: int, dollars: float, then=None) -> None:
        cost = 0.0 if response.cache_hit else self.price.of(response.prompt_tokens, response.completion_tokens)
        with self._lock:
            self._hold(-1, -tokens, -dollars)
            if not response.cache_hit:
                self.spent.calls += 1
                self.spent.prompt_tokens += response.prompt_tokens
                self.spent.completion_tokens += response.completion_tokens
                self.spent.dollars += cost
        self._notify(request, response, cost, then)

    # --- telling the caller ------------------------------------------------------------------------

    def _notify(self, request: Request, response: Response, dollars: float, then=None) -> None:
        """`on_call`, then `then()` (the cache marks the reply booked): now, or queued for the thread
        that opened `deferred()`."""
        with self._lock:
            if self._deferred is not None:
                self._deferred.append((request, response, dollars, then))
                if threading.get_ident() != self._owner:
                    return
        if self._deferred is not None:  # the owner's own call: record it (and what is queued) now
            self.flush()
            return
        self._tell((request, response, dollars, then))

    def _tell(self, item: tuple) -> None:
        request, response, dollars, then = item
        if self.on_call:
            self.on_call(request, response, dollars)
        if then is not None:
            then()

    @contextmanager
    def deferred(self) -> Iterator["Ledger"]:
        """Queue `on_call` notifications of calls made in other threads until `flush()`; flushes what is
        left on the way out."""
        with self._lock:
            if self._deferred is not None:
                raise RuntimeError("ledger notifications are already deferred")
            self._deferred, self._owner = [], threading.get_ident()
        try:
            yield self
        finally:
            self.flush()
            with self._lock:
                pending, self._deferred, self._owner = self._deferred or [], None, None
            for item in pending:  # raced in after the last flush
                self._tell(item)

    def flush(self) -> None:
        """Run the queued `on_call` notifications in this thread, in the order the calls ended."""
        with self._lock:
            if not self._deferred:
                return
            pending, self._deferred[:] = list(self._deferred), []
        for item in pending:
            self._tell(item)


def _booking(teacher, request: Request, response: Response):
    """What marks a paid reply booked in the teacher's cache once it is recorded (None without a cache)."""
    booked = getattr(teacher, "booked", None)
    if booked is None or response.cache_hit:
        return None
    return lambda: booked(request)
