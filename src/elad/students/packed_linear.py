"""Linear layers with their weights laid out once for the CPU's matrix units while the student generates
or scores.

A bf16 matrix product on a CPU goes through oneDNN, which rearranges the weight into the layout its
kernels read (AMX tiles, AVX512-BF16 blocks) on every call. With the few rows of a decode step that
rearranging costs as much as the product: decoding 48 rows of Qwen2.5-0.5B, a weight laid out in
advance makes the MLP's products 1.5-2x faster and the vocabulary projection 1.7x, with bit-identical
results. With a few hundred rows or more (a prompt pass) oneDNN's own choice is as fast or faster, so
those products keep the plain path. `PackedLinears` lays out every bf16 linear layer's weight once per set
of weights (the copies are dropped before training, when the weights change) and runs the layers on them
inside its block. fp32 weights keep the plain product: there the laid-out path rounds differently and
gains little.
"""

from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F

from elad.students.common import forwards_replaced


def packing_available() -> bool:
    """Whether this torch has oneDNN's weight layout and product for linear layers (private operators:
    checked, not assumed)."""
    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and hasattr(ops, "_reorder_linear_weight") and hasattr(
        ops, "_linear_pointwise")


PACKED_ROWS_MAX = 256  # rows of input up to which the laid-out weight is the faster one


def _packed_forward(module: torch.nn.Linear, packed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    plain = x.dtype != packed.dtype or (torch.is_grad_enabled() and x.requires_grad)  # it cannot stand in
    if plain or x.numel() > PACKED_ROWS_MAX * x.shape[-1]:
        return F.linear(x, module.weight, module.bias)
    return torch.ops.mkldnn._linear_pointwise(x, packed, module.bias, "none", [], "")


def _packable(name: str, module) -> bool:
    """A plain bf16 linear layer on the CPU, not a LoRA adapter's own (those are folded elsewhere)."""
    if type(module) is not torch.nn.Linear or ".lora_" in f".{name}":
        return False
    return module.weight.device.type == "cpu" and module.weight.dtype == torch.bfloat16


class PackedLinears:
    """The laid-out weights of one model's linear layers, made when first asked for and kept while the
    weights stay the same (`key`)."""

    def __init__(self):
        self.key, self.packed = None, {}

    def drop(self) -> None:
        self.key, self.packed = None, {}

    def _for(self, model, key) -> dict:
        if key != self.key:
            self.drop()
            with torch.inference_mode(False), torch.no_grad():  # plain tensors, usable in any later block
                self.packed = {module: torch.ops.mkldnn._reorder_linear_weight(module.weight.detach(), 48)
                               for name, module in model.named_modules() if _packable(name, module)}
            self.key = key
        return self.packed

    @contextmanager
    def applied(self, model, key):
        """Within the block, the model's bf16 linear layers multiply by their laid-out weights; `key` names
        the weights (a change of it lays them out again)."""
        if not packing_available():
            yield 0
            return
        forwards = {module: partial(_packed_forward, module, weight)
                    for module, weight in self._for(model, key).items() if "forward" not in vars(module)}
        with forwards_replaced(forwards) as count:
            yield count
