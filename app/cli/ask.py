"""`ragtune ask`: answer a question, or a JSONL file of them, with sources.

With ``--file`` the questions are answered ``--concurrency`` at a time (the engine batches
them, ``app.batch``) and written in the file's order; a question that fails gets a record
with its ``error`` and the others go on.
"""

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
from evals.concurrency import DEFAULT_CONCURRENCY


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
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="With --file: questions in flight at once (the engine batches them).",
        ),
    ] = DEFAULT_CONCURRENCY,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question (or a file of them) with its sources.

    With --file the answers are written in the file's order as JSONL records
    {"question", "answer", "sources": [{"source", "page", "score", "text"}], "latency_s"},
    --concurrency at a time, with a progress bar on stderr when writing to --output. A
    question that fails gets {"question", "answer": null, "error"} and a warning; the exit
    code is then 1 (2 when every question failed).
    """
    from app.components import build_chat_service, build_registry, build_store

    if (question is None) == (file is None):
        fail("give either a QUESTION or --file")
    if mode is not None and mode not in MODES:
        fail(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if retrieve_only and mode not in (None, "rag"):
        fail("--retrieve-only needs --mode rag")
    settings = load_cli_settings()
    options = {"collection": collection, "k": k, "retriever": retriever}
    flt = make_filter(source, file_type, tag)
    with user_errors():
        store = build_store(settings)
        chat = build_chat_service(settings, store=store)
        if file is not None:  # one clear error, not one per question
            if retrieve_only or (mode or settings.prompting.default_mode) == "rag":
                store.collection(collection or chat.default_collection, embedding_model=None)
            if adapter:
                build_registry(settings).get(adapter)

        def record(text: str) -> dict:
            if retrieve_only:
                return _retrieved(chat, text, flt=flt, **options)
            return chat.answer(text, adapter=adapter, mode=mode, flt=flt, **options).to_dict()

        if file is None:
            if as_json:
                emit_json(record(question))
            elif retrieve_only:
                print_sources(chat.retrieve(question, flt=flt, **options))
            else:
                _stream_to_terminal(chat, question, adapter=adapter, mode=mode, flt=flt, **options)
            return
        questions = read_questions(file)
        progress = output is not None or sys.stderr.isatty()
        started = time.perf_counter()
        failed = _write_batch(record, questions, output, concurrency, progress)
    _finish(len(questions), failed, output, time.perf_counter() - started)


def _retrieved(chat, text: str, **options) -> dict:
    """The record of a retrieve-only question: its sources, no answer."""
    from app.chat import Answer

    started = time.perf_counter()
    sources = chat.retrieve(text, **options)
    return Answer(text, "", sources, "rag", time.perf_counter() - started).to_dict() | {
        "answer": None
    }


def _write_batch(
    record, questions: list[str], output: Path | None, concurrency: int, progress: bool
) -> int:
    """Write each question's record as JSONL in input order; the number that failed."""
    from app.batch import iter_answers

    failed = 0
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        results = iter_answers(record, questions, concurrency=concurrency, progress=progress)
        for number, (text, result) in enumerate(zip(questions, results), 1):
            if isinstance(result, Exception):
                failed += 1
                typer.echo(f"warning: question {number}: {result}", err=True)
                result = {"question": text, "answer": None, "error": str(result)}
            sink.write(json.dumps(result, ensure_ascii=False) + "\n")
            sink.flush()
    finally:
        if output:
            sink.close()
    return failed


def _finish(total: int, failed: int, output: Path | None, seconds: float) -> None:
    """The summary on stderr (with --output or failures); exit 1 when some failed,
    2 when all did."""
    if output or failed:
        typer.echo(
            f"wrote {total} answers{f' to {output}' if output else ''} in {seconds:.1f} s"
            + (f"; {failed} failed (records with 'error')" if failed else ""),
            err=True,
        )
    if failed:
        raise typer.Exit(2 if failed == total else 1)


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
