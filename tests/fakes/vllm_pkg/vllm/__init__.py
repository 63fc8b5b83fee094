"""A stand-in for the `vllm` package, with the parts of its API elad uses (LLM, SamplingParams,
lora.request.LoRARequest). Tests put its folder first on sys.path to check what elad asks vLLM for; no
GPU, no model. Each completion's text says what it was generated from, so a test can read it back."""

from dataclasses import dataclass, field

ENGINES: list["LLM"] = []  # every engine built, newest last


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: int = 16
    seed: int | None = None


@dataclass
class Completion:
    text: str


@dataclass
class RequestOutput:
    prompt: str
    outputs: list[Completion] = field(default_factory=list)


class LLM:
    def __init__(self, model: str, **kwargs):
        self.model, self.kwargs, self.calls = model, kwargs, []
        ENGINES.append(self)

    def generate(self, prompts, sampling_params, lora_request=None, use_tqdm=True):
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        assert len(params) == len(prompts), "one SamplingParams per prompt"
        self.calls.append({"prompts": list(prompts), "params": params, "lora": lora_request})
        adapter = lora_request.lora_name if lora_request else "base"
        return [RequestOutput(prompt, [Completion(f" {adapter} t={p.temperature} seed={p.seed} #{j} ")
                                       for j in range(p.n)])
                for prompt, p in zip(prompts, params)]
