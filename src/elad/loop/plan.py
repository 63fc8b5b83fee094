"""What a run will cost the teacher, before it runs (`elad run --dry-run`).

No model is loaded and no teacher is called: the task's data, the student's tokenizer and the annotator's
prompts are enough. Per round, for the items it will send (`loop.per_round`, or `initial_random` in round
1, as far as the pool lasts):

- worst case: what the ledger reserves before each call (the prompt by the student's tokenizer, template
  markers and the ledger's safety margin included, plus `max_tokens` per completion), for every call an
  item may need (CoT: one, or two with `gold_check: reask`; CLEAR: two reviews and a continuation or the
  CoT fallback), on the round's largest prompts. A run without failed attempts spends no more; a run with
  them still never passes `loop.budget`, which the ledger holds call by call.
- expected: one call per item (CoT) or one review (CLEAR), its prompt without the margin, and a reply as
  long as the item's rationale in the data (the teacher's max_tokens where the data has none).

Then the budget: in which round it stops the run, with every call at its worst case (the fewest items it
annotates) and at the expected cost (a call goes out only when its worst case still fits, as in a run).
"""

from dataclasses import dataclass, field

from elad.annotation import build_annotator
from elad.annotation.cot import REASKS
from elad.config import ExperimentConfig
from elad.loop.build import load_questions
from elad.tasks import Example, Task
from elad.teachers import Budget, Ledger, Request, Spent, price_for, round_limit
from elad.teachers.base import TeacherBase


@dataclass
class ItemCost:
    """One item's teacher cost: worst case (every call it may need) and expected."""

    calls: int
    worst_tokens: int
    worst_dollars: float
    expected_tokens: int
    expected_dollars: float
    expected_calls: int = 1


@dataclass
class RoundPlan:
    round: int
    items: int
    calls: int  # the most calls its items may make
    worst_tokens: int
    worst_dollars: float
    expected_tokens: int
    expected_dollars: float


@dataclass
class CostPlan:
    rounds: list[RoundPlan]
    pool: int
    test: int
    expected_from: str  # what the expected reply lengths are measured on
    budget_cut: dict = field(default_factory=dict)  # "worst" / "expected" -> (round, items annotated) or None

    @property
    def worst_tokens(self) -> int:
        return sum(r.worst_tokens for r in self.rounds)

    @property
    def worst_dollars(self) -> float:
        return sum(r.worst_dollars for r in self.rounds)

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.rounds)


class _Unsent(TeacherBase):
    """The configured teacher as the annotator sees it (name, whether it replays), never called."""

    def __init__(self, backend: str, model: str):
        self.backend, self.model = backend, model
        self.replays = backend == "replay"
        self.supports_json_schema = backend != "replay"

    def complete(self, request, attempts=None):
        raise AssertionError("a dry run calls no teacher")


def plan_run(config: ExperimentConfig, count_tokens) -> CostPlan:
    """The run's teacher cost per round, from its config, its task's data and a token counter."""
    task = config.task.open()
    pool, test, _ = load_questions(config, task)
    teacher = config.teacher
    ledger = Ledger(Budget(), price_for(teacher),
                    count_tokens=count_tokens)
    annotator = build_annotator(config.annotation, teacher, task, _Unsent(teacher.backend, teacher.model), ledger,
                                seed=config.seed)
    costs = {e.id: _item_cost(config, task, annotator, ledger, e, count_tokens) for e in pool}
    measured = sum(1 for e in pool if e.rationale)
    expected_from = (f"the data's rationales ({measured} of {len(pool)} pool items; max_tokens for the others)"
                     if measured else "max_tokens (the data has no rationales to measure)")
    plan = CostPlan(_rounds(config, pool, costs), len(pool), len(test), expected_from)
    budget = Budget(config.loop.budget.calls, config.loop.budget.tokens, config.loop.budget.dollars)
    for name in ("worst", "expected"):
        plan.budget_cut[name] = _budget_cut(config, plan, costs, pool, budget, ledger, name)
    return plan


def _item_cost(config: ExperimentConfig, task: Task, annotator, ledger: Ledger, example: Example, count_tokens) -> ItemCost:
    teacher = config.teacher
    cot = Request(messages=annotator.messages(example), max_tokens=teacher.max_tokens)
    cot_asks = 1 + (REASKS if config.annotation.gold_check == "reask" and teacher.backend != "replay" else 0)
    reply = (min(teacher.max_tokens, count_tokens(task.target(example.rationale, example.answer)))
             if example.rationale else teacher.max_tokens)
    if annotator.reads_student_explanation and teacher.backend != "replay":
        # CLEAR reviews the student's explanation: at most student.max_new_tokens of it
        steps = [" ".join(["step"] * max(1, config.student.max_new_tokens // 4))] * 4
        review = Request(messages=annotator.review_messages(example, steps, True), max_tokens=teacher.max_tokens)
        review_tokens, review_dollars = ledger.worst_case(review)
        cot_tokens, cot_dollars = ledger.worst_case(cot)
        # two reviews, then a continuation (a request of the review's size) or the CoT fallback
        follow_tokens, follow_dollars, follow_calls = max((review_tokens, review_dollars, 1),
                                                          (cot_tokens * cot_asks, cot_dollars * cot_asks, cot_asks))
        prompt = ledger.prompt_estimate(review)
        return ItemCost(2 + follow_calls, 2 * review_tokens + follow_tokens, 2 * review_dollars + follow_dollars,
                        prompt + reply, ledger.price.of(prompt, reply))
    tokens, dollars = ledger.worst_case(cot)
    prompt = ledger.prompt_estimate(cot)
    return ItemCost(cot_asks, cot_asks * tokens, cot_asks * dollars, prompt + reply, ledger.price.of(prompt, reply))


def _round_sizes(config: ExperimentConfig, pool_size: int) -> list[int]:
    sizes, left = [], pool_size
    for round_ in range(1, config.loop.rounds + 1):
        size = config.loop.initial_random if round_ == 1 and config.loop.initial_random else config.loop.per_round
        sizes.append(min(size, left))
        left -= sizes[-1]
    return sizes


def _rounds(config: ExperimentConfig, pool: list[Example], costs: dict[str, ItemCost]) -> list[RoundPlan]:
    """Per round: its items taken, for the worst case, from the costliest left (no strategy can do worse)."""
    by_worst = sorted(pool, key=lambda e: -costs[e.id].worst_tokens)
    mean = {name: sum(getattr(c, name) for c in costs.values()) / max(1, len(costs))
            for name in ("expected_tokens", "expected_dollars")}
    plans, start = [], 0
    for round_, size in enumerate(_round_sizes(config, len(pool)), start=1):
        chosen = [costs[e.id] for e in by_worst[start:start + size]]
        start += size
        plans.append(RoundPlan(round_, size, sum(c.calls for c in chosen), sum(c.worst_tokens for c in chosen),
                               sum(c.worst_dollars for c in chosen), round(mean["expected_tokens"] * size),
                               mean["expected_dollars"] * size))
    return plans


def _budget_cut(config, plan: CostPlan, costs: dict[str, ItemCost], pool: list[Example], budget: Budget,
                ledger: Ledger, spend: str) -> tuple[int, int] | None:
    """(round, items annotated by then) where the budget first refuses a call, or None if it never does.
    Each call goes out only when its worst case fits what is left (the ledger's rule); it then spends its
    worst case (`spend` "worst") or its expected cost ("expected")."""
    if budget.calls is None and budget.tokens is None and budget.dollars is None and not _has_round_cap(config):
        return None
    by_worst = sorted(pool, key=lambda e: -costs[e.id].worst_tokens)
    spent, done, start, waiting = Spent(), 0, 0, []
    for round_plan in plan.rounds:
        waiting += by_worst[start:start + round_plan.items]  # after what a round's cap left
        start += round_plan.items
        limit = round_limit(config.loop.round_budget, spent)
        while waiting:
            cost = costs[waiting[0].id]
            need = Spent(cost.calls, 0, cost.worst_tokens, cost.worst_dollars)
            if not _fits(spent, need, budget):
                return round_plan.round, done
            if limit is not None and not _fits(spent, need, limit):
                break  # the round's cap: what is left waits for the next round
            calls, tokens, dollars = ((cost.calls, cost.worst_tokens, cost.worst_dollars) if spend == "worst" else
                                      (cost.expected_calls, cost.expected_tokens, cost.expected_dollars))
            spent = Spent(spent.calls + calls, 0, spent.completion_tokens + tokens, spent.dollars + dollars)
            waiting.pop(0)
            done += 1
    return None


def _has_round_cap(config) -> bool:
    cap = config.loop.round_budget
    return cap.calls is not None or cap.tokens is not None or cap.dollars is not None


def _fits(spent: Spent, need: Spent, budget: Budget) -> bool:
    tokens = spent.prompt_tokens + spent.completion_tokens + need.prompt_tokens + need.completion_tokens
    return ((budget.calls is None or spent.calls + need.calls <= budget.calls)
            and (budget.tokens is None or tokens <= budget.tokens)
            and (budget.dollars is None or spent.dollars + need.dollars <= budget.dollars + 1e-12))
