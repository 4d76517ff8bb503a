"""The pair writer of ``ragtune data synth``: its prompt, JSON schema and client, run concurrently.

The writer gets one chunk per request (after a worked example turn) and must answer
with ``{"question", "answer"}`` under a JSON schema (``response_format``: vLLM's guided
decoding, or an OpenAI-compatible teacher's structured output), with ``maxLength`` caps
so the JSON closes before the token cap cuts it. It is the configured generator, or the
teacher endpoint of the ``synth`` settings. The first request runs alone: a writer that
is down or refuses fails with a clear error before the others start; later failures and
text that is not the asked-for JSON are returned for counting, never raised.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from tqdm import tqdm

from app.generation.base import GenerationParams, Generator, GeneratorError, GeneratorUnavailable
from app.settings import Settings
from indexing.errors import RagtuneError

SYSTEM = "You write quiz questions about a text, each with its short answer."
PROMPT = (
    'Text:\n"""\n{chunk}\n"""\n\n'
    "Write one question that this text answers, and its answer: a few words taken from the "
    "text. The question ends with a question mark and does not contain the answer. Reply "
    'with JSON: {{"question": "...", "answer": "..."}}'
)
# One worked example, given as an earlier turn (small models follow a shown format best).
EXAMPLE = (
    "Green tea is steeped at 80 degrees for three minutes; black tea needs boiling water.",
    {"question": "At what temperature is green tea steeped?", "answer": "80 degrees"},
)


def response_format(settings: Settings) -> dict[str, Any]:
    """The JSON schema the writer's output must follow (``response_format``).

    ``synth.max_question_chars`` / ``max_answer_chars`` become ``maxLength`` (0: none), so
    that guided decoding closes the JSON before the token cap cuts it.
    """
    caps = {
        "question": settings.synth.max_question_chars,
        "answer": settings.synth.max_answer_chars,
    }
    properties = {
        name: {"type": "string", **({"maxLength": cap} if cap else {})}
        for name, cap in caps.items()
    }
    schema = {
        "type": "object",
        "properties": properties,
        "required": ["question", "answer"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "qa_pair", "schema": schema}}


def writer_messages(chunk: str) -> list[dict[str, str]]:
    """The chat messages asking for one pair about ``chunk`` (system, example turn, request)."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": PROMPT.format(chunk=EXAMPLE[0])},
        {"role": "assistant", "content": json.dumps(EXAMPLE[1])},
        {"role": "user", "content": PROMPT.format(chunk=chunk)},
    ]


class SynthError(RagtuneError, ValueError):
    """Synthesis cannot start or kept nothing; the message says why (with the drop counts)."""


def synth_generator(settings: Settings) -> tuple[Generator, dict[str, Any]]:
    """The pair writer and its description for the manifest (model, endpoint, teacher).

    A ``synth.teacher_url`` gives a client of that OpenAI-compatible endpoint (the key
    from the environment variable ``synth.api_key_env``); otherwise the configured
    generator. Raises ``SynthError`` for a teacher URL without ``synth.teacher_model``.
    """
    s = settings.synth
    if s.teacher_url:
        from app.generation.vllm_client import VLLMGenerator

        key = os.environ.get(s.api_key_env) or None
        client = VLLMGenerator(
            s.teacher_url, s.teacher_model, settings.generator.request_timeout_s, api_key=key
        )
        return client, writer_info(settings)
    from app.components import build_generator

    return build_generator(settings), writer_info(settings)


def writer_info(settings: Settings) -> dict[str, Any]:
    """The manifest's description of the writer ``synth_generator`` builds (model, endpoint).

    Raises ``SynthError`` for a teacher URL without ``synth.teacher_model``.
    """
    s = settings.synth
    if s.teacher_url:
        if not s.teacher_model:
            raise SynthError("synth.teacher_url is set: set synth.teacher_model too")
        return {"model": s.teacher_model, "endpoint": s.teacher_url.rstrip("/"), "teacher": True}
    from app.components import generator_url

    endpoint = "fake" if settings.generator.mode == "fake" else generator_url(settings)
    return {"model": settings.generator.model, "endpoint": endpoint, "teacher": False}


def sampling(settings: Settings) -> dict[str, Any]:
    """The writer's temperature and token cap (``GenerationParams`` fields)."""
    return {"temperature": settings.synth.temperature, "max_tokens": settings.synth.max_tokens}


def described(settings: Settings) -> dict[str, Any]:
    """How the writer was asked, for the manifest."""
    s = settings.synth
    caps = {"max_question_chars": s.max_question_chars, "max_answer_chars": s.max_answer_chars}
    return {**sampling(settings), "response_format": "json_schema", **caps}


def generate_all(
    settings: Settings,
    generator: Generator,
    info: dict[str, Any],
    chunks: list[str],
    seed: int,
    progress: bool,
) -> list[str | Exception]:
    """The generator's raw text for each chunk, in order, or the exception its request raised.

    The first request runs alone and a failure of it is raised (a clear error before the
    work starts); the others run ``synth.concurrency`` at a time.
    """
    chosen = sampling(settings)
    fields = {"response_format": response_format(settings)}

    def ask(index: int) -> str:
        params = GenerationParams(seed=seed * 1_000_003 + index, **chosen)
        stream = generator.complete_stream(
            writer_messages(chunks[index]), params=params, fields=fields
        )
        return "".join(
            (choice.get("delta") or {}).get("content") or ""
            for chunk in stream
            for choice in chunk.get("choices") or []
            if choice.get("index", 0) == 0
        )

    outputs: list[str | Exception] = [""] * len(chunks)
    where = f"{info.get('model')} at {info.get('endpoint')}"
    try:
        outputs[0] = ask(0)
    except GeneratorUnavailable as exc:
        raise GeneratorUnavailable(f"the pair writer ({where}) is not available: {exc}") from None
    except GeneratorError as exc:
        raise SynthError(f"the pair writer ({where}) failed the first request: {exc}") from None
    bar = tqdm(total=len(chunks), initial=1, desc="synth", unit="pair", disable=not progress)
    pool = ThreadPoolExecutor(max_workers=settings.synth.concurrency)
    try:
        futures = {pool.submit(ask, i): i for i in range(1, len(chunks))}
        for future in as_completed(futures):
            try:
                outputs[futures[future]] = future.result()
            except GeneratorError as exc:
                outputs[futures[future]] = exc
            bar.update()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: queued requests never start
        bar.close()
    return outputs


def parse_pair(text: str) -> tuple[str, str] | None:
    """(question, answer) from the writer's JSON, or None when it is not that.

    Text around the outermost braces (a code fence from a teacher without guided
    decoding) is ignored.
    """
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start : end + 1]) if start >= 0 else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    question, answer = data.get("question"), data.get("answer")
    if not (isinstance(question, str) and isinstance(answer, str)):
        return None
    if not question.strip() or not answer.strip():
        return None
    return question.strip(), answer.strip()
