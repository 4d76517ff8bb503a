"""`ragtune eval bench`: offline multiple-choice benchmarks scored by log-likelihood."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from app.cli.common import JsonFlag, emit_json, load_cli_settings, resolve_base_model
from app.cli.errors import user_errors


def bench(
    tasks: Annotated[
        str,
        typer.Option(
            help="Comma-separated task families: mmlu, hellaswag, arc_easy, arc_challenge, "
            "boolq, truthfulqa_mc1, bigbench, bbh (evals/benchmarks/tasks/*.yaml)."
        ),
    ] = "mmlu,hellaswag,arc_easy,arc_challenge,boolq,truthfulqa_mc1,bigbench,bbh",
    adapter: Annotated[
        str | None,
        typer.Option(help="Score this registry adapter (any kind) instead of the base model."),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="Base model: 'default' (the generator's), or a folder / hub id of any causal "
            "LM, e.g. a full finetune or a merged adapter."
        ),
    ] = "default",
    shots: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Few-shot examples per question (default: each task's own, MMLU 5 from its "
            "dev split, the others 0; TruthfulQA's prompt has fixed examples).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Only the first N items of each task family, in data order."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=256, help="Sequences per forward pass.")
    ] = 16,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the full JSON (with per-item scores)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Accuracy (acc) and length-normalised accuracy (acc_norm) on offline benchmarks.

    Each choice is scored by its log-likelihood after the prompt, as lm-evaluation-harness
    0.4 scores multiple-choice tasks; per-task 95% bootstrap intervals. Data is read from
    benchmarks_dir (RAGTUNE_BENCHMARKS_DIR); the result records the model, adapter, shots,
    limit, templates, metric definitions and the SHA-256 of every data file. A malformed
    line of a data file is skipped with a warning naming file and line.

    Time on two CPUs with SmolLM2-135M: about 2.7 minutes for the first 50 items of all
    eight families, and about 5 minutes for 200 items each of MMLU (5-shot), HellaSwag and
    ARC-Challenge; use --limit for quick checks.
    """
    from evals.benchmarks.models import load_scoring_model
    from evals.benchmarks.runner import prepare, run_benchmarks, table
    from evals.benchmarks.tasks import parse_tasks
    from training.registry import AdapterRegistry

    settings = load_cli_settings()
    with user_errors():
        specs = parse_tasks(tasks)
        prepared = [
            prepare(spec, settings.benchmarks_dir, shots=shots, limit=limit) for spec in specs
        ]
        for task in prepared:
            for problem in task.problems:
                typer.echo(f"warning: {problem} (skipped)", err=True)
        base = resolve_base_model(settings, model)
        loaded, tokenizer, describe = load_scoring_model(
            base, registry=AdapterRegistry(settings.adapters_root), adapter=adapter
        )
        describe.update(shots=shots, limit=limit, benchmarks_dir=str(settings.benchmarks_dir))
        total = sum(len(task.spec.choices(item)) for task in prepared for item in task.items)
        with tqdm(total=total, desc="eval bench", unit="choice", disable=as_json) as bar:
            result = run_benchmarks(
                prepared,
                loaded,
                tokenizer,
                describe=describe,
                batch_size=batch_size,
                on_progress=bar.update,
            )
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if as_json:
        emit_json({k: v for k, v in result.items() if k != "samples"})
        return
    who = f"adapter {adapter!r} ({describe['adapter_kind']})" if adapter else describe["model"]
    typer.echo(f"{who}, shots {shots if shots is not None else 'per task'}, limit {limit}\n")
    typer.echo(table(result))
    typer.echo(f"\n{result['config']['requests']} choices in {result['config']['seconds']} s")
