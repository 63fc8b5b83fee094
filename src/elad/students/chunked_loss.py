"""The target tokens' cross-entropy, computed a chunk of positions at a time, without a batch's logits.

A student's vocabulary is wide (151,936 tokens for Qwen2.5), so a training step's logits over its target
tokens, their fp32 copy, the log-softmax and its gradient are each targets x vocabulary: hundreds of MB
apiece, and of another size every step (batches hold different numbers of target tokens), which
fragments a heap that a training keeps whole for speed (memory.py). How much that saves depends on how
large a share of the model the vocabulary projection is (BENCHMARKS.md, "The target loss in chunks").

Here the output layer is applied to CHUNK positions at a time, and each chunk's gradient with respect to
the hidden states is worked out in the forward pass (softmax minus the one-hot target, times the output
weight), so only one chunk's logits ever exist and every chunk's blocks have the same size. The backward
pass only scales the stored gradient. This needs the output weight frozen (LoRA leaves it so) and logits
that are exactly that layer's product: PLAIN_HEAD_TYPES, whose forward adds nothing after it (no
soft-capping, no scale). Other models, and full fine-tuning, keep the whole logits.
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from elad.students.common import forwards_replaced

CHUNK = 256  # positions whose logits exist at once
PLAIN_HEAD_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})  # logits = lm_head(hidden states)


def plain_head(model) -> torch.nn.Linear | None:
    """The model's output layer when its logits are only that layer's product, its weight frozen and
    without a bias; else None."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    base = inner.get_base_model() if hasattr(inner, "get_base_model") else inner
    if getattr(getattr(base, "config", None), "model_type", None) not in PLAIN_HEAD_TYPES:
        return None
    head = base.get_output_embeddings()
    if type(head) is not torch.nn.Linear or head.bias is not None or head.weight.requires_grad:
        return None
    return head


@contextmanager
def hidden_states_out(head: torch.nn.Linear):
    """Within the block the model's "logits" are its final hidden states (the output layer passes them on)."""
    with forwards_replaced({head: lambda hidden: hidden}):
        yield


class _ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        count = targets.numel()
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad = torch.empty_like(hidden)
        for start in range(0, count, CHUNK):
            chunk, wanted = hidden[start:start + CHUNK], targets[start:start + CHUNK]
            # as the whole-logits path computes: the product in the weight's dtype (what autocast, which
            # covers the model's forward and not this, casts the hidden states to), the softmax in fp32
            logits = F.linear(chunk.to(weight.dtype), weight).float()
            normaliser = torch.logsumexp(logits, dim=-1)
            total += (normaliser - logits.gather(1, wanted[:, None]).squeeze(1)).sum()
            probabilities = logits.sub_(normaliser[:, None]).exp_()  # in place: one block per chunk
            probabilities[torch.arange(len(wanted), device=wanted.device), wanted] -= 1.0
            probabilities.div_(count)
            grad[start:start + CHUNK] = probabilities.to(weight.dtype) @ weight
        ctx.save_for_backward(grad)
        return total / count

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad * grad_output.to(grad.dtype), None, None


def chunked_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `hidden @ weight.T` (N x vocabulary) against `targets` (N), CHUNK rows at a time;
    gradients flow to `hidden` only (the weight is frozen)."""
    return _ChunkedCrossEntropy.apply(hidden, weight, targets)
