"""vLLM as the student's sampling engine, for GPU machines (the `vllm` extra: pip install 'elad[vllm]').

Every round the student writes a greedy and K sampled explanations of each pool item; on a GPU that is
where vLLM's continuous batching and paged KV cache pay. vLLM only generates here: answer scoring after
step prefixes (teacher forcing) and training stay with transformers, on the same weights.

Weights. The engine loads the base model once. A LoRA student's trained adapter is handed to it per
request (`LoRARequest`), so a round's new weights cost one adapter load, not an engine restart. A fully
fine-tuned student or a seq2seq one is refused: vLLM cannot swap whole weights in place.

Prompts arrive rendered (chat template applied by the student), so both engines see the same text.
Sampling is seeded per prompt (seed, prompt index), so a round's samples do not depend on batching.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elad.errors import EladError

INSTALL_HINT = "pip install 'elad[vllm]' on a machine with an NVIDIA GPU"


def import_vllm():
    """The vllm module, or a clear error saying how to get it."""
    try:
        import vllm
    except ImportError:
        raise EladError(f"student.generation: vllm is not installed ({INSTALL_HINT}), or set it to "
                        "'transformers'") from None
    return vllm


def require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise EladError("student.generation: vllm needs a CUDA GPU and none is visible on this machine; "
                        "set student.generation to 'transformers' (the default) to generate on the CPU")


class VllmEngine:
    """A vLLM engine over the student's base model, generating with the current LoRA adapter."""

    def __init__(self, model_path: Path, dtype: str, seed: int, lora_rank: int | None, options: dict[str, Any]):
        vllm = import_vllm()
        require_cuda()
        settings = {"gpu_memory_utilization": 0.45, **options}  # transformers holds the same model beside it
        if lora_rank is not None:
            settings.setdefault("enable_lora", True)
            settings.setdefault("max_lora_rank", max(8, lora_rank))
        self.vllm = vllm
        self.llm = vllm.LLM(model=str(model_path), dtype=dtype, seed=seed, **settings)
        self.adapter: tuple[str, int, str] | None = None  # (name, id, path) of the adapter in use

    def use_adapter(self, path: Path | None, version: int) -> None:
        """Generate with this saved LoRA adapter from now on (None: the base model)."""
        self.adapter = None if path is None else (f"student-{version}", version, str(path))

    def _lora_request(self):
        if self.adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest(*self.adapter)

    def generate(self, rendered: Sequence[str], per_prompt: int, max_new_tokens: int, sample: bool,
                 temperature: float, top_p: float, seed: int) -> list[list[str]]:
        """`per_prompt` continuations of each rendered prompt: greedy (then per_prompt must be 1) or sampled."""
        params = [self._params(per_prompt, max_new_tokens, sample, temperature, top_p, seed, index)
                  for index in range(len(rendered))]
        outputs = self.llm.generate(list(rendered), params, lora_request=self._lora_request(), use_tqdm=False)
        return [[completion.text.strip() for completion in output.outputs] for output in outputs]

    def _params(self, per_prompt, max_new_tokens, sample, temperature, top_p, seed, index):
        if not sample:
            return self.vllm.SamplingParams(n=per_prompt, temperature=0.0, max_tokens=max_new_tokens)
        return self.vllm.SamplingParams(n=per_prompt, temperature=temperature, top_p=top_p, top_k=-1,
                                        max_tokens=max_new_tokens, seed=seed * 1_000_003 + index)
