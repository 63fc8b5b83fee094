"""A local Hugging Face model as the teacher, loaded the way students are (alias, directory, .gguf, hub id).

It runs on this machine's CPU or GPU, one request at a time (a lock: concurrency buys nothing here);
usage is the model's own token counts. It costs what the config's prices say (usually 0).
"""

import threading

from elad.teachers.base import Completion, Request, Response, TeacherBase, TeacherContext


class LocalTeacher(TeacherBase):
    backend = "local"
    supports_json_schema = False

    def __init__(self, loaded, model: str):
        """`loaded`: an `elad.students.weights.LoadedModel` (its model, tokenizer and device are used)."""
        self.loaded, self.model = loaded, model
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config, context: TeacherContext) -> "LocalTeacher":
        # Imported here: the teachers package stays free of the students' (heavy) dependencies. The model
        # loads as a student's base model does (same dtype rules and device), without being a student.
        from elad.config import StudentConfig
        from elad.students.weights import load_model

        return cls(load_model(StudentConfig(model=config.model, max_new_tokens=config.max_tokens)), config.model)

    def render(self, messages: tuple[dict, ...]) -> str:
        tokenizer = self.loaded.tokenizer
        messages = [dict(m) for m in messages]
        if tokenizer.chat_template:
            try:
                return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # some templates refuse a system turn: fold it into the first user turn
                if messages and messages[0]["role"] == "system" and len(messages) > 1:
                    system = messages.pop(0)["content"]
                    messages[0] = {**messages[0], "content": f"{system}\n\n{messages[0]['content']}"}
                    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                raise
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "

    def complete(self, request: Request, attempts=None) -> Response:  # never retries: `attempts` unused
        import torch

        loaded, tokenizer = self.loaded, self.loaded.tokenizer
        prompt = self.render(request.messages)
        batch = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(loaded.device)
        sample = request.temperature > 0
        with self._lock, torch.inference_mode():
            if sample:
                torch.manual_seed(request.sample)
            generated = loaded.model.generate(
                **batch,
                max_new_tokens=request.max_tokens,
                do_sample=sample,
                temperature=request.temperature if sample else None,
                top_p=None,
                top_k=None,
                num_return_sequences=request.n,
                pad_token_id=tokenizer.pad_token_id,
            )
        prompt_tokens = int(batch["input_ids"].shape[1])
        stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        completions = []
        for row in generated[:, prompt_tokens:].tolist():
            length = next((i + 1 for i, token in enumerate(row) if token in stops), len(row))
            ended = length < len(row) or (row and row[-1] in stops)
            text = tokenizer.decode(row[:length], skip_special_tokens=True).strip()
            completions.append(Completion(text, prompt_tokens, length, "stop" if ended else "length"))
        return Response(completions=completions, backend=self.backend, model=self.model)
