"""The OpenAI-compatible teacher against a local fake server that fails on cue (loopback only)."""

import logging
import time

import pytest

from elad.annotation import Annotation, ClearAnnotator, CotAnnotator
from elad.store import ResponseCache
from elad.tasks import Example
from elad.tasks.esnli import EsnliTask
from elad.teachers import (
    Budget, BudgetExhausted, CachedTeacher, Ledger, OpenAITeacher, Request, TeacherError,
    TeacherReplyError,
)
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.teachers import words

pytestmark = pytest.mark.integration

SECRET = "sk-test-SECRET-8c1f2e-do-not-store"
REQUEST = Request(messages=({"role": "user", "content": "Is a sleeping man resting?"},), max_tokens=32)
EXAMPLES = [
    Example(id=f"valid-{i}", question=f"Premise: A man {i} sleeps.\nHypothesis: A man {i} rests.", answer="entailment")
    for i in range(40)
]


@pytest.fixture
def server():
    fake = FakeOpenAIServer(retry_after="1", slow_seconds=1.5).start()
    yield fake
    fake.stop()


def _teacher(server, **kwargs) -> OpenAITeacher:
    settings = {"timeout": 0.5, "max_retries": 3, **kwargs}
    return OpenAITeacher("fake-teacher", count_tokens=words, base_url=server.base_url, api_key=SECRET, **settings)


def test_a_normal_reply_with_the_servers_usage(server):
    response = _teacher(server).complete(REQUEST)
    assert response.completions[0].text.endswith("So the answer is entailment.")
    assert (response.prompt_tokens, response.completion_tokens) == (server.billed.prompt_tokens,
                                                                   server.billed.completion_tokens)
    body = server.seen[0].body
    assert body["model"] == "fake-teacher" and body["max_tokens"] == 32
    assert server.seen[0].headers.get("authorization") == f"Bearer {SECRET}"


def test_429_waits_as_long_as_retry_after_says(server):
    server.cue("429")
    started = time.time()
    _teacher(server).complete(REQUEST)
    assert [s.cue for s in server.seen] == ["429", "ok"]
    assert server.seen[1].at - server.seen[0].at >= 0.95 and time.time() - started >= 0.95


def test_500_and_a_truncated_body_are_retried(server):
    server.cue("500", "truncated")
    response = _teacher(server).complete(REQUEST)
    assert [s.cue for s in server.seen] == ["500", "truncated", "ok"] and response.completions


def test_a_reply_slower_than_the_timeout_is_abandoned_and_retried(server):
    server.slow_seconds = 4.0  # far past the 0.5 s timeout, so that a busy machine's delays cannot blur the two
    server.cue("slow")
    started = time.time()
    _teacher(server).complete(REQUEST)
    assert [s.cue for s in server.seen] == ["slow", "ok"] and 0.5 <= time.time() - started < 3.0


def test_when_retries_run_out_the_error_is_clear_and_nothing_is_charged(server):
    server.cue("500", "500", "500")
    ledger = Ledger(Budget(calls=1), count_tokens=words)
    with pytest.raises(TeacherError, match="HTTP 500") as caught:
        ledger.call(_teacher(server, max_retries=2), REQUEST)
    assert SECRET not in str(caught.value)
    # Three attempts, each reserved in turn, each answered with an error status: none billed.
    assert (ledger.spent.calls, ledger.spent.failed, ledger.remaining().calls) == (0, 3, 1)


def test_a_wrong_key_fails_at_once_without_showing_it(server):
    server.cue("401")
    with pytest.raises(TeacherError, match="HTTP 401") as caught:
        _teacher(server).complete(REQUEST)
    assert len(server.seen) == 1 and SECRET not in str(caught.value)


def test_a_refused_request_rejects_that_item_only(server):
    server.cue("400")
    ledger = Ledger(Budget(), count_tokens=words)
    annotator = CotAnnotator(EsnliTask(), _teacher(server), ledger, 32)
    first, second = [r for _, r in annotator.annotate_many(EXAMPLES[:2])]
    assert "refused the request: HTTP 400" in first.reason and first.details["refused"] == 1
    assert isinstance(second, Annotation) and ledger.spent.calls == 1 and len(server.seen) == 2


def test_a_malformed_body_and_empty_choices_are_unusable_replies(server):
    server.cue("malformed", "empty")
    teacher = _teacher(server)
    with pytest.raises(TeacherReplyError, match="not valid JSON"):
        teacher.complete(REQUEST)
    with pytest.raises(TeacherReplyError, match="no choices") as caught:
        teacher.complete(REQUEST)
    assert caught.value.usage == (server.billed.prompt_tokens, 0)


def test_without_usage_the_tokens_are_counted(server):
    server.cue("no_usage")
    response = _teacher(server).complete(REQUEST)
    assert response.meta["usage"] == "counted"
    assert response.completion_tokens == server.billed.completion_tokens


def test_a_server_without_structured_output_is_asked_again_without_it(server):
    server.supports_json_schema = False
    teacher = _teacher(server)
    schema = {"name": "review", "schema": {"type": "object", "properties": {}, "additionalProperties": False}}
    teacher.complete(Request(messages=REQUEST.messages, json_schema=schema))
    # json_schema (OpenAI, vLLM), then json_object with a schema (llama-cpp-python), then the prompt alone.
    forms = [seen.body.get("response_format", {}).get("type") for seen in server.seen]
    assert forms == ["json_schema", "json_object", None]
    assert teacher.supports_json_schema is False
    teacher.complete(Request(messages=REQUEST.messages, json_schema=schema))
    assert "response_format" not in server.seen[-1].body  # the server's answer is remembered


def test_a_500_about_response_format_counts_as_a_refusal_of_it(server):
    """llama-cpp-python's server answers an unknown response_format with a 500 validation error."""
    from elad.teachers.openai_compat import _refuses_format

    class Error(Exception):
        status_code = 500
        message = "1 validation error: ('body', 'response_format', 'type') Input should be 'text' or 'json_object'"

    class Other(Exception):
        status_code = 500
        message = "Internal Server Error"

    assert _refuses_format(Error()) and not _refuses_format(Other())


def test_cot_annotation_over_http_survives_a_malformed_reply(server):
    server.cue("malformed")
    annotator = CotAnnotator(EsnliTask(), _teacher(server), Ledger(Budget(), count_tokens=words), 64)
    result = annotator.annotate(EXAMPLES[0])
    assert isinstance(result, Annotation) and result.answer == "entailment"
    assert result.details["bad_replies"] == 1 and result.details["calls"] == 2


def test_the_ledger_never_exceeds_its_budget_under_faults_with_8_in_flight(server):
    server.retry_after = "0.2"
    # A timeout well above a normal reply's time on a busy machine: only the `slow` cue times out (each
    # timeout is charged at its worst case, so stray ones would end the budget early).
    server.slow_seconds = 2.0
    faults = ["429", "500", "malformed", "empty", "slow", "truncated", "no_usage", "ok"]
    server.cue(*(faults * 4))
    budget = Budget(tokens=1500)  # each call's worst case is about 100 tokens; it spends about 85
    ledger = Ledger(budget, count_tokens=words)
    annotator = CotAnnotator(EsnliTask(), _teacher(server, timeout=1.5), ledger, 16)
    done = []
    with pytest.raises(BudgetExhausted):
        for example, result in annotator.annotate_many(EXAMPLES, concurrency=8):
            done.append(example.id)
    assert 1 <= len(done) < len(EXAMPLES)
    # It stopped because the budget was spent, not early: a call is refused only when nothing is in flight
    # and its worst case (about 100 tokens) does not fit. How many items that buys depends on how many
    # replies a busy machine lets time out (each charged at its worst case), so the count is not asserted.
    assert budget.tokens - 200 < ledger.spent.tokens <= budget.tokens
    # The ledger charged at least what the server billed (an unreadable reply is charged, billed or not).
    assert ledger.spent.calls >= server.billed.calls
    assert ledger.spent.tokens >= server.billed.prompt_tokens + server.billed.completion_tokens
    assert ledger.reserved.calls == 0


def test_the_key_is_never_written_to_the_run_store_the_cache_or_the_log(server, tmp_path, caplog):
    from elad.store import RunStore

    caplog.set_level(logging.DEBUG)
    server.cue("429", "malformed", "500")
    server.retry_after = "0.1"
    store = RunStore(tmp_path / "run" / "run.db")
    teacher = CachedTeacher(_teacher(server), ResponseCache(tmp_path / "run" / "teacher_cache.db"))
    ledger = Ledger(Budget(), count_tokens=words,
                    on_call=lambda req, resp, d: store.add_teacher_call(1, req.example_id, "cot", resp, req.messages, d))
    annotator = CotAnnotator(EsnliTask(), teacher, ledger, 32)
    for example, result in annotator.annotate_many(EXAMPLES[:6], concurrency=3):
        store.add_annotation(1, example.id, result)
    store.close()
    teacher.cache.close()
    assert any(s.headers.get("authorization") == f"Bearer {SECRET}" for s in server.seen)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == "teacher_cache.db" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text


def test_a_rerun_is_answered_from_the_cache(server, tmp_path):
    cache_path = tmp_path / "teacher_cache.db"

    def run() -> tuple[int, list]:
        before = len(server.seen)
        teacher = CachedTeacher(_teacher(server), ResponseCache(cache_path))
        annotator = CotAnnotator(EsnliTask(), teacher, Ledger(Budget(), count_tokens=words), 32)
        results = sorted((e.id, r.target, r.details.get("cache_hits", 0)) for e, r in
                         annotator.annotate_many(EXAMPLES[:10], concurrency=4))
        return len(server.seen) - before, results

    first_calls, first = run()
    second_calls, second = run()
    assert first_calls == 10 and second_calls == 0
    assert [r[:2] for r in first] == [r[:2] for r in second] and all(r[2] == 1 for r in second)


def test_clear_over_http_with_structured_output(server):
    import json

    def answer(messages, body):
        if "response_format" in body:
            return json.dumps({"verdicts": [{"step": 1, "correct": True, "reason": "restates the premise"},
                                            {"step": 2, "correct": False, "reason": "sleeping is resting"}],
                               "continuation": "Sleeping is a way of resting.\nSo the answer is entailment."})
        return "Sleeping is resting.\nSo the answer is entailment."

    server.answer = answer
    student = "A man sleeps.\nSleeping is not resting.\nSo the answer is contradiction."
    annotator = ClearAnnotator(EsnliTask(), _teacher(server), Ledger(Budget(), count_tokens=words), 128)
    result = annotator.annotate(EXAMPLES[0], student)
    assert result.details["outcome"] == "revised" and result.details["format"] == "json_schema"
    assert result.rationale == "A man sleeps.\nSleeping is a way of resting." and result.answer == "entailment"
    sent = server.seen[0].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "step_review"


# --- reasoning models, server options, prompt caching --------------------------------------------

def test_a_reasoning_model_gets_max_completion_tokens_and_no_temperature(server):
    server.reasoning_model = True
    teacher = _teacher(server)
    ledger = Ledger(Budget(), count_tokens=words)
    annotator = CotAnnotator(EsnliTask(), teacher, ledger, 64)
    results = [r for _, r in annotator.annotate_many(EXAMPLES[:3], concurrency=1)]
    assert all(isinstance(r, Annotation) and r.answer == "entailment" for r in results)
    # refused twice (max_tokens, then temperature 0), then the teacher sends what the model takes
    assert [s.body.get("max_tokens") for s in server.seen[:2]] == [64, None]
    assert server.seen[2].body["max_completion_tokens"] == 64 and "temperature" not in server.seen[2].body
    assert len(server.seen) == 5 and teacher.token_limit == "max_completion_tokens" and not teacher.sends_temperature
    # each refused attempt was reserved and released; the hidden reasoning is billed and charged
    assert ledger.spent.calls == server.billed.calls == 3 and ledger.reserved.calls == 0
    assert ledger.spent.tokens == server.billed.prompt_tokens + server.billed.completion_tokens


def test_the_openai_api_gets_max_completion_tokens_from_the_start():
    teacher = OpenAITeacher("o4-mini", count_tokens=words, base_url=None, api_key=SECRET)
    assert teacher._limits(REQUEST) == {"max_completion_tokens": 32, "temperature": 0.0}
    local = OpenAITeacher("m", count_tokens=words, base_url="http://127.0.0.1:9/v1", token_limit="max_completion_tokens")
    assert local._limits(REQUEST)["max_completion_tokens"] == 32


def test_reasoning_is_kept_and_can_be_the_rationale(server, tmp_path):
    server.reasoning_model = True
    plain = CachedTeacher(_teacher(server, token_limit="max_completion_tokens"), ResponseCache(tmp_path / "c.db"))
    reply = plain.complete(Request(messages=REQUEST.messages, max_tokens=64, temperature=1.0))
    assert reply.completions[0].reasoning.startswith("Hidden thoughts") and "Hidden" not in reply.completions[0].text
    # kept with the reply in the cache
    again = plain.lookup(Request(messages=REQUEST.messages, max_tokens=64, temperature=1.0))
    assert again.cache_hit and again.completions[0].reasoning == reply.completions[0].reasoning

    teacher = _teacher(server, token_limit="max_completion_tokens", reasoning_as_rationale=True)
    annotator = CotAnnotator(EsnliTask(), teacher, Ledger(Budget(), count_tokens=words), 64)
    result = annotator.annotate(EXAMPLES[0])
    assert result.rationale.startswith("Hidden thoughts: walking means moving") and result.answer == "entailment"
    assert teacher.key(REQUEST) != plain.key(REQUEST)  # another way of asking: not the same cached reply


def test_reasoning_effort_and_extra_body_are_sent_and_change_the_cache_key(server):
    teacher = _teacher(server, reasoning_effort="low", extra_body={"top_k": 20, "chat_template_kwargs": {"x": 1}})
    teacher.complete(REQUEST)
    body = server.seen[0].body
    assert body["reasoning_effort"] == "low" and body["top_k"] == 20 and body["chat_template_kwargs"] == {"x": 1}
    assert teacher.key(REQUEST) != _teacher(server).key(REQUEST)
    assert teacher.key(REQUEST) != _teacher(server, reasoning_effort="high", extra_body=teacher.extra_body).key(REQUEST)


def test_cached_prompt_tokens_are_priced_apart(server):
    from elad.teachers import Price

    server.cached_prompt_tokens = 4
    teacher = _teacher(server)
    ledger = Ledger(Budget(), price=Price(prompt=10.0, completion=20.0, cached_prompt=1.0), count_tokens=words)
    annotator = CotAnnotator(EsnliTask(), teacher, ledger, 64)
    result = annotator.annotate(EXAMPLES[0])
    assert isinstance(result, Annotation)
    billed = server.billed
    assert billed.prompt_tokens > 4
    expected = ((billed.prompt_tokens - 4) * 10.0 + 4 * 1.0 + billed.completion_tokens * 20.0) / 1e6
    assert ledger.spent.dollars == pytest.approx(expected)


SCHEMA = {"name": "review", "schema": {"type": "object", "properties": {}, "additionalProperties": False}}


def test_a_prompt_too_long_for_the_context_keeps_structured_output_for_the_next(server):
    # every form of the request is refused for its length, not its format: the server still takes schemas
    server.cue("400", "400", "400")
    teacher = _teacher(server)
    with pytest.raises(TeacherError, match="refused"):
        teacher.complete(Request(messages=REQUEST.messages, json_schema=SCHEMA))
    assert teacher.supports_json_schema is True and teacher.structured_formats[0] == "json_schema"
    teacher.complete(Request(messages=REQUEST.messages, json_schema=SCHEMA))
    assert server.seen[-1].body["response_format"]["type"] == "json_schema"


def test_a_refusal_naming_both_token_limits_switches_once_a_request():
    from types import SimpleNamespace

    teacher = OpenAITeacher("m", count_tokens=words, base_url="http://127.0.0.1:9/v1", api_key=SECRET, max_retries=2)
    error = type("BadRequest", (teacher.openai.APIStatusError,), {"__init__": lambda self: None,
                                                                    "__str__": lambda self: self.message})()
    error.status_code, error.message = 400, "Use 'max_completion_tokens' instead of 'max_tokens'."
    sent = []

    def create(**params):
        sent.append(params)
        raise error

    teacher._client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))
    with pytest.raises(TeacherError):
        teacher.complete(REQUEST)
    # switched once, then the refusal is the request's end: no endless back and forth
    assert [("max_tokens" in p, "max_completion_tokens" in p) for p in sent] == [(True, False), (False, True)]
    assert teacher.token_limit == "max_completion_tokens"


def test_the_cache_keys_a_reply_by_the_wrapped_teachers_options(server, tmp_path):
    cache = ResponseCache(tmp_path / "c.db")
    low = CachedTeacher(_teacher(server, reasoning_effort="low"), cache)
    high = CachedTeacher(_teacher(server, reasoning_effort="high"), cache)
    low.complete(REQUEST)
    assert low.key(REQUEST) != high.key(REQUEST) and high.lookup(REQUEST) is None


def test_a_reply_without_usage_is_marked_counted(server):
    server.cue("no_usage")
    counted = _teacher(server).complete(REQUEST)
    assert counted.meta["usage"] == "counted" and all(c.counted for c in counted.completions)
    assert not any(c.counted for c in _teacher(server).complete(REQUEST).completions)
