"""`ragtune prefs export`: A/B votes -> preference pairs for reward models and DPO."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit_json, load_cli_settings

prefs_cli = typer.Typer(help="Human preferences collected in the A/B tab.", no_args_is_help=True)


@prefs_cli.command("export")
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.")] = Path("preferences.jsonl"),
    as_json: JsonFlag = False,
) -> None:
    """Write every decided vote (A or B better) as {"prompt", "chosen", "rejected"} JSONL.

    Ties and "both bad" votes carry no preference and are skipped.
    """
    from evals.votes import VoteStore

    settings = load_cli_settings()
    count = VoteStore(settings.data_dir / "votes.sqlite3").export_preferences(output)
    if as_json:
        emit_json({"pairs": count, "output": str(output)})
    else:
        typer.echo(f"wrote {count} preference pairs to {output}")
