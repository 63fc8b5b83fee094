"""The student: a Hugging Face causal LM or seq2seq model (full weights or LoRA) that writes explanations,
scores answers after each step prefix, and is trained on teacher rationales.

`Student` is the one object the rest of elad holds; each method hands its work to the module that owns it:
weights.py (loading, saving, adapters), prompting.py (modes, chat framing, training features),
generation.py (the transformers and vLLM engines), scoring.py (answers after step prefixes) and
training.py (in this process or launched ones).
"""

from collections.abc import Callable, Sequence
from pathlib import Path

from elad.config import StudentConfig, TrainingConfig
from elad.students import generation
from elad.students.common import Progress, TrainRecord, TrainReport
from elad.students.prompting import PromptFormat, mode_in_force
from elad.students.scoring import AnswerScorer
from elad.students.weights import StudentWeights, open_pretrained
from elad.tasks.base import ANSWER_CUE

__all__ = ["Student", "TrainRecord", "TrainReport"]  # the records it trains on and the report it gives


def _held_by(part: str, name: str) -> property:
    """An attribute a Student shows as its own, held by one of its parts (read and, where the part allows, set)."""
    return property(lambda self: getattr(getattr(self, part), name),
                    lambda self, value: setattr(getattr(self, part), name, value))


class Student:
    # what callers read (and tests set) on a student, where it lives now
    model = _held_by("weights", "model")
    objective = _held_by("weights", "objective")  # what the current weights were trained with
    inference = _held_by("weights", "inference")
    merge_for_generation = _held_by("weights", "merge_for_generation")  # off by default: see StudentWeights
    _merged = _held_by("weights", "merged")
    tokenizer = _held_by("pretrained", "tokenizer")
    path = _held_by("pretrained", "path")
    device = _held_by("pretrained", "device")
    dtype = _held_by("pretrained", "dtype")
    is_seq2seq = _held_by("pretrained", "is_seq2seq")

    def __init__(self, config: StudentConfig):
        self.config = config
        self.pretrained = open_pretrained(config)
        generation.refuse_unsupported(config, self.pretrained.is_seq2seq)  # before the slow weight loading
        self.weights = StudentWeights(config, self.pretrained)
        self.prompts = PromptFormat(self.pretrained.tokenizer, self.pretrained.is_seq2seq)
        self._generator = generation.generator_for(config, self.weights)
        self._scorer = AnswerScorer(self.weights)
        # how many tokens generate/explain write by default: config.max_new_tokens until the loop fits it
        # to what the student was taught (fit_new_tokens)
        self.max_new_tokens = config.max_new_tokens

    # --- weights -----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the base weights (retraining from scratch each round)."""
        self.weights.reset()

    def save_adapter(self, directory: Path) -> None:
        """Write the trained weights (the LoRA adapter, or the whole model) aside, then rename into place."""
        self.weights.save(directory)

    def load_adapter(self, directory: Path) -> None:
        """The base model plus a saved adapter (or a saved full model) in place of the current weights."""
        self.weights.load(directory)

    # the two below are private but the tests check them: merged generation must resume training exactly
    def _is_peft(self) -> bool:
        return self.weights.is_peft()

    def _unmerged_for_training(self) -> None:
        self.weights.unmerge_for_training()

    # --- text in, text out -------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.prompts.ids(text))

    def render_prompt(self, user_text: str, mode: str = "plain") -> str:
        """The student's input: the user turn as the chat template frames it, after the mode's prefix."""
        return self.prompts.render(user_text, mode)

    def render_target(self, user_text: str, target: str) -> str:
        """What follows the prompt in a finished conversation: the target and the turn's end marker."""
        return self.prompts.render_target(user_text, target)

    def _rendered(self, prompts: list[str], mode: str | None, for_explanations: bool) -> list[str]:
        """The prompts framed in `mode`, or, when None, in the mode the current weights were trained for."""
        mode = mode_in_force(mode, self.objective, self.inference, for_explanations)
        return [self.prompts.render(p, mode) for p in prompts]

    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int | None = None,
        sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int = 0,
        progress: Progress | None = None,
        mode: str | None = None,
    ) -> list[str]:
        """One continuation per prompt (user texts), batched; longest first so padding stays small.
        `mode` None: plain prompts, or for a step-by-step student its configured inference task."""
        rendered = self._rendered(prompts, mode, for_explanations=False)
        return generation.continuations(self._generator, rendered, max_new_tokens or self.max_new_tokens,
                                        sample, temperature, top_p, seed, progress)

    def explain(
        self,
        prompts: list[str],
        samples: int = 4,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_new_tokens: int | None = None,
        seed: int = 0,
        progress: Progress | None = None,
        mode: str | None = None,
    ) -> list[list[str]]:
        """Per prompt, the greedy explanation then `samples` sampled ones: [greedy, s1, ..., sK]. Batched
        (several return sequences per prompt), deterministic for a seed with the same prompts and batch size."""
        rendered = self._rendered(prompts, mode, for_explanations=True)
        return generation.explanations(self._generator, rendered, samples, temperature, top_p,
                                       max_new_tokens or self.max_new_tokens, seed, progress)

    # --- answers after step prefixes ---------------------------------------------------------------

    def answer_scores(
        self,
        prompts: list[str],
        steps_per_prompt: list[list[str]],
        candidates_per_prompt: list[Sequence[str]],
        cue: str = ANSWER_CUE,
        parse: Callable[[str], str | None] | None = None,
        max_answer_tokens: int = 8,
        mode: str | None = None,
        progress: Progress | None = None,
    ) -> list[list[dict[str, float]]]:
        """For each prompt and i = 0..n, the answer distribution after the first i steps and the cue:
        the text scored is prompt + "\\n".join(steps[:i] + [cue]) + " " + candidate, where a step that
        opens with white space (" ": the rest of a line) joins the one before it as it is. With candidates: a
        softmax over their summed token log-probabilities (teacher forcing). Without (open answers): the
        greedy short answer after the cue, {parse(answer) or "": 1.0} (the raw answer without `parse`).
        All prefixes of a prompt are scored in one forward pass over the shared prefix."""
        rendered = self._rendered(prompts, mode, for_explanations=True)
        return self._scorer.scores(rendered, steps_per_prompt, candidates_per_prompt, cue, parse, max_answer_tokens,
                                   progress)

    def final_answers(
        self,
        prompts: list[str],
        explanations_per_prompt: list[list[list[str]]],
        candidates_per_prompt: list[Sequence[str]],
        cue: str = ANSWER_CUE,
        parse: Callable[[str], str | None] | None = None,
        max_answer_tokens: int = 8,
        mode: str | None = None,
        progress: Progress | None = None,
    ) -> list[list[dict[str, float]]]:
        """The answer the student gives when made to answer after each of its explanations: per prompt,
        per explanation (its reasoning steps, without an answer sentence), the distribution after
        prompt + "\\n".join(steps + [cue]), as the last prefix of `answer_scores`. All explanations of a prompt
        share one pass over the prompt. An unfinished explanation still gets an answer, never one read from
        its text."""
        rendered = self._rendered(prompts, mode, for_explanations=True)
        return self._scorer.endings(rendered, explanations_per_prompt, candidates_per_prompt, cue, parse,
                                    max_answer_tokens, progress)

    def step_and_final_answers(
        self,
        prompts: list[str],
        explanations_per_prompt: list[list[list[str]]],
        candidates_per_prompt: list[Sequence[str]],
        cue: str = ANSWER_CUE,
        parse: Callable[[str], str | None] | None = None,
        max_answer_tokens: int = 8,
        mode: str | None = None,
        progress: Progress | None = None,
    ) -> tuple[list[list[dict[str, float]]], list[list[dict[str, float]]]]:
        """`answer_scores` of each prompt's first explanation and `final_answers` of all its explanations,
        in one pass: the prompt and the first explanation are read once for both, not once each."""
        rendered = self._rendered(prompts, mode, for_explanations=True)
        both = self._scorer.steps_and_endings(rendered, explanations_per_prompt, candidates_per_prompt, cue, parse,
                                              max_answer_tokens, progress)
        return [steps for steps, _ in both], [ends for _, ends in both]

    # --- training ----------------------------------------------------------------------------------

    def encode_pair(self, user_text: str, target: str, max_length: int, mode: str = "plain") -> dict:
        """Token ids of prompt + target with labels only on the target (causal LM: prompt labels ignored);
        for a seq2seq model, the encoder input and the target as labels."""
        return self.prompts.encode_pair(user_text, target, max_length, mode)

    def features(self, records: list[TrainRecord], settings: TrainingConfig) -> list[dict]:
        """Training features for the objective: {input_ids, labels}, or {predict: ..., explain: ...}."""
        return self.prompts.features(records, settings)

    def train(
        self,
        examples: Sequence[TrainRecord | tuple[str, str]],
        settings: TrainingConfig,
        seed: int,
        warm_start: bool = False,
        progress: Progress | None = None,
        log_dir: Path | None = None,
        run_name: str | None = None,
    ) -> TrainReport:
        """Fine-tune on annotated examples: TrainRecords, or (user text, target) pairs (rationale and answer
        then read from the target). `cot`: loss on the target tokens; `step_by_step`: alpha * predict loss +
        (1 - alpha) * explain loss. Starts from the base weights unless `warm_start`. Trackers named in
        `settings.report_to` log under `log_dir` as `run_name`. In `settings.processes` processes when > 1."""
        from elad.students import training  # on first use: the Trainer's imports add seconds to elad's start

        return training.train(self.weights, self.prompts, examples, settings, seed, warm_start, progress, log_dir,
                              run_name)
