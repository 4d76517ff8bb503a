"""Generator for adapters vLLM cannot serve: prompt, prefix and IA3 adapters, and full finetunes.

Runs transformers + peft in this process, one adapter resident at a time (loading is
the slow part; switching is rare). Streaming uses transformers' TextIteratorStreamer
with ``generate`` on a worker thread, so the interface matches the vLLM backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from app.generation.base import GenerationParams, GeneratorError, Message
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

        folder = self.registry.path(manifest.name)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if manifest.kind == "full":
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        else:
            from peft import PeftModel

            base = AutoModelForCausalLM.from_pretrained(manifest.base_model, dtype=torch.float32)
            model = PeftModel.from_pretrained(base, folder)
        model.eval()
        self._loaded = (manifest.name, model, tokenizer)
        return model, tokenizer

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]:
        """Text deltas from the adapter's model."""
        import torch
        from transformers import TextIteratorStreamer

        if adapter is None:
            raise GeneratorError("the peft generator serves adapters only; name one")
        manifest = self.registry.get(adapter)
        with self._lock:
            model, tokenizer = self._model(manifest)
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        sampling = {"do_sample": True, "temperature": params.temperature} if params.temperature > 0 else {"do_sample": False}
        kwargs = dict(**inputs, max_new_tokens=params.max_tokens, streamer=streamer,
                      pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id, **sampling)  # fmt: skip
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.no_grad():
                    model.generate(**kwargs)
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        yield from (text for text in streamer if text)
        worker.join()
        if errors:
            raise GeneratorError(f"adapter {adapter!r} failed to generate: {errors[0]}")

    def health(self) -> bool:
        return True

    def models(self) -> list[str]:
        return [m.name for m in self.registry.list() if m.kind in PEFT_KINDS]


PEFT_KINDS = {"prompt", "prefix", "ia3", "full"}


def folder_name(model: str) -> str:
    """The last path part of a model path or hub id, for comparing base models."""
    return Path(model.rstrip("/")).name
