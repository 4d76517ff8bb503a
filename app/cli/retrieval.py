"""`ragtune retrieval ...`: tune retrieval on a labelled question set, apply, show, reset."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import CollectionOption, JsonFlag, emit_json, load_cli_settings
from app.cli.errors import user_errors

retrieval_cli = typer.Typer(
    help="Tune retrieval (chunk size, retriever, fusion, k) on a collection's labelled "
    "questions and apply the pick to the collection.",
    no_args_is_help=True,
)

DataOption = Annotated[
    str,
    typer.Option(
        help="A dataset name (`ragtune data list`; its dev and test splits) or a file: JSONL "
        'lines {"question", "relevant": (list of paths)} or question/answer pairs with a "source" '
        "(JSONL or CSV), split in half by --seed."
    ),
]


@retrieval_cli.command("tune")
def tune(
    data: DataOption,
    collection: CollectionOption = None,
    budget: Annotated[
        str,
        typer.Option(
            help="Grid size: quick (3 chunk sizes, 5 retrievers) or standard (6 sizes, 7)."
        ),
    ] = "quick",
    seed: Annotated[int, typer.Option(help="Seed of the document sample and the bootstrap.")] = 0,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Re-chunk the collection to the pick's size and store the pick on it.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Pick chunk size, retriever and k by MRR@10 on the dev split; check on the test split.

    Compares chunk sizes, dense, BM25 and hybrid retrieval (convex weights and RRF) and k
    on the dev split, picks by MRR@10 and scores the pick and the default on the test split.

    A question is a hit when a chunk of the file it is labelled with is retrieved (file
    names match by path suffix, as in `ragtune eval retrieval`). Other chunk sizes are
    tried on scratch copies of the collection (a seeded sample of its files when it is
    large), removed afterwards. Intervals are 95% bootstrap intervals; the p-value is a
    paired permutation test of MRR@10 on the test split.
    """
    from app.components import build_embedder, build_store
    from evals.retrieval_tuning import apply_choice, tune_retrieval

    settings = load_cli_settings()
    name = collection or settings.indexing.default_collection
    with user_errors():
        dev, test, problems = _splits(settings, data, seed)
        for problem in problems:
            typer.echo(f"skipped: {problem}", err=True)
        store, embedder = build_store(settings), build_embedder(settings)
        result = tune_retrieval(
            store,
            embedder,
            settings.indexing,
            name,
            dev,
            test,
            budget=budget,
            seed=seed,
            progress=not as_json,
            default_k=settings.prompting.top_k,
        )
        if apply:
            started = time.perf_counter()
            apply_choice(
                store, embedder, settings.indexing, name, result.pick, progress=not as_json
            )
            applied_s = time.perf_counter() - started
    if as_json:
        emit_json(result.to_dict() | {"applied": apply})
        return
    typer.echo(_report(result))
    if apply:
        typer.echo(
            f"\napplied to {name!r} in {applied_s:.0f} s: RAG on it now uses "
            f"{_describe(result.pick)} unless a request sets its own retriever or k."
        )
    else:
        pick = result.pick
        command = [
            "ragtune",
            "retrieval",
            "apply",
            "--collection",
            name,
            "--chunk-tokens",
            str(pick.chunk_tokens),
            "--retriever",
            pick.retriever,
            *(["--fusion", pick.fusion] if pick.fusion else []),
            *(["--alpha", f"{pick.alpha:g}"] if pick.alpha is not None else []),
            "--k",
            str(pick.k),
        ]
        typer.echo(f"\nnot applied; to apply the pick:\n  {shlex.join(command)}")


@retrieval_cli.command("apply")
def apply_command(
    chunk_tokens: Annotated[int, typer.Option(min=32, help="Chunk size in embedder tokens.")],
    retriever: Annotated[str, typer.Option(help="dense, bm25 or hybrid.")],
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Chunks put in a RAG prompt.")],
    collection: CollectionOption = None,
    fusion: Annotated[str, typer.Option(help="Hybrid fusion: convex or rrf.")] = "",
    alpha: Annotated[
        float | None, typer.Option(min=0, max=1, help="Dense weight of convex fusion.")
    ] = None,
) -> None:
    """Store a retrieval choice on a collection (re-chunked when the size differs).

    RAG answers on the collection then use it unless a request sets its own retriever or k.
    """
    from app.components import build_embedder, build_store
    from evals.retrieval_tuning import RetrievalChoice, TuningError, apply_choice

    settings = load_cli_settings()
    name = collection or settings.indexing.default_collection
    with user_errors():
        if retriever not in ("dense", "bm25", "hybrid"):
            raise TuningError(f"unknown retriever {retriever!r}; choose dense, bm25 or hybrid")
        if retriever == "hybrid" and fusion not in ("convex", "rrf"):
            raise TuningError("a hybrid retriever needs --fusion convex or --fusion rrf")
        if fusion == "convex" and alpha is None:
            raise TuningError("convex fusion needs --alpha (the dense weight, 0 to 1)")
        hybrid = retriever == "hybrid"
        choice = RetrievalChoice(
            chunk_tokens,
            retriever,
            fusion if hybrid else "",
            alpha if hybrid and fusion == "convex" else None,
            k,
        )
        apply_choice(
            build_store(settings), build_embedder(settings), settings.indexing, name, choice
        )
    typer.echo(f"applied to {name!r}: {_describe(choice)}")


@retrieval_cli.command("show")
def show(collection: CollectionOption = None, as_json: JsonFlag = False) -> None:
    """The retrieval setting stored on a collection, or that it uses the settings."""
    from app.components import build_store

    settings = load_cli_settings()
    name = collection or settings.indexing.default_collection
    with user_errors():
        stored = build_store(settings).collection(name, embedding_model=None).retrieval
    if as_json:
        emit_json({"collection": name, "retrieval": stored.to_dict() if stored else None})
    else:
        typer.echo(f"{name}: {_describe(stored) if stored else 'the settings (not tuned)'}")


@retrieval_cli.command("reset")
def reset(collection: CollectionOption = None) -> None:
    """Forget a collection's stored retrieval setting (its chunking stays as it is)."""
    from app.components import build_embedder, build_store
    from evals.retrieval_tuning import apply_choice

    settings = load_cli_settings()
    name = collection or settings.indexing.default_collection
    with user_errors():
        apply_choice(build_store(settings), build_embedder(settings), settings.indexing, name, None)
    typer.echo(f"{name}: retrieval follows the settings again")


def _splits(settings, data: str, seed: int) -> tuple[list, list, list[str]]:
    """(dev, test, skipped-line problems) from a dataset name or a labelled file."""
    from evals.retrieval_tuning import read_labelled, split_dev_test
    from training.qa_dataset import DatasetStore

    path = Path(data)
    if path.is_file():
        items, problems = read_labelled(path)
        dev, test = split_dev_test(items, seed)
        return dev, test, problems
    dataset = DatasetStore(settings.datasets_dir).get(data)
    return dataset.split("dev"), dataset.split("test"), []


def _describe(choice) -> str:
    return f"{choice.chunk_tokens}-token chunks, {choice.label()}, k={choice.k}"


def _ci(row, metric: str) -> str:
    low, high = row.intervals[metric]
    return f"{row.means[metric]:.3f} [{low:.2f}, {high:.2f}]"


def _report(result) -> str:
    """The text report: the dev table (pick marked), the test comparison, notes."""
    minutes, seconds = divmod(round(result.seconds), 60)
    title = (
        f"retrieval tuning on {result.collection!r} ({result.budget}, {minutes}m {seconds:02d}s): "
        f"{result.dev_questions} dev / {result.test_questions} test questions; "
        f"documents: {result.documents}"
    )
    legend = (
        "dev split (* = pick, by MRR@10; 95% bootstrap intervals; in k = labelled file among "
        "the k chunks a prompt gets)"
    )
    header = (
        f"   {'chunks':>6}  {'retriever':<19}{'k':>3}  {'hit@1':>6} {'hit@3':>6} {'hit@5':>6}  "
        f"{'MRR@10 [95% CI]':<22}{'in k':>6}"
    )
    lines = [title, "", legend, header]
    for row in result.rows:
        c, m = row.choice, row.means
        mark = "*" if c == result.pick else " "
        lines.append(
            f" {mark} {c.chunk_tokens:>6}  {c.label():<19}{c.k:>3}  {m['hit@1']:>6.3f} "
            f"{m['hit@3']:>6.3f} {m['hit@5']:>6.3f}  {_ci(row, 'mrr@10'):<22}{m['in_k']:>6.3f}"
            + ("  default" if c == result.default else "")
        )
    lines += ["", "test split (95% bootstrap intervals)"]
    for title, row in (("pick", result.test_pick), ("default", result.test_default)):
        metrics = "  ".join(f"{m} {_ci(row, m)}" for m in ("hit@1", "hit@3", "hit@5", "mrr@10"))
        lines.append(f"  {title:<8} {_describe(row.choice)}\n           {metrics}")
    delta = result.test_pick.means["mrr@10"] - result.test_default.means["mrr@10"]
    if result.pick == result.default:
        lines.append("  the default is the pick")
    else:
        lines.append(
            f"  MRR@10 pick - default: {delta:+.3f} (paired permutation test p = "
            f"{result.p_value:.3f}): "
            + (
                "the pick is better beyond chance"
                if delta > 0 and result.p_value < 0.05
                else "within chance on this test split; applying is optional"
            )
        )
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)
