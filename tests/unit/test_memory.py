"""What a student process does to hand memory back: large blocks mapped apart, one model held at a time."""

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


def test_large_blocks_get_a_fixed_mmap_threshold(glibc):
    memory.map_large_blocks_apart()
    memory.give_back_memory()
    assert glibc.calls == [("mallopt", -3, 128 * 1024), ("malloc_trim", 0)]


def test_a_threshold_set_in_the_environment_is_left_alone(glibc, monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    memory.map_large_blocks_apart()
    assert glibc.calls == []


def test_without_glibc_nothing_is_called(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    memory.map_large_blocks_apart()
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
    weights.reset()
    weights.reset()
    assert pretrained.alive_at_load == [False, False, False]
    assert glibc.calls[0] == ("mallopt", -3, 128 * 1024)
