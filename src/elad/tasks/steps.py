"""Split an explanation into reasoning steps. Shared by every task: selection and CLEAR work step by step.

Rules, in order: numbered or bulleted lines ("1.", "Step 2:", "- ") start steps; otherwise every
sentence is a step, on whichever line it stands: a rationale written as one paragraph followed by its
answer line ("... 42 - 31 = 11.\nSo the answer is 11.") has as many steps as sentences, not one. The
answer sentence ("So the answer is ...") stays a step of its own, so the answer after step i can be
compared with the final one.
"""

import re

from elad.tasks.answers import _CUES

_ITEM = re.compile(r"^\s*(?:step\s*\d+\s*[:.)]|\d+\s*[.)]|[-*•])\s+", re.IGNORECASE)
# A sentence ends at . ! ? followed by space and an upper-case letter or digit; decimals ("3.5") and
# common abbreviations do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ABBREVIATIONS = {"mr.", "ms.", "mrs.", "dr.", "st.", "vs.", "etc.", "e.g.", "i.e."}


def split_steps(text: str) -> list[str]:
    return [step for _, step in _steps_with_breaks(text)]


def step_segments(text: str) -> list[str]:
    """The steps as written: each after the first led by the break before it, "\n" where it starts a
    line and " " where it continues one, so that joining a prefix of them gives the text up to that step
    (white space normalised), not the steps one per line."""
    return [brk + step if i else step for i, (brk, step) in enumerate(_steps_with_breaks(text))]


def _steps_with_breaks(text: str) -> list[tuple[str, str]]:
    lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
    if any(_ITEM.match(line) for line in lines):
        return [("\n", step) for step in _merge_continuations(lines)]
    return [("\n" if k == 0 else " ", sentence) for line in lines for k, sentence in enumerate(_sentences(line))]


def _sentences(text: str) -> list[str]:
    sentences, start = [], 0
    for gap in _SENTENCE_END.finditer(text):
        last_word = text[start: gap.start()].rsplit(maxsplit=1)[-1].lower()
        numbered = last_word == "no." and text[gap.end(): gap.end() + 1].isdigit()  # "No. 5", not "No. He"
        if last_word in _ABBREVIATIONS or numbered or re.fullmatch(r"[a-z]\.", last_word):
            continue
        sentences.append(text[start: gap.start()].strip())
        start = gap.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _merge_continuations(lines: list[str]) -> list[str]:
    """Glue a line that is not a new item to the item before it (wrapped text); a line with an answer
    cue ("So the answer is 7.") is a step of its own, not the last item's tail."""
    steps: list[str] = []
    for line in lines:
        if _ITEM.match(line) or not steps or _CUES.search(line):
            steps.append(line)
        else:
            steps[-1] = f"{steps[-1]} {line}"
    return steps


def merge_lead_ins(steps: list[str]) -> list[str]:
    """Each step that ends with a colon joined to the step after it: a lead-in ("To solve this, we follow
    these steps:") announces what follows and claims nothing, so it is not a step to judge on its own. A
    lead-in that is the last step stays as it is."""
    merged: list[str] = []
    carry = ""
    for step in steps:
        step = f"{carry} {step}" if carry else step
        carry = step if step.rstrip().endswith(":") else ""
        if not carry:
            merged.append(step)
    return merged + ([carry] if carry else [])


def join_steps(steps: list[str]) -> str:
    return "\n".join(steps)
