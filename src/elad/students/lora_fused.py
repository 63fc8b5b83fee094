"""A LoRA layer computed as one accumulating product while the student generates or scores.

peft computes an adapted linear layer as `base(x) + lora_B(lora_A(x)) * scaling`: besides the base
product and the two small ones, a pass over the whole output to scale the adapter's part and another to
add it, each writing a new tensor as wide as the layer's output (for the MLP, 4,864 values a token in
Qwen2.5-0.5B). In a prompt pass on a CPU those passes cost more than the adapter's products.
`fused_lora` folds the scaling into a copy of B made once per call and adds the adapter's part into the
base output inside the matrix product (`addmm_`): the same sum, rounded once less. Layers it does not
cover (adapter variants such as DoRA, several active adapters, a bias on B, merged or disabled
adapters, training mode) keep peft's forward.
"""

from contextlib import contextmanager
from functools import partial

import torch


def _plain_lora_linear(module, linear_type) -> bool:
    """A peft LoRA Linear with one active adapter of the vanilla kind, unmerged, in eval mode."""
    if not isinstance(module, linear_type) or module.training or module.merged or module.disable_adapters:
        return False
    active = module.active_adapters
    if len(active) != 1 or active[0] not in module.lora_A or active[0] in module.lora_variant:
        return False
    return isinstance(module.base_layer, torch.nn.Linear) and module.lora_B[active[0]].bias is None


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

    patched = []
    with torch.inference_mode(False):  # plain tensors: the copies are made once, outside any inference
        for module in model.modules():
            if not _plain_lora_linear(module, Linear) or "forward" in vars(module):  # already fused: nested
                continue
            adapter = module.active_adapters[0]
            dtype = module.base_layer.weight.dtype
            a_t = module.lora_A[adapter].weight.detach().to(dtype).t()
            scaled = module.lora_B[adapter].weight.detach().float() * module.scaling[adapter]
            module.forward = partial(_forward, module.base_layer, a_t, scaled.to(dtype).t().contiguous())
            patched.append(module)
    try:
        yield len(patched)
    finally:
        for module in patched:
            del module.forward  # the instance attribute goes; the class's forward shows again
