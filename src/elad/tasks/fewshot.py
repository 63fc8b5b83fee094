"""Wei et al. (2022) chain-of-thought exemplars, from Fine-tune-CoT's `few_shot_cot_prompts.json`:
`{task: {"prompt": "Q: ...\\nA: ... The answer is X.\\nQ: ...", ...}}`.

Each "Q:/A:" pair becomes an (Example, target) shot in elad's own target format. Option questions keep
their "Answer choices: (A) x, (B) y." text, and their choices are read from it. The prompts are used as
published: Wei et al.'s CommonsenseQA set has one exemplar whose stated letter is not the option its
reasoning names (the fox and "natural habitat", answered "B"), and it is kept as it is.
"""

import re
from pathlib import Path

from elad.errors import DataError, EladError
from elad.io import read_json
from elad.tasks import answers
from elad.tasks.example import AnswerKind, Example

# elad task name -> the key in few_shot_cot_prompts.json
WEI_KEYS = {"gsm8k": "gsm8k", "svamp": "svamp", "aqua": "aqua", "commonsenseqa": "commonsense_qa",
            "strategyqa": "strategy_qa"}
_PAIR = re.compile(r"^Q:\s*(.*?)\nA:\s*(.*?)(?=\nQ:|\Z)", re.DOTALL | re.MULTILINE)
_CHOICE = re.compile(r"\(([A-J])\)\s*(.*?)(?=,?\s*\([A-J]\)|\.?\s*$)", re.DOTALL)


def wei_pairs(path: Path, key: str) -> list[tuple[str, str]]:
    """(question, answer text) pairs of one task's prompt."""
    prompts = read_json(path)
    if not isinstance(prompts, dict) or key not in prompts:
        raise EladError(f"task.options.exemplars: {path} has no prompt for '{key}'")
    entry = prompts[key]
    text = entry.get("prompt") if isinstance(entry, dict) else None
    if not isinstance(text, str):
        raise DataError(path, None, f"{key}.prompt", "expected the prompt text")
    return [(q.strip(), a.strip()) for q, a in _PAIR.findall(text.strip())]


def wei_exemplars(path: Path, task) -> list[tuple[Example, str]]:
    """The task's Wei et al. exemplars as (example, target text), in the published order."""
    key = WEI_KEYS.get(task.name, task.name)
    shots = []
    for index, (question, reply) in enumerate(wei_pairs(path, key)):
        choices = _choices(question) if task.answer_kind == AnswerKind.OPTION else ()
        example = Example(id=f"wei-{index}", question=question, answer="", choices=choices)
        answer = task.parse_answer(reply, example)
        if answer is None:
            raise DataError(path, None, f"{key}.prompt", f"exemplar {index + 1} states no answer: {reply!r}")
        rationale = answers.split_rationale(reply)
        example = Example(id=example.id, question=question, answer=answer, rationale=rationale, choices=choices)
        shots.append((example, task.target(rationale, answer)))
    return shots


def _choices(question: str) -> tuple[str, ...]:
    listed = question.split("Answer choices:", 1)
    if len(listed) < 2:
        return ()
    return tuple(text.strip() for _, text in _CHOICE.findall(listed[1]))
