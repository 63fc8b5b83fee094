"""N requests in flight: a bounded thread pool that yields results as they finish.

Teacher calls spend their time waiting on the network, so threads are enough: the `openai` client, the
ledger and the response cache are thread-safe. Callbacks that write to the run store must run in the
caller's thread: `complete_many` (and `Annotator.annotate_many`) defer the ledger's `on_call` and flush
it in the consuming thread before each result is handed over.
"""

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from elad.teachers.base import Request, Response, Teacher

T = TypeVar("T")
R = TypeVar("R")


def in_flight(
    work: Callable[[T], R], items: Iterable[T], concurrency: int, between: Callable[[], None] | None = None,
    every: float = 0.05, interrupt: Callable[[], None] | None = None,
) -> Iterator[tuple[T, R]]:
    """(item, work(item)) for each item, as they finish, with at most `concurrency` running at once.

    The first exception stops new work from starting; what is running finishes and is yielded, then the
    exception is raised. With `concurrency` 1 everything runs in the calling thread, in order.
    `between()` (if given) runs in the calling thread at least every `every` seconds while work is running
    (the ledger's flush: a paid call is recorded soon after it ends, not only when its item is done).
    `interrupt()` (if given) runs when the caller stops early or is interrupted (Ctrl-C), before the work
    still running is waited for: it tells work that could wait long (a batch teacher polling) to give up.
    """
    if concurrency <= 1:
        for item in items:
            yield item, work(item)
        return
    pending = iter(items)
    running: dict[Future, T] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="teacher") as pool:
        try:
            while True:
                while failure is None and len(running) < concurrency:
                    item = next(pending, _END)
                    if item is _END:
                        break
                    running[pool.submit(work, item)] = item
                if not running:
                    break
                done, _ = wait(running, timeout=every if between else None, return_when=FIRST_COMPLETED)
                if between is not None:
                    between()
                for future in sorted(done, key=lambda f: _order(running, f)):
                    item = running.pop(future)
                    error = future.exception()
                    if error is not None:
                        failure = failure or error
                        continue
                    yield item, future.result()
        except BaseException:
            if interrupt is not None:
                interrupt()
            raise
        finally:  # the consumer stopped early, or a failure: let nothing new start
            for future in running:
                future.cancel()
    if failure is not None:
        raise failure


_END = object()


def _order(running: dict, future: Future) -> int:
    return list(running).index(future)


def complete_many(
    teacher: Teacher, ledger, requests: Iterable[Request], concurrency: int = 1
) -> Iterator[tuple[Request, Response]]:
    """Each request through the ledger (reserved, sent, charged), `concurrency` at a time; (request,
    response) pairs as they finish. The ledger's `on_call` runs in this thread before each pair is yielded."""
    with ledger.deferred():
        for request, response in in_flight(lambda r: ledger.call(teacher, r), requests, concurrency, ledger.flush,
                                           interrupt=getattr(teacher, "stop_waiting", None)):
            ledger.flush()
            yield request, response
