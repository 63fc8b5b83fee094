"""bf16 linear layers run on weights laid out in advance give the plain products, bit for bit, and the
laid-out copies follow the weights they stand for."""

import pytest
import torch

from elad.students.packed_linear import PackedLinears, packing_available

pytestmark = pytest.mark.skipif(not packing_available(), reason="this torch has no oneDNN linear operators")


def mlp(dtype=torch.bfloat16):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.SiLU(), torch.nn.Linear(256, 64, bias=False)).to(dtype)


@pytest.mark.parametrize("rows", [1, 48, 600])  # decode-sized, and a prompt pass over the row limit
def test_the_laid_out_layers_give_the_plain_products_exactly(rows):
    model = mlp()
    x = torch.randn(rows, 64, dtype=torch.bfloat16)
    packs = PackedLinears()
    with torch.inference_mode():
        expected = model(x)
        with packs.applied(model, key=1) as patched:
            got = model(x)
        after = model(x)
    assert patched == 2
    assert torch.equal(got, expected)
    assert all("forward" not in vars(m) for m in model.modules()) and torch.equal(after, expected)


def test_a_3d_input_sliced_from_a_longer_one_is_multiplied_as_rows():
    model = mlp()
    hidden = torch.randn(4, 9, 64, dtype=torch.bfloat16)[:, -1:, :]  # each sequence's last position
    with torch.inference_mode(), PackedLinears().applied(model, key=1):
        got = model(hidden)
    assert got.shape == (4, 1, 64)
    with torch.inference_mode():
        assert torch.equal(got, model(hidden.contiguous()))


def test_weights_are_laid_out_once_per_key_and_again_when_it_changes():
    model = mlp()
    x = torch.randn(2, 64, dtype=torch.bfloat16)
    packs = PackedLinears()
    with torch.inference_mode():
        with packs.applied(model, key=("model", 1)):
            before = model(x)
        laid_out = dict(packs.packed)
        for _ in range(2):
            with packs.applied(model, key=("model", 1)):
                model(x)
        assert all(packs.packed[m] is laid_out[m] for m in laid_out)  # the same copies, not new ones
        with torch.no_grad():
            model[0].weight.mul_(2)  # the weights change (as training changes them), and so does the key
        with packs.applied(model, key=("model", 2)):
            changed = model(x)
        assert all(packs.packed[m] is not laid_out[m] for m in laid_out)
        assert torch.equal(changed, model(x)) and not torch.equal(changed, before)
    packs.drop()
    assert packs.packed == {} and packs.key is None


def test_fp32_layers_and_lora_adapters_keep_the_plain_product():
    peft = pytest.importorskip("peft")
    with PackedLinears().applied(mlp(torch.float32), key=1) as patched:
        assert patched == 0
    adapted = peft.get_peft_model(mlp(), peft.LoraConfig(r=4, target_modules=["0", "2"]))
    packs = PackedLinears()
    with packs.applied(adapted, key=1) as patched:
        assert patched == 2  # the two base layers; lora_A and lora_B are not laid out
    assert all(".lora_" not in f".{name}" for name, m in adapted.named_modules() if m in packs.packed)


def test_a_product_that_needs_gradients_takes_the_plain_path():
    model = mlp()
    x = torch.randn(3, 64, dtype=torch.bfloat16, requires_grad=True)
    with PackedLinears().applied(model, key=1):
        model(x).float().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
