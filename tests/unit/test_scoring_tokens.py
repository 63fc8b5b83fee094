"""The answer scorer reads each prefix of an explanation as the student would: tokenised as one text."""

from types import SimpleNamespace

import pytest

from elad.students.scoring import AnswerScorer, Endings, _tree


@pytest.fixture(scope="module")
def merging_tokenizer():
    """A byte-level BPE that merges across line breaks ("ing.\\nSo" is one token), as Qwen's merges ".\\n":
    a text tokenised piece by piece is not the text tokenised whole."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["A man walks.\nWalking is moving.\nSo the answer is entailment."] * 50
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe)


def test_every_prefix_and_the_cue_are_the_tokens_of_their_text_whole(merging_tokenizer):
    scorer = AnswerScorer(SimpleNamespace(pretrained=SimpleNamespace(tokenizer=merging_tokenizer, is_seq2seq=False)))
    ids = lambda text: merging_tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    steps, cue = ["A man walks.", "Walking is moving.", " It is."], "So the answer is"
    item = scorer._item("Q: does he move?\n", steps, ["entailment"], cue)
    texts = [cue, "A man walks.\nSo the answer is", "A man walks.\nWalking is moving.\nSo the answer is",
             "A man walks.\nWalking is moving. It is.\nSo the answer is"]
    assert [item.reading(i) for i in range(len(steps) + 1)] == [ids(text) for text in texts]
    assert item.trunk_ids == ids("A man walks.\nWalking is moving. It is.")
    piecewise = ids("A man walks.") + ids("\nSo the answer is")
    assert item.reading(1) != piecewise  # the test means something: this tokenizer merges across the break
    # in the tree each reading's own tokens branch off after exactly the trunk tokens it shares
    tree = _tree(item)
    for boundary, tip in enumerate(tree.tips):
        shared, own = item.readings[boundary]
        assert tree.layout.boundary[tip] == len(item.prompt_ids) + shared and own and ids(texts[boundary])[-1] == \
            tree.layout.tokens[tip]


def test_an_explanation_answered_at_its_end_reads_its_whole_text(merging_tokenizer):
    scorer = AnswerScorer(SimpleNamespace(pretrained=SimpleNamespace(tokenizer=merging_tokenizer, is_seq2seq=False)))
    ids = lambda text: merging_tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    first = scorer._item("Q\n", ["A man walks."], [], "So the answer is")
    second = scorer._item("Q\n", ["Walking is moving."], [], "So the answer is")
    endings = Endings(first.prompt_ids, [first, second], [], every_step=False)
    assert endings.continuations() == [ids("A man walks.\nSo the answer is"),
                                       ids("Walking is moving.\nSo the answer is")]
    assert endings.boundaries() == [(0, 1), (1, 1)]
