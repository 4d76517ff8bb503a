"""`ragtune data synth|import|list|show|delete`: question/answer datasets (app/synth.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import CollectionOption, JsonFlag, emit_json, load_cli_settings
from app.cli.errors import user_errors

data_cli = typer.Typer(
    help="Question/answer datasets: synthesised from a collection or imported from a file, "
    "each with seeded train/dev/test splits.",
    no_args_is_help=True,
)
NameOption = Annotated[
    str | None, typer.Option("--name", help="Dataset name (default: see the command's help).")
]
SeedOption = Annotated[
    int, typer.Option(help="Seed of the splits (and of the chunk sample, for synth).")
]
OverwriteFlag = Annotated[
    bool, typer.Option("--overwrite", help="Replace a dataset of the same name.")
]
SHOWN_PROBLEMS = 20


def _problems(problems: list[str]) -> None:
    for problem in problems[:SHOWN_PROBLEMS]:
        typer.echo(f"skipped: {problem}", err=True)
    if len(problems) > SHOWN_PROBLEMS:
        typer.echo(f"... and {len(problems) - SHOWN_PROBLEMS} more skipped lines", err=True)


def _splits(counts: dict) -> str:
    return ", ".join(f"{split} {counts.get(split, 0)}" for split in ("train", "dev", "test"))


@data_cli.command("synth")
def synth(
    collection: CollectionOption = None,
    n: Annotated[
        int, typer.Option("--n", min=1, help="Pairs to generate (before filtering).")
    ] = 200,
    name: NameOption = None,
    seed: SeedOption = 0,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Requests in flight (default: synth.concurrency)."),
    ] = None,
    overwrite: OverwriteFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a question and a short answer from each of N sampled chunks; keep the good pairs.

    The writer is the configured generator (its engine must be running: `ragtune serve`),
    or the teacher endpoint in the `synth:` settings. Output is JSON under a schema; pairs
    that are malformed, not questions, copy the chunk, contain their answer, are not
    supported by the chunk or near-duplicate a kept one are dropped and counted by reason.
    The dataset (default name: COLLECTION-synth) gets train/dev/test splits 0.8/0.1/0.1.
    """
    from app.components import build_embedder, build_store
    from app.synth import synth_generator, synthesize_dataset

    settings = load_cli_settings()
    collection = collection or settings.indexing.default_collection
    if concurrency:
        settings.synth.concurrency = concurrency
    with user_errors():
        generator, info = synth_generator(settings)
        dataset, counts = synthesize_dataset(
            settings,
            generator,
            build_store(settings),
            build_embedder(settings),
            collection=collection,
            n=n,
            name=name or f"{collection}-synth",
            seed=seed,
            progress=not as_json,
            generator_info=info,
            overwrite=overwrite,
        )
    if as_json:
        emit_json({"name": dataset.name, "folder": str(dataset.folder), **counts})
        return
    dropped = ", ".join(f"{k} {v}" for k, v in counts["dropped"].items() if v) or "none"
    typer.echo(
        f"{dataset.name}: generated {counts['generated']}, kept {counts['kept']} "
        f"({counts['keep_rate']:.0%}) in {counts['seconds']:.0f} s\n"
        f"dropped: {dropped}\nsplits: {_splits(counts)}\nfolder: {dataset.folder}"
    )
    _warn_small(counts)


def _warn_small(counts: dict) -> None:
    """Say so when a split is empty: `compare` and `retrieval tune` need dev and test pairs."""
    empty = [split for split in ("train", "dev", "test") if not counts.get(split)]
    if empty:
        typer.echo(
            f"warning: the {' and '.join(empty)} split(s) are empty: too few pairs for "
            "`ragtune compare` or `retrieval tune`; synthesise more (--n), use a teacher "
            "model (synth.teacher_url) or import your own pairs",
            err=True,
        )


@data_cli.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSONL ({question, answer, source?} per line) or CSV with a header "
            "question,answer[,source]."
        ),
    ],
    name: NameOption = None,
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="The collection the pairs are about.")
    ] = "",
    seed: SeedOption = 0,
    overwrite: OverwriteFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Import your own question/answer pairs as a dataset (default name: the file's stem).

    Each line is validated: a bad one is reported by file and line and skipped, the rest
    are kept; a file with no valid pair is an error. `source` names the file that answers
    the question (as stored in the collection), for retrieval tests.
    """
    from app.synth import import_dataset

    settings = load_cli_settings()
    with user_errors():
        dataset, problems = import_dataset(
            settings,
            file,
            name=name or file.stem,
            collection=collection,
            seed=seed,
            overwrite=overwrite,
        )
    counts = dataset.manifest.counts
    if as_json:
        emit_json(
            {"name": dataset.name, "folder": str(dataset.folder), **counts, "problems": problems}
        )
        return
    _problems(problems)
    typer.echo(
        f"{dataset.name}: imported {counts['imported']} pairs, skipped {len(problems)} "
        f"line(s); splits: {_splits(counts)}"
    )
    _warn_small(counts)


@data_cli.command("list")
def list_datasets(as_json: JsonFlag = False) -> None:
    """Every dataset with its origin, collection and split sizes."""
    from app.synth import dataset_store

    with user_errors():
        manifests = dataset_store(load_cli_settings()).list()
    if as_json:
        emit_json([m.to_dict() for m in manifests])
        return
    if not manifests:
        typer.echo("no datasets yet; make one with `ragtune data synth` or `ragtune data import`")
        return
    typer.echo(f"{'name':<28} {'origin':<7} {'collection':<16} {'train':>6} {'dev':>5} {'test':>5}")
    for m in manifests:
        c = m.counts
        typer.echo(
            f"{m.name:<28} {m.origin:<7} {m.collection or '-':<16} {c.get('train', 0):>6} "
            f"{c.get('dev', 0):>5} {c.get('test', 0):>5}"
        )


@data_cli.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    examples: Annotated[
        int, typer.Option(min=0, help="Example pairs shown from the train split.")
    ] = 3,
    as_json: JsonFlag = False,
) -> None:
    """A dataset's manifest (origin, generator, filters, counts) and a few example pairs."""
    from app.synth import dataset_store
    from training.qa_dataset import DROPPED

    with user_errors():
        dataset = dataset_store(load_cli_settings()).get(name)
        shown = dataset.split("train")[:examples]
    manifest = dataset.manifest.to_dict()
    if as_json:
        emit_json(
            {**manifest, "folder": str(dataset.folder), "examples": [p.to_dict() for p in shown]}
        )
        return
    for key in ("name", "origin", "collection", "seed", "created", "source_file"):
        if manifest[key] != "":
            typer.echo(f"{key:<12} {manifest[key]}")
    typer.echo(f"{'folder':<12} {dataset.folder}")
    for key in ("generator", "filters", "counts"):
        if manifest[key]:
            typer.echo(f"{key}:")
            for field, value in manifest[key].items():
                if isinstance(value, dict):  # e.g. dropped by reason
                    value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
                typer.echo(f"  {field:<26} {value}")
    if (dataset.folder / DROPPED).exists():
        typer.echo(f"{'dropped':<12} {dataset.folder / DROPPED} (each with its reason)")
    for pair in shown:
        typer.echo(f"\nQ: {pair.question}\nA: {pair.answer}")
        if pair.source:
            typer.echo(f"   ({pair.source}{', chunk ' + pair.chunk_id if pair.chunk_id else ''})")


@data_cli.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete a dataset folder (its manifest and splits)."""
    from app.synth import dataset_store

    with user_errors():
        store = dataset_store(load_cli_settings())
        dataset = store.get(name)
        if not yes:
            total = sum(dataset.manifest.counts.get(s, 0) for s in ("train", "dev", "test"))
            typer.confirm(f"delete dataset {name!r} ({total} pairs)?", abort=True)
        store.delete(name)
    if as_json:
        emit_json({"deleted": name})
    else:
        typer.echo(f"deleted {name}")
