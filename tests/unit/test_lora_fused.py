"""A LoRA layer run as one accumulating product gives peft's outputs, and only where it applies."""

import pytest
import torch

peft = pytest.importorskip("peft")

from elad.students.lora_fused import fused_lora  # noqa: E402


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.Linear(12, 20)
        self.down = torch.nn.Linear(20, 12, bias=False)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


def adapted(use_dora: bool = False, alpha: int = 6):
    torch.manual_seed(0)
    model = peft.get_peft_model(TwoLayers(), peft.LoraConfig(r=4, lora_alpha=alpha, target_modules=["up", "down"],
                                                             use_dora=use_dora))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: give the adapter something to add
            torch.nn.init.normal_(parameter, std=0.5)
    return model.eval()


def test_the_fused_layers_give_pefts_outputs_and_peft_comes_back():
    model = adapted()
    x = torch.randn(3, 5, 12)
    with torch.inference_mode():
        expected = model(x)
        with fused_lora(model) as patched:
            fused = model(x)
        again = model(x)
    assert patched == 2
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
    assert all("forward" not in vars(m) for m in model.modules())  # the class's forward again
    torch.testing.assert_close(again, expected, rtol=0, atol=0)


def test_the_adapter_changes_what_the_fused_layers_give():
    model = adapted()
    x = torch.randn(2, 12)
    with torch.inference_mode(), fused_lora(model):
        with_adapter = model(x)
    with torch.inference_mode(), model.disable_adapter():
        base = model(x)
    assert (with_adapter - base).abs().max() > 1e-2


def test_layers_it_does_not_cover_keep_pefts_forward():
    dora = adapted(use_dora=True)
    with fused_lora(dora) as patched:
        assert patched == 0
    training = adapted().train()
    with fused_lora(training) as patched:
        assert patched == 0
    with fused_lora(TwoLayers()) as patched:  # no adapter at all
        assert patched == 0


def test_a_bf16_base_gets_the_adapter_in_bf16_with_its_scaling_folded_in():
    model = adapted(alpha=3).to(torch.bfloat16)
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            parameter.data = parameter.data.float()  # as peft trains it: fp32 over a bf16 base
    x = torch.randn(4, 12, dtype=torch.bfloat16)
    with torch.inference_mode():
        with fused_lora(model):
            fused = model(x)
        reference = model.float()(x.float())
    assert fused.dtype == torch.bfloat16
    torch.testing.assert_close(fused.float(), reference, rtol=3e-2, atol=3e-2)


def test_a_nested_block_leaves_the_outer_ones_layers_fused():
    model = adapted()
    x = torch.randn(2, 12)
    with torch.inference_mode(), fused_lora(model) as outer:
        with fused_lora(model) as inner:
            pass
        assert (outer, inner) == (2, 0)
        assert all("forward" in vars(m) for m in (model.base_model.model.up, model.base_model.model.down))
        model(x)
    assert all("forward" not in vars(m) for m in model.modules())
