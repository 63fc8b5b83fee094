import pytest
import torch

from elad.config import StudentConfig, TrainingConfig
from elad.students import Student
from elad.students.student import IGNORE_INDEX

pytestmark = pytest.mark.integration


@pytest.fixture
def student(tiny_model_dir):
    return Student(StudentConfig(model=str(tiny_model_dir), max_new_tokens=6, generation_batch_size=2,
                                 lora={"r": 8, "alpha": 16, "dropout": 0.0}))


def _target_loss(student, pairs):
    total = 0.0
    with torch.no_grad():
        for user, target in pairs:
            features = student.encode_pair(user, target, max_length=128)
            out = student.model(input_ids=torch.tensor([features["input_ids"]]), labels=torch.tensor([features["labels"]]))
            total += out.loss.item()
    return total / len(pairs)


def test_loss_is_on_target_tokens_only(student):
    features = student.encode_pair("Premise: a\nHypothesis: b", "So the answer is neutral.", max_length=256)
    prompt_length = len(student.tokenizer(student.render_prompt("Premise: a\nHypothesis: b"), add_special_tokens=False)["input_ids"])
    assert all(label == IGNORE_INDEX for label in features["labels"][:prompt_length])
    assert features["labels"][prompt_length:] == features["input_ids"][prompt_length:]
    decoded = student.tokenizer.decode(features["input_ids"][prompt_length:])
    assert decoded.startswith("So the answer is neutral.")


def test_training_lowers_the_loss_on_what_it_saw(student, tmp_path):
    pairs = [(f"Premise: thing {i}\nHypothesis: other {i}", "They match. So the answer is entailment.") for i in range(4)]
    before = _target_loss(student, pairs)
    report = student.train(pairs, TrainingConfig(epochs=8, learning_rate=5e-3, batch_size=4), seed=0)
    after = _target_loss(student, pairs)
    assert report.steps == 8 and report.examples == 4
    assert after < before - 0.5

    student.save_adapter(tmp_path / "adapter")
    fresh = Student(student.config)
    fresh.load_adapter(tmp_path / "adapter")
    assert _target_loss(fresh, pairs) == pytest.approx(after, abs=1e-3)
    fresh.reset()
    assert _target_loss(fresh, pairs) == pytest.approx(before, abs=1e-3)


def test_batched_generation_matches_one_at_a_time(student):
    prompts = ["Premise: short\nHypothesis: s", "Premise: a much longer premise with many words in it\nHypothesis: h"]
    batched = student.generate(prompts)
    single = [student.generate([p])[0] for p in prompts]
    assert batched == single
