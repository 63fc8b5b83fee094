"""What a student process does to hand memory back: large blocks mapped apart while training, one model
held at a time."""

import weakref

import pytest
import torch

from elad.config import StudentConfig
from elad.students import memory
from elad.students.weights import StudentWeights


class FakeGlibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, parameter, value):
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def glibc(monkeypatch):
    fake = FakeGlibc()
    monkeypatch.setattr(memory, "_glibc", lambda: fake)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    return fake


def test_training_maps_large_blocks_apart_and_generation_gets_the_heap_back(glibc):
    with memory.training_memory():
        assert glibc.calls == [("malloc_trim", 0), ("mallopt", -3, 128 * 1024)]
    assert glibc.calls[2:] == [("mallopt", -3, 32 * 1024 * 1024), ("malloc_trim", 0)]


def test_a_training_not_lean_keeps_the_heap_whole_and_trims_it_after(glibc, monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with memory.training_memory(lean=False):
        assert glibc.calls == [("malloc_trim", 0), ("mallopt", -4, 0), ("mallopt", -1, 2**31 - 1)]
    assert glibc.calls[3:] == [("malloc_trim", 0), ("mallopt", -4, 65536), ("mallopt", -1, 128 * 1024)]


def test_inference_keeps_the_heap_whole_once_for_nested_blocks(glibc, monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with memory.inference_memory():
        with memory.inference_memory():
            assert glibc.calls == [("mallopt", -4, 0), ("mallopt", -1, 2**31 - 1)]
        assert len(glibc.calls) == 2  # the inner block restores nothing
    assert glibc.calls[2:] == [("mallopt", -4, 65536), ("mallopt", -1, 128 * 1024)]
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "4096")  # a user's own setting is left alone
    with memory.inference_memory():
        pass
    assert len(glibc.calls) == 4


def test_a_failed_training_still_gives_the_heap_back(glibc):
    with pytest.raises(RuntimeError), memory.training_memory():
        raise RuntimeError("out of memory")
    assert glibc.calls[-2:] == [("mallopt", -3, 32 * 1024 * 1024), ("malloc_trim", 0)]


def test_a_threshold_set_in_the_environment_is_left_alone(glibc, monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    with memory.training_memory():
        pass
    assert [call[0] for call in glibc.calls] == ["malloc_trim"]  # only the trim after training


def test_without_glibc_nothing_is_called(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    with memory.training_memory():
        pass
    memory.give_back_memory()  # no error: nothing to call


class CountingPretrained:
    """Loads small modules and notes, at each load, whether the previous one was still alive."""

    def __init__(self):
        self.previous = None
        self.alive_at_load = []

    def load_base(self):
        self.alive_at_load.append(self.previous is not None and self.previous() is not None)
        model = torch.nn.Linear(4, 4)
        model.self_reference = [model]  # a cycle, as wrappers and hooks make: only the collector frees it
        self.previous = weakref.ref(model)
        return model


def test_the_weights_held_go_before_the_base_ones_load(glibc):
    pretrained = CountingPretrained()
    weights = StudentWeights(StudentConfig(model="unused", lora=None), pretrained)
    weights.reset()  # still as loaded: kept, not read again
    assert pretrained.alive_at_load == [False]
    for _ in range(2):  # trained, then back to the base: the trained weights go before the base loads
        weights.start_training(warm_start=False)
        weights.reset()
    assert pretrained.alive_at_load == [False, False, False]
    assert glibc.calls == []  # loading leaves glibc's threshold alone: only training sets it
