"""A local Hugging Face model as the teacher (a tiny random Llama: real code paths, nonsense text)."""

import pytest

from elad.teachers import LocalTeacher, Request, TeacherContext, build_teacher

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def teacher(tiny_model_dir):
    from elad.config import parse_config

    config = parse_config(f"teacher: {{backend: local, model: '{tiny_model_dir}', max_tokens: 8}}").teacher
    context = TeacherContext(count_tokens=len, dataset="esnli", split="valid", data_root=None)
    built = build_teacher(config, context, cache=None)
    assert isinstance(built, LocalTeacher)
    return built


def test_local_teacher_answers_with_its_own_token_counts(teacher):
    messages = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is a sleeping man resting?"})
    response = teacher.complete(Request(messages=messages, max_tokens=6))
    (completion,) = response.completions
    assert response.backend == "local" and response.prompt_tokens > 5
    assert 1 <= completion.completion_tokens <= 6 and completion.finish_reason in ("stop", "length")
    again = teacher.complete(Request(messages=messages, max_tokens=6))
    assert again.completions[0].text == completion.text  # greedy: the same answer twice


def test_local_teacher_samples_n_completions(teacher):
    request = Request(messages=({"role": "user", "content": "Say something."},), max_tokens=5, temperature=1.0, n=2)
    response = teacher.complete(request)
    assert len(response.completions) == 2
    assert response.completion_tokens == sum(c.completion_tokens for c in response.completions)
