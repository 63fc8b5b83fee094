"""The experiment config: typed (pydantic), read from and written to YAML.

Unknown keys and wrong types fail with a message that names the key and its line in the file.
"""

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, field_validator, model_validator,
)

from elad.errors import EladError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _registered(registry_path: str):
    """A validator that accepts only names registered in `module:REGISTRY` (imported late: no cycles)."""

    def check(cls, value: str) -> str:
        import importlib

        module, attribute = registry_path.split(":")
        registry = getattr(importlib.import_module(module), attribute)
        if value not in registry:
            raise ValueError(f"unknown {registry.kind} '{value}'; known: {', '.join(registry.names())}")
        return value

    return check


class TaskConfig(Strict):
    name: str = "esnli"
    _known = field_validator("name")(_registered("elad.tasks:TASKS"))
    path: str | None = Field(None, description="dataset folder; empty = the small sample shipped with elad")
    pool_split: str | None = Field(None, description="split the unlabeled pool comes from; empty = the task's default")
    test_split: str | None = Field(None, description="held-out split for evaluation; empty = the task's default")
    pool_size: PositiveInt | None = Field(600, description="questions drawn (seeded) into the unlabeled pool")
    test_size: PositiveInt | None = Field(200, description="held-out questions drawn (seeded) for evaluation")
    validation_size: PositiveInt | None = Field(
        None, description="questions carved (seeded) from the pool split, never selected or annotated, evaluated "
                          "each round: what the stopping rules and `elad export --round best` read (the test set "
                          "is only reported)")
    options: dict[str, Any] = Field(
        default_factory=dict, description="task-specific settings passed to the task (e.g. a custom task's field names)"
    )
    instruction_first: bool = Field(
        False, description="put the task's instruction before the question, not after it: every student prompt "
                           "then opens with the same text, which generation and scoring compute once per batch")

    def open(self):
        """The configured task (elad.tasks.Task), its data not yet read."""
        from elad.tasks import TASKS  # here, not at the top: tasks are registered after the config is defined

        task = TASKS.create(self.name, path=self.path, **self.options)
        task.instruction_first = self.instruction_first
        return task


class LoraConfig(Strict):
    r: PositiveInt = 16
    alpha: PositiveInt = 32
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: str | list[str] = "all-linear"


class StudentConfig(Strict):
    model: str = Field("qwen2.5-coder-0.5b", description="alias, model directory, .gguf file or hub id")
    dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    lora: LoraConfig | None = Field(default_factory=LoraConfig, description="null = full fine-tuning")
    max_new_tokens: PositiveInt = Field(
        64, description="tokens the student writes at most, before it was trained on any annotation (or always, "
                        "with fit_new_tokens false)")
    fit_new_tokens: bool = Field(
        True, description="once trained, write at most what it was taught: 1.25 x the 95th percentile of the "
                          "annotated targets' lengths in tokens, plus 8, at least 16, at most new_tokens_cap")
    new_tokens_cap: PositiveInt = Field(512, description="the most a fitted length may be")
    generation_batch_size: PositiveInt = Field(
        96, description="sequences generated together (K samples of a prompt count K); on a CPU a decoding step "
                        "of 96 rows costs 1.6x one of 48")
    threads: PositiveInt | None = Field(None, description="CPU threads; empty = all cores")
    generation: Literal["transformers", "vllm"] = Field(
        "transformers", description="engine that writes explanations; vllm: GPU only, the `vllm` extra, LoRA students"
    )
    vllm_options: dict[str, Any] = Field(
        default_factory=dict, description="extra vllm.LLM arguments, e.g. gpu_memory_utilization, max_model_len"
    )


class TrainingConfig(Strict):
    objective: Literal["cot", "step_by_step"] = Field(
        "cot", description="cot: question -> rationale + answer; step_by_step: predict: + explain: multi-task"
    )
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="step_by_step: weight of the predict loss")
    inference: Literal["cot", "predict"] = Field(
        "cot", description="step_by_step students answer with a rationale (cot) or straight away (predict)"
    )
    epochs: PositiveFloat = 2.0
    learning_rate: PositiveFloat = 2e-4
    batch_size: PositiveInt = 4
    gradient_accumulation: PositiveInt = 1
    max_length: PositiveInt = 384
    gradient_checkpointing: bool = Field(
        False, description="recompute each layer's activations during the backward pass instead of holding them "
                           "all, and hand freed blocks back to the system at once: much less training memory for "
                           "about 1.5x the training time (BENCHMARKS.md, Memory)",
    )
    warm_start: bool = Field(False, description="continue from last round's adapter instead of the base model")
    processes: PositiveInt = Field(
        1, description="train each round in this many processes through `accelerate launch` (data parallel on "
                       "GPUs, or CPU processes); the loop itself stays in one process",
    )
    own_process: bool = Field(
        False, description="train each round in a fresh process of its own, which hands all its memory back when "
                           "it ends, for about 20 s more a round on a CPU: for long runs and grids, where a "
                           "long-lived process's heap can grow with each training (BENCHMARKS.md, Memory)",
    )
    accelerate_args: list[str] = Field(
        default_factory=list,
        description="extra `accelerate launch` arguments when processes > 1, e.g. [--config_file, ds.yaml] for "
                    "DeepSpeed or FSDP",
    )
    checkpoint_minutes: float = Field(
        10.0, ge=0.0,
        description="save the training state (weights, optimizer, step) under rounds/<r>/trainer this often, so a "
                    "run stopped mid-training continues from there when resumed, not from the round's start; "
                    "deleted once the round is trained; 0 = never",
    )
    report_to: list[str] = Field(
        default_factory=list,
        description="experiment trackers: the training losses through transformers (tensorboard, wandb, mlflow, "
                    "...; logs under rounds/<r>/trainer), and each round's accuracy with its 95% interval, teacher "
                    "spend and stage times (tensorboard under trackers/, wandb, mlflow); off by default",
    )


class SelectionConfig(Strict):
    strategy: str = "random"
    samples: int = Field(4, ge=0, description="sampled explanations per pool item (K), besides the greedy one")
    temperature: float = Field(0.7, gt=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    weight: float = Field(0.5, ge=0.0, le=1.0, description="egss: weight of intra- against inter-explanation")
    pool_sample: PositiveInt | None = Field(None, description="score only this many random pool items a round")
    forced_answers: bool = Field(
        True, description="read each explanation's answer by making the student answer after it (the answer cue, "
                          "then the labels scored or a short greedy answer), never from its text; false = parse it")
    options: dict[str, Any] = Field(default_factory=dict, description="strategy-specific settings")
    _known = field_validator("strategy")(_registered("elad.selection:STRATEGIES"))


class TeacherConfig(Strict):
    backend: str = "replay"
    _known = field_validator("backend")(_registered("elad.teachers:TEACHERS"))
    model: str = "palm-540b"
    source: Literal["dsbs", "jsonl", "gold"] = Field("dsbs", description="what a replay teacher replays")
    path: str | None = Field(None, description="recording folder or file; empty = next to the task's data")
    base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1")
    api_key_env: str | None = Field(None, description="name of the environment variable holding the API key")
    max_tokens: PositiveInt = 256
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    concurrency: PositiveInt = Field(4, description="requests in flight at once")
    timeout: PositiveFloat = Field(60.0, description="seconds before a request is abandoned and retried")
    max_retries: int = Field(5, ge=0, description="retries on 429, 5xx and timeouts, with backoff")
    cache: bool = Field(True, description="keep every response in the run's cache: a rerun pays nothing twice")
    price_prompt: float = Field(0.0, ge=0.0, description="dollars per million prompt tokens")
    price_completion: float = Field(0.0, ge=0.0, description="dollars per million completion tokens")
    price_cached_prompt: float | None = Field(
        None, ge=0.0, description="dollars per million prompt tokens the server read from its prompt cache "
                                  "(as it reports them); empty = the same as price_prompt")
    token_limit: Literal["auto", "max_tokens", "max_completion_tokens"] = Field(
        "auto", description="how max_tokens is sent: auto = max_completion_tokens to the OpenAI API, max_tokens to "
                            "other servers, switching when a server refuses the one it got (reasoning models)")
    reasoning_effort: str | None = Field(None, description="sent as reasoning_effort (reasoning models: low/medium/high)")
    extra_body: dict = Field(default_factory=dict, description="more request fields, sent as they are (server options)")
    reasoning_as_rationale: bool = Field(
        False, description="put the reasoning a server returns beside the reply (reasoning_content) before the "
                           "reply's text, so that it becomes the rationale")
    batch: bool = Field(
        False, description="send each round's requests as batches through the server's batch API (files + batches "
                           "endpoints; OpenAI: half price, replies within the completion window)")
    batch_price: float = Field(0.5, gt=0.0, le=1.0, description="share of the prices a batched request costs")
    batch_poll_seconds: PositiveFloat = Field(30.0, description="seconds between polls of a running batch")
    batch_size: PositiveInt = Field(1000, description="requests in one batch at most (all in flight at once)")

    @model_validator(mode="after")
    def _cached_costs_no_more(self) -> "TeacherConfig":
        # The budget's worst case prices every prompt token at price_prompt (no cache hit is promised).
        if self.price_cached_prompt is not None and self.price_cached_prompt > self.price_prompt:
            raise ValueError("price_cached_prompt must not exceed price_prompt")
        return self

    @model_validator(mode="after")
    def _batches_need_a_server_and_a_cache(self) -> "TeacherConfig":
        if self.batch and self.backend != "openai":
            raise ValueError(f"batch: true needs backend 'openai' (a server with the batch API), not '{self.backend}'")
        if self.batch and not self.cache:
            raise ValueError("batch: true needs cache: true (the run's cache keeps the batch ids, so that a killed "
                             "run finds its batches again)")
        return self

    def in_flight(self) -> int:
        """Requests sent at once: a batch's worth when batching (they wait together), else `concurrency`."""
        return self.batch_size if self.batch else self.concurrency


class AnnotationConfig(Strict):
    method: str = "cot"
    _known = field_validator("method")(_registered("elad.annotation:ANNOTATORS"))
    few_shot: int = Field(0, ge=0, description="worked exemplars in the teacher's prompt")
    gold_check: Literal["off", "drop", "reask"] = Field(
        "off", description="where the gold label is known: drop or re-ask a teacher answer that disagrees"
    )

    @field_validator("gold_check", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` as false: `gold_check: off` means "off", not an error
        return "off" if value is False else value


class BudgetConfig(Strict):
    calls: PositiveInt | None = None
    tokens: PositiveInt | None = None
    dollars: PositiveFloat | None = None


class LoopConfig(Strict):
    rounds: PositiveInt = 3
    per_round: PositiveInt = Field(32, description="questions sent to the teacher each round")
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    round_budget: BudgetConfig = Field(default_factory=BudgetConfig, description="teacher spend cap per round")
    initial_random: PositiveInt | None = Field(
        None, description="round 1 takes this many random questions (a seed set) whatever the strategy"
    )
    evaluate_initial: bool = Field(True, description="evaluate the untrained student as round 0")
    store_every: PositiveInt = Field(
        1024, description="the student's generation stages (the pool's explanations and their answers, the "
                          "evaluation) store their results every this many items, so a stopped run redoes at most "
                          "that many; items are generated in these groups, so another value batches (and samples) "
                          "them differently")
    evaluate_by: Literal["generation", "ranking"] = Field(
        "generation",
        description="generation: parse the student's greedy output; ranking: the most likely answer among the "
                    "task's labels or options after `predict:` (rank classification; step_by_step students "
                    "answering with predict, tasks with closed answers)",
    )
    target_accuracy: float | None = Field(
        None, gt=0.0, le=1.0, description="stop once validation accuracy reaches it (needs task.validation_size)"
    )
    patience: PositiveInt | None = Field(
        None, description="stop when accuracy has not beaten its best by min_gain for this many rounds"
    )
    min_gain: float = Field(0.0, ge=0.0, description="the gain (accuracy, 0-1) that counts as progress")
    stop_uncertainty: float | None = Field(
        None, ge=0.0, description="stop when the pool's mean uncertainty falls below it (knowledge transferred): "
                                  "egss's inter-explanation part, or the strategy's own score (not random, oracle)"
    )


class ExperimentConfig(Strict):
    name: str = "experiment"
    seed: int = 0
    task: TaskConfig = Field(default_factory=TaskConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    annotation: AnnotationConfig = Field(default_factory=AnnotationConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)

    @model_validator(mode="after")
    def _stopping_rules_read_validation(self) -> "ExperimentConfig":
        # A rule that stopped on the test accuracy would report a number it was tuned on.
        rules = [name for name in ("target_accuracy", "patience") if getattr(self.loop, name) is not None]
        if rules and not self.task.validation_size:
            raise ValueError(f"loop.{rules[0]} reads the validation accuracy: set task.validation_size (questions "
                             "carved from the pool split); the test set is only reported")
        return self

    @model_validator(mode="after")
    def _dollar_budgets_need_prices(self) -> "ExperimentConfig":
        # With both prices at 0 every call costs $0: a dollar budget would never stop anything.
        budgets = [f"loop.{name}.dollars" for name in ("budget", "round_budget")
                   if getattr(self.loop, name).dollars is not None]
        if budgets and not (self.teacher.price_prompt or self.teacher.price_completion):
            raise ValueError(f"{budgets[0]} needs the teacher's prices: set teacher.price_prompt and "
                             "teacher.price_completion (dollars per million tokens), or budget calls or tokens; "
                             "at the default prices of 0 every call costs $0")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(path: str | Path, overrides: dict | None = None) -> ExperimentConfig:
    path = Path(path)
    if not path.exists():
        raise EladError(f"{path}: config file not found")
    if path.is_dir():
        raise EladError(f"{path}: is a directory, not a config file (give the YAML file inside it)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = error.object[:error.start].count(b"\n") + 1
        raise EladError(f"{path}, line {line}: not UTF-8 text (byte {error.object[error.start:error.start + 1]!r}); "
                        f"save the config as UTF-8") from None
    except OSError as error:
        raise EladError(f"{path}: cannot read the config file ({error.strerror or error})") from None
    return parse_config(text, source=str(path), overrides=overrides)


def parse_config(text: str, source: str = "<config>", overrides: dict | None = None) -> ExperimentConfig:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise EladError(f"{source}{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(data, dict):
        raise EladError(f"{source}: expected a mapping of settings at the top level")
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise EladError(_describe(error, text, source)) from None


def _set_dotted(data: dict, dotted: str, value) -> None:
    """Set `a.b.c` in the config's mapping, making the sections on the way. A key on the way must be a
    section: one that holds a value (a string, a number, a list, null) takes no sub-key. Where the file
    does not set a key, its default says which it is; a section that may be null (student.lora) takes a
    sub-key whether the file nulls it or not."""
    *parents, leaf = dotted.split(".")
    defaults = ExperimentConfig().model_dump()
    for depth, key in enumerate(parents):
        default = defaults.get(key, {}) if isinstance(defaults, dict) else {}
        current = data.get(key, default)
        if current is None and isinstance(default, dict):
            current = {}
        if not isinstance(current, dict):
            where = ".".join(parents[: depth + 1])
            raise EladError(f"--set '{dotted}': {where} holds {_shown(current)}, not a section of keys; "
                            f"set {where} itself (--set {where}=VALUE)")
        if not isinstance(data.get(key), dict):
            data[key] = {}
        data, defaults = data[key], default
    data[leaf] = value


def _shown(value) -> str:
    if value is None:
        return "null"
    kind = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
    text = repr(value)
    return f"{kind.get(type(value), 'a value')} ({text if len(text) <= 40 else text[:37] + '...'})"


def _describe(error: ValidationError, text: str, source: str) -> str:
    lines = [f"{source}: invalid config"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"])
        line = _line_of(text, problem["loc"])
        where = f" (line {line})" if line else ""
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {key or '(top level)'}{where}: {message}")
    return "\n".join(lines)


def _line_of(text: str, loc: tuple) -> int | None:
    """1-based line of the YAML node at `loc`, or of its nearest parent that exists in the file."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
        if match is None:
            break
        line = match[0].start_mark.line + 1
        node = match[1]
    return line
