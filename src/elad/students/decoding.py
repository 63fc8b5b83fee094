"""A decode loop that drops each sequence from the batch once it has ended.

`model.generate` keeps every row of a batch until the longest one ends, so a batch of 48 explanations
that average 18 tokens but of which one runs to 62 computes 62 steps for all 48 rows: on a CPU, where a
decode step costs in proportion to its rows, more than half of decoding is spent on finished rows.
Here finished rows leave the batch (their keys and values too), and the rest go on. The loop does
what generate does for greedy and temperature/top-p sampling (the same distributions, drawn
from the likeliest tokens first: `nucleus`) and nothing else, so `plain_decoding`
tells whether a model's generation settings ask for more (a repetition penalty, banned n-grams, ...),
and `rows_can_leave` whether its cache can drop rows (plain keys and values can; the recurrent state of
linear-attention layers cannot): where not, the caller uses generate.

Plain cache layers grow by concatenation, which copies every layer's keys and values at every step; the
loop gives them room for the tokens still to come (`GrowingLayer`), so that a step writes its own
position only.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

# generation_config fields that add a logits processor or stopping rule this loop does not apply,
# with the value that means "off".
_UNSUPPORTED_OFF = {
    "repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None, "min_length": 0, "min_new_tokens": None, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "suppress_tokens": None, "begin_suppress_tokens": None,
    "sequence_bias": None, "exponential_decay_length_penalty": None, "stop_strings": None,
    "num_beams": 1, "penalty_alpha": None, "guidance_scale": None, "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0, "typical_p": 1.0, "min_p": None, "renormalize_logits": False,
    "encoder_repetition_penalty": 1.0, "top_h": None, "watermarking_config": None, "max_time": None,
    "remove_invalid_values": False,
}


def plain_decoding(model) -> bool:
    """Whether the model's generation settings add nothing beyond greedy / temperature / top-p."""
    config = getattr(model, "generation_config", None)
    if config is None or getattr(model.config, "is_encoder_decoder", False):
        return False
    return all(getattr(config, name, off) in (off, None) for name, off in _UNSUPPORTED_OFF.items())


def rows_can_leave(cache) -> bool:
    """Whether every layer of the cache holds plain keys and values, whose rows can be dropped."""
    return isinstance(cache, DynamicCache) and all(
        type(layer) in (DynamicLayer, DynamicSlidingWindowLayer) for layer in cache.layers)


class GrowingLayer(DynamicLayer):
    """A plain cache layer whose keys and values are the filled part of buffers with room to grow: a step
    writes its positions in place instead of concatenating the whole cache anew."""

    @classmethod
    def take_over(cls, layer: DynamicLayer, room: int) -> None:
        """Turn a filled plain layer into a growing one with `room` free positions."""
        layer.__class__ = cls
        layer.key_buffer, layer.value_buffer = (cls._widened(t, t.shape[-2] + room) for t in (layer.keys, layer.values))

    @staticmethod
    def _widened(filled: torch.Tensor, capacity: int) -> torch.Tensor:
        buffer = filled.new_empty((*filled.shape[:-2], capacity, filled.shape[-1]))
        buffer[..., : filled.shape[-2], :] = filled
        return buffer

    def update(self, key_states, value_states, *args, **kwargs):
        start, end = self.keys.shape[-2], self.keys.shape[-2] + key_states.shape[-2]
        if end > self.key_buffer.shape[-2]:
            self.key_buffer, self.value_buffer = (self._widened(t, 2 * end) for t in (self.keys, self.values))
        self.key_buffer[..., start:end, :] = key_states
        self.value_buffer[..., start:end, :] = value_states
        self.keys, self.values = self.key_buffer[..., :end, :], self.value_buffer[..., :end, :]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        length = self.keys.shape[-2]
        self.key_buffer, self.value_buffer = self.key_buffer[indices], self.value_buffer[indices]
        self.keys, self.values = self.key_buffer[..., :length, :], self.value_buffer[..., :length, :]


def room_to_grow(cache, room: int) -> None:
    """Give the cache's filled plain layers `room` more positions each (see GrowingLayer)."""
    for layer in cache.layers:
        if type(layer) is DynamicLayer and layer.is_initialized and layer.keys.numel():
            GrowingLayer.take_over(layer, room)


def end_token_ids(model) -> torch.Tensor:
    """The tokens that end a sequence: the generation config's end-of-sequence token(s), none if it has
    none (generate then writes max_new_tokens; it never stops at the pad token)."""
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    return torch.tensor(eos, dtype=torch.long)


NUCLEUS_CANDIDATES = 256  # tokens looked at first when sampling with top-p; the whole vocabulary if too few


def nucleus(logits: torch.Tensor, temperature: float, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the tokens top-p sampling may draw and their probabilities, as generate's temperature and
    top-p warpers give them (a token stays while the mass of those more likely is under top_p): `ids` and
    `probs` of one shape, probs 0 beyond each row's nucleus.

    Sorting a vocabulary of 150k per row and drawing a random number for each entry cost far more than the
    decode step's matrix products, so the nucleus is sought among the NUCLEUS_CANDIDATES likeliest tokens
    (true probabilities, from the whole vocabulary's normaliser); rows whose candidates hold less than
    top_p of the mass are done over the whole vocabulary, sorted. top_p 1 keeps every token, unsorted."""
    scores = logits.float() / temperature
    vocabulary = scores.shape[-1]
    if top_p >= 1.0:
        return torch.arange(vocabulary, device=scores.device).expand_as(scores), scores.softmax(dim=-1)
    ids, probs, covered = _likeliest(scores, min(NUCLEUS_CANDIDATES, vocabulary), top_p)
    if covered.all():
        return ids, probs
    whole_ids, whole_probs, _ = _likeliest(scores[~covered], vocabulary, top_p)
    widen = (0, vocabulary - ids.shape[-1])  # the covered rows' extra columns: token 0, probability 0
    ids, probs = torch.nn.functional.pad(ids, widen), torch.nn.functional.pad(probs, widen)
    ids[~covered], probs[~covered] = whole_ids, whole_probs
    return ids, probs


def _likeliest(scores: torch.Tensor, take: int, top_p: float):
    """The `take` likeliest tokens of each row, their probabilities cut at the nucleus, and whether the
    row's nucleus lies within them."""
    top_scores, ids = scores.topk(take, dim=-1)
    probs = (top_scores - torch.logsumexp(scores, dim=-1, keepdim=True)).exp()
    covered = probs.sum(dim=-1) >= top_p
    return ids, probs * ((probs.cumsum(dim=-1) - probs) < top_p), covered


def next_tokens(logits: torch.Tensor, sample: bool, temperature: float, top_p: float) -> torch.Tensor:
    """The next token of each row: the most likely one, or one drawn from its top-p nucleus."""
    if not sample:  # max's indices: argmax's (the first of equal maxima), five times faster on bf16 rows
        return logits.max(dim=-1).indices
    ids, probs = nucleus(logits, temperature, top_p)
    drawn = torch.multinomial(probs, num_samples=1)  # multinomial normalises each row itself
    return ids.gather(1, drawn).squeeze(1)


def decode_dropping_finished(model, inputs: dict, max_new_tokens: int, sample: bool, temperature: float,
                             top_p: float) -> list[list[int]]:
    """The new tokens of every row of `inputs` (as `prefilled` builds them: the keys and values of all but
    each prompt's last token in `past_key_values`), each list ending with its end token if it had one."""
    mask, past = inputs["attention_mask"], inputs["past_key_values"]
    token = inputs["input_ids"][:, -1:]
    positions = mask.sum(dim=-1, keepdim=True) - 1  # generate numbers positions by real tokens only
    ends = end_token_ids(model).to(token.device)
    alive = torch.arange(token.shape[0])
    generated: list[list[int]] = [[] for _ in range(token.shape[0])]
    room_to_grow(past, max_new_tokens)
    for step in range(max_new_tokens):
        logits = model(input_ids=token, attention_mask=mask, position_ids=positions, past_key_values=past,
                       use_cache=True).logits[:, -1, :]
        chosen = next_tokens(logits, sample, temperature, top_p)
        for row, value in zip(alive.tolist(), chosen.tolist()):
            generated[row].append(value)
        going = ~torch.isin(chosen, ends)
        if step + 1 == max_new_tokens or not going.any():
            break
        if not going.all():  # the finished rows leave the batch, their keys and values with them
            keep = going.nonzero().squeeze(1)
            past.batch_select_indices(keep)
            mask, positions, chosen, alive = mask[keep], positions[keep], chosen[keep], alive[keep.cpu()]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        positions = positions + 1
        token = chosen.unsqueeze(1)
    return generated
