"""`ragtune compare`: which method wins on my documents (a thin wrapper over ``app.compare``)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import CollectionOption, JsonFlag, emit_json, load_cli_settings
from app.cli.errors import user_errors
from app.compare.budget import BUDGETS, budget_help
from app.compare.study import default_study_name


def compare(
    collection: CollectionOption = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="The QA data: a dataset name (`ragtune data list`) or a JSONL/CSV file of "
            "question, answer[, source] (imported, split with the seed)."
        ),
    ] = None,
    synth: Annotated[
        int | None,
        typer.Option(min=1, help="Synthesise N question/answer pairs from the collection."),
    ] = None,
    test: Annotated[
        Path | None,
        typer.Option(
            "--test",
            help="Your fixed test set (JSONL/CSV), used instead of the test split and never "
            "trained on; overlap with the training data is refused (see --drop-overlap).",
        ),
    ] = None,
    methods: Annotated[
        str,
        typer.Option(help="Extra SFT methods to train and compare, comma-separated (e.g. ia3)."),
    ] = "",
    budget: Annotated[
        str, typer.Option(help=f"How much work: {' | '.join(BUDGETS)} (knobs below).")
    ] = "quick",
    primary_metric: Annotated[
        str,
        typer.Option(help="Metric the recommendation is decided on (e.g. token_f1, rougeL)."),
    ] = "token_f1",
    name: Annotated[
        str | None,
        typer.Option(help="Study name (default: from collection, data and budget)."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Discard the study's earlier results first.")
    ] = False,
    drop_overlap: Annotated[
        bool,
        typer.Option(
            "--drop-overlap",
            help="Remove training pairs that near-duplicate a --test question instead of refusing.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of splits, sampling and training.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Which method wins on your documents: a study with intervals, costs and a pick.

    Builds QA data from a collection, tunes retrieval, trains a LoRA and a RAFT LoRA,
    answers the test split with every arm (zero-shot, few-shot, RAG, LoRA, RAG + LoRA,
    RAG + RAFT-LoRA, plus --methods) and recommends one, with intervals, costs and
    forgetting.

    Needs a running engine (`ragtune serve` or `ragtune engine`). The study lives in
    <data_dir>/compare/<name>/ and resumes: a finished stage is reused on a re-run, an
    interrupted one starts over. The report (report.md, report.html, PNG plots) is in its
    reports/ folder. Exit code 0 when the report was written, even if some arms failed
    (their rows say why).
    """
    from app.compare.budget import get_budget
    from app.compare.measure import QUALITY
    from app.compare.run import run_study
    from app.compare.services import build_services
    from app.compare.study import Study, StudyConfig
    from training.config import ConfigError

    settings = load_cli_settings()
    collection = collection or settings.indexing.default_collection
    with user_errors():
        get_budget(budget)
        if primary_metric not in QUALITY:
            raise ConfigError(
                f"--primary-metric {primary_metric!r}: choose one of {', '.join(QUALITY)}"
            )
        config = StudyConfig(
            name=name or default_study_name(collection, data or "", synth or 0, budget),
            collection=collection,
            data=data or "",
            synth=synth or 0,
            test_file=str(test.resolve()) if test else "",
            methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
            budget=budget,
            primary_metric=primary_metric,
            drop_overlap=drop_overlap,
            seed=seed,
        )
        if config.data and Path(config.data).is_file():
            config = StudyConfig(**{**config.to_dict(), "data": str(Path(config.data).resolve())})
        config.check_inputs()
        study = Study.open(settings.compare_dir, config, restart=restart)
        with contextlib.redirect_stdout(sys.stderr):  # trainers print; --json owns stdout
            services = build_services(settings, progress=True)
            summary = run_study(study, services, echo=lambda line: typer.echo(line, err=True))
    if as_json:
        emit_json(summary)
        return
    text = Path(summary["files"]["markdown"]).read_text()
    typer.echo(text.split("\n## Paired")[0].split("\n## Data")[0])
    typer.echo(f"report: {summary['files']['html']}\nstudy: {study.folder}")


compare.__doc__ += "\n    Budgets:\n\n" + "\n".join(
    f"    {line}" for line in budget_help().splitlines()
)
