"""Generator for the kinds ``training.methods`` serves with transformers + peft (``PEFT``).

Those are the adapters vLLM cannot serve: prompt, prefix, p-tuning, IA3, adapter-layer
(bottleneck), BitFit, LayerNorm and top-blocks adapters, loaded onto their base model
through ``training.peft_methods.load_peft_model`` (which registers ragtune's own peft
methods first), and full finetunes (``WHOLE_MODEL_KINDS``, loaded as complete models).

Runs transformers + peft in this process, one adapter resident at a time (loading is
the slow part; switching is rare). Streaming uses transformers' TextIteratorStreamer
with ``generate`` on a worker thread, so the interface matches the vLLM backend. The API
calls honour sampling fields ``generate`` has (top_p, top_k, min_p, repetition_penalty,
min_tokens, stop) and refuse by name what it cannot do (n > 1, logprobs, response_format,
tools, logit_bias...).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from app.generation import openai_shape
from app.generation.base import (
    GenerationParams,
    GeneratorError,
    GeneratorRefused,
    Message,
    check_context,
    requested_length,
)
from training.methods import PEFT, WHOLE_MODEL_KINDS, is_generative, served_by
from training.registry import AdapterRegistry, Manifest


class PeftGenerator:
    """Serves registry adapters with transformers + peft."""

    def __init__(self, registry: AdapterRegistry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._loaded: tuple[str, object, object] | None = None

    def _model(self, manifest: Manifest):
        if self._loaded and self._loaded[0] == manifest.name:
            return self._loaded[1], self._loaded[2]
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from training.peft_methods import load_peft_model

        folder = self.registry.path(manifest.name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            if manifest.kind in WHOLE_MODEL_KINDS:
                model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            else:
                base = AutoModelForCausalLM.from_pretrained(
                    manifest.base_model, dtype=torch.float32
                )
                model = load_peft_model(base, folder)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            # a missing base, or weights of another shape: the adapter fits another base model
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            reason = next((line for line in lines if "size mismatch" in line), lines[0])
            raise GeneratorError(
                f"adapter {manifest.name!r} ({manifest.kind}) cannot be loaded onto its base "
                f"model {manifest.base_model!r}; was it trained on another base? "
                f"{reason.strip()[:300]}"
            ) from None
        model.eval()
        self._loaded = (manifest.name, model, tokenizer)
        return model, tokenizer

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]:
        """Text deltas from the adapter's model (sampling defaults it cannot map are left out)."""
        return self._generate(messages, adapter, params, {}, {})

    def complete_stream(
        self,
        messages: list[Message],
        *,
        adapter: str | None = None,
        params: GenerationParams,
        fields: dict,
    ) -> Iterator[dict]:
        """OpenAI ``chat.completion.chunk`` dicts; fields transformers cannot honour
        raise ``GeneratorRefused``."""
        _refuse_unhonoured(adapter, fields)
        done: dict = {}
        deltas = self._generate(messages, adapter, params, fields, done)
        include_usage = bool((fields.get("stream_options") or {}).get("include_usage"))
        first = next(deltas, None)  # the length check and loading happen before the first chunk
        head = openai_shape.chunk_head(adapter)
        yield from openai_shape.chunks(head, _prepend(first, deltas), done, include_usage)

    def _generate(
        self,
        messages: list[Message],
        adapter: str | None,
        params: GenerationParams,
        fields: dict,
        done: dict,
    ) -> Iterator[str]:
        """Text deltas; ``done`` gets ``prompt_tokens``, ``completion_tokens``
        and ``finish_reason``.

        ``fields`` (the API client's) override ``params``; with a requested length the
        prompt plus it must fit the model's positions (``GeneratorRefused`` otherwise).
        """
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        if adapter is None:
            raise GeneratorError("the peft generator serves adapters only; name one")
        manifest = self.registry.get(adapter)
        with self._lock:
            model, tokenizer = self._model(manifest)
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        done["prompt_tokens"] = prompt_tokens = int(inputs["input_ids"].shape[1])
        limit = getattr(model.config, "max_position_embeddings", None) or tokenizer.model_max_length
        check_context(prompt_tokens, int(limit), fields)
        asked = requested_length(fields)
        max_new = asked[1] if asked else params.max_tokens
        temperature = fields.get("temperature", params.temperature)
        seed = fields.get("seed", params.seed)
        if seed is not None:
            torch.manual_seed(seed)
        sampling = (
            {"do_sample": True, "temperature": temperature}
            if temperature > 0
            else {"do_sample": False}
        )
        for name, value in {**(params.extra or {}), **fields}.items():
            if name in GENERATE_ARGS and value is not None:
                sampling[GENERATE_ARGS[name]] = (
                    [value] if name == "stop" and isinstance(value, str) else value
                )
        if "stop_strings" in sampling:
            sampling["tokenizer"] = tokenizer
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            **inputs,
            max_new_tokens=max_new,
            streamer=streamer,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            **sampling,
        )
        errors: list[BaseException] = []
        outputs: list = []
        cancelled = threading.Event()
        kwargs["stopping_criteria"] = StoppingCriteriaList([_Cancelled(cancelled)])

        def run() -> None:
            try:
                with torch.no_grad():
                    outputs.append(model.generate(**kwargs))
            except Exception as exc:  # noqa: BLE001 (any failure is surfaced to the caller below)
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        stops = sampling.get("stop_strings") or []
        try:
            yield from _cut_at_stop((text for text in streamer if text), stops)
        finally:
            # a consumer that stops reading (the loop guard, a client gone) ends generate at
            # the next token; a thread left generating aborts the process at exit
            cancelled.set()
            worker.join()
        if errors:
            raise GeneratorError(f"adapter {adapter!r} failed to generate: {errors[0]}")
        generated = outputs[0][0][prompt_tokens:].tolist()
        done["completion_tokens"] = len(generated)
        ended = bool(generated) and generated[-1] == tokenizer.eos_token_id
        done["finish_reason"] = "length" if len(generated) >= max_new and not ended else "stop"

    def health(self) -> bool:
        return True

    def models(self) -> list[str]:
        return [
            m.name
            for m in self.registry.list()
            if is_generative(m.kind) and served_by(m.kind) == PEFT
        ]


# API / sampling fields -> transformers ``generate`` arguments
GENERATE_ARGS = {
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "min_tokens": "min_new_tokens",
    "stop": "stop_strings",
}
# what the API client may set for a peft-served adapter, beside GENERATE_ARGS
HONOURED = {
    "temperature",
    "seed",
    "max_tokens",
    "max_completion_tokens",
    "stream_options",
    *GENERATE_ARGS,
}
# values that ask for nothing beyond plain generation
NEUTRAL = {"n": 1, "logprobs": False, "top_logprobs": 0, "tool_choice": "none"}


def _refuse_unhonoured(adapter: str | None, fields: dict) -> None:
    """``GeneratorRefused`` naming every field transformers+peft cannot honour (n > 1,
    logprobs, tools...)."""
    names = [
        name
        for name, value in fields.items()
        if value is not None and name not in HONOURED and NEUTRAL.get(name, object()) != value
    ]
    names += [
        f"stream_options.{key}"
        for key in (fields.get("stream_options") or {})
        if key != "include_usage"
    ]
    if names:
        raise GeneratorRefused(
            f"{', '.join(names)}: adapter {adapter!r} is served by transformers+peft, which cannot "
            f"honour {'it' if len(names) == 1 else 'them'}; it honours "
            f"{', '.join(sorted(HONOURED))}",
            names[0],
        )


class _Cancelled:
    """A transformers stopping criterion: stop every sequence once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), device=input_ids.device)


def _cut_at_stop(deltas: Iterator[str], stops: list[str]) -> Iterator[str]:
    """The deltas without the stop string ``generate`` ended on (vLLM and OpenAI leave it out).

    The last few characters are held back until the end, where the first stop string
    among them and anything after it are dropped.
    """
    if not stops:
        yield from deltas
        return
    hold = 2 * max(len(s) for s in stops) + 16  # a stop string and the rest of its last token
    buffer = ""
    for delta in deltas:
        buffer += delta
        if len(buffer) > hold:
            yield buffer[:-hold]
            buffer = buffer[-hold:]
    cuts = [buffer.find(s) for s in stops if s in buffer]
    if cuts:
        buffer = buffer[: min(cuts)]
    if buffer:
        yield buffer


def _prepend(first: str | None, rest: Iterator[str]) -> Iterator[str]:
    if first is not None:
        yield first
    yield from rest


def folder_name(model: str) -> str:
    """The last path part of a model path or hub id, for comparing base models."""
    return Path(model.rstrip("/")).name
