"""The student engine on tiny random models: loss masks, the multi-task loss, prefix answer scores, explain,
learning to exact match, merged generation, export.

Two tokenizers: SmolLM2's real one (the conftest's tiny Llama) where tokenisation matters, and a 400-token
byte-level BPE trained here on the tests' texts where a model must learn (a 49k vocabulary makes every
training step ~50x dearer on CPU).
"""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from elad.errors import EladError
from elad.config import StudentConfig, TrainingConfig
from elad.students import Student, training
from elad.students.common import IGNORE_INDEX, TrainRecord
from elad.students.training import PadCollator, multitask_loss, target_loss

pytestmark = pytest.mark.integration

LABELS = ("entailment", "neutral", "contradiction")
CUE = "So the answer is"


# --- tiny models -----------------------------------------------------------------------------------


def eight_records() -> list[TrainRecord]:
    return [
        TrainRecord(prompt=f"Premise: item {i}\nHypothesis: thing {i}", target=f"Reason {i}.\n{CUE} {LABELS[i % 3]}.",
                    rationale=f"Reason {i}.", answer=LABELS[i % 3])
        for i in range(8)
    ]


def small_tokenizer():
    """A byte-level BPE with 400 tokens learnt from the tests' texts (reversible on any text)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [f"predict: explain: {r.prompt}\n{r.target}" for r in eight_records()] * 3
    corpus += ["Premise: a cat sleeps. Hypothesis: an animal rests. The answer is 42 steps; step by step."]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>")


def write_small_llama(directory: Path, **settings) -> Path:
    """A 2-layer random Llama with the small tokenizer, saved to `directory`; `settings` adjust its config."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = small_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **settings,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def small_llama_dir(tmp_path_factory) -> Path:
    return write_small_llama(tmp_path_factory.mktemp("small-llama"), tie_word_embeddings=True)


@pytest.fixture
def student(tiny_model_dir):
    return Student(StudentConfig(model=str(tiny_model_dir), dtype="float32", max_new_tokens=6, generation_batch_size=2,
                                 lora={"r": 8, "alpha": 16, "dropout": 0.0}))


def small_student(directory, lora=True, **settings) -> Student:
    lora_config = {"r": 8, "alpha": 16, "dropout": 0.0} if lora else None
    settings = {"dtype": "float32", **settings}
    return Student(StudentConfig(model=str(directory), max_new_tokens=16, generation_batch_size=8, lora=lora_config,
                                 **settings))


def _target_loss(student, pairs):
    total = 0.0
    with torch.no_grad():
        for user, target in pairs:
            features = student.encode_pair(user, target, max_length=128)
            out = student.model(input_ids=torch.tensor([features["input_ids"]]), labels=torch.tensor([features["labels"]]))
            total += out.loss.item()
    return total / len(pairs)


# --- loss masks and the multi-task loss ---------------------------------------------------------------


def test_loss_is_on_target_tokens_only(student):
    features = student.encode_pair("Premise: a\nHypothesis: b", "So the answer is neutral.", max_length=256)
    prompt_length = len(student.tokenizer(student.render_prompt("Premise: a\nHypothesis: b"), add_special_tokens=False)["input_ids"])
    assert all(label == IGNORE_INDEX for label in features["labels"][:prompt_length])
    assert features["labels"][prompt_length:] == features["input_ids"][prompt_length:]
    decoded = student.tokenizer.decode(features["input_ids"][prompt_length:])
    assert decoded.startswith("So the answer is neutral.")


@pytest.mark.parametrize("inference", ["predict", "cot"])
def test_step_by_step_instances_and_their_masks(student, inference):
    record = eight_records()[1]
    feature = student.features([record], TrainingConfig(objective="step_by_step", inference=inference))[0]
    decode = student.tokenizer.decode
    for task, target in (("predict", f"{CUE} neutral."), ("explain", record.target if inference == "cot" else "Reason 1.")):
        ids, labels = feature[task]["input_ids"], feature[task]["labels"]
        start = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
        assert f"{task}: Premise: item 1" in decode(ids[:start])
        assert decode(ids[start:]).startswith(target + "<|im_end|>")
        assert labels[start:] == ids[start:]


def test_target_loss_equals_the_models_own_loss(student):
    features = [student.encode_pair(r.prompt, r.target, 128) for r in eight_records()[:3]]
    batch = PadCollator(student.tokenizer.pad_token_id)(features)
    with torch.no_grad():
        assert target_loss(student.model, batch, seq2seq=False).item() == pytest.approx(student.model(**batch).loss.item(), rel=1e-5)


def test_a_shared_prompt_start_computed_once_gives_the_same_loss_and_gradients(student, monkeypatch):
    from elad.students import training

    student.weights.start_training(False)
    trainable = [p for p in student.model.parameters() if p.requires_grad]
    features = [student.encode_pair(r.prompt, r.target, 128) for r in eight_records()[:3]]
    batch = PadCollator(student.tokenizer.pad_token_id)(features)
    keep = torch.zeros_like(batch["labels"], dtype=torch.bool)
    keep[:, :-1] = batch["labels"][:, 1:] != IGNORE_INDEX
    assert training._shared_prompt_start(batch, keep, student.model) >= training.SHARED_START_MIN

    def loss_and_gradients():
        student.model.zero_grad()
        loss = target_loss(student.model, batch, seq2seq=False)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in trainable]

    shared_loss, shared_gradients = loss_and_gradients()
    monkeypatch.setattr(training, "SHARED_START_MIN", 10**6)  # every row computes its own start
    plain_loss, plain_gradients = loss_and_gradients()
    assert trainable and shared_loss == pytest.approx(plain_loss, rel=1e-5)
    for shared, plain in zip(shared_gradients, plain_gradients):
        assert torch.allclose(shared, plain, rtol=1e-4, atol=1e-6)


def test_the_loss_in_chunks_gives_the_whole_logits_loss_and_gradients(student, monkeypatch):
    from elad.students import chunked_loss

    student.weights.start_training(False)
    trainable = [p for p in student.model.parameters() if p.requires_grad]
    features = [student.encode_pair(r.prompt, r.target, 128) for r in eight_records()[:3]]
    batch = PadCollator(student.tokenizer.pad_token_id)(features)
    assert chunked_loss.plain_head(student.model) is not None
    monkeypatch.setattr(chunked_loss, "CHUNK", 7)  # several chunks, the last one short
    assert int((batch["labels"] != IGNORE_INDEX).sum()) % 7

    def loss_and_gradients():
        student.model.zero_grad()
        loss = target_loss(student.model, batch, seq2seq=False) * 3.0  # a scaled loss scales the gradients
        loss.backward()
        return loss.item(), [p.grad.clone() for p in trainable]

    chunked, chunked_gradients = loss_and_gradients()
    monkeypatch.setattr(training, "plain_head", lambda model: None)  # the whole logits
    whole, whole_gradients = loss_and_gradients()
    assert trainable and chunked == pytest.approx(whole, rel=1e-5)
    for a, b in zip(chunked_gradients, whole_gradients):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_trained_output_layer_keeps_the_whole_logits(student):
    from elad.students.chunked_loss import plain_head

    head = student.model.get_output_embeddings()
    head.weight.requires_grad_(True)  # as a full fine-tune trains it: its gradient needs the logits
    try:
        assert plain_head(student.model) is None
    finally:
        head.weight.requires_grad_(False)
    assert plain_head(student.model) is head


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_multitask_loss_is_the_alpha_weighted_sum(student, alpha):
    settings = TrainingConfig(objective="step_by_step", alpha=alpha, inference="predict")
    batch = PadCollator(student.tokenizer.pad_token_id)(student.features(eight_records()[:3], settings))
    with torch.no_grad():
        combined = multitask_loss(student.model, batch, alpha, seq2seq=False)
        predict, explain = student.model(**batch["predict"]).loss.item(), student.model(**batch["explain"]).loss.item()
    assert float(combined) == pytest.approx(alpha * predict + (1 - alpha) * explain, rel=1e-5)


# --- answer scores after each step prefix -------------------------------------------------------------


def written(steps, cue=CUE):
    """Steps and the cue as the scorer reads them: one per line, but a step that opens with a space goes on
    the line before it (the rest of a sentence-split paragraph)."""
    text = "".join(("\n" if k and not step[:1].isspace() else "") + step for k, step in enumerate(steps))
    return text + ("\n" if steps else "") + cue


def reference_scores(student, prompt, steps, candidates):
    """One prefix and one candidate at a time: a full forward pass each, no cache, no tree."""
    rendered = student.render_prompt(prompt)
    out = []
    for i in range(len(steps) + 1):
        prefix = student.tokenizer(rendered + written(steps[:i]), add_special_tokens=False)["input_ids"]
        logprobs = []
        for candidate in candidates:
            ids = student.tokenizer(" " + candidate, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = student.model(torch.tensor([prefix + ids])).logits[0].float()
            lp = torch.log_softmax(logits, dim=-1)
            logprobs.append(sum(lp[len(prefix) - 1 + k, token].item() for k, token in enumerate(ids)))
        top = max(logprobs)
        weights = [math.exp(x - top) for x in logprobs]
        out.append({c: w / sum(weights) for c, w in zip(candidates, weights)})
    return out


PROMPTS = ["Premise: a cat sleeps\nHypothesis: an animal rests", "Premise: a much longer premise, with more words\nHypothesis: h", "Q: 2+2?"]
# the second prompt's second step continues the first one's line, as a sentence of one paragraph does
STEPS = [["A cat is an animal.", "Sleeping is resting."], ["Words are many.", " A second step.", "Third step, longer than the others."], []]


def test_prefix_scores_equal_one_prefix_at_a_time(student):
    candidates = [LABELS, ("yes", "no"), LABELS]
    got = student.answer_scores(PROMPTS, STEPS, candidates)
    for prompt, steps, cands, scores in zip(PROMPTS, STEPS, candidates, got):
        assert len(scores) == len(steps) + 1
        expected = reference_scores(student, prompt, steps, cands)
        for mine, theirs in zip(scores, expected):
            assert set(mine) == set(cands) and sum(mine.values()) == pytest.approx(1.0)
            for c in cands:
                assert mine[c] == pytest.approx(theirs[c], abs=1e-5)


def test_open_answers_are_the_greedy_short_answer_after_the_cue(student):
    got = student.answer_scores(PROMPTS[:2], STEPS[:2], [(), ()], parse=lambda text: text.upper(), max_answer_tokens=5)
    student.model.generation_config.eos_token_id = None  # plain greedy for the reference: no early stop
    for prompt, steps, scores in zip(PROMPTS, STEPS, got):
        for i, distribution in enumerate(scores):
            text = student.render_prompt(prompt) + written(steps[:i])
            ids = student.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            out = student.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False)
            answer = student.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split("\n")[0].strip()
            assert distribution == {answer.upper(): 1.0}


# Several explanations per prompt, of different lengths (none, one step, three), read to their ends.
EXPLANATIONS = [[STEPS[0], [], STEPS[0][:1]], [STEPS[1], ["Just one step."]], [[]]]


def test_final_answers_equal_each_explanation_scored_alone(student):
    candidates = [LABELS, ("yes", "no"), LABELS]
    got = student.final_answers(PROMPTS, EXPLANATIONS, candidates)
    assert [len(x) for x in got] == [3, 2, 1]
    for prompt, explanations, cands, per_explanation in zip(PROMPTS, EXPLANATIONS, candidates, got):
        for steps, mine in zip(explanations, per_explanation):
            theirs = reference_scores(student, prompt, steps, cands)[-1]  # after every step: the forced answer
            for c in cands:
                assert mine[c] == pytest.approx(theirs[c], abs=1e-5)


def test_final_open_answers_equal_the_last_prefix_of_answer_scores(student):
    explanations = EXPLANATIONS[:2]
    got = student.final_answers(PROMPTS[:2], explanations, [(), ()], parse=lambda text: text.upper(),
                                max_answer_tokens=5)
    for prompt, per_prompt, mine in zip(PROMPTS, explanations, got):
        alone = student.answer_scores([prompt] * len(per_prompt), per_prompt, [()] * len(per_prompt),
                                      parse=lambda text: text.upper(), max_answer_tokens=5)
        assert mine == [scores[-1] for scores in alone]


def test_step_and_final_answers_in_one_pass_equal_each_read_alone(student):
    # each prompt's later explanations differ from the first one's step prefixes; the last prompt has none
    explanations = [[STEPS[0], ["Cats are not dogs."], ["A cat is a pet.", "Pets rest."]],
                    [STEPS[1], ["Just one step."]], [[]], []]
    prompts, candidates = PROMPTS + ["Q: none?"], [LABELS, ("yes", "no"), LABELS, LABELS]
    steps, ends = student.step_and_final_answers(prompts, explanations, candidates)
    alone_steps = student.answer_scores(prompts[:3], [e[0] for e in explanations[:3]], candidates[:3])
    alone_ends = student.final_answers(prompts, explanations, candidates)
    assert steps[3] == [] and ends[3] == []
    assert [len(x) for x in steps] == [3, 4, 1, 0] and [len(x) for x in ends] == [3, 2, 1, 0]
    for mine, theirs in ((steps[:3], alone_steps), (ends, alone_ends)):
        for per_prompt, per_prompt_alone in zip(mine, theirs):
            for distribution, alone in zip(per_prompt, per_prompt_alone):
                assert distribution == pytest.approx(alone, abs=1e-5)


def test_step_and_final_open_answers_in_one_pass_equal_each_read_alone(student):
    def read(text):
        return text.upper()

    steps, ends = student.step_and_final_answers(PROMPTS[:2], EXPLANATIONS[:2], [(), ()], parse=read,
                                                 max_answer_tokens=5)
    assert steps == student.answer_scores(PROMPTS[:2], [e[0] for e in EXPLANATIONS[:2]], [(), ()], parse=read,
                                          max_answer_tokens=5)
    assert ends == student.final_answers(PROMPTS[:2], EXPLANATIONS[:2], [(), ()], parse=read, max_answer_tokens=5)


# --- explanations -------------------------------------------------------------------------------------


def test_explain_gives_greedy_then_samples_deterministically(student):
    prompts = PROMPTS
    first = student.explain(prompts, samples=3, temperature=1.0, top_p=0.95, seed=7)
    assert [len(x) for x in first] == [4, 4, 4]
    assert [x[0] for x in first] == student.generate(prompts)  # greedy first
    assert student.explain(prompts, samples=3, temperature=1.0, top_p=0.95, seed=7) == first
    other = student.explain(prompts, samples=3, temperature=1.0, top_p=0.95, seed=8)
    assert [x[1:] for x in other] != [x[1:] for x in first]
    assert student.explain(prompts, samples=0) == [[x[0]] for x in first]


def test_batched_generation_matches_one_at_a_time(student):
    prompts = ["Premise: short\nHypothesis: s", "Premise: a much longer premise with many words in it\nHypothesis: h"]
    batched = student.generate(prompts)
    single = [student.generate([p])[0] for p in prompts]
    assert batched == single


def test_a_bf16_student_writes_the_same_texts_on_laid_out_weights(small_llama_dir, monkeypatch):
    """Generation and scoring of a bf16 LoRA student with its linear layers on weights laid out for the
    CPU (packed_linear.py) give what the plain products give."""
    from elad.students import packed_linear

    if not packed_linear.packing_available():
        pytest.skip("this torch has no oneDNN linear operators")
    student = small_student(small_llama_dir, dtype="bfloat16")
    student.weights.start_training(False)
    student.weights.finish_training("cot", "cot")
    with torch.no_grad():
        for name, parameter in student.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.05)  # an adapter that changes the outputs
    prompts = [f"Premise: item {i} with some words\nHypothesis: h{i}" for i in range(6)]
    explanations = [["step one", "step two"]] * 6

    def outputs():
        return student.explain(prompts, samples=2, seed=1), student.answer_scores(prompts, explanations, [["yes", "no"]] * 6)

    laid_out_texts, laid_out_scores = outputs()
    assert student.weights.packed.packed  # the layers did run on laid-out weights
    monkeypatch.setattr(packed_linear, "packing_available", lambda: False)
    student.weights.packed.drop()
    plain_texts, plain_scores = outputs()
    assert not student.weights.packed.packed
    assert laid_out_texts == plain_texts
    assert laid_out_scores == plain_scores


# --- training ----------------------------------------------------------------------------------------


def test_lora_training_lowers_the_loss_and_reloads(small_llama_dir, tmp_path):
    student = small_student(small_llama_dir)
    pairs = [(r.prompt, r.target) for r in eight_records()[:4]]
    before = _target_loss(student, pairs)
    report = student.train(pairs, TrainingConfig(epochs=8, learning_rate=1e-2, batch_size=4), seed=0)
    after = _target_loss(student, pairs)
    assert report.steps == 8 and report.examples == 4
    assert after < before - 0.5

    student.save_adapter(tmp_path / "adapter")
    fresh = Student(student.config)
    fresh.load_adapter(tmp_path / "adapter")
    assert _target_loss(fresh, pairs) == pytest.approx(after, abs=1e-4)
    fresh.reset()
    assert _target_loss(fresh, pairs) == pytest.approx(before, abs=1e-4)


def test_merged_generation_gives_the_same_text_and_training_resumes_exactly(small_llama_dir):
    student = small_student(small_llama_dir)
    records = eight_records()
    student.train(records, TrainingConfig(epochs=3, learning_rate=1e-2, batch_size=8), seed=0)
    student.merge_for_generation = False
    unmerged = student.generate([r.prompt for r in records])
    adapter = {k: v.clone() for k, v in student.model.state_dict().items() if "lora_" in k}
    student.merge_for_generation = True
    assert student.generate([r.prompt for r in records]) == unmerged
    assert student._merged
    student._unmerged_for_training()  # what a warm start does before training on
    assert not student._merged
    base = Student(student.config).model.state_dict()
    for name, value in student.model.state_dict().items():
        if "lora_" in name:
            assert torch.equal(value, adapter[name]), name
        else:
            assert torch.equal(value, base[name.removeprefix("base_model.model.").replace(".base_layer", "")]), name


@pytest.mark.parametrize("objective", ["cot", "step_by_step"])
def test_a_student_overfits_eight_examples_to_exact_match(small_llama_dir, objective, tmp_path):
    student = small_student(small_llama_dir, lora=False)
    records = eight_records()
    settings = TrainingConfig(objective=objective, inference="predict", epochs=150, learning_rate=1e-2, batch_size=8)
    student.train(records, settings, seed=0)
    if objective == "cot":
        assert student.generate([r.prompt for r in records]) == [r.target for r in records]
    else:  # answers straight away under predict:, explains under explain:
        assert student.generate([r.prompt for r in records]) == [f"{CUE} {r.answer}." for r in records]
        assert student.generate([r.prompt for r in records], mode="explain") == [r.rationale for r in records]
        # saved full weights reload as what they were trained for (a resumed run answers under predict: too)
        student.save_adapter(tmp_path / "weights")
        fresh = Student(student.config)
        fresh.load_adapter(tmp_path / "weights")
        assert (fresh.objective, fresh.inference) == ("step_by_step", "predict")
        assert fresh.generate([r.prompt for r in records]) == [f"{CUE} {r.answer}." for r in records]


# --- export ------------------------------------------------------------------------------------------


def test_export_writes_a_standalone_model_that_gives_the_same_outputs(small_llama_dir, tmp_path):
    from elad.config import ExperimentConfig
    from elad.store import RunStore
    from elad.export import export_round

    config = ExperimentConfig(
        name="tiny", student=StudentConfig(model=str(small_llama_dir), dtype="float32", max_new_tokens=12,
                                           lora={"r": 8, "alpha": 16, "dropout": 0.0}),
    )
    run = tmp_path / "run"
    (run / "rounds" / "1").mkdir(parents=True)
    (run / "config.yaml").write_text(config.to_yaml())
    store = RunStore(run / "run.db")
    store.set_metrics(0, "test", {"accuracy": 0.25, "correct": 1, "total": 4})
    store.set_metrics(1, "test", {"accuracy": 0.75, "correct": 3, "total": 4})
    store.close()
    student = Student(config.student)
    records = eight_records()
    student.train(records, TrainingConfig(epochs=3, learning_rate=1e-2, batch_size=8), seed=0)
    student.save_adapter(run / "rounds" / "1" / "adapter")
    expected = student.generate([r.prompt for r in records])

    out = export_round(run, 1, tmp_path / "exported")
    assert not (out / "adapter_config.json").exists() and (out / "config.json").exists()
    card = (out / "README.md").read_text()
    assert "75.0% (3/4; 95% interval 30.1% to 95.4%)" in card and "esnli" in card and "replay / palm-540b" in card
    assert json.loads((out / "elad.json").read_text())["prompt_prefix"] == ""
    exported = Student(StudentConfig(model=str(out), dtype="float32", max_new_tokens=12, lora=None))
    assert exported.generate([r.prompt for r in records]) == expected
    with pytest.raises(Exception, match="not empty"):
        export_round(run, 1, out)


def test_generation_leaves_which_weights_train_as_they_were(tiny_model_dir):
    """Generation unfreezes the weights for speed (bench/frozen_weights.py) and must freeze them again."""
    from elad.config import TrainingConfig

    student = Student(StudentConfig(model=str(tiny_model_dir), max_new_tokens=3, lora={"r": 2, "alpha": 4}))
    student.train([("Premise: a\nHypothesis: b", "So the answer is neutral.")], TrainingConfig(epochs=1), seed=0)
    before = {name: p.requires_grad for name, p in student.model.named_parameters()}
    assert any(before.values()) and not all(before.values())
    student.generate(["Premise: c\nHypothesis: d"])
    assert {name: p.requires_grad for name, p in student.model.named_parameters()} == before


def test_training_in_two_processes_shards_the_batches_and_the_student_holds_the_result(small_llama_dir, tmp_path):
    """processes: 2 runs the round's training under `accelerate launch` (gloo on a CPU): each process takes
    half of every global batch, so an epoch has half the optimizer steps; the parent loads what was trained,
    and a warm start continues from it. Checkpoints every step (the processes save together) are gone after."""
    student = small_student(small_llama_dir)
    pairs = [(r.prompt, r.target) for r in eight_records()]
    before = _target_loss(student, pairs)
    settings = TrainingConfig(epochs=8, learning_rate=1e-2, batch_size=4, processes=2, checkpoint_minutes=1e-9)
    report = student.train(pairs, settings, seed=0, log_dir=tmp_path)
    trained = _target_loss(student, pairs)
    assert (report.steps, report.examples) == (8, 8)  # 8 examples / (4 per process x 2 processes) x 8 epochs
    assert trained < before - 0.5 and student._is_peft()
    assert not list(tmp_path.glob("checkpoint-*"))
    # A learning rate too small to move the weights: a warm start must hand back what was trained, not a fresh
    # adapter (a further step at 1e-2 may go up or down, so it cannot tell the two apart).
    still = settings.model_copy(update={"learning_rate": 1e-9, "epochs": 1})
    again = student.train(pairs, still, seed=1, warm_start=True)
    assert again.steps == 1 and abs(_target_loss(student, pairs) - trained) < 1e-3


def test_training_in_a_process_of_its_own_trains_what_training_here_trains(small_llama_dir):
    """own_process: the round trains in a fresh process (whose heap goes when it ends) and the student holds
    exactly what a training in this process gives, the steps reported to the progress bar on the way."""
    pairs = [(r.prompt, r.target) for r in eight_records()]
    settings = TrainingConfig(epochs=2, learning_rate=1e-2, batch_size=4)
    here = small_student(small_llama_dir)
    here.train(pairs, settings.model_copy(update={"own_process": False}), seed=3)
    apart = small_student(small_llama_dir)
    steps = []
    report = apart.train(pairs, settings.model_copy(update={"own_process": True}), seed=3,
                         progress=lambda done, total: steps.append((done, total)))
    assert report.steps == 4 and steps and steps[-1] == (4, 4)
    trained_here = {n: p for n, p in here.model.named_parameters() if "lora_" in n}
    trained_apart = {n: p for n, p in apart.model.named_parameters() if "lora_" in n}
    assert trained_here.keys() == trained_apart.keys() and trained_here
    assert all(torch.equal(trained_here[n], trained_apart[n]) for n in trained_here)
    assert apart.generate([p for p, _ in pairs]) == here.generate([p for p, _ in pairs])


def test_a_training_process_ends_when_its_parent_has_gone(tmp_path):
    """A loop killed while its round trains in a process of its own does not leave that training running."""
    import subprocess
    import sys
    import time

    script = (  # a parent whose child watches it as a training process does, then says so
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import sys, time; from elad.children import stop_without; "
        "stop_without(int(sys.argv[1]), every=0.1); print(flush=True); time.sleep(60)', str(os.getpid())], "
        "stdout=subprocess.PIPE, text=True)\n"
        "child.stdout.readline()\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert _alive(worker)
    parent.kill()
    parent.wait()
    deadline = time.time() + 20
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_training_process_killed_for_memory_is_named_so(small_llama_dir, monkeypatch):
    import sys

    from elad.students import launch

    killed = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    monkeypatch.setattr(launch, "launch_command", lambda settings, job: killed)
    student = small_student(small_llama_dir)
    with pytest.raises(EladError, match="signal 9, which is how the system ends a process that ran out of memory"):
        student.train([(r.prompt, r.target) for r in eight_records()], TrainingConfig(own_process=True), seed=0)


def test_a_failed_launch_is_a_clear_error(small_llama_dir):
    student = small_student(small_llama_dir)
    settings = TrainingConfig(epochs=1, batch_size=4, processes=2, accelerate_args=["--no_such_option"])
    with pytest.raises(EladError, match="accelerate launch"):
        student.train([(r.prompt, r.target) for r in eight_records()], settings, seed=0)


def test_shared_prefix_and_prompt_reuse_give_what_plain_generate_gives(student):
    """Each prompt is computed once (the prefix every prompt shares once per call, a prompt's own tokens
    once for all its samples): the greedy text is what generate gives on the plain left-padded batch."""
    from elad.students.generation import shared_prefix

    prompts = [f"Premise: a person number {i} walks{' far' * i}.\nHypothesis: someone moves." for i in range(5)]
    rendered = [student.render_prompt(p) for p in prompts]
    ids = student.tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assert shared_prefix(ids) >= 8  # the chat template's turn and "Premise: a person number"
    tokenizer = student.tokenizer
    tokenizer.padding_side = "left"
    batch = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = student.model.generate(**batch, max_new_tokens=student.config.max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
    plain = [t.strip() for t in tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)]
    assert student.generate(prompts) == plain
    # K samples of a prompt share its prompt pass: one row per sample, each prompt's samples differ
    sampled = student.explain(prompts, samples=3, temperature=1.0, top_p=1.0, seed=3)
    assert all(len(texts) == 4 and texts[0] == greedy for texts, greedy in zip(sampled, plain))
    assert any(len(set(texts[1:])) > 1 for texts in sampled)


def test_shared_prefix_leaves_each_prompt_two_tokens():
    from elad.students.generation import SHARED_PREFIX_MIN, shared_prefix

    base = list(range(20))
    assert shared_prefix([base + [50, 51], base + [60, 61, 62]]) == 20
    assert shared_prefix([base, base]) == 18  # identical prompts keep two tokens each
    assert shared_prefix([base[:SHARED_PREFIX_MIN] + [1, 2], [99] + base]) == 0
    assert shared_prefix([]) == 0


@pytest.fixture(scope="module")
def varied_llama_dir(tmp_path_factory) -> Path:
    """Weights large enough that greedy texts differ from row to row (at the usual 0.02 every row repeats
    one token), so that an end token ends rows at different steps."""
    return write_small_llama(tmp_path_factory.mktemp("varied-llama"), initializer_range=0.2)


@pytest.fixture
def varied_student(varied_llama_dir):
    return small_student(varied_llama_dir)


VARIED_PROMPTS = [f"Premise: a person number {i} walks{' far' * i}.\nHypothesis: someone moves." for i in range(6)]


def prefilled_rows(student, copies=1):
    """`prefilled` inputs for VARIED_PROMPTS with their shared prefix computed once, as the engine builds them."""
    from elad.students.generation import prefilled, prefix_cache, shared_prefix

    ids = student.tokenizer([student.render_prompt(p) for p in VARIED_PROMPTS], add_special_tokens=False)["input_ids"]
    prefix = shared_prefix(ids)
    assert prefix > 0
    cache = prefix_cache(student.model, ids[0][:prefix], "cpu")
    return prefilled(student.model, ids, student.tokenizer.pad_token_id, copies, prefix, cache, "cpu")


def generated_by_generate(student, inputs, **settings):
    out = student.model.generate(**inputs, max_new_tokens=12, pad_token_id=student.tokenizer.pad_token_id, top_k=None,
                                 **settings)
    return [row[inputs["input_ids"].shape[1]:].tolist() for row in out]


def test_finished_rows_leave_the_batch_and_the_texts_are_what_generate_gives(varied_student):
    """Rows that end early leave the decode batch: the end tokens are two that rows write at different
    steps, and each row's greedy tokens (and where it stops) must be those of a plain generate call."""
    from collections import Counter

    from elad.students.decoding import decode_dropping_finished, plain_decoding

    model, pad = varied_student.model, varied_student.tokenizer.pad_token_id
    with torch.inference_mode():
        free = generated_by_generate(varied_student, prefilled_rows(varied_student), do_sample=False)
        ends = [t for t, _ in Counter(t for row in free for t in set(row)).most_common(2)]  # written by most rows
        model.generation_config.eos_token_id = ends
        expected = generated_by_generate(varied_student, prefilled_rows(varied_student), do_sample=False)
        assert plain_decoding(model)
        got = decode_dropping_finished(model, prefilled_rows(varied_student), 12, False, 1.0, 1.0)
    lengths = [len(row) for row in got]
    assert len(set(lengths)) > 2 and min(lengths) < 12  # rows did leave the batch at different steps
    assert all(row[-1] in ends for row in got if len(row) < 12)
    assert got == [row[:len(mine)] for row, mine in zip(expected, got)]
    assert all(set(row[len(mine):]) <= {pad} for row, mine in zip(expected, got))  # generate only pads after


def test_sampling_is_seeded_and_draws_within_generates_nucleus(varied_student):
    """Temperature and top-p sampling of 2 copies per prompt: the same draws for the same seed, every row to
    the end without an end token, and every token one that generate's warpers leave a chance (the
    distribution itself: tests/unit/test_decoding_nucleus.py)."""
    from transformers.generation import TemperatureLogitsWarper, TopPLogitsWarper

    from elad.students.decoding import decode_dropping_finished

    model = varied_student.model
    model.generation_config.eos_token_id = None
    with torch.inference_mode():
        torch.manual_seed(3)
        got = decode_dropping_finished(model, prefilled_rows(varied_student, copies=2), 12, True, 0.7, 0.9)
        torch.manual_seed(3)
        again = decode_dropping_finished(model, prefilled_rows(varied_student, copies=2), 12, True, 0.7, 0.9)
        torch.manual_seed(3)
        hotter = decode_dropping_finished(model, prefilled_rows(varied_student, copies=2), 12, True, 1.5, 0.9)
        rows = prefilled_rows(varied_student, copies=2)
        ids = torch.cat([rows["input_ids"], torch.tensor(got)], dim=1)
        mask = torch.cat([rows["attention_mask"], torch.ones(len(got), 12, dtype=torch.long)], dim=1)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    start = rows["input_ids"].shape[1] - 1
    warp = lambda scores: TopPLogitsWarper(0.9)(None, TemperatureLogitsWarper(0.7)(None, scores.float()))
    chances = torch.stack([warp(logits[:, start + k]).softmax(-1).gather(1, ids[:, start + k + 1:start + k + 2])
                           for k in range(12)])
    assert got == again and all(len(row) == 12 for row in got)
    assert bool((chances > 0).all())
    assert got[0::2] != got[1::2]  # a prompt's two copies are two draws
    assert hotter != got  # the temperature is applied


def test_decoding_with_settings_or_caches_it_does_not_handle_is_left_to_generate(varied_student):
    from transformers import StaticCache

    from elad.students.decoding import plain_decoding, rows_can_leave

    model = varied_student.model
    assert plain_decoding(model)
    for name, value in [("repetition_penalty", 1.3), ("no_repeat_ngram_size", 3), ("encoder_repetition_penalty", 1.2)]:
        setattr(model.generation_config, name, value)
        assert not plain_decoding(model), name
        setattr(model.generation_config, name, None)
    assert plain_decoding(model)
    with torch.inference_mode():
        assert rows_can_leave(prefilled_rows(varied_student)["past_key_values"])
    assert not rows_can_leave(None)
    assert not rows_can_leave(StaticCache(config=model.config, max_cache_len=16))


def test_sampled_decoding_is_seeded_and_follows_top_p(varied_student):
    """Through the engine: the same seed, the same texts; top_p near 0 keeps only the most likely token, so
    sampling then gives the greedy text."""
    prompts = [f"Premise: thing {i}.\nHypothesis: item {i}." for i in range(3)]
    greedy = varied_student.generate(prompts)
    first = varied_student.explain(prompts, samples=2, temperature=1.0, top_p=0.95, seed=5)
    assert varied_student.explain(prompts, samples=2, temperature=1.0, top_p=0.95, seed=5) == first
    assert any(len(set(texts[1:]) | {texts[0]}) > 1 for texts in first)
    narrow = varied_student.explain(prompts, samples=2, temperature=1.0, top_p=1e-6, seed=5)
    assert [texts[1:] for texts in narrow] == [[g, g] for g in greedy]


# --- checkpoints: a training stopped midway resumes ------------------------------------------------------


class Stopped(Exception):
    """What a kill looks like to the training: it never reaches its end."""


def _lora_weights(student) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in student.model.named_parameters() if "lora_" in name}


def _resumable_student(directory):
    # dropout on: a resume must also restore the random state the dropout masks come from
    return Student(StudentConfig(model=str(directory), dtype="float32", max_new_tokens=16,
                                 lora={"r": 8, "alpha": 16, "dropout": 0.1}))


def test_a_training_stopped_midway_resumes_from_its_checkpoint_and_ends_as_if_never_stopped(small_llama_dir, tmp_path):
    """Saved every step, stopped in the middle of the second epoch: a new student (as after a restart) given
    the same folder continues after the last checkpoint, trains the remaining steps on the batches the
    unstopped training saw, ends with its weights, and leaves no checkpoint behind."""
    pairs = [(r.prompt, r.target) for r in eight_records()]
    settings = TrainingConfig(epochs=3, learning_rate=1e-2, batch_size=2, checkpoint_minutes=1e-9)  # 4 steps/epoch

    unstopped = _resumable_student(small_llama_dir)
    unstopped.train(pairs, settings, seed=3, log_dir=tmp_path / "unstopped")
    expected = _lora_weights(unstopped)

    def stop_at_step_7(step, total):
        if step == 7:
            raise Stopped
    with pytest.raises(Stopped):
        _resumable_student(small_llama_dir).train(pairs, settings, seed=3, progress=stop_at_step_7,
                                                  log_dir=tmp_path / "stopped")
    assert sorted(p.name for p in (tmp_path / "stopped").glob("checkpoint-*")) == ["checkpoint-6"]  # the latest only

    resumed = _resumable_student(small_llama_dir)
    steps = []
    report = resumed.train(pairs, settings, seed=3, progress=lambda step, total: steps.append(step),
                           log_dir=tmp_path / "stopped")
    assert steps == list(range(7, 13)) and report.steps == 12
    trained = _lora_weights(resumed)
    assert trained.keys() == expected.keys()
    assert all(torch.allclose(trained[name], expected[name], atol=1e-6) for name in expected)
    assert not list((tmp_path / "stopped").glob("checkpoint-*")) and not (tmp_path / "stopped" / "resume-key.txt").exists()


def test_a_checkpoint_of_another_training_is_not_resumed(small_llama_dir, tmp_path):
    """Checkpoints belong to one training set, configuration and seed: a different one starts afresh."""
    pairs = [(r.prompt, r.target) for r in eight_records()]
    settings = TrainingConfig(epochs=2, learning_rate=1e-2, batch_size=2, checkpoint_minutes=1e-9)

    def stop_at_step_3(step, total):
        if step == 3:
            raise Stopped
    with pytest.raises(Stopped):
        _resumable_student(small_llama_dir).train(pairs, settings, seed=3, progress=stop_at_step_3, log_dir=tmp_path)
    steps = []
    _resumable_student(small_llama_dir).train(pairs[:6], settings, seed=3,
                                              progress=lambda step, total: steps.append(step), log_dir=tmp_path)
    assert steps[0] == 1 and steps[-1] == 6  # 6 examples / 2 per batch x 2 epochs, all trained


def test_training_in_two_processes_resumes_from_their_checkpoint(small_llama_dir, tmp_path, monkeypatch):
    """Launched processes save together and resume together: with the checkpoints of a finished training
    left in place (as if it had been killed after its last save), the same training again takes only the
    step after that save and ends with the same weights."""
    from elad.students import checkpoints

    pairs = [(r.prompt, r.target) for r in eight_records()]
    settings = TrainingConfig(epochs=2, learning_rate=1e-2, batch_size=2, processes=2, checkpoint_minutes=1e-9)
    monkeypatch.setattr(checkpoints, "drop", lambda folder: None)
    first = _resumable_student(small_llama_dir)
    first.train(pairs, settings, seed=5, log_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-3"]  # 4 steps; none after the last
    again = _resumable_student(small_llama_dir)
    report = again.train(pairs, settings, seed=5, log_dir=tmp_path)
    assert report.steps == 4
    trained, expected = _lora_weights(again), _lora_weights(first)
    assert all(torch.allclose(trained[name], expected[name], atol=1e-6) for name in expected)
    # The same weights would come from training afresh; that it started from the checkpoint shows when the
    # checkpoint is altered: its lora_B zeroed, one step from there cannot end where four did.
    from safetensors.torch import load_file, save_file

    saved = tmp_path / "checkpoint-3" / "adapter_model.safetensors"
    save_file({k: (v * 0 if "lora_B" in k else v) for k, v in load_file(saved).items()}, saved)
    altered = _resumable_student(small_llama_dir)
    altered.train(pairs, settings, seed=5, log_dir=tmp_path)
    assert not torch.allclose(_lora_weights(altered)[next(k for k in expected if "lora_B" in k)],
                              expected[next(k for k in expected if "lora_B" in k)], atol=1e-3)


def test_gradient_checkpointing_trains_the_same_weights(small_llama_dir, tmp_path, monkeypatch):
    """Recomputing activations in the backward pass (with the dropout masks of the forward one) changes the
    memory, not the training: the same seed ends with the same adapter. Both sides compute every row's own
    prompt start, which checkpointed layers must (they keep no cache to share one)."""
    from elad.students import training

    shared_start_min = training.SHARED_START_MIN
    monkeypatch.setattr(training, "SHARED_START_MIN", 10**6)
    pairs = [(r.prompt, r.target) for r in eight_records()]
    trained, recomputing = {}, {}
    for on in (False, True):
        student = _resumable_student(small_llama_dir)  # LoRA dropout 0.1
        settings = TrainingConfig(epochs=2, learning_rate=1e-2, batch_size=4, gradient_checkpointing=on)
        seen = recomputing.setdefault(on, set())
        student.train(pairs, settings, seed=5, progress=lambda step, total: seen.add(training._recomputes(student.model)))
        trained[on] = _lora_weights(student)
    assert recomputing == {False: {False}, True: {True}}
    assert all(torch.allclose(trained[True][name], trained[False][name], atol=1e-6) for name in trained[False])
    assert any((trained[True][name] != 0).any() for name in trained[True] if "lora_B" in name)

    monkeypatch.setattr(training, "SHARED_START_MIN", shared_start_min)
    opening = "Read the premise and the hypothesis, then answer. "  # a start the rows share
    encoded = [student.encode_pair(opening + prompt, target, 128) for prompt, target in pairs[:3]]
    batch = PadCollator(student.tokenizer.pad_token_id)(encoded)
    keep = torch.zeros_like(batch["labels"], dtype=torch.bool)
    keep[:, :-1] = batch["labels"][:, 1:] != IGNORE_INDEX
    assert training._shared_prompt_start(batch, keep, student.model) == 0  # checkpointed: each row its own start
    student.model.gradient_checkpointing_disable()
    assert training._shared_prompt_start(batch, keep, student.model) >= training.SHARED_START_MIN  # they share one


@pytest.mark.parametrize("checkpointing", [False, True])
def test_training_keeps_the_heap_whole_or_maps_large_blocks_apart_with_checkpointing(tiny_model_dir, monkeypatch,
                                                                                    checkpointing):
    """A training keeps every block on the heap (speed), or with gradient checkpointing maps large blocks
    apart (a lower peak); generation gets glibc's settings back either way (memory.py)."""
    from elad.config import TrainingConfig
    from elad.students import memory

    settings_seen = []
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(memory, "_glibc", lambda: SimpleNamespace(
        mallopt=lambda parameter, value: settings_seen.append((parameter, value)), malloc_trim=lambda pad: None))
    student = Student(StudentConfig(model=str(tiny_model_dir), max_new_tokens=3, lora={"r": 2, "alpha": 4}))
    assert settings_seen == []
    real_fit = training.fit

    def fit_noting_the_settings(*args, **kwargs):
        settings_seen.append(("while fitting", list(settings_seen)))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", fit_noting_the_settings)
    student.train([("Premise: a\nHypothesis: b", "So the answer is neutral.")],
                  TrainingConfig(epochs=1, gradient_checkpointing=checkpointing), seed=0)
    if checkpointing:
        mapped_apart = (memory.M_MMAP_THRESHOLD, memory.LARGE_BLOCK)
        assert settings_seen == [mapped_apart, ("while fitting", [mapped_apart]),
                                 (memory.M_MMAP_THRESHOLD, memory.HEAP_CEILING)]
    else:
        heap_whole = [(memory.M_MMAP_MAX, 0), (memory.M_TRIM_THRESHOLD, memory.KEEP_ALL)]
        assert settings_seen == [*heap_whole, ("while fitting", heap_whole),
                                 (memory.M_MMAP_MAX, memory.MMAP_MAX_DEFAULT),
                                 (memory.M_TRIM_THRESHOLD, memory.TRIM_DEFAULT)]
    settings_seen.clear()
    student.generate(["Premise: c\nHypothesis: d"])  # generating keeps the heap whole, then restores
    assert settings_seen[-2:] == [(memory.M_MMAP_MAX, memory.MMAP_MAX_DEFAULT),
                                  (memory.M_TRIM_THRESHOLD, memory.TRIM_DEFAULT)]


def test_a_bf16_students_adapter_generates_in_bf16_and_trains_on_in_fp32(tiny_model_dir, monkeypatch):
    """Over bf16 base weights the adapter is cast to bf16 while generating (no fp32 casts per layer), and its
    fp32 weights come back exactly for the next training."""
    from elad.students import generation

    student = Student(StudentConfig(model=str(tiny_model_dir), max_new_tokens=3, dtype="bfloat16",
                                    lora={"r": 2, "alpha": 4}))
    student.train([("Premise: a\nHypothesis: b", "So the answer is neutral.")], TrainingConfig(epochs=1), seed=0)
    adapter = {name: p.detach().clone() for name, p in student.model.named_parameters() if "lora_" in name}
    assert adapter and {p.dtype for p in adapter.values()} == {torch.float32}
    dtypes_while_generating = set()
    real_generate = generation.TransformersGenerator._generate

    def noting_dtypes(self, *args):
        dtypes_while_generating.update(p.dtype for p in self.weights.model.parameters())
        return real_generate(self, *args)

    monkeypatch.setattr(generation.TransformersGenerator, "_generate", noting_dtypes)
    student.generate(["Premise: c\nHypothesis: d"])
    assert dtypes_while_generating == {torch.bfloat16}
    after = {name: p for name, p in student.model.named_parameters() if "lora_" in name}
    assert all(after[name].dtype == torch.float32 and torch.equal(after[name], value)
               for name, value in adapter.items())
    again = student.train([("Premise: a\nHypothesis: b", "So the answer is neutral.")], TrainingConfig(epochs=1),
                          seed=0, warm_start=True)
    assert math.isfinite(again.loss)
