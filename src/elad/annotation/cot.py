"""Chain-of-thought annotation: the teacher explains the question; its rationale and answer become the target.

Few-shot: with `few_shot: k`, k worked exemplars from the task (`task.exemplars(k, seed)`, where the task
has them; zero-shot otherwise) come before the question as earlier turns of the conversation.
Gold check: where the example's gold answer is known, a teacher answer that disagrees with it is dropped
(`drop`) or asked once more at a higher temperature (`reask`) and dropped if it still disagrees; every
ask and disagreement is counted in the result's details.
"""

from elad.annotation.base import Annotation, Rejection, TeacherAnnotator
from elad.tasks import Example, Task
from elad.tasks.answers import split_rationale
from elad.teachers import Request

SYSTEM_PROMPT = (
    "You are a careful teacher. Solve the problem by reasoning step by step in plain sentences (no code), "
    "then state the final answer as 'So the answer is <answer>.'"
)
REASK_TEMPERATURE = 0.7  # a re-ask at temperature 0 would get the same answer again
REASKS = 1


def exemplar_turns(task: Task, k: int, seed: int) -> list[tuple[str, str, str | None]]:
    """(user text, assistant text, example id) for k worked exemplars of the task; [] when the task
    has no `exemplars` method. Accepts what `exemplars(k, seed)` returns: (example, target text) pairs,
    examples with a rationale, or (question, answer text) string pairs. A task that has the method but
    cannot provide the exemplars raises its own error (the config asked for something missing)."""
    pick = getattr(task, "exemplars", None)
    if k <= 0 or not callable(pick):
        return []
    turns = []
    for item in list(pick(k, seed))[:k]:
        if isinstance(item, Example):
            if item.rationale and item.answer:
                turns.append((task.prompt(item), task.target(item.rationale, item.answer), item.id))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], str):
            first, target = item
            if isinstance(first, Example):
                turns.append((task.prompt(first), target, first.id))
            elif isinstance(first, str):
                turns.append((first, target, None))
    return turns


class CotAnnotator(TeacherAnnotator):
    name = "cot"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.exemplars = exemplar_turns(self.task, self.few_shot, self.seed)

    def messages(self, example: Example) -> tuple[dict, ...]:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        for user, assistant, exemplar_id in self.exemplars:
            if exemplar_id is not None and exemplar_id == example.id:
                continue  # never show the teacher the answer to the question it is asked
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        messages.append({"role": "user", "content": self.task.prompt(example)})
        return tuple(messages)

    def annotate(self, example: Example, student_explanation: str | None = None) -> Annotation | Rejection:
        return self.cot(example, {"method": "cot"})

    def cot(self, example: Example, details: dict, name: str | None = None) -> Annotation | Rejection:
        """CoT prompting with the gold check; `details` is filled in and carried by the result."""
        name = name or self.name
        details["few_shot"] = sum(1 for m in self.messages(example) if m["role"] == "assistant")
        replays = self.teacher.replays
        asks = 1 + (REASKS if self.gold_check == "reask" and not replays else 0)
        raw = ""
        for attempt in range(asks):
            temperature = self.temperature if attempt == 0 else max(self.temperature, REASK_TEMPERATURE)
            request = Request(
                messages=self.messages(example), max_tokens=self.max_tokens, temperature=temperature,
                example_id=example.id, sample=attempt,
            )
            details["asks"] = attempt + 1
            reply = self.ask(request, details)
            if reply is None:
                problem = details.get("last_error", "unusable reply")
                return Rejection(f"no usable reply from the teacher ({problem})", raw, details)
            raw = reply
            answer = self.task.parse_answer(raw, example)
            if answer is None:
                return Rejection("the teacher's reply states no answer that can be parsed", raw, details)
            rationale = split_rationale(raw)
            if not rationale:
                return Rejection("the teacher's reply has an answer but no rationale", raw, details)
            if self.gold_disagrees(example, answer):
                details["gold_disagreed"] = details.get("gold_disagreed", 0) + 1
                continue
            return Annotation(name, rationale, answer, self.task.target(rationale, answer), raw, details)
        verb = "dropped" if asks == 1 else f"dropped after {asks - 1} re-ask"
        return Rejection(
            f"the teacher's answer disagrees with the gold answer '{example.answer}' ({verb})", raw, details
        )
