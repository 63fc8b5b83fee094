"""SVAMP: the original file, Fine-tune-CoT's index split, the DSbS files; equations as answers."""

from functools import lru_cache

import pytest

from elad.tasks import TASKS
from elad.tasks.svamp import equation_rationale, evaluate_equation
from tests.conftest import SHARED_DATA

ROOT, DSBS = SHARED_DATA / "svamp", SHARED_DATA / "dsbs-rationales" / "svamp"
SPLITS = SHARED_DATA / "finetune-cot-splits" / "split" / "svamp__default.json"
needs_data = pytest.mark.skipif(not (ROOT.exists() and DSBS.exists()), reason="shared data not present")


@lru_cache(maxsize=None)
def load(path, split: str, split_file=None):
    task = TASKS.create("svamp", path=str(path), **({"split_file": str(split_file)} if split_file else {}))
    return task, task.load(split)


@needs_data
@pytest.mark.parametrize("path, split, split_file, count", [
    (ROOT, "all", None, 1000), (ROOT, "train", SPLITS, 700), (ROOT, "test", SPLITS, 300), (DSBS, "train", None, 800),
    (DSBS, "test", None, 200)])
def test_record_counts_match_the_readme(path, split, split_file, count):
    assert len(load(path, split, split_file)[1]) == count


@needs_data
def test_equation_rationale_gives_back_the_answer_on_every_row_but_one():
    """Measured: 999/999 original rows with a rationale, 800/800 and 200/200 DSbS rows (100%). The one
    original row without one is chal-680, whose Equation "( ( 4.0 - 2.0 ) + 3.0 )" is 5 but whose
    Answer is 1.0: the stated Answer stays gold (it is what published results score against)."""
    for path, split in ((ROOT, "all"), (DSBS, "train"), (DSBS, "test")):
        task, examples = load(path, split)
        with_rationale = [e for e in examples if e.rationale]
        assert all(task.is_correct(task.parse_answer(e.rationale), e.answer) for e in with_rationale)
    _, original = load(ROOT, "all")
    missing = [e for e in original if not e.rationale]
    assert [(e.meta["source_id"], e.answer) for e in missing] == [("chal-680", "1")]
    assert original[0].question == ("Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on "
                                    "each pack How much do you have to pay to buy each pack?")
    assert original[0].rationale == "76 - 25 = 51." and original[0].answer == "51"


def test_equations():
    assert evaluate_equation("( ( 23.0 - 11.0 ) / 2.0 )") == 6.0
    assert equation_rationale("( ( 23.0 - 11.0 ) / 2.0 )", 6.0) == "( 23 - 11 ) / 2 = 6."
    assert equation_rationale("( 84.0 / 2.0 ) + ( 1.5 * 2.0 )", 45.0) == "( 84 / 2 ) + ( 1.5 * 2 ) = 45."
    for bad in ("__import__('os')", "2 ** 8", "1 / 0", "( 3.0 +"):
        with pytest.raises(ValueError):
            evaluate_equation(bad)
