"""Answer extraction from free model text, per answer kind.

The rule for every kind: if the text states its answer behind a cue ("the answer is", "Answer:",
"#### ", "\\boxed{}"), read the answer right after the *last* cue; otherwise take the last answer-like
mention in the text. Reading after the last cue keeps a rationale that quotes other candidates (or a
question that contains "the answer is") from changing the recorded answer.
"""

import math
import re

LETTERS = "ABCDEFGHIJ"

_CUES = re.compile(
    r"(?:the\s+(?:final\s+|correct\s+)?answer\s+(?:is|would\s+be|will\s+be)\s*:?"
    r"|answer\s*:|####|\\boxed\s*\{)",
    re.IGNORECASE,
)

# Several wordings per NLI label; the negated forms ("does not entail") are deliberately not synonyms.
NLI_SYNONYMS = {
    "entailment": ("entailment", "entailed", "entails", "entail", "implied", "implies"),
    "neutral": (
        "neutral",
        "undetermined",
        "cannot be determined",
        "can not be determined",
        "can't be determined",
        "not possible to tell",
        "impossible to tell",
        "can't tell",
        "cannot tell",
        "unknown",
        "unclear",
    ),
    "contradiction": ("contradiction", "contradicts", "contradictory", "contradicted", "contradict"),
}
# Words that may stand for a label only when they are the whole answer ("So the answer is yes.").
_NLI_BARE = {"yes": "entailment", "true": "entailment", "no": "contradiction", "false": "contradiction",
             "maybe": "neutral", "it is not possible to tell": "neutral"}
_NEGATION = re.compile(r"(?:\bnot|n't|\bno|\bnever)\s+(?:\w+\s+){0,2}$", re.IGNORECASE)

_NUMBER = re.compile(
    r"(?<![\w.])-?\s?[$€£]?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+(?:\.\d+)?)?(?![\w])"
    r"|(?<![\w.])-?\.\d+"
)
_FRAC = re.compile(r"\\d?frac\s*\{\s*(-?[\d.]+)\s*\}\s*\{\s*(-?[\d.]+)\s*\}")


def answer_segment(text: str) -> str | None:
    """The text right after the last answer cue, up to the end of its line; None if there is no cue."""
    last = None
    for last in _CUES.finditer(text):
        pass
    if last is None:
        return None
    rest = text[last.end():]
    if last.group(0).lower().startswith("\\boxed"):
        return _until_closing_brace(rest)
    lines = [line for line in rest.split("\n")]
    first = next((line for line in lines if line.strip()), "")
    return first


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
        found = parse(segment, labels=labels, choices=choices, last=False)
        if found is not None:
            return found
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

_YES_NO = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)


def _yes_no(text: str, last: bool, **_) -> str | None:
    found = _YES_NO.findall(text)
    if not found:
        return None
    word = (found[-1] if last else found[0]).lower()
    return "yes" if word in ("yes", "true") else "no"


# --- options ---------------------------------------------------------------------------------------


def _option(text: str, choices, last: bool, **_) -> str | None:
    letters = LETTERS[: len(choices) or 5]
    marked = re.findall(rf"\(([{letters}])\)|\b([{letters}])\)|\boption\s+([{letters}])\b", text)
    picks = [next(g for g in groups if g) for groups in marked]
    if not last and not picks:
        bare = re.match(rf"\s*([{letters}])(?:\b|[.:,])", text)
        if bare:
            return bare.group(1)
    if picks:
        return picks[-1] if last else picks[0]
    return _option_by_text(text, choices, last)


def _option_by_text(text: str, choices, last: bool) -> str | None:
    hits = []
    lowered = text.lower()
    for index, choice in enumerate(choices):
        choice = choice.strip().lower()
        if not choice:
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(choice)}(?!\w)", lowered):
            hits.append((match.start(), -len(choice), LETTERS[index]))
    if not hits:
        return None
    hits.sort()
    return hits[-1][2] if last else hits[0][2]


# --- numbers ---------------------------------------------------------------------------------------


def _number(text: str, last: bool, **_) -> str | None:
    text = _FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
    found = [m.group(0) for m in _NUMBER.finditer(text)]
    values = [v for v in (parse_number(s) for s in found) if v is not None]
    if not values:
        return None
    return format_number(values[-1] if last else values[0])


def parse_number(raw: str) -> float | None:
    """A float from '1,234.5', '$12', '-3', '3/4'; None when it is not a finite number."""
    cleaned = re.sub(r"[\s$€£,]", "", raw)
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
    """'72' for 72.0, '0.75' for 0.75: one spelling per value, so answers compare as strings too."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) < 1e-6 or abs(value) >= 1e15:
        return f"{value:.6g}"
    return f"{value:.6f}".rstrip("0").rstrip(".")


def numbers_equal(a: str, b: str, rel: float = 1e-6) -> bool:
    x, y = parse_number(a), parse_number(b)
    if x is None or y is None:
        return False
    return math.isclose(x, y, rel_tol=rel, abs_tol=1e-9)


def split_rationale(text: str) -> str:
    """The reasoning before the last answer cue (the whole text when there is no cue)."""
    last = None
    for last in _CUES.finditer(text):
        pass
    head = text if last is None else text[: last.start()]
    # "So the answer is" leaves a dangling "So" / "Therefore," when the cue matched only "the answer is".
    head = re.sub(r"(?:\b(?:so|thus|therefore|hence)\s*,?\s*)$", "", head.rstrip(), flags=re.IGNORECASE)
    return head.strip()
