"""`ragtune eval ...`: measure retrieval (and, later, whole answers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from app.cli.bench import bench
from app.cli.common import CollectionOption, JsonFlag, emit_json, load_cli_settings
from app.cli.errors import fail, user_errors
from evals.concurrency import DEFAULT_CONCURRENCY

eval_cli = typer.Typer(help="Evaluate retrieval and answers.", no_args_is_help=True)
eval_cli.command("bench")(bench)


@eval_cli.command("retrieval")
def retrieval(
    dataset: Annotated[
        Path, typer.Option(help='JSONL, one {"question", "relevant": [source paths]} per line.')
    ],
    collection: CollectionOption = None,
    retrievers: Annotated[
        str, typer.Option(help="Comma-separated retrievers to compare.")
    ] = "dense,bm25,hybrid",
    depth: Annotated[
        int, typer.Option(min=10, help="Chunks retrieved per question before de-duplication.")
    ] = 30,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the JSON here.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """hit@1/3/5, MRR@10 and nDCG@10 of each retriever on a labeled question set.

    Chunks are de-duplicated to documents (a file counts once, at its best rank) before
    scoring, since the labels name documents.
    """
    import json

    from app.components import build_embedder, build_retrievers, build_store
    from evals.retrieval_eval import evaluate, load_dataset

    settings = load_cli_settings()
    name = collection or settings.indexing.default_collection
    with user_errors():
        questions = load_dataset(dataset)
        store = build_store(settings)
        available = build_retrievers(settings, store, build_embedder(settings))
        chosen = [r.strip() for r in retrievers.split(",") if r.strip()]
        unknown = [r for r in chosen if r not in available]
        if unknown:
            fail(f"unknown retriever(s) {', '.join(unknown)}; choose from {', '.join(available)}")
        functions = {
            kind: (lambda q, r=available[kind]: [c.source for c in r.retrieve(q, name, depth)])
            for kind in chosen
        }
        functions[chosen[0]](questions[0].question)  # warm-up: model load is not latency
        with tqdm(
            total=len(questions) * len(chosen), desc="eval retrieval", disable=as_json
        ) as bar:
            report = evaluate(questions, functions, name, on_question=bar.update)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report.to_dict(), indent=2))
    if as_json:
        emit_json(report.to_dict())
    else:
        typer.echo(f"{report.questions} questions on collection {name!r}\n")
        typer.echo(report.table())


@eval_cli.command("run")
def run(
    suite: Annotated[
        str,
        typer.Option(
            "--suite",
            "--data",
            help="A suite YAML (evals/suites/), a QA file (JSONL or CSV: question, answer or "
            "reference, optional source) or a dataset name (`ragtune data list`).",
        ),
    ],
    variants: Annotated[
        str,
        typer.Option(
            help="Comma-separated variant names (`ragtune variants list`) or specs: "
            "zero-shot | few-shot | rag:COLLECTION, then +ADAPTER, @k=N, @retriever=R "
            "(rag:), @shots=N, @demos=DATASET (few-shot); e.g. rag:docs+my-lora@k=6."
        ),
    ],
    variants_file: Annotated[
        Path | None, typer.Option(help="Variants YAML (default: settings).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Report folder (default: <data_dir>/evals/<suite>-<time>)."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N items (quick checks).")
    ] = None,
    split: Annotated[
        str, typer.Option(help="With a dataset: the split to answer (train, dev, test).")
    ] = "test",
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Answers in flight at once.")
    ] = DEFAULT_CONCURRENCY,
    as_json: JsonFlag = False,
) -> None:
    """Answer every item of a suite with every variant, score, and write the report.

    Writes results.jsonl, summary.json, report.md, report.html (self-contained) and PNG
    plots: metrics with 95% bootstrap intervals, paired permutation tests between every
    pair of variants, and the latency distribution.
    """
    from app.components import build_chat_service, build_embedder, build_registry, build_store
    from app.variants import VariantRunner, load_variants, resolve_list
    from evals.report import report_folder, write_report
    from evals.runner import CLASSIFICATION_METRICS, QA_METRICS, run_suite, summarise
    from evals.suites import load_suite_or_data
    from training.qa_dataset import DatasetStore

    settings = load_cli_settings()
    with user_errors():
        datasets = DatasetStore(settings.datasets_dir)
        loaded = load_suite_or_data(suite, datasets=datasets, split=split)
        for problem in loaded.problems:
            typer.echo(f"warning: {problem} (skipped)", err=True)
        if limit:
            loaded.items = loaded.items[:limit]
        registry = build_registry(settings)
        chosen = resolve_list(
            variants,
            load_variants(variants_file or settings.variants_file),
            adapters=registry.generative(),
        )
        for variant in chosen:  # fail before any work on a missing adapter, dataset or collection
            for adapter in filter(None, (variant.adapter, variant.classifier)):
                registry.get(adapter)
            if variant.demos:
                datasets.get(variant.demos)
        embedder, store = build_embedder(settings), build_store(settings)
        chat = build_chat_service(settings, store=store, embedder=embedder)
        for variant in chosen:
            if variant.mode == "rag" and not variant.classifier:
                store.collection(
                    variant.collection or settings.indexing.default_collection,
                    embedding_model=embedder.name,
                )

        def classifier(name: str):
            from training.classify import load_classifier

            return load_classifier(registry.get(name), registry.path(name))

        metrics = QA_METRICS if loaded.kind == "qa" else CLASSIFICATION_METRICS
        with tqdm(
            total=len(loaded.items) * len(chosen), desc=f"eval {loaded.name}", disable=as_json
        ) as bar:
            results = run_suite(
                loaded,
                VariantRunner(chat).candidates(chosen, classifier),
                embed=embedder.embed,
                on_item=bar.update,
                concurrency=concurrency,
            )
        summary = summarise(results, metrics)
        folder = output or report_folder(settings.evals_dir, loaded.name)
        paths = write_report(
            folder,
            f"{loaded.name}: {', '.join(v.name for v in chosen)}",
            results,
            summary,
            metrics,
            {v.name: v.label() for v in chosen},
        )
    if as_json:
        emit_json({"summary": summary, "files": {k: str(v) for k, v in paths.items()}})
        return
    typer.echo(paths["markdown"].read_text().split("\n## Paired")[0])
    typer.echo(f"report: {paths['html']}\nresults: {paths['results']}")


variants_cli = typer.Typer(
    help="Answering recipes (generator x prompting mode).", no_args_is_help=True
)


@variants_cli.command("list")
def list_variants(
    variants_file: Annotated[
        Path | None, typer.Option(help="Variants YAML (default: settings).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The variants defined for the A/B tab, the eval runner and the API."""
    from app.variants import load_variants

    with user_errors():
        variants = load_variants(variants_file or load_cli_settings().variants_file)
    if as_json:
        emit_json([v.to_dict() for v in variants.values()])
        return
    for variant in variants.values():
        typer.echo(f"{variant.name:<18} {variant.label():<40} {variant.description}")
