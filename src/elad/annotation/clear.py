"""CLEAR: the teacher corrects the student's own explanation instead of writing a new one.

The teacher gets the question and the student's explanation as numbered steps, and returns a verdict for
each step up to the first wrong one, and a corrected continuation from that step to the answer. The
annotation is the student's correct prefix followed by the teacher's continuation; an explanation the
teacher finds fully correct is kept as it is.

Format: JSON following `REVIEW_SCHEMA`, sent as structured output where the backend supports it; other
backends are asked for a strict text format (`Step i: correct|wrong`, then `Continuation: ...`). Either
reply format is accepted whatever was asked. An unparsable reply is asked again once (shown the problem);
then the item falls back to CoT prompting. A review that finds a wrong step but whose continuation has no
reasoning (empty, or only "So the answer is X.", what small teachers write inside the JSON) is followed by
one plain-text request for the continuation alone. Every outcome is counted in the result's details.
"""

import json
import re
from dataclasses import dataclass

from elad.annotation.base import Annotation, Rejection
from elad.annotation.cot import SYSTEM_PROMPT as COT_SYSTEM_PROMPT
from elad.annotation.cot import CotAnnotator
from elad.tasks import Example
from elad.tasks.answers import split_rationale
from elad.tasks.steps import join_steps, merge_lead_ins, split_steps
from elad.teachers import Request

SYSTEM_PROMPT = (
    "You are a careful teacher who checks a student's reasoning one step at a time and corrects it "
    "from the first mistake on. Write plain sentences, no code."
)

REVIEW_SCHEMA = {
    "name": "step_review",
    "schema": {
        "type": "object",
        "properties": {
            "verdicts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "step": {"type": "integer"},
                        "correct": {"type": "boolean"},
                        "reason": {"type": "string"},
                    },
                    "required": ["step", "correct", "reason"],
                    "additionalProperties": False,
                },
            },
            "continuation": {"type": "string"},
        },
        "required": ["verdicts", "continuation"],
        "additionalProperties": False,
    },
}

JSON_FORMAT = (
    "Reply with one JSON object and nothing else. It has two keys. \"verdicts\": a list with one object "
    "per step you checked, in order, each with \"step\" (the step's number), \"correct\" (true or false) "
    "and \"reason\" (your own short reason). Stop the list at the first step that is wrong. "
    "\"continuation\": your own correct reasoning, in one or more full sentences, that replaces that wrong "
    "step and everything after it, then 'So the answer is <answer>.'; an empty string if every step is correct."
)

TEXT_FORMAT = (
    "Reply in exactly this format and nothing else, one line per step, in order:\n"
    "Step 1: correct\n"
    "Step 2: wrong\n"
    "Continuation: <your correct reasoning, in one or more full sentences, that replaces the wrong step and "
    "everything after it, then 'So the answer is <answer>.'>\n"
    "Stop the step lines at the first wrong step. If every step is correct, write a line for every step "
    "and then 'Continuation: none'."
)


class ReviewError(ValueError):
    """The teacher's review cannot be read; the message says why (and is shown to the teacher)."""


@dataclass
class Review:
    verdicts: list[dict]  # {"step": i, "correct": bool, "reason": str}, up to the first wrong one
    continuation: str  # "" when every step is correct

    @property
    def first_wrong(self) -> int | None:
        """1-based number of the first wrong step, or None."""
        return next((v["step"] for v in self.verdicts if not v["correct"]), None)


def parse_review(text: str, steps: int) -> Review:
    """A review of `steps` steps from JSON (bare, fenced, or inside prose) or the strict text format."""
    data = _json_object(text)
    if data is not None:
        verdicts, continuation = _from_json(data)
    else:
        verdicts, continuation = _from_text(text)
    return _checked(verdicts, continuation, steps)


def _json_object(text: str) -> dict | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start: end + 1])
    except ValueError:
        if text.strip().startswith(("{", "```")):
            raise ReviewError("the reply looks like JSON but is not valid JSON") from None
        return None
    if not isinstance(data, dict) or "verdicts" not in data:
        return None
    return data


def _from_json(data: dict) -> tuple[list[dict], str]:
    raw = data.get("verdicts")
    if not isinstance(raw, list):
        raise ReviewError('"verdicts" must be a list')
    verdicts = []
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("correct"), bool):
            raise ReviewError(f'verdict {position} needs "correct": true or false')
        step = item.get("step", position)
        if not isinstance(step, int) or isinstance(step, bool):
            raise ReviewError(f'verdict {position}: "step" must be a number')
        verdicts.append({"step": step, "correct": item["correct"], "reason": str(item.get("reason") or "")})
    continuation = data.get("continuation") or ""
    if not isinstance(continuation, str):
        raise ReviewError('"continuation" must be a string')
    return verdicts, continuation


NO_REASONING = ("", "none", "n/a", "na", "-")  # what a teacher writes for "no continuation"
_STEP_LINE = re.compile(r"^\s*\**\s*step\s*(\d+)\s*\**\s*[:.)-]\s*\**\s*(correct|right|wrong|incorrect)\b\W*(.*)$", re.I)
_CONTINUATION = re.compile(r"^\s*\**\s*continuation\s*\**\s*:\s*(.*)$", re.I)


def _from_text(text: str) -> tuple[list[dict], str]:
    verdicts, continuation_lines, in_continuation = [], [], False
    for line in text.strip().splitlines():
        if in_continuation:
            continuation_lines.append(line)
            continue
        found = _CONTINUATION.match(line)
        if found:
            in_continuation = True
            continuation_lines.append(found.group(1))
            continue
        found = _STEP_LINE.match(line)
        if found:
            correct = found.group(2).lower() in ("correct", "right")
            verdicts.append({"step": int(found.group(1)), "correct": correct, "reason": found.group(3).strip()})
        elif line.strip():
            raise ReviewError(f"a line is neither 'Step N: correct|wrong' nor 'Continuation:': {line.strip()[:80]!r}")
    if not verdicts:
        raise ReviewError("no 'Step N: correct|wrong' lines and no JSON object found")
    if not in_continuation:
        raise ReviewError("no 'Continuation:' line")
    continuation = "\n".join(continuation_lines).strip()
    if continuation.lower().strip(" .") in NO_REASONING:
        continuation = ""
    return verdicts, continuation


def _checked(verdicts: list[dict], continuation: str, steps: int) -> Review:
    kept = []
    for position, verdict in enumerate(verdicts, start=1):
        if verdict["step"] != position:
            raise ReviewError(f"verdicts must number the steps 1, 2, 3, ... in order (got step {verdict['step']} "
                              f"in position {position})")
        if position > steps:
            raise ReviewError(f"there are only {steps} steps, but a verdict for step {position}")
        kept.append(verdict)
        if not verdict["correct"]:
            break
    if not kept:
        raise ReviewError("no verdicts")
    continuation = continuation.strip()
    if kept[-1]["correct"]:
        if len(kept) < steps:
            raise ReviewError(f"verdicts stop at step {len(kept)} of {steps} without a wrong step")
        continuation = ""
    # A wrong step with a continuation that has no reasoning is readable: the annotator asks for the
    # continuation on its own (see ClearAnnotator.continue_from).
    return Review(kept, continuation)


def numbered(steps: list[str]) -> str:
    return "\n".join(f"{i}. {step}" for i, step in enumerate(steps, start=1))


class ClearAnnotator(CotAnnotator):
    """CLEAR, with CoT prompting (and its few-shot exemplars and gold check) as the fallback."""

    name = "clear"
    reads_student_explanation = True  # the loop passes the student's greedy explanation of each item

    def review_messages(self, example: Example, steps: list[str], structured: bool) -> tuple[dict, ...]:
        user = (
            f"Question:\n{self.task.prompt(example)}\n\n"
            f"A student's explanation, as numbered steps:\n{numbered(steps)}\n\n"
            "Check the steps in order: is each one correct? "
            + (JSON_FORMAT if structured else TEXT_FORMAT)
        )
        return ({"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user})

    def steps_of(self, explanation: str) -> list[str]:
        """The steps the teacher is shown and judges: split as selection splits them, each lead-in ("Let's
        break it down step by step:") joined to the step it announces. Shown alone, a lead-in is judged wrong
        by small teachers more often than not, and a wrong step 1 discards every student step (BENCHMARKS.md,
        CLEAR's lead-in steps)."""
        return merge_lead_ins(split_steps(explanation))

    def annotate(self, example: Example, student_explanation: str | None = None) -> Annotation | Rejection:
        details: dict = {"method": "clear"}
        if self.teacher.replays:
            return self._fallback(example, details, "the teacher replays recordings: it cannot review steps")
        steps = self.steps_of(student_explanation or "")
        if not steps:
            return self._fallback(example, details, "no student explanation to review")
        details["student_steps"] = steps
        structured = bool(self.teacher.supports_json_schema)
        messages = self.review_messages(example, steps, structured)
        details["format"] = "json_schema" if structured else "text"
        raw, review, problems = "", None, []
        for attempt in range(2):  # an unparsable reply is asked again once, with the problem shown
            request = Request(
                messages=messages, max_tokens=self.max_tokens, temperature=self.temperature,
                example_id=example.id, sample=attempt, json_schema=REVIEW_SCHEMA if structured else None,
            )
            refused_before = details.get("refused", 0)
            reply = self.ask(request, details)
            if reply is None:
                problems.append(details.get("last_error", "no usable reply"))
                if details.get("refused", 0) > refused_before:
                    break  # the server refuses this request: asking it again would not help
                continue
            raw = reply
            details.setdefault("raw_replies", []).append(raw)
            try:
                review = parse_review(raw, len(steps))
                break
            except ReviewError as problem:
                problems.append(str(problem))
                messages = messages + (
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": f"That reply cannot be read: {problem}. Answer again, exactly in the "
                                                f"format asked, and nothing else."},
                )
        details["unparsable"] = len(problems)
        if problems:
            details["problems"] = problems
        if review is None:
            return self._fallback(example, details, "the teacher's review could not be parsed twice", raw)
        first_wrong = review.first_wrong
        details["verdicts"] = review.verdicts
        details["first_wrong"] = first_wrong
        if first_wrong is None:
            details["outcome"] = "kept"
            details["kept_steps"] = len(steps)
            full = join_steps(steps)
            answer, rationale = self.task.parse_answer(full, example), split_rationale(full)
        else:
            continuation = review.continuation
            if not self.reasons(continuation, example):
                continuation = self.continue_from(example, steps, review, details)
                if continuation is None:
                    return self._fallback(example, details, "the teacher wrote no reasoning for the wrong step", raw)
            details["outcome"] = "revised"
            details["kept_steps"] = first_wrong - 1
            details["continuation"] = continuation
            # The answer is the teacher's, read from its continuation alone: an answer cue inside a kept
            # student step (one quoting the question, say) must not stand in for it.
            answer = self.task.parse_answer(continuation, example)
            rationale = join_steps([s for s in steps[: first_wrong - 1] + [split_rationale(continuation)] if s])
        if answer is None or not rationale:
            return self._fallback(example, details, "the reviewed explanation states no answer or no rationale", raw)
        if self.gold_disagrees(example, answer):
            details["gold_disagreed"] = details.get("gold_disagreed", 0) + 1
            if self.gold_check == "drop" or self.teacher.replays:
                details["outcome"] = "dropped"
                return Rejection(
                    f"the reviewed answer '{answer}' disagrees with the gold answer '{example.answer}' (dropped)",
                    raw, details,
                )
            return self._fallback(example, details, "the reviewed answer disagrees with the gold answer", raw)
        return Annotation(self.name, rationale, answer, self.task.target(rationale, answer), raw, details)

    def reasons(self, continuation: str, example: Example) -> bool:
        """Whether the teacher's continuation holds reasoning: more than an answer cue, and more than a bare
        answer ("entailment", "18") or a placeholder ("none", "n/a") without one."""
        rationale = split_rationale(continuation).strip()
        bare = rationale.strip(" .").lower()
        if bare in NO_REASONING:
            return False
        answer = self.task.parse_answer(rationale, example)
        return answer is None or bare != str(answer).strip(" .").lower()

    def continuation_messages(self, example: Example, steps: list[str], review: Review) -> tuple[dict, ...]:
        wrong = review.first_wrong
        kept = steps[: wrong - 1]
        reason = review.verdicts[-1]["reason"].strip()
        user = (
            f"Question:\n{self.task.prompt(example)}\n\n"
            + (f"The start of a student's explanation, checked and correct:\n{numbered(kept)}\n\n" if kept else "")
            + f"The student's next step is wrong: {steps[wrong - 1]}\n"
            + (f"Why it is wrong: {reason}\n" if reason else "")
            + "\nWrite the correct reasoning that replaces this step and everything after it, in full sentences, "
            "then 'So the answer is <answer>.'"
        )
        return ({"role": "system", "content": COT_SYSTEM_PROMPT}, {"role": "user", "content": user})

    def continue_from(self, example: Example, steps: list[str], review: Review, details: dict) -> str | None:
        """The teacher's reasoning from the first wrong step on, asked for as plain text; None if it has none.

        Small teachers judge the steps but, inside the JSON, often write only "So the answer is X." as the
        continuation, and the same reply again when asked again with the problem shown; asked for the
        continuation alone, in plain text, they reason (figures in BENCHMARKS.md, CoT against CLEAR)."""
        details["continued"] = details.get("continued", 0) + 1
        request = Request(
            messages=self.continuation_messages(example, steps, review), max_tokens=self.max_tokens,
            temperature=self.temperature, example_id=example.id,
        )
        reply = self.ask(request, details)
        if reply is None:
            return None
        details["continuation_raw"] = reply
        return reply.strip() if self.reasons(reply, example) else None

    def _fallback(self, example: Example, details: dict, reason: str, raw: str = "") -> Annotation | Rejection:
        """CoT prompting instead, counted; the review's reply (if any) stays in the details."""
        details["outcome"] = "cot_fallback"
        details["fallback_reason"] = reason
        for revision in ("kept_steps", "continuation"):  # of the revision given up: the rationale is CoT's now
            details.pop(revision, None)
        if raw:
            details["review_raw"] = raw
        return self.cot(example, details, name=self.name)
