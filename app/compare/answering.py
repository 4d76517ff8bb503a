"""An arm answers a suite: its variant, through the eval runner, with prompt sizes measured.

Every answer goes the way the app answers (``app.variants.VariantRunner`` over the chat
service, streamed), scored by ``evals.runner.run_suite``; the few-shot arm reads its
demonstrations from the study's train split and the RAG arms retrieve with the tuned
retriever, fusion and k.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.chat import ChatService, PreparedTurn
from app.compare.arms import Arm
from app.settings import Settings
from app.variants import Variant, VariantRunner, parse_spec
from evals.runner import ItemResult, run_suite
from evals.suites import Suite
from indexing.collection import RetrievalChoice

TokenCounter = Callable[[list[dict[str, str]]], int]


@dataclass
class AnswerRequest:
    """One arm answering one suite.

    ``retrieval``: the tuned ``RetrievalChoice`` as a dict (RAG arms; None: the settings);
    ``demonstrations``: the few-shot file (None: the settings' file); ``label``: the
    progress bar's name.
    """

    arm: Arm
    collection: str
    suite: Suite
    retrieval: dict[str, Any] | None = None
    demonstrations: Path | None = None
    fewshot_count: int = 3
    concurrency: int = 8
    label: str = ""


@dataclass
class AnswerOutcome:
    """The scored answers, the prompt size of each answer (tokens) and the variant used."""

    results: list[ItemResult]
    prompt_tokens: list[int] = field(default_factory=list)
    variant: dict[str, Any] = field(default_factory=dict)


def arm_variant(request: AnswerRequest) -> Variant:
    """The variant an arm answers with, named after the arm: its spec with the tuned
    retriever and k (RAG arms) or the demonstration count (few-shot)."""
    arm, choice = request.arm, request.retrieval
    spec = arm.spec(request.collection)
    if arm.rag and choice:
        spec += f"@k={choice['k']}@retriever={choice['retriever']}"
    if arm.mode == "few-shot":
        spec += f"@shots={request.fewshot_count}"
    return replace(parse_spec(spec), name=arm.name, description=spec)


class MeasuredRunner(VariantRunner):
    """A ``VariantRunner`` that counts the tokens of every prompt it prepares."""

    def __init__(self, chat: ChatService, count_tokens: TokenCounter) -> None:
        super().__init__(chat)
        self.count_tokens = count_tokens
        self.prompt_tokens: list[int] = []
        self._lock = threading.Lock()

    def prepare(self, variant: Variant, question: str) -> PreparedTurn:
        turn = super().prepare(variant, question)
        tokens = self.count_tokens(turn.messages)
        with self._lock:
            self.prompt_tokens.append(tokens)
        return turn


def word_count(messages: list[dict[str, str]]) -> int:
    """Prompt size in words (the fake generator's tokens)."""
    return sum(len(m["content"].split()) for m in messages)


def chat_template_counter(model: str) -> TokenCounter:
    """Prompt size in tokens of ``model``'s chat template (loaded on first use)."""
    lock, loaded = threading.Lock(), {}

    def count(messages: list[dict[str, str]]) -> int:
        with lock:
            if "tokenizer" not in loaded:
                from transformers import AutoTokenizer

                loaded["tokenizer"] = AutoTokenizer.from_pretrained(model)
            tokenizer = loaded["tokenizer"]
        encoded = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return len(encoded["input_ids"])

    return count


class ArmAnswerer:
    """Answers ``AnswerRequest``s with one generator, store and embedder."""

    def __init__(
        self,
        settings: Settings,
        generator,
        store,
        embedder,
        *,
        count_tokens: TokenCounter = word_count,
        progress: bool = True,
    ) -> None:
        self.settings = settings
        self.generator = generator
        self.store = store
        self.embedder = embedder
        self.count_tokens = count_tokens
        self.progress = progress

    def chat(
        self, retrieval: dict[str, Any] | None, demonstrations: Path | None = None
    ) -> ChatService:
        """A chat service retrieving with ``retrieval`` (a ``RetrievalChoice`` dict, its
        fusion included; None: the collection's stored choice or the settings) and showing
        the few-shot ``demonstrations`` file (None: the settings' file)."""
        from app.components import build_chat_service

        settings = self.settings
        if demonstrations is not None:
            settings = settings.model_copy(deep=True)
            settings.prompting.fewshot_file = demonstrations
        chat = build_chat_service(
            settings, generator=self.generator, store=self.store, embedder=self.embedder
        )
        if retrieval:
            choice = RetrievalChoice.from_dict(retrieval)
            chat.tuned = lambda collection: choice
        return chat

    def answer(self, request: AnswerRequest) -> AnswerOutcome:
        """Answer and score every item of ``request.suite`` (one progress bar)."""
        variant = arm_variant(request)
        chat = self.chat(request.retrieval if request.arm.rag else None, request.demonstrations)
        runner = MeasuredRunner(chat, self.count_tokens)
        with tqdm(
            total=len(request.suite.items),
            desc=request.label or request.arm.name,
            disable=not self.progress,
        ) as bar:
            results = run_suite(
                request.suite,
                runner.candidates([variant]),
                embed=self.embedder.embed,
                on_item=bar.update,
                concurrency=request.concurrency,
            )
        return AnswerOutcome(results, runner.prompt_tokens, variant.to_dict())
