"""Answer extraction from free model text, per answer kind.

The rule for every kind: if the text states its answer behind a cue ("the answer is", "Answer:",
"#### ", "\\boxed{}", "the answer (arabic numerals) is"), read the answer right after the *last* cue;
otherwise take the last answer-like mention in the text. Reading after the last cue keeps a
rationale that quotes other candidates (or a question that contains "the answer is") from changing the
recorded answer. A text whose last cue leads nowhere ("the answer is moot", "it depends") has no
answer: guessing one from the reasoning would credit a model for an answer it did not give.
"""

import ast
import math
import operator
import re

LETTERS = "ABCDEFGHIJ"

_CUES = re.compile(
    # "the answer is", "the final answer would be", "the answer (arabic numerals) is", "Answer is D"
    r"(?:\b(?:final\s+|correct\s+|right\s+)?answer(?:\s*\([^()\n]{0,40}\))?\s+(?:is|would\s+be|will\s+be|should\s+be)\b"
    r"\s*[:,]?"
    r"|\b(?:final\s+|correct\s+)?(?:answer|ans)\s*[:\-–=]"  # "Answer:", "Answer - A", "Ans: B"
    r"|####|\\boxed\s*\{)",
    re.IGNORECASE,
)

# Several wordings per NLI label; the negated forms ("does not entail") are deliberately not synonyms.
NLI_SYNONYMS = {
    "entailment": ("entailment", "entailed", "entails", "entail", "implied", "implies"),
    "neutral": (
        "neutral",
        "neither",
        "undetermined",
        "cannot be determined",
        "can not be determined",
        "can't be determined",
        "not possible to tell",
        "impossible to tell",
        "can't tell",
        "cannot tell",
        "not enough information",
        "unknown",
        "unclear",
    ),
    "contradiction": ("contradiction", "contradicts", "contradictory", "contradicted", "contradict"),
}
# Words that may stand for a label only when they are the whole answer ("So the answer is yes.").
_NLI_BARE = {"yes": "entailment", "true": "entailment", "no": "contradiction", "false": "contradiction",
             "maybe": "neutral", "it is not possible to tell": "neutral"}
_NEGATION = re.compile(r"(?:\bnot|n't|\bcannot|\bno|\bnever|\bneither|\bnor)\s+(?:\w+\s+){0,2}$", re.IGNORECASE)

# A number: optional sign (only when no operand precedes it: "10 - 4" is not "-4"), optional currency,
# thousands commas, decimals, a fraction. Letters may follow (units: "5km"), digits may not.
_NUMBER = re.compile(
    r"(?:(?<![\w.)])(?<![\d)]\s)-)?(?<![\w.])(?:[$€£₹]\s?|Rs\.?\s?)?"
    r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+(?:\.\d+)?)?(?!\d)"
    r"|(?<![\w.])-?\.\d+"
)
_FRAC = re.compile(r"\\d?frac\s*\{\s*(-?[\d.]+)\s*\}\s*\{\s*(-?[\d.]+)\s*\}")


def answer_segment(text: str) -> str | None:
    """The text right after the last answer cue, up to the end of its first non-empty line (a `\\boxed{}`:
    its content); None if there is no cue."""
    last = None
    for last in _CUES.finditer(text):
        pass
    if last is None:
        return None
    rest = text[last.end():]
    if last.group(0).lower().startswith("\\boxed"):
        return _until_closing_brace(rest)
    return next((line for line in rest.split("\n") if line.strip()), "")


def _until_closing_brace(text: str) -> str:
    depth = 0
    for index, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return text[:index]
    return text


def extract(text: str, kind: str, labels=(), choices=()) -> str | None:
    """Canonical answer in `text` for an answer kind ('label', 'option', 'number', 'yes_no'), or None."""
    if not text:
        return None
    parsers = {"label": _label, "option": _option, "number": _number, "yes_no": _yes_no}
    if kind not in parsers:
        raise ValueError(f"unknown answer kind {kind!r}")
    parse = parsers[kind]
    segment = answer_segment(text)
    if segment is not None:
        return parse(segment, labels=labels, choices=choices, last=False)
    return parse(text, labels=labels, choices=choices, last=True)


# --- labels ----------------------------------------------------------------------------------------


def _label_forms(labels) -> dict[str, tuple[str, ...]]:
    return {label: NLI_SYNONYMS.get(label, (label,)) for label in labels}


def _label(text: str, labels, last: bool, **_) -> str | None:
    forms = _label_forms(labels)
    bare = _bare_words(text)
    if bare in _NLI_BARE and _NLI_BARE[bare] in labels:
        return _NLI_BARE[bare]
    if bare in {label.lower() for label in labels}:
        return next(label for label in labels if label.lower() == bare)
    mentions = []  # (position, label)
    for label, words in forms.items():
        for word in words:
            for match in re.finditer(rf"\b{re.escape(word)}\b", text, re.IGNORECASE):
                if not _NEGATION.search(text[: match.start()]):
                    mentions.append((match.start(), label))
    if not mentions:
        return None
    mentions.sort()
    return mentions[-1][1] if last else mentions[0][1]


def _bare_words(text: str) -> str:
    return re.sub(r"[^a-z' ]", "", text.lower()).strip()


# --- yes / no --------------------------------------------------------------------------------------

# "no" answers only where it stands alone: at the start, or before punctuation or the end ("No, ...",
# "... so no."), not in "no one" or "there is no evidence"
_YES_NO = re.compile(r"\b(yes|true|false)\b|^\s*(no)\b(?!\s+(?:one|body|thing|evidence|reason|way|longer|more|less|"
                     r"matter|need|information)\b)|\b(no)\b(?=\s*(?:[.,;:!?)]|$))", re.IGNORECASE | re.MULTILINE)
_NEGATED = re.compile(r"(?:\bnot|n't)\s+$", re.IGNORECASE)


def _yes_no(text: str, last: bool, **_) -> str | None:
    found = list(_YES_NO.finditer(text))
    if not found:
        return None
    match = found[-1] if last else found[0]
    word = next(g for g in match.groups() if g).lower()
    says_yes = word in ("yes", "true")
    if word in ("true", "false") and _NEGATED.search(text[: match.start()]):  # "it is not true"
        says_yes = not says_yes
    return "yes" if says_yes else "no"


# --- options ---------------------------------------------------------------------------------------


_HEDGES = r"(?i:(?:probably|possibly|most\s+likely|likely|definitely|clearly|certainly|option|choice)\s*:?\s*)*"


def _option(text: str, choices, last: bool, **_) -> str | None:
    letters = LETTERS[: len(choices) or 5]
    if not last:
        text = re.sub(rf"^\s*{_HEDGES}", " ", text)
        if _names_several(text, letters):
            return None
    found = _letter_first(text, letters) if not last else _letter_closing(text, letters)
    if found:
        return found
    marked = re.findall(rf"\(([{letters}{letters.lower()}])\)|\b([{letters}])\)|(?i:\boption)\s+\(?([{letters}])\b",
                        text)
    picks = [next(g for g in groups if g).upper() for groups in marked]
    if picks:
        return picks[-1] if last else picks[0]
    return _option_by_text(text, choices, last)


def _names_several(segment: str, letters: str) -> bool:
    """A hedge between letters ("either A or C", "A, B, or D") names no single answer."""
    return bool(re.match(rf"\s*(?i:either\s+)?\(?[{letters}]\)?\s*(?:,|/|\bor\b|\band\b)\s*(?:or\s+)?\(?[{letters}]\b",
                         segment))


def _letter_first(segment: str, letters: str) -> str | None:
    """Right after a cue: "B", "(B) library", "B.", "b)"; a lone lower-case letter only if it is all there
    is ("the answer is a bank" is not option A). Emphasis around it is no part of it ("**B**", "[B]")."""
    segment = re.sub(r"^[\s*_\"'\[`]+", " ", segment)
    bare = re.match(rf"\s*\(?([{letters}])(?:\)|\b|[.:,])", segment) or \
        re.fullmatch(rf"\s*\(?([{letters.lower()}])\s*[.)]?\s*\.?\s*", segment)
    return bare.group(1).upper() if bare else None


def _letter_closing(text: str, letters: str) -> str | None:
    """No cue: a closing line that names a letter ("Answer D", "correct option is B", a bare "A")."""
    last_line = text.rstrip().rsplit("\n", 1)[-1]
    closing = re.search(rf"(?:\b(?:answer|ans|option|choice)\b[^\w\n]*(?:is\b)?[^\w\n]*(?:option\s*)?|^\s*)"
                        rf"\(?([{letters}])\)?[.\s]*\Z", last_line, re.IGNORECASE)
    return closing.group(1) if closing and closing.group(1).isupper() else None


def _option_by_text(text: str, choices, last: bool) -> str | None:
    """The choice whose text is mentioned last (first); the longest one where mentions overlap."""
    hits = []  # (start, end, letter)
    lowered = text.lower()
    for index, choice in enumerate(choices):
        choice = choice.strip().lower()
        if not choice:
            continue
        # A number must match whole: choice "4" is not in "4.5" or "44".
        for match in re.finditer(rf"(?<![\w.]){re.escape(choice)}(?!\w|[.,]\d)", lowered):
            hits.append((match.start(), match.end(), LETTERS[index]))
    hits = [h for h in hits if not any(o[0] <= h[0] and h[1] <= o[1] and o != h for o in hits)]
    if not hits:
        return None
    hits.sort()
    return hits[-1][2] if last else hits[0][2]


# --- numbers ---------------------------------------------------------------------------------------


_MIXED = re.compile(r"(?<![\d.,/])(\d+)\s+(\d+)\s?/\s?(\d+)(?!\d|\.\d)")  # "2 1/2": two and a half


def _number(text: str, last: bool, **_) -> str | None:
    text = _FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
    text = _MIXED.sub(lambda m: format_number(int(m.group(1)) + int(m.group(2)) / int(m.group(3)))
                      if int(m.group(3)) else m.group(0), text)
    if not last:
        value = _segment_value(text)
    else:
        value = _closing_value(text)
    return None if value is None else format_number(value)


def _numbers(text: str) -> list[float]:
    return [v for v in (parse_number(m.group(0)) for m in _NUMBER.finditer(text)) if v is not None]


def _segment_value(segment: str) -> float | None:
    """After a cue: a leading calculation is worked out ("(10 * 45)" -> 450, "42 + 24 = 66" -> 66, also
    wrapped as "<1 + 2>", "[1 + 2]" or "`1 + 2`", where the first number alone would be a wrong answer),
    a number word read ("seventy six"), else the first number."""
    calculation = re.sub(r"(?<=[\d)\s])[x×](?=[\s\d(])", "*", segment)
    calculation = re.sub(r"^\s*(?:<+|\[|`+|\*\*)", "", calculation)  # the closer ends the head below
    head = re.match(r"[\s\d.,+\-*/÷()$€£%=]*", calculation).group(0)
    if "=" in head:
        for part in reversed(head.split("=")):
            found = _numbers(part)
            if found:
                return found[0]
    if re.search(r"[\d)%]\s*[+\-*/÷]\s*[\d($]", head):
        try:
            return evaluate_arithmetic(head)
        except ValueError:
            pass
    found = _numbers(segment)
    if found:
        return found[0]
    return words_to_number(segment)


def _closing_value(text: str) -> float | None:
    """No cue: the last sentence that has a number gives it; where that sentence is a calculation, its
    result (the number after its last "="): "... = 6 kilometers for 2 hours." -> 6, not 2."""
    sentences = [s for s in re.split(r"\n+|(?<=[.!?])\s+", text) if _numbers(s)]
    if not sentences:
        return None
    closing = sentences[-1]
    if "=" in closing:
        after = _numbers(closing.rsplit("=", 1)[1])
        if after:
            return after[0]
    return _numbers(closing)[-1]


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate_arithmetic(expression: str) -> float:
    """The value of numbers, + - * / and brackets ("$1,200 / 4", "( 76.0 - 25.0 )"); ValueError otherwise.
    (ast rather than eval: the expression comes from data files and model output.)"""
    cleaned = re.sub(r"(?<=\d),(?=\d{3})", "", expression)
    if re.search(r"\d\s+\d", cleaned):  # "1 000", "2 1/2": no operator between them, nothing to compute
        raise ValueError(f"not an arithmetic expression: {expression!r}")
    cleaned = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)", cleaned)  # "20 * 50%" is 10
    cleaned = re.sub(r"[$€£%\s]", "", cleaned).replace("÷", "/").rstrip(".,")
    try:
        tree = ast.parse(cleaned, mode="eval")
    except SyntaxError:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from None

    def value(node) -> float:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.left), value(node.right))
        raise ValueError(f"not an arithmetic expression: {expression!r}")

    try:
        result = value(tree.body)
    except (ZeroDivisionError, OverflowError, RecursionError):
        raise ValueError(f"cannot evaluate {expression!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"cannot evaluate {expression!r}")
    return result


_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}


def words_to_number(text: str) -> float | None:
    """'two hundred ninety-four dollars' -> 294: the number words the text starts with; None if none."""
    total, current, seen = 0, 0, False
    for word in re.findall(r"[a-z]+", text.lower().replace("-", " ")):
        if word in _UNITS or word in _TENS:
            current += _UNITS.get(word, 0) + _TENS.get(word, 0)
        elif word in _SCALES and seen:
            if _SCALES[word] == 100:
                current *= 100
            else:
                total, current = total + current * _SCALES[word], 0
        elif word == "and" and seen:
            continue
        else:
            break
        seen = True
    return float(total + current) if seen else None


def parse_number(raw: str) -> float | None:
    """A float from '1,234.5', '$12', '-3', '3/4', 'Rs. 50'; None when it is not a finite number."""
    cleaned = re.sub(r"[\s$€£₹,]|Rs\.?", "", raw)
    try:
        if "/" in cleaned:
            top, bottom = cleaned.split("/", 1)
            value = float(top) / float(bottom)
        else:
            value = float(cleaned)
    except (ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) else None


def format_number(value: float) -> str:
    """'72' for 72.0, '0.75' for 0.75: one spelling per value, so answers compare as strings too. Ten
    decimals keep 1/6 equal to 0.16666... within numbers_equal's tolerance, and drop float noise (0.1 + 0.2)."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) < 1e-6 or abs(value) >= 1e15:
        return f"{value:.10g}"
    return f"{value:.10f}".rstrip("0").rstrip(".")


def numbers_equal(a: str, b: str, rel: float = 1e-9) -> bool:
    """Whole numbers exactly (1000001 is not 1000000); others within `rel`, which absorbs float noise and
    format_number's ten decimals (1/6 is 0.1666666667) but not a wrong digit."""
    x, y = parse_number(a), parse_number(b)
    if x is None or y is None:
        return False
    if x.is_integer() and y.is_integer():
        return x == y
    return math.isclose(x, y, rel_tol=rel, abs_tol=1e-9)


def split_rationale(text: str) -> str:
    """The reasoning before the last answer cue (the whole text when there is no cue)."""
    last = None
    for last in _CUES.finditer(text):
        pass
    head = text if last is None else text[: last.start()]
    # "So the answer is" leaves a dangling "So" / "Therefore," when the cue matched only "the answer is".
    head = re.sub(r"\b(?:the|our|my)\s*$", "", head.rstrip(), flags=re.IGNORECASE)  # the cue starts at "answer"
    head = re.sub(r"(?:\b(?:so|thus|therefore|hence)\s*,?\s*)$", "", head.rstrip(), flags=re.IGNORECASE)
    return head.strip()
