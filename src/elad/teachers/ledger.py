"""The cost ledger: every teacher call is counted, and a call that could overspend is never sent.

The ledger is thread-safe. Before a request is sent, its worst case (prompt estimate with a safety
margin, plus `max_tokens` for each completion) is *reserved*, in memory and in the journal (durably,
when the journal is the run store's), and every retry of it is reserved again; the reservation is
settled when the attempt ends. A request whose worst case does not fit in what is left after the spent
and the reserved amounts waits for the calls in flight to settle, and is refused when it still does not
fit with none in flight. So requests in flight can never overspend together, and a process that dies
with requests in flight leaves them reserved at their worst case for the next one (see `journal`).

Prompt tokens are estimated with the caller's tokenizer, which may count fewer than the provider: the
estimate is multiplied by `prompt_margin` (1.25) until the provider has reported its usage, and from then
on by 1.1 times the largest ratio of reported to estimated prompt tokens seen (never less than 1).
"""

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from elad.errors import EladError
from elad.teachers.base import Completion, Request, Response, Teacher, TeacherError, TeacherReplyError
from elad.teachers.journal import Journal, MemoryJournal, Reservation

LEARNED_MARGIN = 1.1  # over the largest billed/estimated prompt ratio seen
UNREPORTED = "worst case"  # Response.meta["usage"] of a call charged at its worst case: no usage came back


class BudgetExhausted(EladError):
    """What is left of the budget cannot pay for the worst case of the next call. `total`: the run's
    whole budget refuses it (not only the round's limit)."""

    def __init__(self, message: str, total: bool = True):
        super().__init__(message)
        self.total = total


@dataclass
class Spent:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0
    failed: int = 0  # requests that got no usable reply and were not billed (not counted in `calls`)
    lost: int = 0  # attempts that got no reply but may be billed: charged at their worst case (in `calls`)

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
    """Dollars per million tokens; `cached_prompt` for the prompt tokens a server read from its prompt
    cache (None: the same as any prompt token)."""

    prompt: float = 0.0
    completion: float = 0.0
    cached_prompt: float | None = None

    def of(self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0) -> float:
        """The cost of a call; a worst case passes no cached tokens (no server promises a cache hit)."""
        cached = min(cached_prompt_tokens, prompt_tokens) if self.cached_prompt is not None else 0
        return ((prompt_tokens - cached) * self.prompt + cached * (self.cached_prompt or 0.0)
                + completion_tokens * self.completion) / 1e6


OnCall = Callable[[Request, Response, float], None]


class Ledger:
    """Counts calls, tokens and dollars, and refuses a call whose worst case could pass the budget.

    `budget` is the run's whole budget; `limit` (optional) a tighter one for the round at hand.
    `count_tokens` estimates a request's prompt size before it is sent (plus `message_overhead` tokens
    per message for the chat template's markers, which the server counts too). `journal` keeps the
    reservations and the charged calls (in memory unless given); what it holds is what was spent.
    `on_call` (optional) receives every charged or cached response (with its cost); inside `deferred()`
    it runs in the thread that opened it: at once for calls made in that thread, and at the next
    `flush()` for calls made in other threads.

    Before its first call (or at `recover`), the ledger settles what an earlier process left: its open
    reservations (with the reply the response cache caught or a batch still holds, else at their worst
    case) and the replies
    in the cache that no reservation knows (charged as they are).
    """

    def __init__(
        self,
        budget: Budget,
        price: Price = Price(),
        count_tokens: Callable[[str], int] = lambda text: len(text) // 4 + 1,
        spent: "Spent | None" = None,
        on_call: OnCall | None = None,
        message_overhead: int = 4,
        journal: Journal | None = None,
        prompt_margin: float = 1.25,
        limit: Budget | None = None,
    ):
        self.budget, self.price, self.count_tokens = budget, price, count_tokens
        self.limit = limit
        self.journal = journal or MemoryJournal()
        book = self.journal.book()
        self.spent = spent or Spent(book.calls, book.prompt_tokens, book.completion_tokens, book.dollars)
        self.on_call = on_call
        self.message_overhead = message_overhead
        self.prompt_margin = prompt_margin
        self._ratio = self.journal.prompt_ratio()  # the largest billed/estimated prompt tokens seen
        self.reserved = Spent()
        self._lock = threading.RLock()
        self._settled = threading.Condition(self._lock)
        self._deferred: list[tuple] | None = None
        self._owner: int | None = None  # the thread that opened deferred()
        self._recovered = False

    # --- what a request may cost -------------------------------------------------------------------

    def prompt_estimate(self, request: Request) -> int:
        """The prompt's size by the caller's tokenizer, template markers included (no margin)."""
        return sum(self.count_tokens(m["content"]) + self.message_overhead for m in request.messages)

    def margin(self) -> float:
        with self._lock:
            learned = self._ratio
        return max(1.0, LEARNED_MARGIN * learned) if learned else self.prompt_margin

    def worst_case(self, request: Request) -> tuple[int, float]:
        prompt, completion = self._worst_tokens(request)
        return prompt + completion, self.price.of(prompt, completion)

    def _worst_tokens(self, request: Request) -> tuple[int, int]:
        return math.ceil(self.prompt_estimate(request) * self.margin()), request.max_tokens * request.n

    def affordable(self, request: Request) -> bool:
        tokens, dollars = self.worst_case(request)
        with self._lock:
            return self._fits(tokens, dollars, self.budget) and self._fits(tokens, dollars, self.limit)

    def exhausted(self, tokens: int) -> bool:
        """Whether the whole budget, with nothing in flight, cannot pay for a call of `tokens` worst-case
        tokens (all counted as completion tokens for dollars): the same test that refuses a call."""
        with self._lock:
            return not self._fits(tokens, self.price.of(0, tokens), self.budget, held=Spent())

    def _fits(self, tokens: int, dollars: float, budget: Budget | None, held: "Spent | None" = None) -> bool:
        if budget is None:
            return True
        spent, held = self.spent, self.reserved if held is None else held
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
        self.recover(teacher)
        hit = teacher.lookup(request)
        if hit is not None:  # a cached answer costs nothing: it needs no room in the budget
            self.journal.record(request, hit, 0.0)
            self._notify(request, hit, 0.0)
            return hit
        attempt = _Attempt(self, teacher.key(request), request)
        try:
            response = teacher.complete(request, attempt)
        except TeacherReplyError as error:
            # The server answered (a provider may bill it): charge the usage it reported, else the worst case.
            prompt, completion = error.usage or attempt.worst()
            failed = Response(
                completions=[Completion(text=error.raw, prompt_tokens=prompt, completion_tokens=completion,
                                        finish_reason="error")],
                backend=teacher.backend, model=teacher.model,
                meta={"error": str(error), "usage": "reported" if error.usage else UNREPORTED},
            )
            attempt.paid(failed)
            raise
        except TeacherError as error:
            attempt.unanswered(error.maybe_billed)
            raise
        except BudgetExhausted:  # a retry the budget could not hold: the failed attempt is settled already
            raise
        except BaseException:
            # Interrupted with the request possibly at the server: its reservation stays open in the journal
            # (the next process counts it at its worst case); this process lets it go.
            attempt.abandon()
            raise
        attempt.paid(response, then=_booking(teacher, request, response))
        return response

    def _reserve(self, key: str, request: Request) -> Reservation:
        """Hold the request's worst case, waiting for calls in flight to settle while it does not fit;
        refused (BudgetExhausted) when it does not fit with nothing in flight. Durable in the journal
        before it returns, so before the request leaves."""
        prompt, completion = self._worst_tokens(request)
        tokens, dollars = prompt + completion, self.price.of(prompt, completion)
        with self._settled:
            while not (self._fits(tokens, dollars, self.budget) and self._fits(tokens, dollars, self.limit)):
                if self.reserved.calls == 0:
                    total = not self._fits(tokens, dollars, self.budget)
                    raise BudgetExhausted(
                        f"teacher budget {self.budget if total else self.limit} cannot pay for another call "
                        f"(spent {self.spent})", total=total,
                    )
                self._settled.wait()
            self._hold(1, tokens, dollars)
        try:
            return self.journal.reserve(key, request, self.prompt_estimate(request), prompt, completion, dollars)
        except BaseException:  # not durable, so never sent
            with self._settled:
                self._hold(-1, -tokens, -dollars)
                self._settled.notify_all()
            raise

    def recover(self, teacher: Teacher) -> None:
        """Settle what an earlier process left (once per ledger), before anything new is sent: no request
        can be reserved against a budget that misses it."""
        with self._lock:
            if self._recovered:
                return
            self._recovered = True
            for reservation in self.journal.open():
                try:
                    hit = teacher.lookup(reservation.request) or teacher.pending(reservation.request)
                except TeacherError:  # the server answered it with an error: nothing was billed
                    self.journal.release(reservation)
                    continue
                if hit is None:
                    self._lose(reservation, held=False)
                    continue
                paid = Response(completions=hit.completions, backend=hit.backend, model=hit.model,
                                meta={"recovered": True})
                if any(c.counted for c in hit.completions):  # charged at the worst case live: the same here
                    paid = _at_worst(paid, reservation)
                self._settle(reservation, paid, then=_booking(teacher, reservation.request, paid), held=False)
            for request, response in teacher.take_unbooked():
                then = _booking(teacher, request, response)
                if self.journal.closed(teacher.key(request)):  # recorded already; only its booking was lost
                    then()
                    continue
                cost = self.price.of(response.prompt_tokens, response.completion_tokens, response.cached_prompt_tokens)
                self.journal.record(request, response, cost)
                self._add_spent(response.prompt_tokens, response.completion_tokens, cost)
                self._notify(request, response, cost, then=then)

    # --- settling ----------------------------------------------------------------------------------

    def _settle(self, reservation: Reservation, response: Response, then=None, held: bool = True) -> None:
        """Record the paid reply (closing its reservation), then move its cost from reserved to spent in
        one step, so that a call waiting for room never sees it in neither."""
        cost = self.price.of(response.prompt_tokens, response.completion_tokens, response.cached_prompt_tokens)
        self.journal.settle(reservation, response, cost)
        with self._settled:
            if held:
                self._release_hold(reservation)
            self._add_spent(response.prompt_tokens, response.completion_tokens, cost)
            if response.meta.get("usage") != UNREPORTED and reservation.estimate:
                self._ratio = max(self._ratio, response.prompt_tokens / reservation.estimate)
        self._notify(reservation.request, response, cost, then)

    def _lose(self, reservation: Reservation, held: bool = True) -> None:
        """No reply came back, and the provider may bill one: charged at its worst case."""
        self.journal.lose(reservation)
        with self._settled:
            if held:
                self._release_hold(reservation)
            self._add_spent(reservation.prompt_tokens, reservation.completion_tokens, reservation.dollars)
            self.spent.lost += 1

    def _release(self, reservation: Reservation, billed_nothing: bool) -> None:
        """The attempt ended unbilled (an error status), or this process gave it up (`billed_nothing`
        False: its reservation stays open in the journal for the next process to count)."""
        if billed_nothing:
            self.journal.release(reservation)
        with self._settled:
            self._release_hold(reservation)
            self.spent.failed += billed_nothing

    def _add_spent(self, prompt_tokens: int, completion_tokens: int, dollars: float) -> None:
        with self._lock:
            self.spent.calls += 1
            self.spent.prompt_tokens += prompt_tokens
            self.spent.completion_tokens += completion_tokens
            self.spent.dollars += dollars

    def _release_hold(self, reservation: Reservation) -> None:
        self._hold(-1, -(reservation.prompt_tokens + reservation.completion_tokens), -reservation.dollars)
        self._settled.notify_all()

    def _hold(self, calls: int, tokens: int, dollars: float) -> None:
        self.reserved.calls += calls
        self.reserved.prompt_tokens += tokens
        self.reserved.dollars += dollars

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


def round_limit(cap, spent_before) -> Budget | None:
    """The total a round may have spent by its end: what was spent before it (`calls`, `prompt_tokens`,
    `completion_tokens`, `dollars`) plus the per-round `cap` (None where the cap has no limit at all)."""
    if cap.calls is None and cap.tokens is None and cap.dollars is None:
        return None
    tokens_before = spent_before.prompt_tokens + spent_before.completion_tokens
    return Budget(
        None if cap.calls is None else spent_before.calls + cap.calls,
        None if cap.tokens is None else tokens_before + cap.tokens,
        None if cap.dollars is None else spent_before.dollars + cap.dollars,
    )


class _Attempt:
    """One request's attempts through the ledger (the `Attempts` a retrying teacher is handed): each is
    reserved before it is sent and settled when it ends."""

    def __init__(self, ledger: Ledger, key: str, request: Request):
        self.ledger, self.key, self.request = ledger, key, request
        self.reservation: Reservation | None = ledger._reserve(key, request)

    def retry(self, maybe_billed: bool) -> None:
        self.unanswered(maybe_billed)
        self.reservation = self.ledger._reserve(self.key, self.request)

    def unanswered(self, maybe_billed: bool) -> None:
        """The attempt got no usable reply: charged at its worst case when the provider may bill it (no
        answer at all), else released (the server answered with an error status)."""
        reservation, self.reservation = self.reservation, None
        if reservation is None:
            return
        if maybe_billed:
            self.ledger._lose(reservation)
        else:
            self.ledger._release(reservation, billed_nothing=True)

    def paid(self, response: Response, then=None) -> None:
        reservation, self.reservation = self.reservation, None
        ledger = self.ledger
        if response.cache_hit:  # answered from the cache after all (another thread's reply): nothing paid
            ledger.journal.release(reservation)
            with ledger._settled:
                ledger._release_hold(reservation)
            ledger.journal.record(self.request, response, 0.0)
            ledger._notify(self.request, response, 0.0, then)
            return
        if response.meta.get("usage") == "counted":
            # The server reported no usage: our count of the reply may be short of its bill, so the call is
            # charged at the worst case it was reserved for.
            response = _at_worst(response, reservation)
        ledger._settle(reservation, response, then)

    def worst(self) -> tuple[int, int]:
        """The current attempt's worst-case (prompt, completion) tokens."""
        return self.reservation.prompt_tokens, self.reservation.completion_tokens

    def abandon(self) -> None:
        reservation, self.reservation = self.reservation, None
        if reservation is not None:
            self.ledger._release(reservation, billed_nothing=False)


def _at_worst(response: Response, reservation: Reservation) -> Response:
    """The response with its usage replaced by the reservation's worst case (spread over its completions)."""
    n = max(len(response.completions), 1)
    share, extra = divmod(reservation.completion_tokens, n)
    completions = [
        replace(c, prompt_tokens=reservation.prompt_tokens, completion_tokens=share + (i < extra))
        for i, c in enumerate(response.completions)
    ]
    return replace(response, completions=completions, meta={**response.meta, "usage": UNREPORTED})


def _booking(teacher: Teacher, request: Request, response: Response):
    """What marks a paid reply booked in the teacher's cache once it is recorded (None for a cache hit)."""
    if response.cache_hit:
        return None
    return lambda: teacher.booked(request)
