"""`ragtune prefs export`: A/B votes -> preference pairs for reward models and DPO."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit_json, load_cli_settings
from app.cli.errors import user_errors

prefs_cli = typer.Typer(help="Human preferences collected in the A/B tab.", no_args_is_help=True)


@prefs_cli.command("export")
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.")] = Path(
        "preferences.jsonl"
    ),
    as_json: JsonFlag = False,
) -> None:
    """Write every decided vote (A or B better) as {"prompt", "chosen", "rejected"} JSONL.

    Ties and "both bad" votes carry no preference and are skipped.
    """
    from evals.votes import VoteStore

    settings = load_cli_settings()
    with user_errors():
        count = VoteStore(settings.votes_db).export_preferences(output)
    if as_json:
        emit_json({"pairs": count, "output": str(output)})
    else:
        typer.echo(f"wrote {count} preference pairs to {output}")


@prefs_cli.command("sample")
def sample(
    reward: Annotated[
        str, typer.Option("--reward", help="Reward adapter or classifier that judges.")
    ],
    prompts: Annotated[
        Path, typer.Option("--prompts", help="Prompt file (JSONL prompt/text, or TSV/CSV).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.")],
    rows: Annotated[int, typer.Option(help="Prompts sampled from the file.")] = 256,
    prompt_words: Annotated[
        int, typer.Option(help="Keep only the first N words of each prompt (0: all).")
    ] = 0,
    min_prompt_words: Annotated[int, typer.Option(help="Skip prompts shorter than this.")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per sampled answer.")] = 24,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    min_margin: Annotated[
        float, typer.Option(help="Drop pairs whose rewards differ by less.")
    ] = 0.5,
    label: Annotated[str, typer.Option(help="For classifier rewards: the preferred label.")] = "1",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 42,
    as_json: JsonFlag = False,
) -> None:
    """Make preference pairs without people: two base-model answers per prompt, judged by a reward.

    The better-scored answer becomes "chosen". Useful for DPO on a task with an automatic
    judge (e.g. the SST-2 sentiment classifier), and to compare DPO with PPO on one reward.
    """
    import contextlib
    import json
    import sys

    from app.cli.common import resolve_base_model
    from app.components import build_registry
    from training.reward import load_reward, load_tokenizer
    from training.rollout import load_prompts, sample_pairs

    settings = load_cli_settings()
    with user_errors(), contextlib.redirect_stdout(sys.stderr):
        import torch
        from transformers import AutoModelForCausalLM

        base = resolve_base_model(settings)
        texts = load_prompts(
            prompts, words=prompt_words, min_words=min_prompt_words, rows=rows, seed=seed
        )
        judge = load_reward(build_registry(settings), reward, policy_base=base, label=label)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
        pairs = sample_pairs(
            model,
            load_tokenizer(base),
            texts,
            judge,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            min_margin=min_margin,
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    result = {"prompts": len(texts), "pairs": len(pairs), "output": str(output)}
    if as_json:
        emit_json(result)
    else:
        typer.echo(f"wrote {len(pairs)} preference pairs from {len(texts)} prompts to {output}")
