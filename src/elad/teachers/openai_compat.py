"""A teacher behind any OpenAI-compatible chat API: OpenAI, vLLM, Ollama, llama.cpp's server, LM Studio.

The official `openai` client does the HTTP and the request timeout; the retries are elad's, so that each
attempt can be reserved against the budget before it is sent (`Attempts`): a provider may bill an
attempt the client abandoned. Retried: 408, 409, 429 (waiting what `Retry-After` asks, up to a minute),
5xx, timeouts and dropped connections, with exponential backoff otherwise.

Reasoning models: the token limit goes as `max_completion_tokens` to the OpenAI API and as `max_tokens`
elsewhere, and a server that refuses the one it got (naming the other) gets the other from then on; a
refused `temperature` is left out from then on. `reasoning_effort` and `extra_body` (server-specific fields,
e.g. vLLM's or Ollama's options) are sent as given; a `reasoning_content` in the reply is kept with it.
The prompt tokens a server read from its cache (`prompt_tokens_details.cached_tokens`) are kept for pricing.
The API key is read from the
environment variable the config names, handed to the client and kept nowhere else: not in a log, an
error message, the cache or the run store.
"""

import os
import random
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from elad.errors import EladError
from elad.teachers.base import (
    Attempts, Completion, Request, Response, TeacherBase, TeacherContext, TeacherError, TeacherRefused,
    TeacherReplyError, request_key,
)

# Servers that need no key (a local llama.cpp, vLLM or Ollama) still get a non-empty one: the client requires it.
NO_KEY = "not-needed"
RETRIED_STATUSES = (408, 409, 429)  # and every 5xx
INITIAL_BACKOFF = 0.5  # seconds; doubled at each retry, up to MAX_BACKOFF, when the server names no wait
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0


def read_api_key(env_name: str | None, base_url: str | None) -> str:
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise EladError(
                f"teacher.api_key_env: the environment variable '{env_name}' is not set (or empty); "
                f"export it with the API key before running"
            )
        return value
    if base_url is None:
        raise EladError(
            "teacher.api_key_env: the OpenAI API needs a key; name the environment variable that holds it "
            "(e.g. api_key_env: OPENAI_API_KEY), or set teacher.base_url to a server that needs none"
        )
    return NO_KEY


class OpenAITeacher(TeacherBase):
    """Chat completions over HTTP; thread-safe (one client, shared by every request in flight)."""

    backend = "openai"

    def __init__(
        self,
        model: str,
        count_tokens: Callable[[str], int],
        base_url: str | None = None,
        api_key: str = NO_KEY,
        timeout: float = 60.0,
        max_retries: int = 5,
        concurrency: int = 4,
        token_limit: str = "auto",
        reasoning_effort: str | None = None,
        extra_body: dict | None = None,
        reasoning_as_rationale: bool = False,
    ):
        import openai

        self.model, self.count_tokens, self.base_url = model, count_tokens, base_url
        self.concurrency = concurrency
        if token_limit == "auto":
            token_limit = "max_completion_tokens" if base_url is None else "max_tokens"
        self.token_limit = token_limit  # the name the token limit is sent under (switched on a refusal)
        self.sends_temperature = True  # off once the model refuses any temperature but its default
        self.reasoning_effort, self.extra_body = reasoning_effort, dict(extra_body or {})
        self.reasoning_as_rationale = reasoning_as_rationale
        # Structured-output dialects to try, best first; one is dropped when the server refuses it
        # (OpenAI and vLLM take json_schema; llama-cpp-python's server takes json_object with a schema).
        self.structured_formats = ["json_schema", "json_object"]
        self.supports_json_schema = True
        self._lock = threading.Lock()
        self.openai = openai
        # The client pools up to 1,000 connections: enough for any `concurrency` in flight.
        self.max_retries = max_retries
        # max_retries=0: the client sends each attempt once; `_send` retries, reserving each attempt.
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAITeacher(model={self.model!r}, base_url={self.base_url!r})"

    @classmethod
    def from_config(cls, config, context: TeacherContext) -> "OpenAITeacher":
        return cls(
            model=config.model,
            count_tokens=context.count_tokens,
            base_url=config.base_url,
            api_key=read_api_key(config.api_key_env, config.base_url),
            timeout=config.timeout,
            max_retries=config.max_retries,
            concurrency=config.concurrency,
            token_limit=config.token_limit,
            reasoning_effort=config.reasoning_effort,
            extra_body=config.extra_body,
            reasoning_as_rationale=config.reasoning_as_rationale,
        )

    def key(self, request: Request) -> str:
        # What changes the reply beyond the request: another effort or server option is another answer.
        options = {k: v for k, v in (("reasoning_effort", self.reasoning_effort), ("extra_body", self.extra_body),
                                     ("reasoning_as_rationale", self.reasoning_as_rationale)) if v}
        return request_key(self.backend, self.model, request, self.keyed_by_example, options)

    @property
    def client(self):
        """The `openai` client (requests sent once each: the retries are elad's)."""
        return self._client

    def close(self) -> None:
        self._client.close()

    # --- one request -------------------------------------------------------------------------------

    def params(self, request: Request) -> dict:
        """What every attempt at `request` sends, but the token limit, temperature and response format."""
        params = {"model": self.model, "messages": [dict(m) for m in request.messages]}
        if request.n != 1:
            params["n"] = request.n
        if self.reasoning_effort:
            params["reasoning_effort"] = self.reasoning_effort
        if self.extra_body:
            params["extra_body"] = self.extra_body
        return params

    def body(self, request: Request) -> dict:
        """The request as one JSON body (a batch file's line): server options merged in, the best
        structured-output form when a schema is asked for."""
        params = self.params(request)
        server_options = params.pop("extra_body", {})
        body = {**params, **server_options, **self._limits(request)}
        if request.json_schema is not None and self.structured_formats:
            body["response_format"] = _response_format(self.structured_formats[0], request)
        return body

    def complete(self, request: Request, attempts: Attempts | None = None) -> Response:
        params = self.params(request)
        tries = _Tries(attempts)
        forms = list(self.structured_formats) if request.json_schema is not None else []
        refused = []  # the structured-output forms this request was refused with
        for form in [*forms, None]:  # None: the prompt alone (which states the format too)
            sent = params if form is None else {**params, "response_format": _response_format(form, request)}
            try:
                result = self._send(sent, tries, request)
            except self.openai.APIStatusError as error:
                if form is None or not _refuses_format(error):
                    raise self.failed(error) from None
                tries.failed(maybe_billed=False)
                refused.append(form)
                continue
            except self.openai.OpenAIError as error:
                raise self.failed(error) from None
            self._drop_formats(refused)
            return self.response(request, result)
        raise AssertionError("unreachable: the last form is the plain request")

    def _drop_formats(self, refused: list[str]) -> None:
        """Forms the server refused where a later form of the same request was taken: it does not take
        them, so they are not sent again. A refusal for another reason (a prompt too long for the
        context) refuses every form, and then nothing is dropped."""
        if not refused:
            return
        with self._lock:
            self.structured_formats = [form for form in self.structured_formats if form not in refused]
            self.supports_json_schema = bool(self.structured_formats)

    def _send(self, params: dict, tries: "_Tries", request: Request):
        """One reply, retrying what may pass on a second try; every attempt after the first is announced
        to `tries` (which reserves it) before it leaves."""
        adapted: set[str] = set()  # what this request was adapted in already: each at most once
        while True:
            tries.before_sending()
            limits = self._limits(request)
            try:
                return self._client.chat.completions.create(**params, **limits)
            except ValueError as error:  # a 200 whose body is not JSON (json.JSONDecodeError is a ValueError)
                raise TeacherReplyError(f"teacher '{self.model}' sent a reply that is not valid JSON ({error})") from None
            except self.openai.APIStatusError as error:
                if self._adapted_to(error, limits, adapted):  # refused a parameter: send it another way
                    tries.failed(maybe_billed=False)
                    continue
                if not _retried(error) or tries.retries >= self.max_retries:
                    raise
                tries.failed(maybe_billed=False, retry=True)  # the server answered with an error: nothing generated
                time.sleep(_wait(error, tries.retries))
            except self.openai.APIConnectionError as error:  # a timeout, a refused or dropped connection
                if tries.retries >= self.max_retries:
                    raise self.failed(error, maybe_billed=True) from None
                tries.failed(maybe_billed=True, retry=True)
                time.sleep(_wait(error, tries.retries))

    def _limits(self, request: Request) -> dict:
        """The token limit under the name this server takes, and the temperature unless refused."""
        limits = {self.token_limit: request.max_tokens}
        if self.sends_temperature:
            limits["temperature"] = request.temperature
        return limits

    def _adapted_to(self, error, sent: dict, adapted: set[str]) -> bool:
        """Whether `error` refused a parameter of `sent` (the limits this attempt sent) that can be sent
        another way (and now is): the token limit's name, or a temperature a reasoning model does not
        take. Each at most once a request (`adapted`), so a server whose every refusal names both limits
        cannot keep it switching; a refusal of a name another thread has switched already only resends."""
        if getattr(error, "status_code", None) not in (400, 422):
            return False
        message = str(getattr(error, "message", "") or error)
        name = "max_tokens" if "max_tokens" in sent else "max_completion_tokens"
        other = "max_completion_tokens" if name == "max_tokens" else "max_tokens"
        with self._lock:
            if "token_limit" not in adapted and name in message and other in message:
                adapted.add("token_limit")
                if self.token_limit == name:
                    self.token_limit = other
                return True
            if "temperature" not in adapted and "temperature" in sent and "temperature" in message:
                adapted.add("temperature")
                self.sends_temperature = False
                return True
        return False

    def failed(self, error: Exception, maybe_billed: bool = False) -> TeacherError:
        """The TeacherError that reports an `openai` error (the API key taken out of its message)."""
        status = getattr(error, "status_code", None)
        what = f"HTTP {status}" if status else type(error).__name__
        message = self.redacted(getattr(error, "message", None) or str(error))
        where = self.base_url or "the OpenAI API"
        if status in (400, 413, 422):
            return TeacherRefused(f"teacher '{self.model}' at {where} refused the request: {what}: {message}")
        failure = TeacherError(f"teacher '{self.model}' at {where} failed after retries: {what}: {message}")
        failure.maybe_billed = maybe_billed
        return failure

    def redacted(self, text: str) -> str:
        """`text` without the API key: a server or proxy may repeat the Authorization header in an error
        message, which would otherwise be printed, logged and stored with the item's rejection."""
        key = getattr(self._client, "api_key", None)
        if key and key != NO_KEY and len(key) >= 8:
            text = text.replace(key, "[the API key]")
        return text

    def response(self, request: Request, result) -> Response:
        """The Response of a chat completion (an `openai` ChatCompletion) that answered `request`."""
        choices = list(getattr(result, "choices", None) or [])
        usage = getattr(result, "usage", None)
        reported = None
        prompt_usage, completion_usage = (getattr(usage, name, None) for name in ("prompt_tokens", "completion_tokens"))
        if isinstance(prompt_usage, int) and isinstance(completion_usage, int):  # half a usage is none: counted
            reported = (prompt_usage, completion_usage)
        texts = []
        for choice in choices:
            message = getattr(choice, "message", None)
            reasoning = _reasoning(message)
            text = getattr(message, "content", None) or ""
            if self.reasoning_as_rationale and reasoning:
                text = f"{reasoning.strip()}\n{text.strip()}"
            texts.append((text, getattr(choice, "finish_reason", None) or "stop", reasoning))
        if not texts:
            raise TeacherReplyError(f"teacher '{self.model}' answered with no choices", usage=reported)
        if reported is not None:
            prompt_tokens, completion_total = reported
            # The usage covers all choices together; spread it so that the sum is exact.
            share, extra = divmod(completion_total, len(texts))
            counts = [share + (1 if i < extra else 0) for i in range(len(texts))]
        else:
            prompt_tokens = sum(self.count_tokens(m["content"]) for m in request.messages)
            # counted, the hidden reasoning too (providers bill it as completion tokens)
            counts = [self.count_tokens(text) + (self.count_tokens(reasoning) if reasoning and not
                      self.reasoning_as_rationale else 0) for text, _, reasoning in texts]
        cached = _cached_prompt_tokens(usage) if reported is not None else 0
        completions = [
            Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=count, finish_reason=finish,
                       reasoning=reasoning, cached_prompt_tokens=cached, counted=reported is None)
            for (text, finish, reasoning), count in zip(texts, counts)
        ]
        meta = {"usage": "reported" if reported is not None else "counted"}
        return Response(completions=completions, backend=self.backend, model=self.model, meta=meta)


class _Tries:
    """The attempts of one `complete`: the first is reserved by the caller before `complete` is called;
    each later one is announced to `attempts.retry` before it is sent."""

    def __init__(self, attempts: Attempts | None):
        self.attempts, self.sent, self.retries = attempts, 0, 0
        self.maybe_billed = False  # whether the last failed attempt may have been billed

    def failed(self, maybe_billed: bool, retry: bool = False) -> None:
        """The last attempt failed; `retry`: it counts against max_retries (a refused response_format,
        asked again in another form, does not)."""
        self.maybe_billed = maybe_billed
        self.retries += retry

    def before_sending(self) -> None:
        if self.sent and self.attempts is not None:
            self.attempts.retry(self.maybe_billed)
        self.sent += 1
        self.maybe_billed = False


def _reasoning(message) -> str:
    """The reasoning a server sent beside the reply: `reasoning_content` (vLLM, DeepSeek, llama.cpp) or
    `reasoning` (Ollama, some routers)."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _cached_prompt_tokens(usage) -> int:
    details = getattr(usage, "prompt_tokens_details", None)
    return int(getattr(details, "cached_tokens", None) or 0)


def _retried(error) -> bool:
    status = getattr(error, "status_code", None) or 0
    return status in RETRIED_STATUSES or status >= 500


def _wait(error, retries: int) -> float:
    """Seconds before the next attempt: what the server's Retry-After asks (capped), else exponential
    backoff with jitter."""
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    asked = _retry_after(headers)
    if asked is not None:
        return min(asked, MAX_RETRY_AFTER)
    return min(INITIAL_BACKOFF * 2 ** (retries - 1), MAX_BACKOFF) * random.uniform(0.75, 1.0)


def _retry_after(headers) -> float | None:
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


def _response_format(form: str, request: Request) -> dict:
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"strict": True, **request.json_schema}}
    return {"type": "json_object", "schema": request.json_schema["schema"]}


def _refuses_format(error) -> bool:
    """A refusal of the response_format itself: a 400/422, or any status whose message names it (some
    servers answer a validation error with 500)."""
    message = str(getattr(error, "message", "") or error)
    return getattr(error, "status_code", None) in (400, 422) or "response_format" in message
