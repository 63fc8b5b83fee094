from elad.tasks.steps import join_steps, merge_lead_ins, split_steps, step_segments


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


def test_a_paragraph_before_the_answer_line_is_split_into_its_sentences():
    # as a CoT student writes an arithmetic rationale: one paragraph, then the answer on its own line
    text = "Paco had 8 cookies. He ate 5 of them. 8 - 5 = 3.\nSo the answer is 3."
    assert split_steps(text) == ["Paco had 8 cookies.", "He ate 5 of them.", "8 - 5 = 3.", "So the answer is 3."]


def test_segments_keep_the_break_before_each_step_and_rebuild_the_text():
    text = "Paco had 8 cookies. He ate 5 of them.\nSo the answer is 3."
    segments = step_segments(text)
    assert segments == ["Paco had 8 cookies.", " He ate 5 of them.", "\nSo the answer is 3."]
    assert "".join(segments) == text
    assert [s.strip() for s in segments] == split_steps(text)
    numbered = "1. Tom has 3 apples.\n2. He buys 4 more."
    assert "".join(step_segments(numbered)) == numbered
    assert step_segments("") == []


def test_reasoning_steps_drop_the_answer_sentence_not_the_reasoning_on_its_line():
    from elad.loop.explain import reasoning_steps

    assert reasoning_steps("42 - 31 = 11. So the answer is 11.") == ["42 - 31 = 11."]
    assert reasoning_steps("Two groups left. 42 - 31 = 11. So the answer is 11.") == ["Two groups left.", " 42 - 31 = 11."]
    assert reasoning_steps("A man is a person.\nSo the answer is entailment.") == ["A man is a person."]


def test_an_answer_line_after_a_numbered_list_is_a_step_of_its_own():
    text = "1. Tom has 3 apples.\n2. He buys 4, so 7.\nSo the answer is 7."
    assert split_steps(text) == ["1. Tom has 3 apples.", "2. He buys 4, so 7.", "So the answer is 7."]
    assert split_steps("1. First part\ncontinues here.\n2. Second.") == ["1. First part continues here.", "2. Second."]


def test_no_abbreviates_only_before_a_number():
    assert split_steps("Was he alive in 1900? No. He died in 1865.") == ["Was he alive in 1900?", "No.",
                                                                         "He died in 1865."]
    assert split_steps("He lives at No. 5 Main road. So the answer is 5.") == ["He lives at No. 5 Main road.",
                                                                               "So the answer is 5."]


def test_a_lead_in_is_joined_to_the_step_after_it_and_a_trailing_one_stays():
    steps = ["To solve this, follow these steps:", "Subtract 2 from 5:", "5 - 2 = 3.", "So the answer is 3."]
    assert merge_lead_ins(steps) == ["To solve this, follow these steps: Subtract 2 from 5: 5 - 2 = 3.",
                                     "So the answer is 3."]
    assert merge_lead_ins(["5 - 2 = 3.", "Next:"]) == ["5 - 2 = 3.", "Next:"]
    assert merge_lead_ins(["5 - 2 = 3.", "So the answer is 3."]) == ["5 - 2 = 3.", "So the answer is 3."]
