"""How a student is prompted, and what it trains on.

Prompts given to a student are user texts (a task's prompt); the student frames them: a causal LM with
its chat template (plain text for base models), a seq2seq model as they are. Under the step-by-step
objective a prompt is prefixed with `predict: ` (answer only) or `explain: ` (rationale), as in
Distilling Step-by-Step (Hsieh et al., 2023). Training features are the same framing as token ids, with
the loss on the target tokens only.
"""

import logging

from elad.config import TrainingConfig
from elad.errors import EladError
from elad.students.common import IGNORE_INDEX, TrainRecord
from elad.tasks.answers import answer_segment, split_rationale
from elad.tasks.base import ANSWER_CUE

log = logging.getLogger(__name__)

MODES = {"plain": "", "predict": "predict: ", "explain": "explain: "}


def mode_in_force(mode: str | None, objective: str, inference: str, for_explanations: bool) -> str:
    """The prompt prefix in force: `mode` when given, else what weights trained with `objective` and
    `inference` expect."""
    if mode is not None:
        if mode not in MODES:
            raise EladError(f"unknown prompt mode '{mode}'; known: {', '.join(MODES)}")
        return mode
    if objective != "step_by_step":
        return "plain"
    if for_explanations or inference == "cot":
        return "explain"
    return "predict"


def step_by_step_targets(record: TrainRecord, inference: str) -> tuple[str, str]:
    """(predict target, explain target) of a record. A record without its rationale or answer (a (prompt,
    target) pair) has them read from its target, the way the tasks read answers."""
    if record.answer is not None:
        answer = record.answer
    else:
        answer = (answer_segment(record.target) or "").strip().rstrip(".").strip()
    if inference == "cot":
        explain = record.target  # a student answering with a rationale learns to write the whole target
    else:
        explain = record.rationale if record.rationale is not None else split_rationale(record.target)
    return f"{ANSWER_CUE} {answer}.", explain


class PromptFormat:
    """A tokenizer's framing of user texts: the rendered prompt, the target after it, token ids."""

    def __init__(self, tokenizer, is_seq2seq: bool):
        self.tokenizer, self.is_seq2seq = tokenizer, is_seq2seq

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def render(self, user_text: str, mode: str = "plain") -> str:
        """The student's input: the user turn as the chat template frames it (plain text for base and
        seq2seq models), after the mode's prefix."""
        user_text = MODES[mode] + user_text
        if self.is_seq2seq:
            return user_text
        if self.tokenizer.chat_template:
            messages = [{"role": "user", "content": user_text}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{user_text}\n"

    def render_target(self, user_text: str, target: str) -> str:
        """What follows the prompt in a finished conversation: the target and the turn's end marker."""
        if not self.is_seq2seq and self.tokenizer.chat_template:
            messages = [{"role": "user", "content": user_text}, {"role": "assistant", "content": target}]
            full = self.tokenizer.apply_chat_template(messages, tokenize=False)
            prompt = self.render(user_text)
            if full.startswith(prompt):
                return full[len(prompt):]
        return target + (self.tokenizer.eos_token or "")

    def encode_pair(self, user_text: str, target: str, max_length: int, mode: str = "plain") -> dict:
        """Token ids of prompt + target with labels only on the target (causal LM: prompt labels ignored);
        for a seq2seq model, the encoder input and the target as labels."""
        if self.is_seq2seq:
            input_ids = self.tokenizer(MODES[mode] + user_text, add_special_tokens=True)["input_ids"][:max_length]
            labels = self.tokenizer(target, add_special_tokens=True)["input_ids"]
            eos = self.tokenizer.eos_token_id
            if eos is not None and (not labels or labels[-1] != eos):
                labels = labels + [eos]
            return {"input_ids": input_ids, "labels": labels[:max_length]}
        prompt_ids = self.ids(self.render(user_text, mode))
        target_ids = self.ids(self.render_target(MODES[mode] + user_text, target))
        input_ids = (prompt_ids + target_ids)[:max_length]
        labels = ([IGNORE_INDEX] * len(prompt_ids) + target_ids)[:max_length]
        return {"input_ids": input_ids, "labels": labels}

    def features(self, records: list[TrainRecord], settings: TrainingConfig) -> list[dict]:
        """Training features for the objective: {input_ids, labels}, or {predict: ..., explain: ...}. An
        example whose prompt leaves its target no token within `training.max_length` teaches nothing (and a
        batch of only such examples would have no loss): it is left out, and how many were, and how many
        targets were cut short, is logged."""
        if settings.objective == "cot":
            features = [self.encode_pair(r.prompt, r.target, settings.max_length) for r in records]
        else:
            features = []
            for r in records:
                predict, explain = step_by_step_targets(r, settings.inference)
                features.append({
                    "predict": self.encode_pair(r.prompt, predict, settings.max_length, "predict"),
                    "explain": self.encode_pair(r.prompt, explain, settings.max_length, "explain"),
                })
        return _fitting(features, settings.max_length)



def _pairs(feature: dict) -> list[dict]:
    return [feature] if "labels" in feature else list(feature.values())


def _fitting(features: list[dict], max_length: int) -> list[dict]:
    """The features with a target token in every part; the rest dropped, with a warning that says how to
    keep them."""
    def taught(pair: dict) -> bool:
        return any(label != IGNORE_INDEX for label in pair["labels"])

    kept = [f for f in features if all(taught(pair) for pair in _pairs(f))]
    cut = sum(1 for f in kept for pair in _pairs(f) if len(pair["input_ids"]) >= max_length)
    if len(kept) < len(features):
        log.warning("%d of %d training examples have prompts of training.max_length=%d tokens or more: no "
                    "target token is left to learn, so they are left out (raise training.max_length)",
                    len(features) - len(kept), len(features), max_length)
    if cut:
        log.warning("%d training examples reach training.max_length=%d tokens: a target cut there does not "
                    "teach how it ends (raise training.max_length if they are cut)", cut, max_length)
    if features and not kept:
        raise EladError(f"no training example fits training.max_length={max_length}: every prompt fills it")
    return kept
