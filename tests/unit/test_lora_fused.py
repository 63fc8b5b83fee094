"""LoRA layers run in fewer passes (one accumulating product for inference, a lean forward for training)
give peft's outputs and gradients, and only where they apply."""

import pytest
import torch

peft = pytest.importorskip("peft")

from elad.students.lora_fused import cheap_dropout, fused_lora, lean_lora_training  # noqa: E402


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.Linear(12, 20)
        self.down = torch.nn.Linear(20, 12, bias=False)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


def adapted(use_dora: bool = False, alpha: int = 6, dropout: float = 0.0):
    torch.manual_seed(0)
    model = peft.get_peft_model(TwoLayers(), peft.LoraConfig(r=4, lora_alpha=alpha, target_modules=["up", "down"],
                                                             use_dora=use_dora, lora_dropout=dropout))
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


def _loss_and_adapter_grads(model, x):
    model.zero_grad()
    loss = model(x).square().mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_the_lean_training_forward_gives_pefts_loss_and_gradients():
    model = adapted().train()  # no dropout: both forwards are deterministic
    x = torch.randn(3, 5, 12)
    expected_loss, expected = _loss_and_adapter_grads(model, x)
    with lean_lora_training(model) as patched:
        loss, grads = _loss_and_adapter_grads(model, x)
    assert patched == 2 and set(grads) == set(expected) and len(grads) == 4  # A and B of both layers
    torch.testing.assert_close(loss, expected_loss)
    for name in expected:
        torch.testing.assert_close(grads[name], expected[name], rtol=1e-5, atol=1e-6)
    assert all("forward" not in vars(m) for m in model.modules())


def test_the_lean_training_forward_drops_out_while_training_only():
    model = adapted(dropout=0.5)
    x = torch.randn(64, 12)
    with lean_lora_training(model):
        model.train()
        torch.manual_seed(1)
        first = model(x)
        torch.manual_seed(1)
        again = model(x)
        other = model(x)
        model.eval()
        evaluated = model(x)
    torch.testing.assert_close(first, again, rtol=0, atol=0)  # the mask comes from torch's seeded generator
    assert (first - other).abs().max() > 1e-3
    torch.testing.assert_close(evaluated, model(x))  # eval mode: no dropout, peft's outputs


def test_the_lean_training_forward_keeps_a_bf16_input_and_trains_the_fp32_adapter_under_autocast():
    model = adapted().to(torch.bfloat16)
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            parameter.data = parameter.data.float()
    x = torch.randn(4, 12, dtype=torch.bfloat16)
    with lean_lora_training(model), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.train()(x)
        out.float().square().mean().backward()
    assert out.dtype == torch.bfloat16
    lora_grads = [p.grad for n, p in model.named_parameters() if "lora_" in n]
    assert all(g is not None and g.dtype == torch.float32 and g.abs().sum() > 0 for g in lora_grads)


def test_layers_the_lean_forward_does_not_cover_keep_pefts_forward():
    with lean_lora_training(adapted(use_dora=True)) as patched:
        assert patched == 0
    with lean_lora_training(TwoLayers()) as patched:
        assert patched == 0


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_cheap_dropout_keeps_the_expected_share_and_the_mean(p):
    torch.manual_seed(0)
    x = torch.ones(400, 1000)
    dropped = cheap_dropout(x, p)
    kept = (dropped != 0).float().mean().item()
    assert abs(kept - (1 - p)) < 0.005  # 400,000 draws: the standard error is under 0.001
    assert abs(dropped.mean().item() - 1.0) < 0.01
    values = dropped.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / (1 - p), rel=1e-4)


def test_cheap_dropout_passes_gradients_through_the_kept_values_only():
    torch.manual_seed(0)
    x = torch.randn(50, 40, requires_grad=True)
    out = cheap_dropout(x, 0.5)
    out.sum().backward()
    kept = out.detach() != 0
    torch.testing.assert_close(x.grad[kept], torch.full_like(x.grad[kept], 2.0))
    assert (x.grad[~kept] == 0).all()
    assert cheap_dropout(x, 0.0) is x
