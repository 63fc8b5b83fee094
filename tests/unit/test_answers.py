import pytest
from hypothesis import given
from hypothesis import strategies as st

from elad.tasks.answers import NLI_SYNONYMS, extract, format_number, numbers_equal, parse_number, split_rationale
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


# --- real model outputs: Kojima et al.'s text-davinci-002 logs, DSbS PaLM-540B, OpenAI GPT-3 solutions,
# --- AQuA's human rationales. Each line is a kind of reply the parser once got wrong or could get wrong.

CSQA = ("bank", "library", "department store", "colds and flu", "hotel")


@pytest.mark.parametrize("text, kind, choices, expected", [
    ("Therefore, the answer (arabic numerals) is: \n\n42 + 66 = 108", "number", (), "108"),
    ("Therefore, the answer (arabic numerals) is two hundred ninety-four dollars.", "number", (), "294"),
    ("Therefore, the answer (arabic numerals) is seventy six.", "number", (), "76"),
    ("Therefore, the answer (arabic numerals) is $50(10)-$320=$1,430.", "number", (), "1430"),
    ("So they planted 10 * 45 seeds. 10 * 45 is 450. The answer is (10 * 45).", "number", (), "450"),
    ("So he had 12 - 10 = 2 tickets left. The answer is ((14 - 2) - 10).", "number", (), "2"),
    ("We add the three groups.\nSo the answer is <610769 + 590796 + 22>.", "number", (), "1201587"),  # not 610769
    ("So the answer is [12 + 3] apples.", "number", (), "15"),
    ("So the answer is `7 * 6`.", "number", (), "42"),
    ("So the answer is <<9*2=18>>18.", "number", (), "18"),
    ("= \\fbox{70}\\%$.\n\nTherefore, the answer (arabic numerals) is 70.", "number", (), "70"),
    ("He has $368 - $388 = -$20.\nTherefore, the answer (arabic numerals) is -$20.", "number", (), "-20"),
    ("Therefore, the answer (arabic numerals) is 16 flashlights and 9 candles.", "number", (), "16"),
    ("Therefore, the answer (arabic numerals) is _____.", "number", (), None),  # a blank is no answer
    ("Therefore, the answer (arabic numerals) is 25%. The answer (as a fraction) is 1/4.", "number", (), "0.25"),
    ("She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer’s market.\nA: 18", "number", (), "18"),
    ("Hazel walked 2 x 2 = 4 kilometers in the second hour.\nSo, she walked 2 + 4 = 6 kilometers for 2 hours.",
     "number", (), "6"),  # no cue: the last calculation's result, not the trailing "2 hours"
    ("Rs.4578 = 20% of SP\n:. SP = 4578 x 100/80 = Rs.5723", "number", (), "5723"),
    ("It is 10 - 4 = 6 now", "number", (), "6"),
    ("The trip is 12km long.", "number", (), "12"),
    ("So the answer is (e) wait for orders.", "option", CSQA, "E"),
    ("Therefore, among A through E, the answer is either C or B.", "option", CSQA, None),
    ("Therefore, among A through E, the answer is A, B, or D.", "option", CSQA, None),
    ("Therefore, among A through E, the answer is most likely E, a hotel.", "option", CSQA, "E"),
    ("Therefore, among A through E, the answer is Colds and Flu.", "option", CSQA, "D"),
    ("Therefore, among A through E, the answer is not A.", "option", CSQA, None),
    ("Therefore, the answer is (E). \nTherefore, among A through E, the answer is E.", "option", CSQA, "E"),
    ("Present age of Maya = 6x = 30.\nAnswer: Option B", "option", CSQA, "B"),
    ("Lucy + Luke's speed= (1/6 + 1/9) = 5/18 trips per year\ncorrect option is B", "option", CSQA, "B"),
    ("Hence interest is 5618-5000=618.\nAnswer D", "option", CSQA, "D"),
    ("x = 4.5\nA", "option", CSQA, "A"),
    ("Of the above choices, only blotters are used to absorb ink. The answer is hotel.", "option", CSQA, "E"),
    ("Oxford Street is not on the continent of Europe. So the answer is contradiction.", "label", NLI_LABELS,
     "contradiction"),
    ("The Bahamas were a British colony until 1973, so the answer is contradiction.", "label", NLI_LABELS,
     "contradiction"),
    ("Not all churches have cracks in the ceiling.\nAnswer: neutral\n\nPremise: A church.", "label", NLI_LABELS,
     "neutral"),
    ("The premise neither entails nor contradicts the hypothesis.", "label", NLI_LABELS, "neutral"),
    ("A baby gray whale would be too wide.\nTherefore, the answer (Yes or No) is No.", "yes_no", (), "no"),
    ("There is no such thing as an Albidosi.\nTherefore, the answer (Yes or No) is moot.", "yes_no", (), None),
    ("If you mean the Church, then the answer is yes.\nTherefore, the answer (Yes or No) is:\n\nIt depends.",
     "yes_no", (), None),
    ("Therefore, the answer (Yes or No) is YES!", "yes_no", (), "yes"),
    # mixed numbers, percentages inside a calculation, emphasis around a letter, negated and idiomatic yes/no
    ("The answer is 2 1/2.", "number", (), "2.5"),
    ("So the answer is 1 1/2 cups.", "number", (), "1.5"),
    ("The answer is 20 * 50%.", "number", (), "10"),
    ("The answer is 1 000.", "number", (), "1"),  # no operator between the digits: nothing computed
    ("So the answer is **B**.", "option", CSQA, "B"),
    ("The answer is [C].", "option", CSQA, "C"),
    ("So the answer is 'D'", "option", CSQA, "D"),
    ("The answer is it is not true.", "yes_no", (), "no"),
    ("The answer is there is no evidence, so yes.", "yes_no", (), "yes"),
    ("The answer is no one would, so no.", "yes_no", (), "no"),
])
def test_tricky_real_outputs(text, kind, choices, expected):
    assert extract(text, kind, labels=NLI_LABELS if kind == "label" else (), choices=choices) == expected


# --- properties ------------------------------------------------------------------------------------

@given(st.integers(min_value=-10**9, max_value=10**9), st.sampled_from(["", "$", "€"]),
       st.sampled_from(["", " dollars", "km", " apples", "%"]), st.booleans())
def test_a_cued_integer_survives_currency_commas_and_units(n, currency, unit, commas):
    sign, digits = ("-" if n < 0 else ""), (f"{abs(n):,}" if commas else str(abs(n)))
    assert extract(f"Some steps: 3 + 4 = 7.\nSo the answer is {sign}{currency}{digits}{unit}.", "number") == str(n)


@given(st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False, allow_infinity=False))
def test_a_cued_decimal_is_read_exactly(value):
    assert numbers_equal(extract(f"The answer is {value}", "number"), str(value))


@given(st.integers(min_value=-500, max_value=500), st.integers(min_value=1, max_value=500))
def test_fractions_plain_and_latex(top, bottom):
    assert numbers_equal(extract(f"The answer is {top}/{bottom}.", "number"), str(top / bottom))
    assert numbers_equal(extract(f"So \\boxed{{\\frac{{{top}}}{{{bottom}}}}}", "number"), str(top / bottom))


@given(st.integers(min_value=0, max_value=999), st.integers(min_value=0, max_value=999),
       st.integers(min_value=2, max_value=9))
def test_cued_calculations_give_their_result(a, b, days):
    assert extract(f"So the answer is {a} + {b} = {a + b}.", "number") == str(a + b)
    assert extract(f"The answer is ({a} * {b}).", "number") == str(a * b)
    assert extract(f"She had {a} pens.\nShe has {a} + {b} = {a + b} pens after {days} days.", "number") == str(a + b)


def spell(n: int) -> str:
    units = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
             "sixteen seventeen eighteen nineteen").split()
    tens = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
    if n < 20:
        return units[n]
    if n < 100:
        return tens[n // 10] + ("" if n % 10 == 0 else "-" + units[n % 10])
    if n < 1000:
        return units[n // 100] + " hundred" + ("" if n % 100 == 0 else " and " + spell(n % 100))
    return spell(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + spell(n % 1000))


@given(st.integers(min_value=0, max_value=999_999))
def test_number_words_after_a_cue(n):
    assert extract(f"Therefore, the answer is {spell(n)} dollars.", "number") == str(n)


@given(st.sampled_from([(label, word) for label, words in NLI_SYNONYMS.items() for word in words]),
       st.sampled_from([str.lower, str.upper, str.title]))
def test_every_label_wording_after_a_cue(pair, case):
    gold, word = pair
    assert label(f"Some reasoning.\nSo the answer is {case(word)}.") == gold


@given(st.sampled_from(["does not", "doesn't", "cannot", "can never"]),
       st.sampled_from(["entail", "contradict"]))
def test_negated_labels_are_not_mentions(negation, verb):
    assert label(f"The premise {negation} {verb} the hypothesis.") is None


@given(st.lists(st.text(alphabet="xyzw", min_size=3, max_size=6), min_size=2, max_size=5, unique=True),
       st.data())
def test_options_by_letter_and_by_text(choices, data):
    index = data.draw(st.integers(min_value=0, max_value=len(choices) - 1))
    letter = "ABCDE"[index]
    assert extract(f"So the answer is ({letter}).", "option", choices=choices) == letter
    assert extract(f"So the answer is ({letter.lower()}) {choices[index]}.", "option", choices=choices) == letter
    assert extract(f"So the answer is {choices[index]}.", "option", choices=choices) == letter


@given(st.sampled_from(["yes", "no"]), st.sampled_from([str.lower, str.upper, str.title]),
       st.sampled_from([".", "!", "", ", definitely."]))
def test_yes_no_after_a_cue(word, case, tail):
    assert extract(f"No doubt about it.\nTherefore, the answer (Yes or No) is {case(word)}{tail}", "yes_no") == word


def test_whole_numbers_compare_exactly_and_fractions_within_float_noise():
    assert not numbers_equal("1000001", "1000000") and not numbers_equal("2999999", "3000000")
    assert numbers_equal("192000000", "192,000,000") and numbers_equal("0.1666666667", str(1 / 6))
    assert numbers_equal(str(0.1 * 3 * 10), "3") and not numbers_equal("0.33", str(1 / 3))
