"""The cost ledger: every teacher call is counted, and a call that could overspend is never sent."""

from collections.abc import Callable
from dataclasses import dataclass

from elad.errors import EladError
from elad.teachers.base import Request, Response, Teacher


class BudgetExhausted(EladError):
    """What is left of the budget cannot pay for the worst case of the next call."""


@dataclass
class Spent:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0

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


class Ledger:
    """Counts calls, tokens and dollars, and refuses a call whose worst case could pass the budget.

    `count_tokens` estimates a request's prompt size before it is sent; `on_call` receives every
    response (with its cost) so the caller can persist it before anything else happens.
    """

    def __init__(
        self,
        budget: Budget,
        price: Price = Price(),
        count_tokens: Callable[[str], int] = lambda text: len(text) // 4 + 1,
        spent: Spent | None = None,
        on_call: Callable[[Request, Response, float], None] | None = None,
    ):
        self.budget, self.price, self.count_tokens = budget, price, count_tokens
        self.spent = spent or Spent()
        self.on_call = on_call

    def worst_case(self, request: Request) -> tuple[int, float]:
        prompt = sum(self.count_tokens(m["content"]) for m in request.messages)
        completion = request.max_tokens * request.n
        return prompt + completion, self.price.of(prompt, completion)

    def affordable(self, request: Request) -> bool:
        tokens, dollars = self.worst_case(request)
        budget, spent = self.budget, self.spent
        return (
            (budget.calls is None or spent.calls + 1 <= budget.calls)
            and (budget.tokens is None or spent.tokens + tokens <= budget.tokens)
            and (budget.dollars is None or spent.dollars + dollars <= budget.dollars + 1e-12)
        )

    def call(self, teacher: Teacher, request: Request) -> Response:
        if not self.affordable(request):
            raise BudgetExhausted(f"teacher budget {self.budget} cannot pay for another call (spent {self.spent})")
        response = teacher.complete(request)
        dollars = 0.0 if response.cache_hit else self.price.of(response.prompt_tokens, response.completion_tokens)
        if not response.cache_hit:
            self.spent.calls += 1
            self.spent.prompt_tokens += response.prompt_tokens
            self.spent.completion_tokens += response.completion_tokens
            self.spent.dollars += dollars
        if self.on_call:
            self.on_call(request, response, dollars)
        return response
