"""`ragtune eval ...`: measure retrieval (and, later, whole answers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from app.cli.common import CollectionOption, JsonFlag, emit_json, load_cli_settings
from app.cli.errors import fail, user_errors

eval_cli = typer.Typer(help="Evaluate retrieval and answers.", no_args_is_help=True)


@eval_cli.command("retrieval")
def retrieval(
    dataset: Annotated[
        Path, typer.Option(help='JSONL, one {"question", "relevant": [source paths]} per line.')
    ],
    collection: CollectionOption = None,
    retrievers: Annotated[
        str, typer.Option(help="Comma-separated retrievers to compare.")
    ] = "dense,bm25,hybrid",
    depth: Annotated[int, typer.Option(min=10, help="Chunks retrieved per question before de-duplication.")] = 30,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the JSON here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """hit@1/3/5, MRR@10 and nDCG@10 of each retriever on a labeled question set.

    Chunks are de-duplicated to documents (a file counts once, at its best rank) before
    scoring, since the labels name documents.
    """
    import json

    from app.components import build_embedder, build_retrievers, build_store
    from evals.retrieval_eval import DatasetError, evaluate, load_dataset

    settings = load_cli_settings()
    name = collection or settings.indexing.default_collection
    try:
        questions = load_dataset(dataset)
    except DatasetError as exc:
        fail(str(exc))
    with user_errors():
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
        with tqdm(total=len(questions) * len(chosen), desc="eval retrieval", disable=as_json) as bar:
            report = evaluate(questions, functions, name, on_question=bar.update)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report.to_dict(), indent=2))
    if as_json:
        emit_json(report.to_dict())
    else:
        typer.echo(f"{report.questions} questions on collection {name!r}\n")
        typer.echo(report.table())
