"""The student's answer after every step prefix of an explanation, in batched forward passes.

For a decoder-only model, each row of a batch holds the *trunk* (the prompt and all the steps) once,
followed by one *branch* per step boundary i = 0..n: the answer cue, then the candidate answers. A 4D
attention mask makes a branch see only the trunk up to its boundary and its own ancestors, and explicit
position ids place it right after that boundary, so every prefix is scored in the same forward pass
without recomputing the shared prefix. The same tree reads several explanations of one prompt to their
ends: each explanation (then the cue) is a branch of its own after the prompt, and where the first one is
also read after each of its steps, it is the trunk (`reading_tree`). Open answers are
decoded greedily on those branches, a token per branch per step, with the KV cache of the first pass.

A seq2seq model reads the prompt once in its encoder; its decoder rows (one per prefix and candidate)
share those encoder states.

`AnswerScorer` is the student's side: its texts tokenised into Items, batched, and the scores turned into
answer distributions.
"""

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from elad.students.common import Progress
from elad.students.weights import StudentWeights


@dataclass
class Item:
    """One prompt's explanation as the student reads it: the whole explanation tokenised as one text (the
    trunk, after the prompt), and at each boundary i the text of its first i steps and the cue, tokenised
    as one text too, kept as the trunk tokens it shares and its own tokens after them. Tokenised piece by
    piece, a tokenizer that merges across a boundary (Qwen's ".\n" is one token) would score a text the
    student never wrote nor was taught."""

    prompt_ids: list[int]  # the rendered prompt (trunk start)
    trunk_ids: list[int]  # the explanation's steps, "\n" between lines, as one text
    readings: list[tuple[int, list[int]]]  # per boundary: (trunk tokens shared, own tokens: the rest and the cue)
    candidate_ids: list[list[int]]  # " " + candidate, per candidate; empty list = open answer

    def reading(self, boundary: int) -> list[int]:
        """The tokens after the prompt at `boundary`: its first steps and the cue."""
        shared, own = self.readings[boundary]
        return self.trunk_ids[:shared] + own


@dataclass
class _Layout:
    """One row: trunk tokens, then branch tokens (the mask, not the order, defines the tree; but the greedy
    answers read their tips in column order, so a tree adds its branches in tip order)."""

    trunk: list[int]
    tokens: list[int] = field(default_factory=list)  # branch tokens
    positions: list[int] = field(default_factory=list)
    boundary: list[int] = field(default_factory=list)  # trunk length this branch token sees
    parent: list[int] = field(default_factory=list)  # index of the parent branch token, -1 = the trunk


def _add(layout: _Layout, token: int, boundary: int, parent: int) -> int:
    depth = 0 if parent < 0 else layout.positions[parent] - boundary + 1
    layout.tokens.append(token)
    layout.positions.append(boundary + depth)
    layout.boundary.append(boundary)
    layout.parent.append(parent)
    return len(layout.tokens) - 1


def _attention(layouts: list[_Layout], dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """input ids, position ids, an additive 4D mask (B, 1, W, W), and the trunk width of the batch."""
    trunk_width = max(len(lay.trunk) for lay in layouts)
    branch_width = max(len(lay.tokens) for lay in layouts)
    width = trunk_width + branch_width
    batch = len(layouts)
    ids = torch.zeros(batch, width, dtype=torch.long)
    pos = torch.zeros(batch, width, dtype=torch.long)
    allowed = torch.zeros(batch, width, width, dtype=torch.bool)
    allowed[:, torch.arange(width), torch.arange(width)] = True  # padding sees itself: no empty softmax rows
    for row, lay in enumerate(layouts):
        t = len(lay.trunk)
        ids[row, :t] = torch.tensor(lay.trunk)
        pos[row, :t] = torch.arange(t)
        allowed[row, :t, :t] = torch.tril(torch.ones(t, t, dtype=torch.bool))
        for q, (token, position, bound, parent) in enumerate(zip(lay.tokens, lay.positions, lay.boundary, lay.parent)):
            column = trunk_width + q
            ids[row, column] = token
            pos[row, column] = position
            if parent < 0:
                allowed[row, column, :bound] = True
            else:
                allowed[row, column] = allowed[row, trunk_width + parent]
            allowed[row, column, column] = True
    mask = torch.zeros(batch, 1, width, width, dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    return ids.to(device), pos.to(device), mask.to(device), trunk_width


def _accepts_logits_to_keep(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def _selected_logits(model, ids, pos, mask, keep: torch.Tensor, **kwargs):
    """Logits at the True positions of `keep` (B, W), flattened row-major: (N, vocab)."""
    if _accepts_logits_to_keep(model):
        out = model(input_ids=ids, position_ids=pos, attention_mask=mask, logits_to_keep=keep, **kwargs)
        logits = out.logits
        if logits.dim() == 3:  # an implementation that ignored the boolean form
            logits = logits[keep]
        return logits, out
    out = model(input_ids=ids, position_ids=pos, attention_mask=mask, **kwargs)
    return out.logits[keep], out


# --- decoder-only --------------------------------------------------------------------------------


@dataclass
class Tree:
    """One batch row to score: a layout whose branches each end at an answer cue; tips[j] = the branch
    index of branch j's last cue token (the answer is read after it)."""

    layout: _Layout
    tips: list[int]


def _branch(layout: _Layout, tokens: list[int], boundary: int) -> int:
    """A chain of `tokens` seeing the trunk up to `boundary`; the index of its last token."""
    parent = -1
    for token in tokens:
        parent = _add(layout, token, boundary, parent)
    return parent


def reading_tree(prompt_ids: list[int], trunk_ids: list[int], readings: list[tuple[int, list[int]]],
                 continuations: list[list[int]]) -> Tree:
    """The prompt and an explanation (`trunk_ids`) as the trunk, each reading's own tokens branching off
    after the trunk tokens it shares, then one branch per continuation (an explanation followed by the
    cue) straight after the prompt. A prefix Item is its trunk and readings; several explanations of a
    prompt are continuations: each is read to its end without recomputing the prompt."""
    lay = _Layout(trunk=list(prompt_ids) + list(trunk_ids))
    tips = [_branch(lay, own, len(prompt_ids) + shared) for shared, own in readings]
    tips.extend(_branch(lay, tokens, len(prompt_ids)) for tokens in continuations)
    return Tree(lay, tips)


def causal_candidate_scores(model, trees: list[Tree], candidates: list[list[list[int]]], device,
                            dtype) -> list[list[list[float]]]:
    """Per tree, per tip, the summed log-probability of each candidate after the tip (teacher forced);
    candidates[row] holds that row's candidates' token ids. The candidates' tokens are added to the trees'
    layouts: build the trees for this call only."""
    layouts, reads = [], []  # reads[row] = per tip, per candidate: [(branch index, target token)]
    for tree, candidate_ids in zip(trees, candidates):
        lay = tree.layout
        per_tip = []
        for tip in tree.tips:
            bound = lay.boundary[tip]
            per_candidate = []
            for cand in candidate_ids:
                pairs, last = [(tip, cand[0])], tip
                for k in range(1, len(cand)):
                    last = _add(lay, cand[k - 1], bound, last)
                    pairs.append((last, cand[k]))
                per_candidate.append(pairs)
            per_tip.append(per_candidate)
        layouts.append(lay)
        reads.append(per_tip)
    ids, pos, mask, trunk_width = _attention(layouts, dtype, device)
    keep = torch.zeros(ids.shape, dtype=torch.bool)
    for row, per_tip in enumerate(reads):
        for per_candidate in per_tip:
            for pairs in per_candidate:
                for index, _ in pairs:
                    keep[row, trunk_width + index] = True
    # the flattened logits come row-major over keep's True cells: map (row, column) -> flat index
    flat = torch.full(ids.shape, -1, dtype=torch.long)
    flat[keep] = torch.arange(int(keep.sum()))
    logits, _ = _selected_logits(model, ids, pos, mask, keep.to(device), use_cache=False)
    logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
    scores = []
    for row, per_tip in enumerate(reads):
        scores.append([
            [sum(float(logprobs[flat[row, trunk_width + index], token]) for index, token in pairs) for pairs in per_candidate]
            for per_candidate in per_tip
        ])
    return scores


def causal_greedy_answers(model, trees: list[Tree], device, dtype, max_tokens: int,
                          stop_ids: set[int]) -> list[list[list[int]]]:
    """Per tree, per tip, the greedy tokens after the cue (up to `max_tokens`, stopping at `stop_ids`)."""
    from transformers import DynamicCache

    layouts, tips = [tree.layout for tree in trees], [tree.tips for tree in trees]
    ids, pos, mask, trunk_width = _attention(layouts, dtype, device)
    batch, width = ids.shape
    branches = max(len(t) for t in tips)
    # visibility of each branch's newest token, over every column so far (grows as tokens are added)
    allowed = mask[:, 0] == 0  # (B, W, W)
    last_column = torch.zeros(batch, branches, dtype=torch.long)  # padding branches point at column 0
    next_pos = torch.zeros(batch, branches, dtype=torch.long)
    live = torch.zeros(batch, branches, dtype=torch.bool)
    for row, row_tips in enumerate(tips):
        lay = layouts[row]
        for i, tip in enumerate(row_tips):
            last_column[row, i] = trunk_width + tip
            next_pos[row, i] = lay.positions[tip] + 1
            live[row, i] = True
    visible = torch.stack([allowed[r, last_column[r]] for r in range(batch)]).cpu()  # (B, branches, W)
    keep = torch.zeros(batch, width, dtype=torch.bool)
    for row in range(batch):
        keep[row, last_column[row][live[row]]] = True
    cache = DynamicCache()
    logits, _ = _selected_logits(model, ids, pos, mask, keep.to(device), use_cache=True, past_key_values=cache)
    generated = [[[] for _ in row_tips] for row_tips in tips]
    done = ~live
    columns = width
    for step in range(max_tokens):
        # logits arrive row-major over keep: the live branches of each row, in column order
        # (a tree adds its branches one after another, so column order is tip order)
        flat_rows = [(row, i) for row in range(batch) for i in range(branches) if live[row, i]]
        chosen = logits.float().argmax(dim=-1).cpu()
        new_tokens = torch.zeros(batch, branches, dtype=torch.long)
        for (row, i), token in zip(flat_rows, chosen.tolist()):
            new_tokens[row, i] = token
            if not done[row, i]:
                if token in stop_ids:
                    done[row, i] = True
                else:
                    generated[row][i].append(token)
        if bool(done.all()) or step == max_tokens - 1:
            break
        # feed one token per branch (finished or padding branches too: their results are ignored)
        new_visible = torch.zeros(batch, branches, columns + branches, dtype=torch.bool)
        new_visible[:, :, :columns] = visible
        new_visible[:, torch.arange(branches), columns + torch.arange(branches)] = True
        step_mask = torch.zeros(batch, 1, branches, columns + branches, dtype=dtype)
        step_mask.masked_fill_(~new_visible[:, None], torch.finfo(dtype).min)
        keep = live.clone()
        out = model(
            input_ids=new_tokens.to(device), position_ids=next_pos.to(device), attention_mask=step_mask.to(device),
            past_key_values=cache, use_cache=True,
            **({"logits_to_keep": keep.to(device)} if _accepts_logits_to_keep(model) else {}),
        )
        logits = out.logits if out.logits.dim() == 2 else out.logits[keep.to(device)]
        visible = new_visible
        columns += branches
        next_pos += 1
    return generated


# --- seq2seq -------------------------------------------------------------------------------------


def _encode(model, items: list[Item], pad_id: int, device):
    width = max(len(item.prompt_ids) for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    attention = torch.zeros(len(items), width, dtype=torch.long)
    for row, item in enumerate(items):
        ids[row, : len(item.prompt_ids)] = torch.tensor(item.prompt_ids)
        attention[row, : len(item.prompt_ids)] = 1
    encoder = model.get_encoder()
    return encoder(input_ids=ids.to(device), attention_mask=attention.to(device)).last_hidden_state, attention.to(device)


def _decoder_logits(model, states, attention, owners: list[int], rows: list[list[int]], pad_id: int, device):
    """Logits of right-padded decoder rows (causal: padding after a row's tokens changes nothing)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row)
    owner = torch.tensor(owners, device=states.device)
    out = model(
        encoder_outputs=(states.index_select(0, owner),), attention_mask=attention.index_select(0, owner),
        decoder_input_ids=ids.to(device), use_cache=False,
    )
    return out.logits.float()


def seq2seq_candidate_scores(model, items: list[Item], start_id: int, pad_id: int, device) -> list[list[list[float]]]:
    states, attention = _encode(model, items, pad_id, device)
    owners, rows, reads = [], [], []  # reads: (item, boundary, candidate, row, first read position, tokens)
    for index, item in enumerate(items):
        for i in range(len(item.readings)):
            head = [start_id] + item.reading(i)
            for c, cand in enumerate(item.candidate_ids):
                owners.append(index)
                rows.append(head + cand[:-1])
                reads.append((index, i, c, len(rows) - 1, len(head) - 1, cand))
    logits = _decoder_logits(model, states, attention, owners, rows, pad_id, device)
    logprobs = torch.log_softmax(logits, dim=-1).cpu()
    scores = [[[0.0] * len(item.candidate_ids) for _ in item.readings] for item in items]
    for index, i, c, row, first, cand in reads:
        scores[index][i][c] = sum(float(logprobs[row, first + k, token]) for k, token in enumerate(cand))
    return scores


def seq2seq_greedy_answers(model, items: list[Item], start_id: int, pad_id: int, device, max_tokens: int,
                           stop_ids: set[int]) -> list[list[list[int]]]:
    states, attention = _encode(model, items, pad_id, device)
    owners, rows, where = [], [], []
    for index, item in enumerate(items):
        for i in range(len(item.readings)):
            owners.append(index)
            rows.append([start_id] + item.reading(i))
            where.append((index, i))
    generated = [[[] for _ in item.readings] for item in items]
    done = [False] * len(rows)
    for _ in range(max_tokens):
        logits = _decoder_logits(model, states, attention, owners, rows, pad_id, device)
        for r, row in enumerate(rows):
            token = int(logits[r, len(row) - 1].argmax())
            if done[r]:
                continue
            if token in stop_ids:
                done[r] = True
            else:
                index, i = where[r]
                generated[index][i].append(token)
                rows[r] = row + [token]
        if all(done):
            break
    return generated


def normalise(logprobs: Sequence[float], candidates: Sequence[str]) -> dict[str, float]:
    """Softmax over the candidates' summed log-probabilities."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return {c: w / total for c, w in zip(candidates, weights)}


def one_hot(text: str, parse: Callable[[str], str | None] | None) -> dict[str, float]:
    """The short answer after the cue as a distribution: parsed (or raw) answer -> 1.0; "" = unparsable."""
    text = text.split("\n")[0].strip()
    key = text.rstrip(".").strip() if parse is None else parse(text)
    return {key if key is not None else "": 1.0}


@dataclass
class Endings:
    """One prompt's explanations, each to be answered after its end: the prompt is read once (causal).
    With `every_step`, the first explanation is also answered after each of its steps (as a prefix Item),
    in the same pass: it is the trunk, the others branch off after the prompt."""

    prompt_ids: list[int]
    explanations: list[Item]  # one per explanation: its steps, the cue at each boundary
    candidate_ids: list[list[int]]
    every_step: bool = False

    def trunk(self) -> Item:
        """The explanation read after each of its steps: the first one, or none."""
        return self.explanations[0] if self.every_step else Item(self.prompt_ids, [], [], [])

    def continuations(self) -> list[list[int]]:
        rest = self.explanations[1:] if self.every_step else self.explanations
        return [e.reading(len(e.readings) - 1) for e in rest]

    def boundaries(self) -> list[tuple[int, int]]:
        """(explanation, boundary) read by each tip, in tip order."""
        first = [(0, i) for i in range(len(self.trunk().readings))]
        rest = range(1 if self.every_step else 0, len(self.explanations))
        return first + [(j, len(self.explanations[j].readings) - 1) for j in rest]


def _tree(row: Item | Endings) -> Tree:
    if isinstance(row, Endings):
        trunk = row.trunk()
        return reading_tree(row.prompt_ids, trunk.trunk_ids, trunk.readings, row.continuations())
    return reading_tree(row.prompt_ids, row.trunk_ids, row.readings, [])


def _size(row: Item | Endings) -> int:
    item = row.trunk() if isinstance(row, Endings) else row
    rest = row.continuations() if isinstance(row, Endings) else []
    return len(row.prompt_ids) + len(item.trunk_ids) + sum(len(c) for c in rest)


def _seq2seq_rows(rows: list[Item | Endings]) -> tuple[list[Item], list[list[tuple[int, int]]]]:
    """Items for the seq2seq scorers and, per row, the (item, boundary) pairs to read: every boundary of a
    prefix Item, the boundaries an Endings reads of each explanation (its encoder reads the prompt again)."""
    items, reads = [], []
    for row in rows:
        if isinstance(row, Endings):
            reads.append([(len(items) + j, boundary) for j, boundary in row.boundaries()])
            items.extend(row.explanations)
        else:
            reads.append([(len(items), i) for i in range(len(row.readings))])
            items.append(row)
    return items, reads


# --- from texts: what the student asks ---------------------------------------------------------------


class AnswerScorer:
    """The student's answer distributions after its explanations: after every step prefix of one
    explanation (`scores`), after the end of each of several (`endings`), or both in one pass
    (`steps_and_endings`). Each explanation is tokenised
    into an Item, rows are scored in batches of similar size, closed answers over their candidates, open
    ones as the greedy short answer."""

    def __init__(self, weights: StudentWeights):
        self.weights = weights  # read at each call: training and loading replace the model
        self._stops: set[int] | None = None

    def scores(self, rendered: list[str], steps_per_prompt: list[list[str]],
               candidates_per_prompt: list[Sequence[str]], cue: str, parse: Callable[[str], str | None] | None,
               max_answer_tokens: int, progress: Progress | None) -> list[list[dict[str, float]]]:
        """Per rendered prompt, one distribution per step boundary (see Student.answer_scores)."""
        with torch.inference_mode(), self.weights.for_inference():
            rows = [self._item(r, steps, cands, cue)
                    for r, steps, cands in zip(rendered, steps_per_prompt, candidates_per_prompt)]
            return self._scores(rows, candidates_per_prompt, parse, max_answer_tokens, progress)

    def endings(self, rendered: list[str], explanations_per_prompt: list[list[list[str]]],
                candidates_per_prompt: list[Sequence[str]], cue: str, parse: Callable[[str], str | None] | None,
                max_answer_tokens: int, progress: Progress | None) -> list[list[dict[str, float]]]:
        """Per rendered prompt, one distribution per explanation (its reasoning steps), read after all of
        its steps and the cue: the same text as the last prefix of `scores`."""
        return self._read(rendered, explanations_per_prompt, candidates_per_prompt, cue, parse, max_answer_tokens,
                          progress, every_step=False)

    def steps_and_endings(self, rendered: list[str], explanations_per_prompt: list[list[list[str]]],
                          candidates_per_prompt: list[Sequence[str]], cue: str,
                          parse: Callable[[str], str | None] | None, max_answer_tokens: int,
                          progress: Progress | None) -> list[tuple[list[dict[str, float]], list[dict[str, float]]]]:
        """Per rendered prompt, `scores` of its first explanation and `endings` of all of them, from one
        pass: the first explanation's end is its last prefix."""
        read = self._read(rendered, explanations_per_prompt, candidates_per_prompt, cue, parse, max_answer_tokens,
                          progress, every_step=True)
        out = []
        for explanations, distributions in zip(explanations_per_prompt, read):
            prefixes = len(explanations[0]) + 1 if explanations else 0
            out.append((distributions[:prefixes], distributions[prefixes - 1: prefixes] + distributions[prefixes:]))
        return out

    def _read(self, rendered, explanations_per_prompt, candidates_per_prompt, cue, parse, max_answer_tokens, progress,
              every_step: bool):
        with torch.inference_mode(), self.weights.for_inference():
            rows = []
            for r, explanations, cands in zip(rendered, explanations_per_prompt, candidates_per_prompt):
                items = [self._item(r, steps, cands, cue) for steps in explanations]
                first = items[0] if items else Item([], [], [], [])
                rows.append(Endings(first.prompt_ids, items, first.candidate_ids, every_step and bool(items)))
            return self._scores(rows, candidates_per_prompt, parse, max_answer_tokens, progress)

    def _scores(self, rows, candidates_per_prompt, parse, max_answer_tokens, progress):
        batch_size = self.weights.config.generation_batch_size
        results: list[list[dict[str, float]]] = [[] for _ in rows]
        scorable = [i for i, row in enumerate(rows) if not isinstance(row, Endings) or row.explanations]
        closed = [i for i in scorable if rows[i].candidate_ids]
        open_ = [i for i in scorable if not rows[i].candidate_ids]
        done, total = len(rows) - len(scorable), len(rows)
        for group, scorer in ((closed, self._score_closed), (open_, self._score_open)):
            group = sorted(group, key=lambda i: -_size(rows[i]))  # similar sizes batch with little padding
            for start in range(0, len(group), batch_size):
                indices = group[start: start + batch_size]
                scored = scorer([rows[i] for i in indices], [candidates_per_prompt[i] for i in indices], parse,
                                max_answer_tokens)
                for i, distributions in zip(indices, scored):
                    results[i] = distributions
                done += len(indices)
                if progress:
                    progress(done, total)
        return results

    def _ids(self, text: str) -> list[int]:
        return self.weights.pretrained.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _item(self, rendered: str, steps: list[str], candidates: Sequence[str], cue: str) -> Item:
        pretrained = self.weights.pretrained
        prompt_ids = pretrained.tokenizer(rendered, add_special_tokens=pretrained.is_seq2seq)["input_ids"]
        # a step that opens with white space continues the one before it as written (tasks/steps.step_segments)
        segments = [("\n" if k and not step[:1].isspace() else "") + step for k, step in enumerate(steps)]
        trunk = self._ids("".join(segments))
        readings = []
        for i in range(len(steps) + 1):
            ids = self._ids("".join(segments[:i]) + ("\n" if i else "") + cue)
            shared = next((k for k, (a, b) in enumerate(zip(ids, trunk)) if a != b), min(len(ids), len(trunk)))
            shared = min(shared, len(ids) - 1)  # a reading keeps a token of its own: the tip it is read at
            readings.append((shared, ids[shared:]))
        return Item(prompt_ids, trunk, readings, [self._ids(" " + c) for c in candidates])

    def _decoder_start(self) -> int:
        start = self.weights.model.config.decoder_start_token_id
        return start if start is not None else self.weights.pretrained.tokenizer.pad_token_id

    def _score_closed(self, rows, candidates, parse, max_answer_tokens):
        model, pretrained = self.weights.model, self.weights.pretrained
        if pretrained.is_seq2seq:
            items, reads = _seq2seq_rows(rows)
            raw = seq2seq_candidate_scores(model, items, self._decoder_start(), pretrained.tokenizer.pad_token_id,
                                           pretrained.device)
            raw = [[raw[item][boundary] for item, boundary in pairs] for pairs in reads]
        else:
            raw = causal_candidate_scores(model, [_tree(row) for row in rows], [row.candidate_ids for row in rows],
                                          pretrained.device, pretrained.dtype)
        return [[normalise(lp, cands) for lp in per_tip] for per_tip, cands in zip(raw, candidates)]

    def _score_open(self, rows, candidates, parse, max_answer_tokens):
        model, pretrained, stops = self.weights.model, self.weights.pretrained, self._stop_ids()
        if pretrained.is_seq2seq:
            items, reads = _seq2seq_rows(rows)
            tokens = seq2seq_greedy_answers(model, items, self._decoder_start(), pretrained.tokenizer.pad_token_id,
                                            pretrained.device, max_answer_tokens, stops)
            tokens = [[tokens[item][boundary] for item, boundary in pairs] for pairs in reads]
        else:
            tokens = causal_greedy_answers(model, [_tree(row) for row in rows], pretrained.device, pretrained.dtype,
                                           max_answer_tokens, stops)
        decode = pretrained.tokenizer.decode
        return [[one_hot(decode(t, skip_special_tokens=True), parse) for t in per_tip] for per_tip in tokens]

    def _stop_ids(self) -> set[int]:
        """End of turn, padding, and every token that holds a line break: a short answer ends there. Found
        once (decoding the whole vocabulary is slow)."""
        if self._stops is None:
            tokenizer = self.weights.pretrained.tokenizer
            stops = {t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None}
            vocab = tokenizer.get_vocab()
            texts = tokenizer.batch_decode([[i] for i in vocab.values()])
            stops |= {i for i, text in zip(vocab.values(), texts) if "\n" in text}
            self._stops = stops
        return self._stops

