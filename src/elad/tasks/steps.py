"""Split an explanation into reasoning steps. Shared by every task: selection and CLEAR work step by step.

Rules, in order: numbered or bulleted lines ("1.", "Step 2:", "- ") start steps; otherwise non-empty
lines are steps; a single line is split into sentences. The answer sentence ("So the answer is ...")
stays a step of its own, so the answer after step i can be compared with the final one.
"""

import re

_ITEM = re.compile(r"^\s*(?:step\s*\d+\s*[:.)]|\d+\s*[.)]|[-*•])\s+", re.IGNORECASE)
# A sentence ends at . ! ? followed by space and an upper-case letter or digit; decimals ("3.5") and
# common abbreviations do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ABBREVIATIONS = {"mr.", "ms.", "mrs.", "dr.", "st.", "vs.", "etc.", "e.g.", "i.e.", "no."}


def split_steps(text: str) -> list[str]:
    lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
    if not lines:
        return []
    if any(_ITEM.match(line) for line in lines):
        return _merge_continuations(lines)
    if len(lines) > 1:
        return lines
    return _sentences(lines[0])


def _sentences(text: str) -> list[str]:
    sentences, start = [], 0
    for gap in _SENTENCE_END.finditer(text):
        last_word = text[start: gap.start()].rsplit(maxsplit=1)[-1].lower()
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]\.", last_word):
            continue
        sentences.append(text[start: gap.start()].strip())
        start = gap.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _merge_continuations(lines: list[str]) -> list[str]:
    """Glue a line that is not a new item to the item before it (wrapped text)."""
    steps: list[str] = []
    for line in lines:
        if _ITEM.match(line) or not steps:
            steps.append(line)
        else:
            steps[-1] = f"{steps[-1]} {line}"
    return steps


def join_steps(steps: list[str]) -> str:
    return "\n".join(steps)
