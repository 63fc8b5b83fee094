"""The OpenAI-compatible backend without a server: key handling, usage, replies without choices."""

from types import SimpleNamespace

import pytest

from elad.errors import EladError
from elad.teachers import OpenAITeacher, Request, TeacherContext, TeacherReplyError
from elad.teachers.openai_compat import NO_KEY, read_api_key
from tests.fakes.teachers import words

SECRET = "sk-unit-SECRET-value-0042"


def _teacher(result, **kwargs):
    teacher = OpenAITeacher(model="m", count_tokens=words, base_url="http://127.0.0.1:9/v1", api_key=SECRET, **kwargs)
    sent = []

    def create(**params):
        sent.append(params)
        return result

    teacher._client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))
    return teacher, sent


def _result(texts, usage=(11, 7)):
    choices = [SimpleNamespace(message=SimpleNamespace(content=t), finish_reason="stop") for t in texts]
    usage = SimpleNamespace(prompt_tokens=usage[0], completion_tokens=usage[1]) if usage else None
    return SimpleNamespace(choices=choices, usage=usage)


REQUEST = Request(messages=({"role": "user", "content": "two words"},), max_tokens=9, temperature=0.3)


def test_a_missing_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("ELAD_TEST_KEY", raising=False)
    with pytest.raises(EladError, match="'ELAD_TEST_KEY' is not set"):
        read_api_key("ELAD_TEST_KEY", "http://127.0.0.1:1/v1")


def test_the_key_comes_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("ELAD_TEST_KEY", SECRET)
    assert read_api_key("ELAD_TEST_KEY", None) == SECRET


def test_a_local_server_needs_no_key_but_the_openai_api_does():
    assert read_api_key(None, "http://127.0.0.1:8080/v1") == NO_KEY
    with pytest.raises(EladError, match="api_key_env"):
        read_api_key(None, None)


def _from_config(settings: str) -> OpenAITeacher:
    """The teacher a config's `teacher:` section builds (a local server's address, plus `settings`)."""
    from elad.config import parse_config

    config = parse_config(f"teacher: {{backend: openai, model: m, base_url: 'http://127.0.0.1:9/v1', {settings}}}")
    context = TeacherContext(count_tokens=words, dataset="esnli", split="valid", data_root=None)
    return OpenAITeacher.from_config(config.teacher, context)


def test_from_config_reads_the_key_and_never_shows_it(monkeypatch):
    monkeypatch.setenv("ELAD_TEST_KEY", SECRET)
    teacher = _from_config("api_key_env: ELAD_TEST_KEY, timeout: 3, max_retries: 2")
    assert SECRET not in repr(teacher) and SECRET not in str(vars(teacher).get("model"))
    assert teacher.max_retries == 2 and teacher._client.max_retries == 0 and teacher._client.api_key == SECRET


def test_from_config_takes_the_reasoning_model_settings():
    teacher = _from_config("token_limit: max_completion_tokens, reasoning_effort: high, extra_body: {top_k: 5},"
                           " reasoning_as_rationale: true")
    assert (teacher.token_limit, teacher.reasoning_effort, teacher.extra_body) == ("max_completion_tokens", "high",
                                                                                   {"top_k": 5})
    assert teacher.reasoning_as_rationale


def test_usage_reported_by_the_server_is_used_and_spread_over_choices():
    teacher, sent = _teacher(_result(["a b", "c"], usage=(11, 7)))
    response = teacher.complete(Request(messages=REQUEST.messages, max_tokens=9, n=2))
    assert response.prompt_tokens == 11 and response.completion_tokens == 7
    assert [c.text for c in response.completions] == ["a b", "c"]
    assert sent[0]["n"] == 2 and sent[0]["max_tokens"] == 9 and "response_format" not in sent[0]


def test_usage_is_counted_when_the_server_reports_none():
    teacher, _ = _teacher(_result(["three more words"], usage=None))
    response = teacher.complete(REQUEST)
    assert (response.prompt_tokens, response.completion_tokens) == (2, 3)
    assert response.meta["usage"] == "counted"


def test_no_choices_is_an_unusable_reply_with_its_usage():
    teacher, _ = _teacher(_result([], usage=(5, 0)))
    with pytest.raises(TeacherReplyError) as caught:
        teacher.complete(REQUEST)
    assert caught.value.usage == (5, 0)


def test_a_json_schema_is_sent_as_structured_output():
    teacher, sent = _teacher(_result(["{}"]))
    schema = {"name": "review", "schema": {"type": "object"}}
    teacher.complete(Request(messages=REQUEST.messages, json_schema=schema))
    assert sent[0]["response_format"] == {"type": "json_schema", "json_schema": {"strict": True, **schema}}
    assert sent[0]["temperature"] == 0.0 and sent[0]["model"] == "m"
