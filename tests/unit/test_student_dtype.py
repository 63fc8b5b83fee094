"""The student's default dtype: bf16 only where the hardware computes it; emulated bf16 on an AVX2 CPU made
a LoRA training step 50x slower than fp32."""

import pytest
import torch

from elad.students import weights as student_module
from elad.students.weights import pick_device_and_dtype


@pytest.fixture
def on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def with_native_bf16(native: bool):
        monkeypatch.setattr(student_module, "cpu_computes_bf16", lambda: native)

    return with_native_bf16


@pytest.mark.parametrize("native, lora_dtype", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_picks_bf16_for_lora_only_on_a_cpu_that_computes_it(on_cpu, native, lora_dtype):
    on_cpu(native)
    assert pick_device_and_dtype("auto", full_finetune=False) == ("cpu", lora_dtype)
    assert pick_device_and_dtype("auto", full_finetune=True) == ("cpu", torch.float32)


@pytest.mark.parametrize("native", [True, False])
def test_an_explicit_dtype_is_kept_whatever_the_cpu(on_cpu, native):
    on_cpu(native)
    assert pick_device_and_dtype("bfloat16", full_finetune=True)[1] == torch.bfloat16
    assert pick_device_and_dtype("float32", full_finetune=False)[1] == torch.float32


def test_auto_picks_bf16_on_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device_and_dtype("auto", full_finetune=False) == ("cuda", torch.bfloat16)
