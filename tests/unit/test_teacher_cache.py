"""The response cache: what is asked again is answered from disk, marked as a hit, and not charged."""

from dataclasses import replace
from types import SimpleNamespace

import pytest

from elad.store import ResponseCache
from elad.teachers import (
    Budget, CachedTeacher, Ledger, ReplayTeacher, Request, TeacherContext, build_teacher,
)
from elad.teachers.base import request_key
from tests.fakes.teachers import ScriptedTeacher, words


def _request(**changes):
    base = Request(messages=({"role": "user", "content": "why is the sky blue"},), max_tokens=20, example_id="a")
    return replace(base, **changes)


def test_a_repeated_request_is_a_hit_and_costs_nothing(tmp_path):
    inner = ScriptedTeacher(lambda r: "Because of Rayleigh scattering.")
    teacher = CachedTeacher(inner, ResponseCache(tmp_path / "cache.db"))
    recorded = []
    ledger = Ledger(Budget(calls=1), count_tokens=words, on_call=lambda req, resp, d: recorded.append((resp.cache_hit, d)))
    first = ledger.call(teacher, _request())
    second = ledger.call(teacher, _request())  # the call budget is spent, but a hit needs none
    assert not first.cache_hit and second.cache_hit
    assert second.completions == first.completions
    assert len(inner.requests) == 1 and ledger.spent.calls == 1
    assert recorded == [(False, 0.0), (True, 0.0)]


def test_the_cache_survives_a_restart(tmp_path):
    CachedTeacher(ScriptedTeacher(lambda r: "kept"), ResponseCache(tmp_path / "c.db")).complete(_request())
    again = CachedTeacher(ScriptedTeacher([]), ResponseCache(tmp_path / "c.db"))
    response = again.complete(_request())
    assert response.cache_hit and response.completions[0].text == "kept"


@pytest.mark.parametrize(
    "change",
    [
        {"messages": ({"role": "user", "content": "why is the sea blue"},)},
        {"max_tokens": 21},
        {"temperature": 0.7},
        {"n": 2},
        {"sample": 1},
        {"json_schema": {"name": "x", "schema": {"type": "object"}}},
    ],
)
def test_each_part_of_the_key_matters(change):
    assert request_key("openai", "m", _request()) != request_key("openai", "m", _request(**change))


def test_backend_and_model_are_in_the_key_and_the_example_only_when_it_matters():
    assert request_key("openai", "m", _request()) != request_key("local", "m", _request())
    assert request_key("openai", "m", _request()) != request_key("openai", "m2", _request())
    assert request_key("openai", "m", _request()) == request_key("openai", "m", _request(example_id="b"))
    assert request_key("replay", "m", _request(), True) != request_key("replay", "m", _request(example_id="b"), True)


def test_replayed_answers_are_cached_per_example(tmp_path):
    replay = ReplayTeacher({"a": "ra", "b": "rb"}, "palm", count_tokens=words)
    teacher = CachedTeacher(replay, ResponseCache(tmp_path / "c.db"))
    assert teacher.complete(_request(example_id="a")).completions[0].text == "ra"
    assert teacher.complete(_request(example_id="b")).completions[0].text == "rb"
    assert teacher.replays and not teacher.supports_json_schema  # the wrapped teacher's flags show through


def test_build_teacher_wraps_in_the_cache_only_when_asked(tmp_path):
    context = TeacherContext(count_tokens=words, dataset="esnli", split="valid", data_root=None, gold={"a": "g"})
    config = SimpleNamespace(backend="replay", source="gold", model="gold", path=None, cache=True)
    assert isinstance(build_teacher(config, context, ResponseCache(tmp_path / "c.db")), CachedTeacher)
    assert isinstance(build_teacher(config, context, None), ReplayTeacher)
    assert isinstance(build_teacher(SimpleNamespace(**{**vars(config), "cache": False}), context, ResponseCache(tmp_path / "c.db")),
                      ReplayTeacher)


def test_build_teacher_from_a_real_config(tmp_path):
    from elad.config import parse_config

    config = parse_config("teacher: {backend: replay, source: gold}").teacher
    context = TeacherContext(count_tokens=words, dataset="esnli", split="valid", data_root=None, gold={"a": "g"})
    teacher = build_teacher(config, context, ResponseCache(tmp_path / "cache.db"))
    assert teacher.complete(_request()).completions[0].text == "g"
    assert (tmp_path / "cache.db").exists()
