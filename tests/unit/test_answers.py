import pytest
from hypothesis import given
from hypothesis import strategies as st

from elad.tasks.answers import extract, format_number, numbers_equal, parse_number, split_rationale
from elad.tasks.esnli import NLI_LABELS


def label(text):
    return extract(text, "label", labels=NLI_LABELS)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A man is a person. So the answer is entailment.", "entailment"),
        ("So the answer is Contradiction", "contradiction"),
        ("It is not possible to tell. So the answer is neutral.", "neutral"),
        ("The premise contradicts nothing, but the answer is: entailment", "entailment"),
        ("Entailment", "entailment"),
        ("The premise does not entail the hypothesis.", None),  # negation is not a label
        ("Could be entailment or neutral. So the answer is neutral.", "neutral"),  # the cue wins
        ("The hypothesis cannot be determined from the premise.", "neutral"),
        ("So the answer is yes.", "entailment"),
        ("I like turtles.", None),
        ("", None),
    ],
)
def test_nli_labels(text, expected):
    assert label(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She has 3 + 4 = 7 apples. So the answer is 7.", "7"),
        ("#### 1,234", "1234"),
        ("The total is \\boxed{\\frac{3}{4}}", "0.75"),
        ("It costs $12.50 in all. The answer is $12.50.", "12.5"),
        ("First 5, then 10, finally 15", "15"),
        ("The answer is -3.", "-3"),
        ("no digits at all", None),
    ],
)
def test_numbers(text, expected):
    assert extract(text, "number") == expected


def test_options_by_letter_and_by_text():
    choices = ("bank", "library", "river")
    assert extract("So the answer is (B).", "option", choices=choices) == "B"
    assert extract("People keep books in a library. So the answer is library.", "option", choices=choices) == "B"
    assert extract("Answer: C", "option", choices=choices) == "C"


def test_yes_no():
    assert extract("Yes, at first. But no. So the answer is no.", "yes_no") == "no"
    assert extract("That is true.", "yes_no") == "yes"


def test_split_rationale_drops_the_answer_and_its_connective():
    assert split_rationale("A is B.\nB is C.\nSo the answer is entailment.") == "A is B.\nB is C."
    assert split_rationale("Therefore, the answer is 4") == ""


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_integers_survive_commas_and_cue(n):
    text = f"Some steps. So the answer is {n:,}."
    assert numbers_equal(extract(text, "number"), str(n))


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: round(x, 4)))
def test_format_then_parse_is_identity(x):
    assert parse_number(format_number(x)) == pytest.approx(x, rel=1e-6, abs=1e-6)


@given(st.sampled_from(NLI_LABELS), st.text(alphabet="abcdefghij .,\n", max_size=60))
def test_final_cue_decides_whatever_comes_before(gold, noise):
    assert label(f"{noise}\nSo the answer is {gold}.") == gold
