"""`ragtune reward score`: judge answers with a reward model or a classifier from the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit_json, load_cli_settings
from app.cli.errors import user_errors

reward_cli = typer.Typer(help="Score answers with a reward model.", no_args_is_help=True)


@reward_cli.command("score")
def score(
    adapter: Annotated[
        str, typer.Option("--adapter", help="Reward adapter (or classifier) in the registry.")
    ],
    file: Annotated[
        Path,
        typer.Option("--file", help="JSONL: {prompt, response} or {prompt, chosen, rejected}."),
    ],
    label: Annotated[
        str, typer.Option(help="For classifiers: the label whose log-odds is the reward.")
    ] = "1",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the scores as JSONL.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score every answer in FILE; for chosen/rejected pairs also report how often
    the order agrees."""
    from app.components import build_registry
    from training.reward import score_file

    settings = load_cli_settings()
    with user_errors():
        rows = score_file(build_registry(settings), adapter, file, label)
    agreed = [r["agrees"] for r in rows if "agrees" in r]
    summary = {"adapter": adapter, "lines": len(rows), "scores": rows}
    if agreed:
        summary["pairwise_accuracy"] = round(sum(agreed) / len(agreed), 4)
    if output:
        output.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if as_json:
        emit_json(summary)
        return
    for row in rows:
        typer.echo(
            f"line {row['line']:>4}: "
            + "  ".join(f"{k}={v}" for k, v in row.items() if k != "line")
        )
    if agreed:
        typer.echo(
            f"pairwise accuracy (chosen scored above rejected): {summary['pairwise_accuracy']:.3f}"
        )
