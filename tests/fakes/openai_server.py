"""A tiny OpenAI-compatible chat server on loopback, with faults on cue.

Each request to `POST /v1/chat/completions` takes the next cue from a queue (`server.cue("429", "500")`)
or, when the queue is empty, answers normally. Cues:

- `ok`:         a normal answer (after `delay` seconds)
- `429`:        Too Many Requests with `Retry-After: <retry_after>`
- `500`:        Internal Server Error (with `Retry-After: <retry_after_5xx>` when that is set)
- `503`:        Service Unavailable (likewise)
- `slow`:       waits `slow_seconds` (past the client's timeout), then answers
- `truncated`:  claims a longer body than it sends, then closes the connection
- `malformed`:  200 with a body that is not JSON
- `empty`:      200 with `"choices": []` (and a usage of the prompt alone, which is billed)
- `400`:        Bad Request, as for a prompt longer than the context (not retried)
- `401`:        Unauthorized (not retried by the client)
- `no_usage`:   a normal answer without the `usage` field
- `drop`:       reads the request, then closes the connection without a byte of reply
- `noanswer`:   a normal, billed answer whose text states no answer (`NO_ANSWER_REPLY`)
- `echo_key`:   401 whose error message repeats the request's Authorization header (a careless proxy)
- `echo_key_400`: the same as a 400 (the request is refused: its item is rejected, the run goes on)

`reasoning_model=True` behaves like OpenAI's reasoning models: a request with `max_tokens` or a
`temperature` other than 1 is refused (400, naming the parameter), the reply carries `reasoning_content`
(`REASONING`), and its words count as completion tokens within `max_completion_tokens`.
`cached_prompt_tokens=N` reports up to N prompt tokens as read from the prompt cache.

When the queue is empty, `schedule(i, body) -> cue` (if set) picks the cue of the i-th chat request
(0-based), e.g. `random_schedule(seed, rate)`; `on_request(i, body)` (if set) runs as each chat request
arrives, before it is answered (tests use it to kill the client at a chosen request); a cue it returns
replaces the request's cue. `served` counts the cues answered.

Like a provider, the server bills every reply it generates (`server.billed`), whether or not the client
is still there to receive it: an answer, one without `usage`, an empty one (its prompt), a `slow` one the
client gave up on, a `truncated` one. Error statuses, `drop` and `malformed` bodies are not billed.
Tests compare the bill with the ledger. `answer(messages, body) -> str` decides the
reply text (default: a fixed rationale). Usage counts whitespace-separated words.

Batch API (OpenAI's files + batches endpoints): `POST /v1/files` (multipart, purpose "batch") keeps an
input file; `POST /v1/batches` starts a batch over it; `GET /v1/batches/{id}` reports it `in_progress` for
`batch_polls` reads, then runs each line as a chat request (taking cues like any: `400` and the other error
cues give an error line, not billed; anything else an answer, billed) and reports it `completed` with an
output file (and an error file when a line failed); `GET /v1/files/{id}/content` returns a file's text.
`batch_expire_after=N` ends a batch `expired` after its first N lines (the rest get no reply and no bill).
`batches` holds each batch's state; `batch_retrieves` counts the status reads.
"""

import email.parser
import email.policy
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_REPLY = "The premise says a person walks, so someone moves.\nSo the answer is entailment."
NO_ANSWER_REPLY = "The premise and the hypothesis talk about different things; I would rather not say."
REASONING = "Hidden thoughts: walking means moving, and a person is someone."

FAULTS = ("429", "500", "503", "slow", "drop", "truncated", "malformed", "empty", "noanswer", "no_usage")


def random_schedule(seed: int, rate: float, faults: tuple[str, ...] = FAULTS) -> Callable[[int, dict], str]:
    """A cue per request number: a fault drawn from `faults` with probability `rate`, else `ok`.
    The same (seed, i) always gives the same cue."""
    import random

    def schedule(index: int, body: dict) -> str:
        draw = random.Random(seed * 1_000_003 + index)
        return draw.choice(faults) if draw.random() < rate else "ok"

    return schedule


def count_words(text: str) -> int:
    return len(text.split())


@dataclass
class Billed:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Seen:
    """One request as the server received it."""

    cue: str
    body: dict
    headers: dict  # names in lower case
    at: float
    billed: bool = False  # a reply was generated (a provider charges it, received or not)
    text: str | None = None  # the reply's text, for billed replies
    answered_at: float | None = None  # when a billed reply was generated


@dataclass
class FakeOpenAIServer:
    answer: Callable[[list[dict], dict], str] = lambda messages, body: DEFAULT_REPLY
    delay: float = 0.0
    retry_after: str = "1"
    slow_seconds: float = 2.0
    supports_json_schema: bool = True
    model: str = "fake-teacher"
    retry_after_5xx: str | None = None
    reasoning_model: bool = False
    cached_prompt_tokens: int = 0
    batch_polls: int = 1
    batch_expire_after: int | None = None
    schedule: Callable[[int, dict], str] | None = None
    on_request: Callable[[int, dict], None] | None = None
    seen: list[Seen] = field(default_factory=list)
    ledger: Billed = field(default_factory=Billed)  # read it as `billed`, which waits for replies in progress
    served: dict = field(default_factory=dict)  # cue -> how many chat requests were answered with it

    def __post_init__(self):
        self._cues: deque[str] = deque()
        self._chat_requests = 0
        self._lock = threading.Lock()
        self._active = 0  # requests being answered: a reply is billed only after its last byte is sent
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.files: dict[str, tuple[str, bytes]] = {}  # id -> (purpose, content)
        self.batches: dict[str, dict] = {}  # id -> the batch object as last reported
        self.batch_retrieves = 0

    # --- control ---------------------------------------------------------------------------------

    def cue(self, *cues: str) -> None:
        with self._lock:
            self._cues.extend(cues)

    def _next_cue(self, body: dict | None = None) -> tuple[str, int]:
        with self._lock:
            index, self._chat_requests = self._chat_requests, self._chat_requests + 1
            if self._cues:
                return self._cues.popleft(), index
        if self.schedule is not None:
            return self.schedule(index, body or {}), index
        return "ok", index

    def billed_replies(self) -> list[Seen]:
        """The requests whose reply a provider would charge, in arrival order (once the replies in
        progress are sent, as `billed`)."""
        self.billed  # noqa: B018 - waits for replies in progress
        with self._lock:
            return [s for s in self.seen if s.billed]

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeOpenAIServer":
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- answering -------------------------------------------------------------------------------

    def completion(self, body: dict, with_usage: bool = True, text: str | None = None) -> tuple[dict, int, int]:
        messages = body.get("messages", [])
        n = int(body.get("n") or 1)
        text = self.answer(messages, body) if text is None else text
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        reasoning = REASONING if self.reasoning_model else ""
        finish = "stop"
        if max_tokens is not None and count_words(reasoning) >= max_tokens:  # thought until the limit
            reasoning, text, finish = " ".join(reasoning.split()[:max_tokens]), "", "length"
        elif max_tokens is not None and count_words(reasoning) + count_words(text) > max_tokens:
            text, finish = " ".join(text.split()[:max_tokens - count_words(reasoning)]), "length"
        prompt_tokens = sum(count_words(str(m.get("content", ""))) for m in messages)
        completion_tokens = (count_words(reasoning) + count_words(text)) * n
        message = {"role": "assistant", "content": text}
        if reasoning:
            message["reasoning_content"] = reasoning
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [
                {"index": i, "message": dict(message), "finish_reason": finish}
                for i in range(n)
            ],
        }
        if with_usage:
            payload["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            if self.cached_prompt_tokens:
                cached = min(self.cached_prompt_tokens, prompt_tokens)
                payload["usage"]["prompt_tokens_details"] = {"cached_tokens": cached}
        return payload, prompt_tokens, completion_tokens

    def refused_parameter(self, body: dict) -> str | None:
        """A reasoning model's refusal of a parameter it does not take (OpenAI's wording), or None."""
        if not self.reasoning_model:
            return None
        if "max_tokens" in body:
            return ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                    "Use 'max_completion_tokens' instead.")
        if body.get("temperature") not in (None, 1, 1.0):
            return ("Unsupported value: 'temperature' does not support 0.0 with this model. "
                    "Only the default (1) value is supported.")
        return None

    # --- the batch API ---------------------------------------------------------------------------

    def add_file(self, purpose: str, content: bytes) -> dict:
        with self._lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = (purpose, content)
        return {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": f"{file_id}.jsonl", "purpose": purpose, "status": "processed"}

    def create_batch(self, body: dict) -> tuple[int, dict]:
        if body.get("input_file_id") not in self.files:
            return 400, {"error": {"message": "input_file_id not found", "type": "invalid_request_error"}}
        with self._lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            batch = {"id": batch_id, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
                     "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window"),
                     "status": "in_progress", "output_file_id": None, "error_file_id": None,
                     "created_at": int(time.time()), "request_counts": {"total": 0, "completed": 0, "failed": 0},
                     "polls_left": self.batch_polls}
            self.batches[batch_id] = batch
        return 200, _public(batch)

    def retrieve_batch(self, batch_id: str) -> tuple[int, dict]:
        with self._lock:
            self.batch_retrieves += 1
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, {"error": {"message": f"no batch {batch_id}"}}
            run = batch["status"] == "in_progress" and batch["polls_left"] <= 0
            batch["polls_left"] -= 1
        if run:
            self._run_batch(batch)
        return 200, _public(batch)

    def _run_batch(self, batch: dict) -> None:
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]][1].splitlines() if line.strip()]
        outputs, errors = [], []
        for n, line in enumerate(lines):
            if self.batch_expire_after is not None and n >= self.batch_expire_after:
                break
            body = line["body"]
            cue, _ = self._next_cue(body)
            seen = Seen(cue, body, {}, time.time())
            with self._lock:
                self.seen.append(seen)
                self.served[cue] = self.served.get(cue, 0) + 1
            if cue in ("400", "401", "429", "500", "503", "malformed", "drop", "truncated"):
                errors.append({"id": f"req_{n}", "custom_id": line["custom_id"], "response": {
                    "status_code": 400, "body": {"error": {"message": f"fault {cue}"}}}, "error": None})
                continue
            if cue == "garbage_line":  # a line of the output file that is not JSON: no reply for the request
                outputs.append("}{ not a reply line")
                continue
            payload, prompt, completion = self.completion(body)
            self.bill(prompt, completion, seen, payload["choices"][0]["message"]["content"])
            if cue == "bad_body":  # billed, but the body is no chat completion (no id, no created)
                payload = {k: v for k, v in payload.items() if k not in ("id", "created")}
            outputs.append({"id": f"req_{n}", "custom_id": line["custom_id"],
                            "response": {"status_code": 200, "body": payload}, "error": None})
        counts = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        output_id = self.add_file("batch_output", _jsonl(outputs))["id"] if outputs else None
        error_id = self.add_file("batch_output", _jsonl(errors))["id"] if errors else None
        with self._lock:
            batch.update(output_file_id=output_id, error_file_id=error_id)
            expired = self.batch_expire_after is not None and len(lines) > self.batch_expire_after
            batch.update(status="expired" if expired else "completed", request_counts=counts)

    @property
    def billed(self) -> Billed:
        """What the provider charged, once the replies in progress are sent: a client can read a reply
        before the server's thread books it, so a test reading this right after a call waits a moment."""
        deadline = time.time() + 5
        while self._active and time.time() < deadline:
            time.sleep(0.005)
        return self.ledger

    def bill(
        self, prompt_tokens: int, completion_tokens: int, seen: Seen | None = None, text: str | None = None
    ) -> None:
        with self._lock:
            self.ledger.calls += 1
            self.ledger.prompt_tokens += prompt_tokens
            self.ledger.completion_tokens += completion_tokens
            if seen is not None:
                seen.billed, seen.text, seen.answered_at = True, text, time.time()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that hung up (timed out, or was killed by a test) is not an error of the server."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        parts = path.split("/")
        if path.endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": self.fake.model, "object": "model"}]})
        elif len(parts) >= 2 and parts[-2] == "batches":
            self._json(*self.fake.retrieve_batch(parts[-1]))
        elif path.endswith("/content") and parts[-2] in self.fake.files:
            self._raw(200, self.fake.files[parts[-2]][1], {"Content-Type": "application/jsonl"})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        with self.fake._lock:
            self.fake._active += 1
        try:
            self._post()
        finally:
            with self.fake._lock:
                self.fake._active -= 1

    def _post(self) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/").endswith("/files"):
            purpose, content = _multipart_file(self.headers.get("Content-Type", ""), raw)
            self._json(200, fake.add_file(purpose, content))
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "request body is not JSON"}})
            return
        if self.path.rstrip("/").endswith("/batches"):
            self._json(*fake.create_batch(body))
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            with fake._lock:
                fake.seen.append(Seen("ok", body, {k.lower(): v for k, v in self.headers.items()}, time.time()))
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if not isinstance(body.get("messages"), list):  # a request cut short (its client died while sending)
            self._json(400, {"error": {"message": "'messages' is required", "type": "invalid_request_error"}})
            return
        cue, index = fake._next_cue(body)
        seen = Seen(cue, body, {k.lower(): v for k, v in self.headers.items()}, time.time())
        with fake._lock:
            fake.seen.append(seen)
            fake.served[cue] = fake.served.get(cue, 0) + 1
        if fake.on_request is not None:
            override = fake.on_request(index, body)
            if override is not None:
                with fake._lock:
                    fake.served[cue] -= 1
                    fake.served[override] = fake.served.get(override, 0) + 1
                cue = seen.cue = override
        if fake.delay:
            time.sleep(fake.delay)
        refused = fake.refused_parameter(body)
        if refused:
            self._json(400, {"error": {"message": refused, "type": "invalid_request_error"}})
            return
        if "response_format" in body and not fake.supports_json_schema:
            self._json(400, {"error": {"message": "response_format is not supported", "type": "invalid_request_error"}})
            return
        retry_5xx = {"Retry-After": fake.retry_after_5xx} if fake.retry_after_5xx is not None else None
        if cue == "429":
            self._json(429, {"error": {"message": "rate limited"}}, {"Retry-After": fake.retry_after})
        elif cue == "500":
            self._json(500, {"error": {"message": "internal error"}}, retry_5xx)
        elif cue == "503":
            self._json(503, {"error": {"message": "service unavailable"}}, retry_5xx)
        elif cue == "slow":
            time.sleep(fake.slow_seconds)
            payload, prompt, completion = fake.completion(body)
            fake.bill(prompt, completion, seen, payload["choices"][0]["message"]["content"])  # the client gave up
            self._json(200, payload)
        elif cue == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif cue == "truncated":
            payload, prompt, completion = fake.completion(body)
            fake.bill(prompt, completion, seen, payload["choices"][0]["message"]["content"])
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self._write(data[: len(data) // 2])
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif cue == "malformed":
            self._raw(200, b'{"id": "chatcmpl-fake", "choices": [{"message": {"content": "So the ans')
        elif cue == "empty":
            payload, prompt, _ = fake.completion(body)
            payload["choices"] = []
            payload["usage"].update(completion_tokens=0, total_tokens=prompt)
            fake.bill(prompt, 0, seen, "")
            self._json(200, payload)
        elif cue == "400":
            self._json(400, {"error": {"message": "prompt is longer than the context", "type": "invalid_request_error"}})
        elif cue == "401":
            self._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        elif cue in ("echo_key", "echo_key_400"):
            given = self.headers.get("Authorization", "")
            status = 401 if cue == "echo_key" else 400
            message = f"Incorrect API key provided: {given}"
            self._json(status, {"error": {"message": message, "type": "invalid_request_error"}})
        elif cue == "no_usage":
            payload, prompt, completion = fake.completion(body, with_usage=False)
            fake.bill(prompt, completion, seen, payload["choices"][0]["message"]["content"])
            self._json(200, payload)
        else:
            if cue == "noanswer":
                payload, prompt, completion = fake.completion(body, text=NO_ANSWER_REPLY)
            else:
                payload, prompt, completion = fake.completion(body)
            fake.bill(prompt, completion, seen, payload["choices"][0]["message"]["content"])
            self._json(200, payload)

    def _json(self, status: int, payload: dict, headers: dict | None = None) -> bool:
        return self._raw(status, json.dumps(payload).encode(), headers)

    def _raw(self, status: int, data: bytes, headers: dict | None = None) -> bool:
        headers = dict(headers or {})
        try:
            self.send_response(status)
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:  # the client hung up (it timed out)
            self.close_connection = True
            return False

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass


def _public(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "polls_left"}


def _jsonl(rows: list[dict | str]) -> bytes:
    """JSON lines; a string row goes in as it is (a broken line)."""
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows).encode()


def _multipart_file(content_type: str, raw: bytes) -> tuple[str, bytes]:
    """(purpose, file content) of a multipart/form-data upload."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
              for part in message.iter_parts()}
    return (fields.get("purpose") or b"").decode().strip(), fields.get("file") or b""
