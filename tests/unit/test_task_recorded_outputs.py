"""Answers read from real recorded model outputs, checked against the parsers that published them.

- Distilling Step-by-Step's PaLM-540B rationales: their loader's own label extraction (README rules).
- Kojima et al.'s text-davinci-002 zero-shot-CoT logs: the prediction their script extracted.
Agreement rates below were measured; every kind of disagreement is listed with the test.
"""

import json
import re
from functools import lru_cache

import pytest

from elad.tasks import TASKS, answers
from elad.teachers.replay import load_dsbs_rationales
from tests.conftest import SHARED_DATA

DSBS = SHARED_DATA / "dsbs-rationales"
KOJIMA = SHARED_DATA / "teacher-caches" / "kojima-zero-shot-cot"


@lru_cache(maxsize=None)
def dsbs(name: str, folder: str):
    task = TASKS.create(name, path=str(DSBS / folder))
    examples = task.load("test")
    raw = []
    for part in range(2):
        path = DSBS / folder / "llm" / f"test_CoT_{part}.json"
        raw += json.loads(path.read_text()) if path.exists() else []
    return task, examples, raw, load_dsbs_rationales(DSBS / folder, folder, "test")


def dsbs_reference(folder: str, raw: str) -> str | None:
    """The release's own extraction, as its README describes it."""
    if folder == "esnli":
        parts = raw.split("Answer:")
        return parts[1].split("Premise")[0].strip() if len(parts) > 1 else None
    cut = raw.split("Premise:" if folder == "anli1" else "Q:")[0]
    parts = cut.split("So the answer is" if folder != "svamp" else "The answer is")
    if len(parts) < 2:
        return None
    if folder == "anli1":
        return parts[1].strip()[:-1].strip()
    if folder == "cqa":
        letter = re.search(r"\(([a-e])\)", parts[1])
        return letter.group(1).upper() if letter else None
    return parts[1].strip().rstrip(".")  # svamp: the parenthesised equation


@pytest.mark.skipif(not DSBS.exists(), reason="shared data not present")
@pytest.mark.parametrize("name, folder, agreed", [("anli", "anli1", 990), ("esnli", "esnli", 9823),
                                                  ("commonsenseqa", "cqa", 1221), ("svamp", "svamp", 193)])
def test_palm_rationales_parse_as_the_release_parses_them(name, folder, agreed):
    """Measured on the test splits, where the release's rule finds an answer: ANLI 990/990, e-SNLI
    9,823/9,823, CQA 1,221/1,221, SVAMP 193/193 (its stated equation, "(10 * 45)", evaluated). The rule
    misses 10 ANLI replies written "so the answer is" in lower case and 1 truncated e-SNLI reply
    ("Answer: entailment\n\nPre"), which we read; 5 SVAMP equations hold a variable or two answers
    ("(23 + x)", "(8 / 4) and (6 / 4)") and 2 replies state none."""
    task, examples, raw, cut = dsbs(name, folder)
    same = checked = 0
    for example, text in zip(examples, raw):
        reference, ours = dsbs_reference(folder, text), task.parse_answer(cut[example.id], example)
        if reference is None or (task.labels and reference not in task.labels):  # e-SNLI: "entailment\n\nPre"
            continue
        if folder == "svamp":
            try:
                value = answers.format_number(answers.evaluate_arithmetic(reference))
            except ValueError:  # "(23 + x)", "(8 / 4) and (6 / 4)": the reply states no number
                continue
            same += answers.numbers_equal(ours or "", value)
            checked += 1
        else:
            same += ours == reference
            checked += 1
    assert same == checked == agreed


def kojima_blocks(log: str):
    text = (KOJIMA / log).read_text()
    pattern = r"\nQ: (.*?)\nA: (.*?)\npred_before :.*?\npred_after : (.*?)\n.*?\nGT : (.*?)\n"
    return [m.groups() for m in re.finditer(pattern, text, re.DOTALL)]


def kojima_choices(question: str) -> tuple[str, ...]:
    listed = question.split("Answer Choices:")[-1]
    return tuple(t.strip() for t in re.findall(r"\([A-E]\)\s*(.*?)(?=\s*\([A-E]\)|$)", listed))


@pytest.mark.skipif(not KOJIMA.exists(), reason="shared data not present")
@pytest.mark.parametrize("log, kind, count, floor", [
    ("gsm8k_zero_shot_cot.log", "number", 1319, 0.92), ("svamp_zero_shot_cot.log", "number", 1000, 0.96),
    ("aqua_zero_shot_cot.log", "option", 254, 0.98), ("commonsensqa_zero_shot_cot.log", "option", 1221, 0.87),
    ("strategyqa_zero_shot_cot.log", "yes_no", 2290, 0.999)])
def test_kojima_logs_parse_like_kojimas_script_except_where_it_guesses(log, kind, count, floor):
    """Measured agreement with Kojima's extracted prediction: GSM8K 92.6%, SVAMP 96.6%, AQuA 98.8%,
    CSQA 87.6%, StrategyQA 99.96%. Where we differ, their script takes the first number or letter of the
    answer line and we do not: "42 + 66 = 108" is 108 (theirs 42), "(10 * 45)" is 450, "seventy six" is 76,
    and "either A or C" / "A, B, or D" / "it depends" name no single answer (theirs: the first letter)."""
    blocks = kojima_blocks(log)
    assert len(blocks) == count
    same = 0
    for question, reply, theirs, _ in blocks:
        ours = answers.extract(reply, kind, choices=kojima_choices(question) if kind == "option" else ())
        if ours is None or theirs == "":
            same += ours is None and theirs == ""
        else:
            same += answers.numbers_equal(ours, theirs) if kind == "number" else ours.lower() == theirs.lower()
    assert same / count >= floor


@pytest.mark.skipif(not KOJIMA.exists(), reason="shared data not present")
def test_kojima_gsm8k_log_gold_answers_are_ours():
    """The log covers the GSM8K test split (shuffled); its gold answers equal ours question for question."""
    task = TASKS.create("gsm8k", path=str(SHARED_DATA / "gsm8k"))
    gold = {" ".join(e.question.split()): e for e in task.load("test")}
    blocks = kojima_blocks("gsm8k_zero_shot_cot.log")
    examples = [gold[" ".join(question.split())] for question, *_ in blocks]
    assert len({e.id for e in examples}) == 1319
    assert all(answers.numbers_equal(e.answer, gt) for e, (*_, gt) in zip(examples, blocks))
    accuracy = task.accuracy([task.parse_answer(reply) for _, reply, _, _ in blocks], examples)
    assert 0.42 < accuracy < 0.44  # 43.1%; the paper reports 40.7% with its first-number rule
