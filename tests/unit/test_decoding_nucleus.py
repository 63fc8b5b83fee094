"""Top-p sampling from the likeliest candidates gives the distribution generate's warpers give."""

import pytest
import torch
from transformers.generation import TemperatureLogitsWarper, TopPLogitsWarper

from elad.students import decoding


def warped(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The distribution generate samples from: temperature, then top-p, then softmax."""
    scores = TemperatureLogitsWarper(temperature)(None, logits.float())
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return scores.softmax(dim=-1)


def as_full(ids: torch.Tensor, probs: torch.Tensor, vocabulary: int) -> torch.Tensor:
    full = torch.zeros(len(ids), vocabulary)
    full.scatter_(1, ids, probs)
    return full / full.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize("temperature,top_p", [(0.7, 0.95), (1.0, 0.5), (1.3, 1.0)])
def test_the_nucleus_is_generates(temperature, top_p, monkeypatch):
    monkeypatch.setattr(decoding, "NUCLEUS_CANDIDATES", 64)
    torch.manual_seed(0)
    peaked = torch.randn(3, 1000) * 6  # most mass in a few tokens: the candidates hold the nucleus
    flat = torch.randn(2, 1000) * 0.1  # mass spread: 64 candidates hold too little, the whole vocabulary
    logits = torch.cat([peaked, flat])
    ids, probs = decoding.nucleus(logits, temperature, top_p)
    torch.testing.assert_close(as_full(ids, probs, 1000), warped(logits, temperature, top_p), atol=1e-6, rtol=1e-5)


def test_drawn_tokens_follow_the_nucleus():
    torch.manual_seed(1)
    logits = torch.tensor([[4.0, 3.0, 1.0, -2.0, -9.0]]).repeat(4000, 1)
    drawn = decoding.next_tokens(logits, sample=True, temperature=1.0, top_p=0.9)
    expected = warped(logits[:1], 1.0, 0.9)[0]
    counts = torch.bincount(drawn, minlength=5).float() / len(drawn)
    assert counts[expected == 0].sum() == 0  # nothing outside the nucleus
    torch.testing.assert_close(counts, expected, atol=0.03, rtol=0)
    assert torch.equal(decoding.next_tokens(logits[:2], False, 1.0, 1.0), torch.tensor([0, 0]))


def test_greedy_tokens_are_argmaxs_ties_included():
    torch.manual_seed(2)
    logits = torch.randn(64, 151936).round().to(torch.bfloat16)  # whole numbers: many rows tie at their top
    logits[:8, 100] = logits[:8, 7] = 50.0  # and these tie on purpose: the first of the two wins
    chosen = decoding.next_tokens(logits, False, 1.0, 1.0)
    assert torch.equal(chosen, logits.float().argmax(dim=-1))
    assert chosen[:8].tolist() == [7] * 8
