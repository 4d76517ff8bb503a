"""The stages of a study, in order, and what each one does.

    dataset -> retrieval -> train-lora, train-raft, train-<method>... -> answer-<arm>...
            -> forgetting-base, forgetting-<adapter>... -> report

Each stage is a function of a ``Context`` returning its JSON-ready result, which the
study writes to ``stages/<stage>.json``. ``needs`` names the stages whose results it
reads: when one of them failed, the stage fails too, saying which (so an arm whose
adapter did not train gets a row saying why). Only the dataset is ``fatal``: without it
nothing can be compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.compare.answering import AnswerRequest
from app.compare.arms import Arm, Trained, study_arms, trained_adapters
from app.compare.budget import Budget
from app.compare.data import (
    StudyData,
    apply_test_file,
    demonstration_records,
    sft_records,
    suite_of,
    write_jsonl,
)
from app.compare.services import StudyServices
from app.compare.study import Study, StudyConfig, StudyError
from evals.runner import ItemResult


@dataclass
class Context:
    """What a stage works with."""

    study: Study
    config: StudyConfig
    budget: Budget
    services: StudyServices

    def data(self) -> StudyData:
        """The dataset stage's pairs."""
        return StudyData.from_dict(self.study.result("dataset"))

    def retrieval(self) -> dict[str, Any] | None:
        """The retrieval the RAG arms use (a ``RetrievalChoice`` dict), None when not tuned."""
        result = self.study.result("retrieval") or {}
        return result.get("used")


@dataclass(frozen=True)
class Stage:
    """One step of a study."""

    name: str
    run: Callable[[Context], dict[str, Any]]
    needs: tuple[str, ...] = ()
    fatal: bool = False


def dataset_stage(ctx: Context) -> dict[str, Any]:
    """Synthesise or import the pairs (or take a saved dataset), apply ``--test``, cap the test."""
    config, services, budget = ctx.config, ctx.services, ctx.budget
    own = f"{config.name}-data"  # made by this study; an interrupted attempt is redone
    details: dict[str, Any] = {}
    problems: list[str] = []
    if config.synth:
        if services.datasets.exists(own):
            services.datasets.delete(own)
        dataset, details = services.synthesize(
            config.collection, config.synth, own, config.seed, budget.split
        )
    elif Path(config.data).is_file():
        if services.datasets.exists(own):
            services.datasets.delete(own)
        dataset, problems = services.import_pairs(
            Path(config.data), own, config.collection, config.seed, budget.split
        )
    else:
        dataset = services.datasets.get(config.data)
        made_from = dataset.manifest.collection
        if made_from and made_from != config.collection:
            problems.append(
                f"dataset {dataset.name!r} was made from collection {made_from!r}, "
                f"not {config.collection!r}"
            )
    data = StudyData(dataset.name, dataset.pairs(), counts=dict(dataset.manifest.counts))
    data.problems = list(problems)
    if config.test_file:
        test, bad = services.read_pairs(Path(config.test_file))
        data.problems += bad
        if not test:
            raise StudyError(f"{config.test_file}: no usable question/answer pairs")
        data = apply_test_file(
            data,
            test,
            config.test_file,
            services.datasets.near_duplicate_ratio,
            drop_overlap=config.drop_overlap,
        )
    if not data.splits["train"]:
        raise StudyError(f"dataset {dataset.name!r} has no training pairs")
    if not data.splits["test"]:
        raise StudyError(f"dataset {dataset.name!r} has no test pairs")
    data.counts["test_available"] = len(data.splits["test"])
    data.splits["test"] = data.splits["test"][: budget.test_items]
    return {**data.to_dict(), "synth": details}


CHOICE_FIELDS = ("chunk_tokens", "retriever", "fusion", "alpha", "k")


def usable_choice(tuning: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The tuned choice the RAG arms can use on the collection as it is chunked, and a note.

    The pick itself when it keeps the collection's chunk size; otherwise the best dev row
    (MRR@10) at that size, since the study does not re-chunk the user's collection.
    """
    pick, default = tuning["pick"], tuning["default"]
    if pick["chunk_tokens"] == default["chunk_tokens"]:
        return pick, ""
    same = [r for r in tuning.get("dev", []) if r["chunk_tokens"] == default["chunk_tokens"]]
    if not same:
        return default, "The pick needs re-chunking; the RAG arms use the default."
    best = max(same, key=lambda r: r["mrr@10"])
    used = {k: best.get(k) for k in CHOICE_FIELDS}
    return used, (
        f"The pick re-chunks to {pick['chunk_tokens']} tokens, which this study does not do to "
        f"the collection; the RAG arms use the best setting at its {default['chunk_tokens']} "
        f"tokens. `ragtune retrieval apply` re-chunks the collection to the pick."
    )


def retrieval_stage(ctx: Context) -> dict[str, Any]:
    """Tune retrieval on the dev split (source-labelled pairs); skipped when it cannot be."""
    if not ctx.budget.retrieval_grid:
        skipped = f"the {ctx.budget.name} budget does not tune retrieval"
        return {"skipped": skipped, "pick": None, "used": None}
    data = ctx.data()
    dev = [p for p in data.splits["dev"] if p.source]
    test = [p for p in data.splits["test"] if p.source]
    if not dev or not test:
        skipped = "the dev or test pairs have no source labels to tune retrieval on"
        return {"skipped": skipped, "pick": None, "used": None}
    tuning = ctx.services.tune(
        ctx.config.collection, dev, test, ctx.budget.retrieval_grid, ctx.config.seed
    )
    used, note = usable_choice(tuning)
    return {**tuning, "used": used, "note": note}


def train_stage(trained: Trained) -> Callable[[Context], dict[str, Any]]:
    """The stage training ``trained`` on the train split (RAFT examples for the RAFT arm)."""

    def run(ctx: Context) -> dict[str, Any]:
        from training.config import SFTArgs, validate

        services, budget = ctx.services, ctx.budget
        train = ctx.data().splits["train"]
        batch = budget.raft_batch_size if trained.raft else budget.sft_batch_size
        steps = min(budget.sft_max_steps, math.ceil(budget.sft_max_epochs * len(train) / batch))
        path = ctx.study.work / f"sft-{trained.key}.jsonl"
        if not trained.raft:
            write_jsonl(path, sft_records(train, services.system_prompt))
        args = validate(
            SFTArgs(
                name=trained.adapter,
                dataset=str(path),
                base_model=services.base_model,
                method=trained.method,
                max_steps=max(1, steps),
                batch_size=batch,
                learning_rate=budget.sft_learning_rate,
                max_length=budget.sft_max_length,
                lora_r=budget.lora_r,
                lora_alpha=2 * budget.lora_r,
                logging_steps=max(1, min(5, steps // 4)),
                save_steps=max(steps, 1),
                seed=ctx.config.seed,
                forgetting_check=budget.perplexity_check,
                overwrite=True,  # a re-run replaces what an interrupted attempt left
            )
        )
        if trained.raft:  # builds the examples (written to path), then trains on them
            manifest = services.train_raft(
                args, ctx.config.collection, train, path, budget, ctx.retrieval()
            )
        else:
            manifest = services.train(args)
        return {
            "adapter": trained.adapter,
            "adapter_bytes": services.adapter_bytes(trained.adapter),
            "manifest": manifest.to_dict(),
        }

    return run


def _answered(outcome) -> dict[str, Any]:
    results: list[ItemResult] = outcome.results
    failed = [r for r in results if r.error]
    if results and len(failed) == len(results):
        raise StudyError(f"every answer failed: {failed[0].error}")
    return {
        "variant": outcome.variant,
        "results": [r.to_dict() for r in results],
        "prompt_tokens": outcome.prompt_tokens,
    }


def answer_stage(arm: Arm) -> Callable[[Context], dict[str, Any]]:
    """The stage where ``arm`` answers the test pairs."""

    def run(ctx: Context) -> dict[str, Any]:
        data, budget = ctx.data(), ctx.budget
        demos = None
        if arm.mode == "few-shot":
            records = demonstration_records(data.splits["train"], budget.fewshot_count)
            demos = write_jsonl(ctx.study.work / "demonstrations.jsonl", records)
        request = AnswerRequest(
            arm,
            ctx.config.collection,
            suite_of(f"{ctx.config.name}-test", data.splits["test"]),
            retrieval=ctx.retrieval() if arm.rag else None,
            demonstrations=demos,
            fewshot_count=budget.fewshot_count,
            concurrency=budget.concurrency,
            label=arm.stage,
        )
        return {"arm": arm.name, **_answered(ctx.services.answer(request))}

    return run


def forgetting_stage(trained: Trained | None) -> Callable[[Context], dict[str, Any]]:
    """The base model (``trained`` None) or an adapter answering the general suite zero-shot."""

    def run(ctx: Context) -> dict[str, Any]:
        suite = ctx.services.general_suite
        suite = replace(suite, items=suite.items[: ctx.budget.forgetting_items])
        key = trained.key if trained else "base"
        arm = Arm(f"general-{key}", "the general suite, zero-shot", "zero-shot", trained)
        request = AnswerRequest(
            arm,
            ctx.config.collection,
            suite,
            concurrency=ctx.budget.concurrency,
            label=f"forgetting-{key}",
        )
        out = {"adapter": trained.adapter if trained else None, "suite": suite.name}
        return {**out, **_answered(ctx.services.answer(request))}

    return run


def plan(config: StudyConfig, report: Callable[[Context], dict[str, Any]]) -> list[Stage]:
    """Every stage of a study, in running order; ``report`` is the last (it always runs)."""
    trained = trained_adapters(config.name, config.methods)
    stages = [
        Stage("dataset", dataset_stage, fatal=True),
        Stage("retrieval", retrieval_stage, ("dataset",)),
    ]
    stages += [Stage(t.stage, train_stage(t), ("dataset",)) for t in trained]
    for arm in study_arms(config.name, config.methods):
        needs = ("dataset",) + ((arm.trained.stage,) if arm.trained else ())
        stages.append(Stage(arm.stage, answer_stage(arm), needs))
    stages.append(Stage("forgetting-base", forgetting_stage(None)))
    stages += [
        Stage(f"forgetting-{t.key}", forgetting_stage(t), ("forgetting-base", t.stage))
        for t in trained
    ]
    stages.append(Stage("report", report))
    return stages
