"""Seq2seq (T5-style) students on tiny random T5 models: masks, the multi-task loss, prefix scores,
explanations, learning to exact match.

No T5 tokenizer (sentencepiece) is available offline: the models use SmolLM2's tokenizer without its
chat template, or the tests' small byte-level BPE where a model must learn.
"""

import shutil
from pathlib import Path

import pytest
import torch
from test_student import CUE, LABELS, PROMPTS, STEPS, eight_records, small_tokenizer, written

from elad.config import StudentConfig, TrainingConfig
from elad.students import Student
from elad.students.training import PadCollator, multitask_loss, target_loss

pytestmark = pytest.mark.integration


def build_t5(tokenizer, directory: Path, d_model: int = 32) -> Path:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=2, num_decoder_layers=2,
        num_heads=4, relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_t5_dir(tokenizer_dir, tmp_path_factory) -> Path:
    """A 2+2-layer T5 with random weights and SmolLM2's tokenizer (no chat template, its own pad token)."""
    from transformers import AutoTokenizer

    source = tmp_path_factory.mktemp("t5-tokenizer")
    for item in tokenizer_dir.iterdir():
        if item.name != "chat_template.jinja":
            shutil.copy(item, source / item.name)
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.chat_template = None
    tokenizer.pad_token = "<|endoftext|>"
    return build_t5(tokenizer, tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def small_t5_dir(tmp_path_factory) -> Path:
    return build_t5(small_tokenizer(), tmp_path_factory.mktemp("small-t5"), d_model=64)


@pytest.fixture
def t5(tiny_t5_dir):
    return Student(StudentConfig(model=str(tiny_t5_dir), dtype="float32", max_new_tokens=6, generation_batch_size=2,
                                 lora={"r": 4, "alpha": 8, "dropout": 0.0}))


def test_a_t5_config_makes_a_seq2seq_student(t5):
    assert t5.is_seq2seq and t5.model.config.is_encoder_decoder
    assert t5.render_prompt("Premise: a", "predict") == "predict: Premise: a"  # no chat template


def test_seq2seq_instances_put_the_prefix_in_the_encoder_and_the_target_in_the_labels(t5):
    record = eight_records()[2]
    feature = t5.features([record], TrainingConfig(objective="step_by_step", inference="predict"))[0]
    decode = t5.tokenizer.decode
    assert decode(feature["predict"]["input_ids"]) == "predict: " + record.prompt
    assert decode(feature["predict"]["labels"]) == f"{CUE} contradiction.<|im_end|>"
    assert decode(feature["explain"]["input_ids"]) == "explain: " + record.prompt
    assert decode(feature["explain"]["labels"]) == "Reason 2.<|im_end|>"


@pytest.mark.parametrize("alpha", [0.25, 0.5])
def test_seq2seq_multitask_loss_is_the_alpha_weighted_sum(t5, alpha):
    settings = TrainingConfig(objective="step_by_step", alpha=alpha)
    batch = PadCollator(t5.tokenizer.pad_token_id)(t5.features(eight_records()[:3], settings))
    with torch.no_grad():
        combined = float(multitask_loss(t5.model, batch, alpha, seq2seq=True))
        predict, explain = float(target_loss(t5.model, batch["predict"], True)), float(target_loss(t5.model, batch["explain"], True))
        # the padded labels (-100) are skipped: the batch loss equals the token-weighted mean of single rows
        rows = [t5.model(input_ids=torch.tensor([f["predict"]["input_ids"]]), labels=torch.tensor([f["predict"]["labels"]]))
                for f in t5.features(eight_records()[:3], settings)]
        sizes = [len(f["predict"]["labels"]) for f in t5.features(eight_records()[:3], settings)]
    assert combined == pytest.approx(alpha * predict + (1 - alpha) * explain, rel=1e-5)
    assert predict == pytest.approx(sum(r.loss.item() * n for r, n in zip(rows, sizes)) / sum(sizes), rel=1e-5)


def reference_seq2seq_scores(student, prompt, steps, candidates):
    import math

    encoder_ids = torch.tensor([student.tokenizer(prompt, add_special_tokens=True)["input_ids"]])
    start = student.model.config.decoder_start_token_id
    out = []
    for i in range(len(steps) + 1):
        prefix = [start] + student.tokenizer(written(steps[:i]), add_special_tokens=False)["input_ids"]
        logprobs = []
        for candidate in candidates:
            ids = student.tokenizer(" " + candidate, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = student.model(input_ids=encoder_ids, decoder_input_ids=torch.tensor([prefix + ids])).logits[0]
            lp = torch.log_softmax(logits.float(), dim=-1)
            logprobs.append(sum(lp[len(prefix) - 1 + k, t].item() for k, t in enumerate(ids)))
        weights = [math.exp(x - max(logprobs)) for x in logprobs]
        out.append({c: w / sum(weights) for c, w in zip(candidates, weights)})
    return out


def test_seq2seq_prefix_scores_equal_one_prefix_at_a_time(t5):
    candidates = [LABELS, ("yes", "no"), LABELS]
    got = t5.answer_scores(PROMPTS, STEPS, candidates)
    for prompt, steps, cands, scores in zip(PROMPTS, STEPS, candidates, got):
        for mine, theirs in zip(scores, reference_seq2seq_scores(t5, prompt, steps, cands)):
            for c in cands:
                assert mine[c] == pytest.approx(theirs[c], abs=1e-5)
    open_answers = t5.answer_scores(PROMPTS[:2], STEPS[:2], [(), ()], max_answer_tokens=3)
    assert [len(x) for x in open_answers] == [3, 4] and all(len(d) == 1 for x in open_answers for d in x)


def test_seq2seq_final_answers_read_each_explanation_to_its_end(t5):
    explanations = [[STEPS[0], []], [STEPS[1][:1]], [[]]]
    candidates = [LABELS, ("yes", "no"), LABELS]
    got = t5.final_answers(PROMPTS, explanations, candidates)
    for prompt, per_prompt, cands, mine in zip(PROMPTS, explanations, candidates, got):
        assert len(mine) == len(per_prompt)
        for steps, distribution in zip(per_prompt, mine):
            theirs = reference_seq2seq_scores(t5, prompt, steps, cands)[-1]
            for c in cands:
                assert distribution[c] == pytest.approx(theirs[c], abs=1e-5)


def test_seq2seq_step_and_final_answers_in_one_pass_equal_each_read_alone(t5):
    explanations = [[STEPS[0], []], [STEPS[1][:1], STEPS[1]], [[]]]
    candidates = [LABELS, ("yes", "no"), LABELS]
    steps, ends = t5.step_and_final_answers(PROMPTS, explanations, candidates)
    alone_steps = t5.answer_scores(PROMPTS, [e[0] for e in explanations], candidates)
    alone_ends = t5.final_answers(PROMPTS, explanations, candidates)
    assert [len(x) for x in steps] == [3, 2, 1] and [len(x) for x in ends] == [2, 2, 1]
    for mine, theirs in ((steps, alone_steps), (ends, alone_ends)):
        for per_prompt, per_prompt_alone in zip(mine, theirs):
            for distribution, alone in zip(per_prompt, per_prompt_alone):
                assert distribution == pytest.approx(alone, abs=1e-5)


def test_seq2seq_explain_and_generate(t5):
    explained = t5.explain(PROMPTS, samples=2, temperature=1.0, seed=3)
    assert [len(x) for x in explained] == [3, 3, 3]
    assert [x[0] for x in explained] == t5.generate(PROMPTS) == [t5.generate([p])[0] for p in PROMPTS]
    assert t5.explain(PROMPTS, samples=2, temperature=1.0, seed=3) == explained


def test_a_t5_student_overfits_eight_examples_with_step_by_step(small_t5_dir):
    student = Student(StudentConfig(model=str(small_t5_dir), dtype="float32", max_new_tokens=16, generation_batch_size=8,
                                    lora=None))
    records = eight_records()
    settings = TrainingConfig(objective="step_by_step", inference="predict", epochs=120, learning_rate=1e-2, batch_size=8)
    student.train(records, settings, seed=0)
    assert student.generate([r.prompt for r in records]) == [f"{CUE} {r.answer}." for r in records]
    assert student.generate([r.prompt for r in records], mode="explain") == [r.rationale for r in records]
