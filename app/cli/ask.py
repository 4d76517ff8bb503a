"""`ragtune ask`: answer a question, or a JSONL file of them, with sources."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import (
    CollectionOption,
    FileTypeOption,
    JsonFlag,
    RetrieverOption,
    SourceOption,
    TagOption,
    emit_json,
    load_cli_settings,
    make_filter,
)
from app.cli.errors import fail, user_errors
from app.prompting import MODES


def read_questions(path: Path) -> list[str]:
    """Questions of a JSONL file; bad lines are reported by number and skipped."""
    if not path.exists():
        fail(f"{path}: no such file")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            question = record["question"] if isinstance(record, dict) else None
            if not isinstance(question, str) or not question.strip():
                raise ValueError("'question' must be a non-empty string")
            questions.append(question)
        except (json.JSONDecodeError, KeyError, ValueError) as exc:
            typer.echo(f"warning: {path}, line {number}: skipped ({exc})", err=True)
    return questions


def ask(
    question: Annotated[str | None, typer.Argument(help="The question (or use --file).")] = None,
    collection: CollectionOption = None,
    mode: Annotated[
        str | None, typer.Option(help=f"Prompting mode: {', '.join(MODES)} (default: settings).")
    ] = None,
    k: Annotated[
        int | None, typer.Option("--k", min=1, max=50, help="Chunks retrieved (RAG).")
    ] = None,
    retriever: RetrieverOption = None,
    source: SourceOption = None,
    file_type: FileTypeOption = None,
    tag: TagOption = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help='JSONL with one {"question": ...} per line.'),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write JSONL here instead of stdout.")
    ] = None,
    retrieve_only: Annotated[
        bool, typer.Option("--retrieve-only", help="Only retrieve sources; no generation.")
    ] = False,
    adapter: Annotated[
        str | None, typer.Option(help="Adapter to answer with (default: base).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question (or a file of them) with its sources.

    With --file the answers are written as JSONL records
    {"question", "answer", "sources": [{"source", "page", "score", "text"}], "latency_s"}.
    """
    from app.chat import Answer
    from app.components import build_chat_service

    if (question is None) == (file is None):
        fail("give either a QUESTION or --file")
    if mode is not None and mode not in MODES:
        fail(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if retrieve_only and mode not in (None, "rag"):
        fail("--retrieve-only needs --mode rag")
    settings = load_cli_settings()
    questions = read_questions(file) if file else [question]
    batch = file is not None
    options = {"collection": collection, "k": k, "retriever": retriever}
    flt = make_filter(source, file_type, tag)
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    with user_errors():
        chat = build_chat_service(settings)
        for text in questions:
            if retrieve_only:
                started = time.perf_counter()
                sources = chat.retrieve(text, flt=flt, **options)
                result = Answer(text, "", sources, "rag", time.perf_counter() - started)
                record = result.to_dict() | {"answer": None}
            elif batch or as_json:
                result = chat.answer(text, adapter=adapter, mode=mode, flt=flt, **options)
                record = result.to_dict()
            else:
                _stream_to_terminal(chat, text, adapter=adapter, mode=mode, flt=flt, **options)
                continue
            if batch:
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()
            elif as_json:
                emit_json(record)
            else:
                print_sources(result.sources)
    if output:
        sink.close()
        typer.echo(f"wrote {len(questions)} answers to {output}", err=True)


def _stream_to_terminal(chat, text: str, *, adapter: str | None, **kwargs) -> None:
    turn = chat.prepare(text, **kwargs)
    for delta in chat.stream(turn, adapter=adapter):
        typer.echo(delta, nl=False)
    typer.echo()
    print_sources(turn.sources)


def print_sources(sources) -> None:
    """Numbered sources with page, heading and score."""
    if not sources:
        return
    typer.echo("\nSources:")
    for number, source in enumerate(sources, 1):
        page = f", page {source.page}" if source.page else ""
        heading = f" - {source.heading}" if source.heading else ""
        typer.echo(f"  [{number}] {source.source}{page}{heading} (score {source.score:.3f})")
        if source.also_in:
            typer.echo(f"      also in: {', '.join(source.also_in)}")
