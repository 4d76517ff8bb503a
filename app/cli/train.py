"""`ragtune train ...`: thin wrappers over ``training`` (configs in configs/train/)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml

from app.cli.common import JsonFlag, emit_json, load_cli_settings
from app.cli.errors import fail, user_errors
from training.config import ClassifyArgs, SFTArgs, help_table

train_cli = typer.Typer(help="Train adapters and classifiers into the registry.", no_args_is_help=True)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="YAML config (see configs/train/).")]
NameOption = Annotated[Optional[str], typer.Option("--name", help="Adapter name in the registry.")]
DatasetOption = Annotated[Optional[str], typer.Option("--dataset", help="Training data file.")]
MethodOption = Annotated[Optional[str], typer.Option("--method", help="Method (see below).")]
StepsOption = Annotated[Optional[int], typer.Option("--max-steps", help="Stop after N optimizer steps.")]
EpochsOption = Annotated[Optional[float], typer.Option("--epochs", help="Passes over the data.")]
OverwriteFlag = Annotated[bool, typer.Option("--overwrite", help="Replace an adapter of the same name.")]
SetOption = Annotated[
    Optional[list[str]], typer.Option("--set", help="Any other field as KEY=VALUE (repeatable).")
]


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with YAML-typed values."""
    values = {}
    for pair in pairs or []:
        if "=" not in pair:
            fail(f"--set expects KEY=VALUE, got {pair!r}")
        key, raw = pair.split("=", 1)
        values[key.strip()] = yaml.safe_load(raw)
    return values


def _resolve_base(settings, base_model: str) -> str:
    """'default' means the model the generator serves, so adapters match the server."""
    from app.models import resolve_generator_model

    name = settings.generator.model if base_model == "default" else base_model
    return resolve_generator_model(name, settings.models_dir)


def _run(cls, config: Path | None, overrides: dict[str, Any], train, as_json: bool) -> None:
    """Validate the args, resolve the base model, train with logs on stderr, report."""
    from app.components import build_registry
    from training.config import load_args

    settings = load_cli_settings()
    with user_errors():
        args = load_args(cls, config, overrides)
        args.base_model = _resolve_base(settings, args.base_model)
        with contextlib.redirect_stdout(sys.stderr):  # trainer logs must not pollute --json
            manifest = train(args, settings, build_registry(settings))
    _report(manifest, as_json)


def _report(manifest, as_json: bool) -> None:
    if as_json:
        emit_json(manifest.to_dict())
        return
    m = manifest.metrics
    share = 100 * manifest.trainable_parameters / max(manifest.total_parameters, 1)
    typer.echo(f"adapter {manifest.name} ({manifest.kind}, method {manifest.method}) saved")
    typer.echo(f"  trainable parameters: {manifest.trainable_parameters:,} of {manifest.total_parameters:,} ({share:.3f}%)")
    for key in ("train_loss", "steps", "train_seconds", "seconds_per_step", "peak_memory_mb", "validation", "test"):
        if key in m:
            typer.echo(f"  {key}: {m[key]}")
    if "forgetting" in m:
        typer.echo(f"  forgetting check (tuned - base): {m['forgetting']['delta']}")


@train_cli.command("sft", epilog="Fields:\n\n" + help_table(SFTArgs).replace("\n", "\n\n"))
def sft(
    config: ConfigOption = None,
    name: NameOption = None,
    dataset: DatasetOption = None,
    method: MethodOption = None,
    max_steps: StepsOption = None,
    epochs: EpochsOption = None,
    overwrite: OverwriteFlag = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the run's last checkpoint.")] = False,
    set_: SetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Instruction tuning with lora, ia3, prefix, prompt or full finetuning.

    Data: JSONL lines of {"messages": [...]} or {"instruction", "input", "output"}.
    """
    from training.sft import train_sft

    overrides = {"name": name, "dataset": dataset, "method": method, "max_steps": max_steps,
                 "epochs": epochs, "overwrite": overwrite or None, "resume": resume or None, **parse_sets(set_)}  # fmt: skip
    _run(SFTArgs, config, overrides, lambda args, settings, registry: train_sft(args, registry, settings.runs_dir), as_json)


@train_cli.command("classify", epilog="Fields:\n\n" + help_table(ClassifyArgs).replace("\n", "\n\n"))
def classify(
    config: ConfigOption = None,
    name: NameOption = None,
    dataset: DatasetOption = None,
    method: MethodOption = None,
    max_steps: StepsOption = None,
    epochs: EpochsOption = None,
    overwrite: OverwriteFlag = False,
    set_: SetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Train a text classifier: features (embeddings + scikit-learn), head, lora or full.

    Data: TSV/CSV with a header, or JSONL, with a text (or sentence) and a label column.
    """
    from indexing.embedding import resolve_embedder
    from training.classify import train_classifier

    overrides = {"name": name, "dataset": dataset, "method": method, "max_steps": max_steps,
                 "epochs": epochs, "overwrite": overwrite or None, **parse_sets(set_)}  # fmt: skip

    def train(args, settings, registry):
        embedder = resolve_embedder(settings.embedding.model)
        return train_classifier(args, registry, settings.runs_dir, embedder_path=embedder)

    _run(ClassifyArgs, config, overrides, train, as_json)


@train_cli.command("methods")
def methods(as_json: JsonFlag = False) -> None:
    """List the training methods."""
    from training.methods import CLASSIFY_METHODS, SFT_METHODS

    rows = {"sft": {n: m.description for n, m in SFT_METHODS.items()}, "classify": CLASSIFY_METHODS}
    if as_json:
        emit_json(rows)
        return
    for task, entries in rows.items():
        typer.echo(f"ragtune train {task} --method ...")
        for method_name, description in entries.items():
            typer.echo(f"  {method_name:<9} {description}")


@train_cli.command("compare-classifiers")
def compare_classifiers(
    data: Annotated[Path, typer.Option(help="Folder with train.tsv, dev.tsv and test.tsv (GLUE layout).")],
    train_rows: Annotated[int, typer.Option(help="Training rows sampled for head/lora/full (features: at least 5000).")] = 2000,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps for head/lora/full.")] = 125,
    methods: Annotated[str, typer.Option(help="Comma-separated approaches.")] = "features,head,lora,full",
    prefix: Annotated[str, typer.Option(help="Adapter name prefix.")] = "sst2",
    output: Annotated[Path, typer.Option(help="Markdown file for the table.")] = Path("docs/classifiers.md"),
    as_json: JsonFlag = False,
) -> None:
    """Train features / head / lora / full on one dataset and write the comparison table."""
    import json

    from training.compare import markdown_table, run_comparison
    from training.data import load_labeled

    for split in ("train.tsv", "dev.tsv", "test.tsv"):
        if not (data / split).exists():
            fail(f"{data / split}: not found (expected GLUE layout: train.tsv, dev.tsv, test.tsv)")
    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    rows = run_comparison(data, prefix=prefix, train_rows=train_rows, max_steps=max_steps, extra=[], methods=chosen)
    test = load_labeled(data / "test.tsv")
    majority = max(test.labels.count(i) for i in set(test.labels)) / len(test.labels)
    table = markdown_table(rows, majority)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        f"# Classifier comparison on {data.name}\n\n"
        f"Produced by `ragtune train compare-classifiers --data {data} --train-rows {train_rows} "
        f"--max-steps {max_steps}` on the default models. Train on a sample of train.tsv, select on "
        f"dev.tsv (1,000 rows), report on test.tsv ({len(test.texts)} rows).\n\n{table}\n\n"
        "```json\n" + json.dumps([{k: r.get(k) for k in ('name', 'method', 'metrics', 'trainable_parameters',
                                                          'total_parameters')} for r in rows], indent=1)[:20000]
        + "\n```\n"
    )  # fmt: skip
    if as_json:
        emit_json(rows)
    else:
        typer.echo(table)
        typer.echo(f"\nwritten to {output}")
