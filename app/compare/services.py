"""What a study's stages call, injected: the real pieces for the CLI and the tab, fakes in tests.

Each field is one piece of ragtune the study orchestrates (datasets, retrieval tuning,
RAFT examples, training, answering); ``build_services`` wires the real ones from the
settings through ``app.components``. Stages only see this object, so a test replaces
any piece with a small function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.compare.budget import Budget
from evals.suites import Suite
from indexing.errors import NotFound, Unavailable
from training.qa_dataset import Dataset, DatasetStore, QAPair

if TYPE_CHECKING:
    from app.compare.answering import AnswerOutcome, AnswerRequest
    from app.settings import Settings
    from training.config import SFTArgs
    from training.registry import Manifest


class StudyUnavailable(Unavailable):
    """The engine (or the collection) a study needs is not there; checked before work starts."""


@dataclass
class StudyServices:
    """The pieces a study runs; every callable raises a ``RagtuneError`` the user can fix.

    - ``check(collection)``: the collection exists with chunks and the engine answers.
    - ``synthesize(collection, n, name, seed, fractions)`` -> (dataset, counts by reason).
    - ``import_pairs(path, name, collection, seed, fractions)`` -> (dataset, bad-line problems).
    - ``read_pairs(path)`` -> (pairs, bad-line problems) of a QA file.
    - ``tune(collection, dev, test, grid, seed)`` -> ``TuningResult.to_dict()`` (``pick``,
      ``default``, ``dev`` rows, ...).
    - ``train(args)`` -> the adapter's manifest (``training.sft.train_sft``).
    - ``train_raft(args, collection, pairs, output, budget, retrieval)`` -> the manifest of
      a RAFT adapter (``app.raft.train_raft``; ``retrieval``: the RAG arms' choice or None).
    - ``adapter_bytes(name)`` -> the adapter's size on disk.
    - ``answer(request)`` -> the arm's scored answers (``app.compare.answering``).
    """

    datasets: DatasetStore
    check: Callable[[str], None]
    synthesize: Callable[..., tuple[Dataset, dict[str, Any]]]
    import_pairs: Callable[..., tuple[Dataset, list[str]]]
    read_pairs: Callable[[Path], tuple[list[QAPair], list[str]]]
    tune: Callable[..., dict[str, Any]]
    train: Callable[[SFTArgs], Manifest]
    train_raft: Callable[..., Manifest]
    adapter_bytes: Callable[[str], int]
    answer: Callable[[AnswerRequest], AnswerOutcome]
    base_model: str
    system_prompt: str
    general_suite: Suite


def build_services(settings: Settings, *, progress: bool = True) -> StudyServices:
    """The real pieces: the configured generator (vLLM), store, embedder and registry."""
    from app.compare.answering import ArmAnswerer, chat_template_counter, word_count
    from app.components import (
        build_embedder,
        build_generator_and_adapters,
        build_registry,
        build_store,
    )
    from app.models import resolve_generator_model
    from app.raft import RaftOptions, serving_distractors
    from app.raft import train_raft as raft_trainer
    from app.synth import dataset_store, import_dataset, synth_generator, synthesize_dataset
    from evals.suites import load_suite
    from training.qa_dataset import read_pairs
    from training.sft import train_sft

    repo = Path(__file__).resolve().parents[2]
    store, embedder = build_store(settings), build_embedder(settings)
    registry = build_registry(settings)
    generator, _ = build_generator_and_adapters(settings, registry)
    datasets = dataset_store(settings)
    fake = settings.generator.mode == "fake"
    base_model = resolve_generator_model(settings.generator.model, settings.models_dir)
    answerer = ArmAnswerer(
        settings,
        generator,
        store,
        embedder,
        count_tokens=word_count if fake else chat_template_counter(base_model),
        progress=progress,
    )

    def check(collection: str) -> None:
        if collection not in store.collection_names():
            known = ", ".join(store.collection_names()) or "none yet"
            raise NotFound(
                f"no collection {collection!r} (collections: {known}); ingest it first: "
                f"ragtune ingest FOLDER --collection {collection}"
            )
        if store.collection(collection, embedding_model=embedder.name).count() == 0:
            raise NotFound(f"collection {collection!r} is empty; ingest documents into it first")
        if not generator.health():
            raise StudyUnavailable(
                "the generator does not answer; start it with `ragtune serve` or `ragtune "
                "engine`, or point generator.url at a running vLLM server"
            )

    def synthesize(collection, n, name, seed, fractions):
        writer, info = synth_generator(settings)
        dataset, report = synthesize_dataset(
            settings,
            writer,
            store,
            embedder,
            collection=collection,
            n=n,
            name=name,
            seed=seed,
            progress=progress,
            generator_info=info,
            overwrite=True,
        )
        return resplit(datasets, dataset, fractions), report

    def import_pairs(path, name, collection, seed, fractions):
        dataset, problems = import_dataset(
            settings, path, name=name, collection=collection, seed=seed, overwrite=True
        )
        return resplit(datasets, dataset, fractions), problems

    def tune(collection, dev, test, grid, seed):
        from evals.retrieval_tuning import tune_retrieval

        result = tune_retrieval(
            store,
            embedder,
            settings.indexing,
            collection,
            dev,
            test,
            budget=grid,
            seed=seed,
            progress=progress,
            default_k=settings.prompting.top_k,
        )
        return result.to_dict()

    def train_raft(args, collection, pairs, output, budget: Budget, retrieval):
        # As many sources per example as the RAG arms retrieve (k - 1 distractors + oracle).
        chat = answerer.chat(retrieval)
        options = RaftOptions(
            oracle_share=budget.raft_oracle_share,
            distractors=serving_distractors(chat, collection),
            retriever=chat.retrieval_for(collection)[0],
            seed=args.seed,
        )
        return raft_trainer(
            args,
            chat,
            registry,
            settings.runs_dir,
            collection=collection,
            pairs=pairs,
            output=output,
            options=options,
            progress=progress,
        )

    return StudyServices(
        datasets=datasets,
        check=check,
        synthesize=synthesize,
        import_pairs=import_pairs,
        read_pairs=read_pairs,
        tune=tune,
        train=lambda args: train_sft(args, registry, settings.runs_dir),
        train_raft=train_raft,
        adapter_bytes=registry.size_bytes,
        answer=answerer.answer,
        base_model=base_model,
        system_prompt=settings.prompting.system_prompt,
        general_suite=load_suite(repo / "evals" / "suites" / "forgetting.yaml", base=repo),
    )


def resplit(store: DatasetStore, dataset: Dataset, fractions: tuple[float, ...]) -> Dataset:
    """``dataset`` saved again with the study's split ``fractions`` (same seed and pairs)."""
    pairs = [p for split in dataset.pairs().values() for p in split]
    return store.save(dataset.manifest, pairs, fractions=tuple(fractions), overwrite=True)
