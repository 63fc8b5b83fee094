"""LoRA layers computed with fewer passes over their outputs: one accumulating product while the student
generates or scores (`fused_lora`), and a lean forward while it trains (`lean_lora_training`).

peft computes an adapted linear layer as `base(x) + lora_B(lora_A(x)) * scaling`: besides the base
product and the two small ones, a pass over the whole output to scale the adapter's part and another to
add it, each writing a new tensor as wide as the layer's output (for the MLP, 4,864 values a token in
Qwen2.5-0.5B). In a prompt pass on a CPU those passes cost more than the adapter's products.
`fused_lora` folds the scaling into a copy of B made once per call and adds the adapter's part into the
base output inside the matrix product (`addmm_`): the same sum, rounded once less. Layers it does not
cover (adapter variants such as DoRA, several active adapters, a bias on B, merged or disabled
adapters, training mode) keep peft's forward.

In training, peft casts each layer's input to the adapter's fp32, draws its dropout mask in fp32 and
scales the adapter's output in a separate pass; under bf16 autocast the products then run in bf16 anyway.
`lean_lora_training` keeps the input in its own dtype, scales B instead of the output, and draws the
dropout mask from 16-bit slices of 64-bit random integers (`cheap_dropout`): on a CPU the random draws,
one per element, cost more than the layer's products. The mask keeps each value with probability
1 - p to within 1/65536, scaled so that the expectation is exact.
"""

import math
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F

from elad.students.common import forwards_replaced


def _plain_lora_linear(module, linear_type) -> bool:
    """A vanilla peft LoRA Linear (`_vanilla_lora_linear`) in eval mode."""
    return not getattr(module, "training", True) and _vanilla_lora_linear(module, linear_type)


def _forward(base_layer, a_t: torch.Tensor, scaled_b_t: torch.Tensor, x: torch.Tensor, *args, **kwargs):
    result = base_layer(x, *args, **kwargs)
    low_rank = x.reshape(-1, x.shape[-1]) @ a_t
    result.view(-1, result.shape[-1]).addmm_(low_rank, scaled_b_t)
    return result


@contextmanager
def fused_lora(model):
    """Within the block, every plain LoRA linear layer of `model` runs as base product + one accumulating
    low-rank product, with its adapter in the base weights' dtype; peft's forward is back afterwards."""
    if not hasattr(model, "peft_config"):
        yield 0
        return
    from peft.tuners.lora.layer import Linear

    forwards = {}
    with torch.inference_mode(False):  # plain tensors: the copies are made once, outside any inference
        for module in model.modules():
            if not _plain_lora_linear(module, Linear) or "forward" in vars(module):  # already fused: nested
                continue
            adapter = module.active_adapters[0]
            dtype = module.base_layer.weight.dtype
            a_t = module.lora_A[adapter].weight.detach().to(dtype).t()
            scaled = module.lora_B[adapter].weight.detach().float() * module.scaling[adapter]
            forwards[module] = partial(_forward, module.base_layer, a_t, scaled.to(dtype).t().contiguous())
    with forwards_replaced(forwards) as count:
        yield count


def cheap_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout with probability p (rounded to a multiple of 1/65536), its mask drawn four values to a
    64-bit random integer: on a CPU, a quarter of the draws of `F.dropout`."""
    if p <= 0:
        return x
    if x.device.type != "cpu":  # the device's own dropout is fast there
        return F.dropout(x, p, training=True)
    dropped = round(p * 65536)
    count = x.numel()
    bits = torch.randint(-2**63, 2**63 - 1, (math.ceil(count / 4),), dtype=torch.int64)
    keep = bits.view(torch.int16)[:count].view(x.shape) >= dropped - 32768
    return x * (keep.to(x.dtype) * (65536 / (65536 - dropped)))


def _vanilla_lora_linear(module, linear_type) -> bool:
    """A peft LoRA Linear with one active adapter of the vanilla kind over a plain Linear, unmerged."""
    if not isinstance(module, linear_type) or module.merged or module.disable_adapters:
        return False
    active = module.active_adapters
    if len(active) != 1 or active[0] not in module.lora_A or active[0] in module.lora_variant:
        return False
    return isinstance(module.base_layer, torch.nn.Linear) and module.lora_B[active[0]].bias is None


def _training_forward(module, adapter: str, dropout_p: float, x: torch.Tensor, *args, **kwargs):
    result = module.base_layer(x, *args, **kwargs)
    a, b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
    if module.training:
        x = cheap_dropout(x, dropout_p)
    if x.dtype != a.dtype and not torch.is_autocast_enabled(x.device.type):
        x = x.to(a.dtype)  # as peft does: the adapter's products in its own dtype
    low_rank = F.linear(F.linear(x, a), b * module.scaling[adapter])
    return result + low_rank.to(result.dtype)


@contextmanager
def lean_lora_training(model):
    """Within the block, every vanilla LoRA linear layer of `model` trains by `_training_forward`: the
    same function as peft's, in fewer passes (see the module's docstring); peft's forward is back
    afterwards."""
    if not hasattr(model, "peft_config"):
        yield 0
        return
    from peft.tuners.lora.layer import Linear

    forwards = {}
    for module in model.modules():
        if not _vanilla_lora_linear(module, Linear) or "forward" in vars(module):
            continue
        adapter = module.active_adapters[0]
        dropout = module.lora_dropout[adapter]
        dropout_p = dropout.p if isinstance(dropout, torch.nn.Dropout) else 0.0
        forwards[module] = partial(_training_forward, module, adapter, dropout_p)
    with forwards_replaced(forwards) as count:
        yield count
