"""The contract every registered task keeps, checked on a small sample of each of its official layouts.

Parametrised over `elad.tasks.TASKS`: a newly registered task is checked automatically, and fails until
SAMPLES below holds a sample for it. What every task promises (see `elad.tasks.base.Task`):

- loading gives Examples with ids "{split}-{row}" (unique), non-empty questions, gold answers in the
  canonical form of the task's answer kind (a label, an option letter among the kept choices, the
  shortest number spelling, yes/no); split aliases (dev, validation) name the same split; the default
  (pool, test) splits load from the full layout;
- the prompt holds the question and the instruction; target(rationale, answer) parses back to the answer,
  is_correct holds for it and not for another answer, and split_rationale gives the rationale back;
  exemplars come from a split's gold rationales;
- user errors are EladErrors that say what to fix: an unknown option, no or a missing path, an unknown
  split (listing the known ones), a split whose file is gone (naming it);
- a row whose gold answer is missing or invalid is a DataError naming file, line (or record) and field,
  or, with skip_bad_rows, is skipped and counted while the other rows keep their ids.

Task-specific behaviour (format quirks, record counts of the real data, number parsing, ANLI rounds, the
Distilling Step-by-Step files) stays in tests/unit/test_task_<name>.py.
"""

import csv
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from elad.errors import DataError, EladError
from elad.tasks import ANSWER_CUE, TASKS, AnswerKind, Example
from elad.tasks.answers import LETTERS, format_number, parse_number, split_rationale
from tests.conftest import write_esnli

# --- record files ------------------------------------------------------------------------------------
# Formats: "jsonl" (JSON Lines, whatever the suffix), "json" (an array, one object a line), "csv" (a header
# row, then one record a line), "bigbench" (a BIG-bench task.json: records under "examples", no lines),
# "raw" (any JSON value, e.g. a Fine-tune-CoT index split file).


def write_records(path: Path, fmt: str, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif fmt == "json":
        path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    elif fmt == "csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    elif fmt == "bigbench":
        path.write_text(json.dumps({"name": "strategyqa", "examples": records}, indent=1))
    else:
        path.write_text(json.dumps(records))


def read_records(path: Path, fmt: str) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if fmt == "csv":
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    data = json.loads(path.read_text())
    return data["examples"] if fmt == "bigbench" else data


def record_line(fmt: str, position: int) -> int | None:
    """The line the record at `position` starts on, as write_records lays it out (None: no lines)."""
    return {"jsonl": position + 1, "json": position + 2, "csv": position + 2}.get(fmt)


def files_writer(files: dict[str, tuple[str, object]]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        for name, (fmt, records) in files.items():
            write_records(folder / name, fmt, records)
    return write


# --- the samples -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    layout: str  # names the case
    write: Callable[[Path], None]  # writes the dataset folder
    split: str  # the split checked row by row ...
    split_path: str  # ... its file, relative to the folder ...
    fmt: str  # ... and that file's format
    answers: tuple[str, ...]  # the split's gold answers, canonical, in row order
    question: str  # the split's first question, as the task formats it
    answer_field: str  # the field a record's gold answer is read from
    invalid: tuple[str, object, str]  # (field, value, message part): a gold answer the task must refuse
    path: str = ""  # task.path, relative to the folder
    options: dict = field(default_factory=dict)  # task options; split_file is relative to the folder

    def create(self, folder: Path, **extra):
        options = {k: str(folder / v) if k == "split_file" else v for k, v in self.options.items()}
        return TASKS.create(self.name, **{"path": str(folder / self.path), **options, **extra})

    @property
    def name(self) -> str:
        return self.layout.split("/")[0]


NLI = ("entailment", "neutral", "contradiction")


def esnli_dsbs(folder: Path) -> None:
    valid = [(f"A person number {i} walks.", f"Someone {i} moves.", i % 3) for i in range(6)]
    test = [(f"A dog number {i} runs.", f"An animal {i} is outside.", i % 3) for i in range(3)]
    recorded = [f"Person {i} walking means moving. So the answer is {NLI[i % 3]}." for i in range(6)]
    write_esnli(folder, {"valid": valid, "test": test}, {"valid": recorded})


def esnli_csv_rows(prefix: str, n: int) -> list[dict]:
    return [{"pairID": f"{prefix}{i}", "gold_label": NLI[i % 3], "Sentence1": f"Kids play {i}.",
             "Sentence2": f"Kids play game {i}.", "Explanation_1": f"Playing game {i} is playing."} for i in range(n)]


def anli_rows(premise: str, labels, prefix: str, n: int) -> list[dict]:
    return [{"uid": f"{prefix}{i}", premise: f"Context number {i}.", "hypothesis": f"Claim {i}.",
             "label": labels[i % 3], "reason": f"The context says {i}."} for i in range(n)]


GSM8K_TRAIN = [
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                 "How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
               "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"},
    {"question": "A shop has 36 boxes of 30 pens. How many pens?",
     "answer": "36 * 30 = <<36*30=1080>>1080 pens.\n#### 1,080"},
    {"question": "How many cups are half of 3 cups?", "answer": "3 / 2 = <<3/2=1.5>>1.5 cups.\n#### 1.50"},
]
GSM8K_TEST = [{"question": "What is 7 + 8?", "answer": "7 + 8 = <<7+8=15>>15.\n#### 15"},
              {"question": "What is 9 - 4?", "answer": "9 - 4 = <<9-4=5>>5.\n#### 5"}]

AQUA_DEV = [
    {"question": "A car covers 540 km in 9 hours. Its speed in m/h?",
     "options": ["A)60000", "B)6000", "C)600", "D)32400", "E)10"],
     "rationale": "540 km / 9 h = 60 km/h = 60000 m/h.\nAnswer: A", "correct": "A"},
    {"question": "What is 1/2 + 1?", "options": ["A) 1/2", "B) 1", "C) 3/2", "D) 2"],
     "rationale": "1/2 + 1 = 3/2. The correct option is C", "correct": "c"},
    {"question": "Which is even?", "options": ["A)3", "B)4", "C)5"], "rationale": "4 is divisible by 2.",
     "correct": "B"},
]
AQUA_TEST = [{"question": "What is 2 x 3?", "options": ["A)5", "B)6"], "rationale": "2 x 3 = 6.", "correct": "B"},
             {"question": "What is 2 + 3?", "options": ["A)5", "B)6"], "rationale": "2 + 3 = 5.", "correct": "A"}]


def cqa_official(prefix: str, n: int) -> list[dict]:
    texts = ["bank", "library", "river", "school", "park"]
    rows = []
    for i in range(n):
        choices = [{"label": LETTERS[j], "text": f"{text} {i}"} for j, text in enumerate(texts)]
        rows.append({"id": f"{prefix}{i}", "question": {"question_concept": "x", "stem": f"Where is thing {i}?",
                                                         "choices": choices[::-1] if i == 0 else choices},
                     "answerKey": "ABCDE"[i % 5]})
    return rows


def cqa_dsbs(prefix: str, n: int) -> list[dict]:
    return [{"id": f"{prefix}{i}", "question": f"Where are books kept {i}?",
             "choices": ["bank", "library", "river", "ocean", "sky"], "answer": ["library", "river", "bank"][i % 3],
             "abstractive_explanation": f"Books are kept where people read {i}."} for i in range(n)]


def strategyqa_rows(prefix: str, n: int) -> list[dict]:
    return [{"qid": f"{prefix}{i}", "term": "x", "description": "y", "question": f"Is {i} an even number?",
             "answer": i % 2 == 0, "facts": [f"{i} divided by 2", f"leaves {i % 2}."],
             "decomposition": [f"What is {i} mod 2?"]} for i in range(n)]


BIGBENCH = [{"input": f"Is {i} an even number?", "target_scores": {"Yes": int(i % 2 == 0), "No": int(i % 2 == 1)},
             "target": f"{'Yes' if i % 2 == 0 else 'No'}. {i} divided by 2 leaves {i % 2}."} for i in range(5)]

SVAMP = [
    {"ID": "chal-1", "Body": "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack",
     "Question": "How much do you have to pay to buy each pack?", "Equation": "( 76.0 - 25.0 )", "Answer": 51.0},
    {"ID": "chal-2", "Body": "Dan has 23 apples. He gives 11 away and halves the rest.",
     "Question": "How many are in each half?", "Equation": "( ( 23.0 - 11.0 ) / 2.0 )", "Answer": 6.0},
    {"ID": "chal-3", "Body": "A jug holds 1.5 litres.", "Question": "How much do 3 jugs hold?",
     "Equation": "( 1.5 * 3.0 )", "Answer": 4.5},
    {"ID": "chal-4", "Body": "Tom has 8 cars and buys 4.", "Question": "How many cars does he have?",
     "Equation": "( 8.0 + 4.0 )", "Answer": 12.0},
]


def svamp_dsbs(rows: list[dict]) -> list[dict]:
    return [{"input": f"{r['Body']}\n{r['Question']}", "label": r["Equation"]} for r in rows]


CUSTOM_NUMBER_TRAIN = [{"q": "2+2?", "a": "4", "why": "2+2 is 4."},
                       {"q": "Half of 3?", "a": "1.50", "why": "3 / 2 = 1.5."},
                       {"q": "1,000+1?", "a": "$1,001"}]
CUSTOM_OPTION = [{"question": "Where are books?", "options": "bank|library|river", "gold": "library"},
                 {"question": "Where is water?", "options": "bank|library|river", "gold": "(c)"},
                 {"question": "Where is money?", "options": "bank|library", "gold": "A"}]
CUSTOM_LABEL = [{"p": "A man sleeps.", "h": "A man rests.", "y": "Entailment"},
                {"p": "A dog barks.", "h": "A cat meows.", "y": "contradiction"},
                {"p": "Kids play.", "h": "Kids play chess.", "y": "NEUTRAL"}]
CUSTOM_YES_NO = [{"q": "a?", "a": True}, {"q": "b?", "a": "No"}, {"q": "c?", "a": "yes"}]

# registered task name -> its samples: the official layout(s), and the files elad's other sources ship.
SAMPLES: dict[str, list[Sample]] = {
    "esnli": [
        Sample("esnli/dsbs", esnli_dsbs, "valid", "esnli_valid.json", "jsonl", NLI * 2,
               "Premise: A person number 0 walks.\nHypothesis: Someone 0 moves.", "label",
               ("label", 7, "expected 0, 1 or 2 or an NLI label, got 7")),
        Sample("esnli/csv", files_writer({"esnli_dev.csv": ("csv", esnli_csv_rows("d", 4)),
                                          "esnli_test.csv": ("csv", esnli_csv_rows("t", 2))}),
               "valid", "esnli_dev.csv", "csv", (*NLI, "entailment"),
               "Premise: Kids play 0.\nHypothesis: Kids play game 0.", "gold_label",
               ("gold_label", "-", "expected 0, 1 or 2 or an NLI label, got '-'")),
    ],
    "anli": [
        Sample("anli/official", files_writer({"R1/train.jsonl": ("jsonl", anli_rows("context", "enc", "tr", 3)),
                                              "R1/dev.jsonl": ("jsonl", anli_rows("context", "enc", "dv", 4)),
                                              "R1/test.jsonl": ("jsonl", anli_rows("context", "ENC", "te", 3))}),
               "valid", "R1/dev.jsonl", "jsonl", (*NLI, "entailment"),
               "Premise: Context number 0.\nHypothesis: Claim 0.", "label",
               ("label", "x", "expected 0, 1 or 2 or an NLI label, got 'x'"), options={"round": 1}),
        Sample("anli/dsbs", files_writer({"anli1_valid.json": ("jsonl", anli_rows("premise", (0, 1, 2), "v", 3)),
                                          "anli1_test.json": ("jsonl", anli_rows("premise", (0, 1, 2), "t", 3))}),
               "test", "anli1_test.json", "jsonl", NLI, "Premise: Context number 0.\nHypothesis: Claim 0.", "label",
               ("label", 3, "expected 0, 1 or 2 or an NLI label, got 3")),
    ],
    "gsm8k": [
        Sample("gsm8k/official", files_writer({"train.jsonl": ("jsonl", GSM8K_TRAIN),
                                               "test.jsonl": ("jsonl", GSM8K_TEST)}),
               "train", "train.jsonl", "jsonl", ("72", "1080", "1.5"), GSM8K_TRAIN[0]["question"], "answer",
               ("answer", "no final line", "no final '#### <number>' line")),
    ],
    "aqua": [
        Sample("aqua/official", files_writer({"dev.json": ("jsonl", AQUA_DEV), "test.json": ("jsonl", AQUA_TEST)}),
               "valid", "dev.json", "jsonl", ("A", "C", "B"),
               "A car covers 540 km in 9 hours. Its speed in m/h?\n"
               "Answer choices: (A) 60000 (B) 6000 (C) 600 (D) 32400 (E) 10", "correct",
               ("correct", "F", "expected a letter among the options, got 'F'")),
    ],
    "commonsenseqa": [
        Sample("commonsenseqa/official",
               files_writer({"train_rand_split.jsonl": ("jsonl", cqa_official("tr", 3)),
                             "dev_rand_split.jsonl": ("jsonl", cqa_official("dv", 2))}),
               "train", "train_rand_split.jsonl", "jsonl", ("A", "B", "C"),
               "Where is thing 0?\nAnswer choices: (A) bank 0 (B) library 0 (C) river 0 (D) school 0 (E) park 0",
               "answerKey", ("answerKey", "F", "expected one of A, B, C, D, E, got 'F'")),
        Sample("commonsenseqa/dsbs", files_writer({"cqa_train.json": ("jsonl", cqa_dsbs("tr", 3)),
                                                   "cqa_test.json": ("jsonl", cqa_dsbs("te", 2))}),
               "test", "cqa_test.json", "jsonl", ("B", "C"),
               "Where are books kept 0?\nAnswer choices: (A) bank (B) library (C) river (D) ocean (E) sky", "answer",
               ("answer", "d", "'d' is not one of the choices")),
    ],
    "strategyqa": [
        Sample("strategyqa/official", files_writer({"train.json": ("json", strategyqa_rows("tr", 3)),
                                                    "dev.json": ("json", strategyqa_rows("dv", 2))}),
               "valid", "dev.json", "json", ("yes", "no"), "Is 0 an even number?", "answer",
               ("answer", "yes", "expected bool, got str")),
        Sample("strategyqa/bigbench", files_writer({"bigbench/task.json": ("bigbench", BIGBENCH),
                                                    "split.json": ("raw", {"train": [0, 2, 4], "test": [3, 1]})}),
               "all", "bigbench/task.json", "bigbench", ("yes", "no", "yes", "no", "yes"), "Is 0 an even number?",
               "target_scores", ("target_scores", {"Yes": 1, "No": 1}, 'expected {"Yes": 0/1, "No": 1/0}'),
               path="bigbench", options={"split_file": "split.json"}),
    ],
    "svamp": [
        Sample("svamp/original", files_writer({"SVAMP.json": ("json", SVAMP),
                                               "split.json": ("raw", {"train": [0, 2], "test": [3, 1]})}),
               "all", "SVAMP.json", "json", ("51", "6", "4.5", "12"),
               "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack How much do "
               "you have to pay to buy each pack?", "Answer", ("Answer", "51", "got str"),
               options={"split_file": "split.json"}),
        Sample("svamp/dsbs", files_writer({"svamp_train.json": ("jsonl", svamp_dsbs(SVAMP[:2])),
                                           "svamp_test.json": ("jsonl", svamp_dsbs(SVAMP[2:]))}),
               "test", "svamp_test.json", "jsonl", ("4.5", "12"), "A jug holds 1.5 litres. How much do 3 jugs hold?",
               "label", ("label", "( 3.0 + x )", "not an arithmetic expression")),
    ],
    "custom": [
        Sample("custom/number", files_writer({"train.jsonl": ("jsonl", CUSTOM_NUMBER_TRAIN),
                                              "dev.jsonl": ("jsonl", [{"q": "3+3?", "a": 6}])}),
               "train", "train.jsonl", "jsonl", ("4", "1.5", "1001"), "2+2?", "a",
               ("a", "many", "'many' is not a number"),
               options={"answer_kind": "number", "question": "q", "answer": "a", "rationale": "why"}),
        Sample("custom/option", files_writer({"train.csv": ("csv", CUSTOM_OPTION[:2]),
                                              "test.csv": ("csv", CUSTOM_OPTION)}),
               "test", "test.csv", "csv", ("B", "C", "A"),
               "Where are books?\nAnswer choices: (A) bank (B) library (C) river", "gold",
               ("gold", "ocean", "'ocean' is neither a choice's letter nor its text"),
               options={"answer_kind": "option", "question": "question", "choices": "options", "answer": "gold"}),
        Sample("custom/label", files_writer({"nli.json": ("json", CUSTOM_LABEL)}), "all", "nli.json", "json",
               ("entailment", "contradiction", "neutral"), "Premise: A man sleeps.\nHypothesis: A man rests.", "y",
               ("y", "maybe", "'maybe' is not one of the labels entailment, neutral, contradiction"), path="nli.json",
               options={"answer_kind": "label", "template": "Premise: {p}\\nHypothesis: {h}", "answer": "y",
                        "labels": list(NLI)}),
        Sample("custom/yes_no", files_writer({"d.jsonl": ("jsonl", CUSTOM_YES_NO)}), "all", "d.jsonl", "jsonl",
               ("yes", "no", "yes"), "a?", "a", ("a", "maybe", "expected yes or no, got 'maybe'"), path="d.jsonl",
               options={"answer_kind": "yes_no", "question": "q", "answer": "a"}),
    ],
}

CASES = [pytest.param(name, sample, id=sample.layout if sample else f"{name}/no-sample")
         for name in TASKS.names() for sample in SAMPLES.get(name) or [None]]

# layout -> why it does not keep the contract yet: its cases are marked xfail(strict=True) by `sample_dir`.
KNOWN_FAILURES: dict[str, str] = {}


@pytest.fixture
def sample_dir(request, tmp_path) -> Path:
    """The case's dataset folder, written fresh for each test."""
    name, sample = request.node.callspec.params["name"], request.node.callspec.params["sample"]
    if sample is None:
        pytest.fail(f"task '{name}' is registered but has no sample in SAMPLES of the task contract; add one")
    if sample.layout in KNOWN_FAILURES:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_FAILURES[sample.layout], strict=True))
    sample.write(tmp_path)
    return tmp_path


def test_every_sample_is_of_a_registered_task():
    assert set(SAMPLES) <= set(TASKS.names())
    assert all(sample.name == name for name, samples in SAMPLES.items() for sample in samples)


# --- loading -----------------------------------------------------------------------------------------


def check_canonical(task, example: Example) -> None:
    kind = task.answer_kind
    if kind == AnswerKind.OPTION:
        assert len(example.choices) >= 2 and all(c and c == c.strip() for c in example.choices)
        assert example.answer in LETTERS[: len(example.choices)]
        assert task.candidates(example) == tuple(LETTERS[: len(example.choices)])
        assert all(f"({LETTERS[i]}) {c}" in example.question for i, c in enumerate(example.choices))
        return
    assert example.choices == ()
    if kind == AnswerKind.NUMBER:
        assert example.answer == format_number(parse_number(example.answer)) and task.candidates(example) == ()
    else:
        if kind == AnswerKind.YES_NO:
            assert task.labels == ("yes", "no")
        assert example.answer in task.labels and task.candidates(example) == task.labels


@pytest.mark.parametrize("name, sample", CASES)
def test_load_gives_row_ids_questions_and_canonical_answers(name, sample, sample_dir):
    task = sample.create(sample_dir)
    assert task.name == name and isinstance(task.answer_kind, AnswerKind) and task.instruction.strip()
    if task.answer_kind in (AnswerKind.LABEL, AnswerKind.YES_NO):
        assert task.labels and len(set(task.labels)) == len(task.labels)
    examples = task.load(sample.split)
    assert all(isinstance(e, Example) for e in examples)
    assert [e.id for e in examples] == [f"{sample.split}-{i}" for i in range(len(sample.answers))]
    assert tuple(e.answer for e in examples) == sample.answers
    assert examples[0].question == sample.question and all(e.question.strip() for e in examples)
    source_ids = [e.meta["source_id"] for e in examples if "source_id" in e.meta]
    assert len(set(source_ids)) == len(source_ids)
    for example in examples:
        check_canonical(task, example)
    assert task.skipped[sample.split] == 0 and task.problems[sample.split] == []


@pytest.mark.parametrize("name, sample", CASES)
def test_default_splits_and_aliases_load(name, sample, sample_dir):
    task = sample.create(sample_dir)
    assert set(task.available_splits()) <= set(task.splits)
    assert sample.split in task.available_splits() and set(task.default_splits) <= set(task.available_splits())
    for split in task.default_splits:
        examples = task.load(split)
        assert examples and len({e.id for e in examples}) == len(examples)
        assert all(e.answer and e.question.strip() for e in examples)
    if "valid" in task.splits:
        assert task.load("dev") == task.load("validation") == task.load("valid")


# --- prompts, targets, answers -----------------------------------------------------------------------


def wrong_answer(task, example: Example) -> str:
    if task.answer_kind == AnswerKind.NUMBER:
        return format_number(float(example.answer) + 1)
    return next(c for c in task.candidates(example) if c != example.answer)


@pytest.mark.parametrize("name, sample", CASES)
def test_prompt_target_parse_and_scoring_agree(name, sample, sample_dir):
    task = sample.create(sample_dir)
    examples = task.load(sample.split)
    for example in examples:
        prompt = task.prompt(example)
        assert example.question in prompt and task.instruction in prompt
        for rationale in (example.rationale or "", "Some reasoning, step by step."):
            target = task.target(rationale, example.answer)
            assert target.endswith(f"{ANSWER_CUE} {example.answer}.")
            assert split_rationale(target) == rationale.strip()
            parsed = task.parse_answer(target, example)
            assert parsed == example.answer and task.is_correct(parsed, example.answer)
        wrong = wrong_answer(task, example)
        assert task.parse_answer(task.target("Some reasoning.", wrong), example) == wrong
        assert not task.is_correct(wrong, example.answer) and not task.is_correct(None, example.answer)
        assert not task.is_correct(example.answer, "")
    assert task.accuracy([e.answer for e in examples], examples) == 1.0
    assert task.accuracy([None] * len(examples), examples) == 0.0


@pytest.mark.parametrize("name, sample", CASES)
def test_instruction_first_prompts_open_alike_and_keep_the_question(name, sample, sample_dir):
    task = sample.create(sample_dir)
    examples = task.load(sample.split)
    after = [task.prompt(e) for e in examples]
    task.instruction_first = True
    before = [task.prompt(e) for e in examples]
    opening = os.path.commonprefix(before)
    assert opening.startswith(task.instruction + "\n")
    assert len(opening) > len(os.path.commonprefix(after))  # what generation computes once per batch
    for example, prompt in zip(examples, before):
        assert prompt.endswith(example.question)


@pytest.mark.parametrize("name, sample", CASES)
def test_exemplars_come_from_a_splits_gold_rationales(name, sample, sample_dir):
    task = sample.create(sample_dir, exemplars=sample.split)
    examples = task.load(sample.split)
    with_rationale = [e for e in examples if e.rationale]
    if not with_rationale:
        with pytest.raises(EladError, match="exemplars"):
            task.exemplars(1)
        return
    shots = task.exemplars(min(2, len(with_rationale)), seed=3)
    assert shots == task.exemplars(min(2, len(with_rationale)), seed=3)
    assert all(e in with_rationale and text == task.target(e.rationale, e.answer) for e, text in shots)
    prompt = task.few_shot_prompt(examples[0], shots)
    assert prompt.startswith(f"Q: {shots[0][0].question}\nA: {shots[0][1]}")
    assert prompt.endswith(f"Q: {examples[0].question}\nA:")


# --- user errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, sample", CASES)
def test_unknown_option_and_no_or_a_missing_path_are_user_errors(name, sample, sample_dir):
    with pytest.raises(EladError, match="unknown option"):
        sample.create(sample_dir, not_an_option=1)
    nowhere = sample_dir / "nowhere"
    with pytest.raises(EladError, match="does not exist") as error:
        sample.create(sample_dir, path=str(nowhere))
    assert str(nowhere) in str(error.value)
    try:  # no path: the task's packaged sample, or an error that says to set task.path
        task = sample.create(sample_dir, path=None)
    except EladError as error:
        assert "set task.path" in str(error)
    else:
        assert task.load(task.default_splits[0])


@pytest.mark.parametrize("name, sample", CASES)
def test_unknown_split_lists_the_known_ones(name, sample, sample_dir):
    task = sample.create(sample_dir)
    with pytest.raises(EladError, match=re.escape(f"no split 'validation_x'; known: {', '.join(task.splits)}") + "$"):
        task.load("validation_x")


@pytest.mark.parametrize("name, sample", CASES)
def test_a_split_whose_file_is_gone_names_it(name, sample, sample_dir):
    task = sample.create(sample_dir)
    (sample_dir / sample.split_path).unlink()
    with pytest.raises(DataError, match="file not found") as error:
        task.load(sample.split)
    assert not Path(error.value.path).exists() and Path(error.value.path).name in str(error.value)
    assert Path(error.value.path).name == Path(sample.split_path).name


# --- bad rows ----------------------------------------------------------------------------------------


def insert_bad_row(sample: Sample, folder: Path, bad: str) -> tuple[Path, int | None]:
    """A copy of the split's first record, missing its gold answer or with an invalid one, inserted as
    the second record; returns the file and the line it starts on."""
    path = folder / sample.split_path
    records = read_records(path, sample.fmt)
    row = dict(records[0])
    if bad == "invalid":
        row[sample.invalid[0]] = sample.invalid[1]
    elif sample.fmt == "csv":
        row[sample.answer_field] = ""  # a CSV row has every column: an empty cell is the missing value
    else:
        del row[sample.answer_field]
    if sample.fmt == "bigbench":
        document = json.loads(path.read_text())
        document["examples"] = [records[0], row, *records[1:]]
        path.write_text(json.dumps(document, indent=1))
    else:
        write_records(path, sample.fmt, [records[0], row, *records[1:]])
    return path, record_line(sample.fmt, 1)


@pytest.mark.parametrize("bad", ["missing", "invalid"])
@pytest.mark.parametrize("name, sample", CASES)
def test_a_bad_gold_answer_names_file_line_and_field_or_is_skipped(name, sample, sample_dir, bad):
    path, line = insert_bad_row(sample, sample_dir, bad)
    field = sample.answer_field if bad == "missing" else sample.invalid[0]
    with pytest.raises(DataError) as error:
        sample.create(sample_dir).load(sample.split)
    message = str(error.value)
    assert error.value.path == path and str(path) in message
    assert error.value.field.endswith(field) and f"field '{error.value.field}'" in message
    if line is not None:
        assert error.value.line == line and f"line {line}:" in message
    else:  # a BIG-bench task.json is one JSON document: the record is named by its index
        assert error.value.field.startswith("examples[1]")
    if bad == "invalid":
        assert sample.invalid[2] in message

    task = sample.create(sample_dir, skip_bad_rows=True)
    examples = task.load(sample.split)
    assert [e.id for e in examples] == [f"{sample.split}-{i}" for i in range(len(sample.answers) + 1) if i != 1]
    assert tuple(e.answer for e in examples) == sample.answers
    assert task.skipped[sample.split] == 1 and task.problems[sample.split] == [message]


def test_the_contract_cases_cover_every_registered_task():
    """CASES is built from TASKS, so a new task shows up as a failing 'no-sample' case until SAMPLES has one."""
    assert {case.values[0] for case in CASES} == set(TASKS.names())
