from elad.tasks.steps import join_steps, split_steps


def test_numbered_steps_with_wrapped_lines():
    text = "1. Tom has 3 apples.\n2. He buys 4 more,\nso he has 7.\n3. So the answer is 7."
    assert split_steps(text) == ["1. Tom has 3 apples.", "2. He buys 4 more, so he has 7.", "3. So the answer is 7."]


def test_single_line_splits_into_sentences_but_not_decimals_or_abbreviations():
    text = "Dr. Smith paid 3.5 dollars. Then he left. So the answer is 3.5."
    assert split_steps(text) == ["Dr. Smith paid 3.5 dollars.", "Then he left.", "So the answer is 3.5."]


def test_lines_are_steps_and_join_round_trips():
    steps = ["A man is a person.", "So the answer is entailment."]
    assert split_steps(join_steps(steps)) == steps
    assert split_steps("   \n") == []
