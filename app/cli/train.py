"""`ragtune train ...`: thin wrappers over ``training`` (configs in configs/train/)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from app.cli.common import JsonFlag, emit_json, load_cli_settings, resolve_base_model
from app.cli.errors import fail, user_errors
from training.config import ClassifyArgs, DPOArgs, PPOArgs, RewardArgs, SFTArgs, help_table

train_cli = typer.Typer(
    help="Train adapters and classifiers into the registry.", no_args_is_help=True
)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML config (see configs/train/).")
]
NameOption = Annotated[str | None, typer.Option("--name", help="Adapter name in the registry.")]
DatasetOption = Annotated[str | None, typer.Option("--dataset", help="Training data file.")]
MethodOption = Annotated[str | None, typer.Option("--method", help="Method (see below).")]
StepsOption = Annotated[
    int | None, typer.Option("--max-steps", help="Stop after N optimizer steps.")
]
EpochsOption = Annotated[float | None, typer.Option("--epochs", help="Passes over the data.")]
OverwriteFlag = Annotated[
    bool, typer.Option("--overwrite", help="Replace an adapter of the same name.")
]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Any other field as KEY=VALUE (repeatable).")
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


def build_overrides(sets: list[str] | None, **options: Any) -> dict[str, Any]:
    """A command's options, then its ``--set`` pairs, as overrides of the config file.

    A flag left off becomes None, like an option not given, so the config's value stands.
    """
    given = {k: (v or None) if isinstance(v, bool) else v for k, v in options.items()}
    return {**given, **parse_sets(sets)}


def fields_epilog(cls: type) -> str:
    """``--help`` text listing every field of args class ``cls`` (one paragraph each).

    Escaped for typer's rich markup, which would otherwise drop choices such as
    ``[houlsby|pfeiffer]`` as unknown style tags."""
    from rich.markup import escape

    return "Fields:\n\n" + escape(help_table(cls)).replace("\n", "\n\n")


def _run(cls, config: Path | None, overrides: dict[str, Any], train, as_json: bool) -> None:
    """Validate the args, resolve the base model, train with logs on stderr, report."""
    from app.components import build_registry
    from training.config import load_args

    settings = load_cli_settings()
    with user_errors():
        args = load_args(cls, config, overrides)
        args.base_model = resolve_base_model(settings, args.base_model)
        with contextlib.redirect_stdout(sys.stderr):  # trainer logs must not pollute --json
            manifest = train(args, settings, build_registry(settings))
    _report(manifest, as_json)


def _registry_run(train):
    """Adapts a ``train(args, registry, runs_dir)`` library function to ``_run``."""
    return lambda args, settings, registry: train(args, registry, settings.runs_dir)


def _with_bench_forgetting(tasks: str | None, limit: int | None):
    """Wraps a ``_run`` trainer: with ``tasks``, check them before training and run the
    benchmark forgetting check on the new adapter afterwards (into its manifest)."""

    def wrap(train):
        if not tasks:
            return train

        def train_and_check(args, settings, registry):
            from tqdm import tqdm

            from app.cli.adapters import FORGETTING_LIMIT
            from evals.benchmarks.forgetting import benchmark_forgetting, check_request

            chosen = FORGETTING_LIMIT if limit is None else limit
            check_request(tasks, chosen, settings.benchmarks_dir)  # before any training
            manifest = train(args, settings, registry)
            with tqdm(desc="benchmark forgetting", unit="choice", file=sys.stderr) as bar:
                benchmark_forgetting(
                    args.base_model,
                    registry=registry,
                    adapter=manifest.name,
                    tasks=tasks,
                    limit=chosen,
                    bench_dir=settings.benchmarks_dir,
                    cache_dir=settings.bench_base_cache_dir,
                    on_total=lambda n: bar.reset(total=n),
                    on_progress=bar.update,
                )
            return registry.get(manifest.name)

        return train_and_check

    return wrap


def _report(manifest, as_json: bool) -> None:
    if as_json:
        emit_json(manifest.to_dict())
        return
    m = manifest.metrics
    share = 100 * manifest.trainable_parameters / max(manifest.total_parameters, 1)
    typer.echo(f"adapter {manifest.name} ({manifest.kind}, method {manifest.method}) saved")
    typer.echo(
        f"  trainable parameters: {manifest.trainable_parameters:,} of "
        f"{manifest.total_parameters:,} ({share:.3f}%)"
    )
    for key in (
        "train_loss",
        "steps",
        "train_seconds",
        "seconds_per_step",
        "peak_memory_mb",
        "validation",
        "test",
        "heldout_pairwise_accuracy",
        "truncated_prompts",
        "skipped_pairs",
        "win_rate_vs_base",
        "mean_reward_base",
        "mean_reward_tuned",
        "heldout_mean_reward_before",
        "heldout_mean_reward_after",
        "heldout_kl_from_base",
    ):
        if key in m:
            typer.echo(f"  {key}: {m[key]}")
    if "forgetting" in m:
        typer.echo(f"  forgetting check (tuned - base): {m['forgetting']['delta']}")
    if "benchmark_forgetting" in m:
        from app.cli.adapters import forgetting_table

        table = forgetting_table(m["benchmark_forgetting"]).replace("\n", "\n    ")
        typer.echo(f"  forgetting on benchmarks (tuned - base, paired):\n    {table}")
    if "mixture" in m:
        from training.mixture import describe

        typer.echo("  mixture:\n    " + "\n    ".join(describe(m["mixture"])))
    if "raft" in m:
        r = m["raft"]
        typer.echo(
            f"  raft: {r['examples']} examples from {r['pairs']} pairs of {r['dataset']} over "
            f"{r['collection']} ({r['with_oracle']} with the oracle, {r['distractors']} "
            f"distractors, max_length {r['max_length']}); data: {manifest.dataset}"
        )
        if r["missing_sources"]:
            typer.echo(
                f"  raft: skipped pairs whose source is not in the collection: {r['skipped']}"
            )
            typer.echo(f"    missing sources: {', '.join(r['missing_sources'])}")


@train_cli.command("sft", epilog=fields_epilog(SFTArgs))
def sft(
    config: ConfigOption = None,
    name: NameOption = None,
    dataset: DatasetOption = None,
    method: MethodOption = None,
    max_steps: StepsOption = None,
    epochs: EpochsOption = None,
    overwrite: OverwriteFlag = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the run's last checkpoint.")
    ] = False,
    raft: Annotated[
        bool,
        typer.Option(
            "--raft",
            help="Retrieval-augmented finetuning: build the data from --data over --collection.",
        ),
    ] = False,
    collection: Annotated[
        str | None, typer.Option("--collection", help="RAFT: the collection to retrieve from.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help="RAFT: a dataset (its train split) or a QA file (JSONL/CSV)."),
    ] = None,
    oracle_share: Annotated[
        float | None,
        typer.Option(
            "--oracle-share", min=0.0, max=1.0, help="RAFT: share of examples with the oracle."
        ),
    ] = None,
    distractors: Annotated[
        int | None,
        typer.Option(
            "--distractors",
            min=0,
            max=49,
            help="RAFT: distractor chunks beside the oracle (default: the collection's k - 1).",
        ),
    ] = None,
    mix: Annotated[
        list[str] | None,
        typer.Option(
            "--mix",
            help="A task of a multi-task mixture as PATH:WEIGHT:TASK (repeatable; replaces "
            "the config's dataset and mixture).",
        ),
    ] = None,
    replay: Annotated[
        float | None,
        typer.Option(
            "--replay",
            help="Share of rows replayed from the bundled general instruction set (0..0.9).",
        ),
    ] = None,
    bench_forgetting: Annotated[
        str | None,
        typer.Option(
            "--bench-forgetting",
            help="After training, score base and adapter on these benchmark families "
            "(e.g. mmlu,arc_easy,hellaswag; see `ragtune adapters forgetting`). Default: off.",
        ),
    ] = None,
    bench_limit: Annotated[
        int | None,
        typer.Option(
            "--bench-limit", help="Items per family for --bench-forgetting (default 100)."
        ),
    ] = None,
    set_: SetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Instruction tuning with any method `ragtune train methods` lists (lora, ia3, ...).

    Data: JSONL lines of {"messages": [...]} or {"instruction", "input", "output"}.

    With --raft (RAFT, arXiv 2403.10131) the data is built instead: each question of
    --data is asked over its oracle chunk and distractor chunks retrieved from
    --collection, in the prompt `rag:` models use, the answer citing the oracle; it is
    written to the data folder's raft/NAME.jsonl and the settings go into the manifest.
    Each prompt holds distractors + 1 sources, by default as many as a RAG answer on the
    collection retrieves (its k); serve the adapter as rag:COLLECTION+NAME.

    Several files make a multi-task mixture (--mix PATH:WEIGHT:TASK, repeated, or `mixture`
    in the config); --replay SHARE mixes in that share of the bundled general instruction
    set against forgetting. The manifest records what each task contributed.
    """
    from training.mixture import parse_mix
    from training.sft import train_sft

    raft_options = {"oracle_share": oracle_share, "distractors": distractors}
    if not raft and (collection or data or any(v is not None for v in raft_options.values())):
        fail("--collection, --data, --oracle-share and --distractors go with --raft")
    if raft and not (collection and data):
        fail("--raft needs --collection and --data")
    if raft and dataset:
        fail("--raft builds the training data from --data; leave out --dataset")
    given = build_overrides(
        set_,
        name=name,
        dataset=dataset,
        method=method,
        max_steps=max_steps,
        epochs=epochs,
        overwrite=overwrite,
        resume=resume,
        replay=replay,
    )
    if mix:
        if dataset or raft:
            fail("--mix gives the training data; leave out --dataset and --raft")
        with user_errors():
            given["mixture"] = [parse_mix(spec) for spec in mix]
        given["dataset"] = ""  # the mixture replaces the config's dataset
    if bench_limit is not None and not bench_forgetting:
        fail("--bench-limit goes with --bench-forgetting")
    bench = _with_bench_forgetting(bench_forgetting, bench_limit)
    if not raft:
        _run(SFTArgs, config, given, bench(_registry_run(train_sft)), as_json)
        return
    given["dataset"] = RAFT_DATA  # replaced by the built file before training
    options = {k: v for k, v in raft_options.items() if v is not None}
    _run(SFTArgs, config, given, bench(_raft_run(collection, data, options)), as_json)


RAFT_DATA = "(built by --raft)"


def _raft_run(collection: str, data: str, options: dict[str, Any]):
    """A ``_run`` trainer that builds RAFT data from ``data`` over ``collection``, then trains."""

    def train(args, settings, registry):
        from app.components import build_chat_service
        from app.raft import RaftOptions, load_pairs, serving_distractors, train_raft

        pairs, problems = load_pairs(settings.datasets_dir, data)
        for problem in problems:
            typer.echo(f"warning: {problem} (skipped)", err=True)
        chat = build_chat_service(settings)
        # By default every prompt holds as many sources as a RAG answer on the collection.
        distractors = options.get("distractors", serving_distractors(chat, collection))
        return train_raft(
            args,
            chat,
            registry,
            settings.runs_dir,
            collection=collection,
            pairs=pairs,
            output=settings.raft_dir / f"{args.name}.jsonl",
            options=RaftOptions(**{**options, "distractors": distractors}, seed=args.seed),
            dataset=data,
        )

    return train


@train_cli.command("classify", epilog=fields_epilog(ClassifyArgs))
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

    given = build_overrides(
        set_,
        name=name,
        dataset=dataset,
        method=method,
        max_steps=max_steps,
        epochs=epochs,
        overwrite=overwrite,
    )

    def train(args, settings, registry):
        embedder = resolve_embedder(settings.embedding.model)
        return train_classifier(args, registry, settings.runs_dir, embedder_path=embedder)

    _run(ClassifyArgs, config, given, train, as_json)


@train_cli.command("reward", epilog=fields_epilog(RewardArgs))
def reward(
    config: ConfigOption = None,
    name: NameOption = None,
    dataset: DatasetOption = None,
    max_steps: StepsOption = None,
    epochs: EpochsOption = None,
    overwrite: OverwriteFlag = False,
    set_: SetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Train a reward model (LoRA + scalar head) on preference pairs; report held-out
    pairwise accuracy.

    Data: JSONL lines of {"prompt", "chosen", "rejected"}; the prompt may be a chat message list.
    `ragtune prefs export` writes the A/B tab's votes in this format.
    """
    from training.reward import train_reward

    given = build_overrides(
        set_, name=name, dataset=dataset, max_steps=max_steps, epochs=epochs, overwrite=overwrite
    )
    _run(RewardArgs, config, given, _registry_run(train_reward), as_json)


@train_cli.command("dpo", epilog=fields_epilog(DPOArgs))
def dpo(
    config: ConfigOption = None,
    name: NameOption = None,
    dataset: DatasetOption = None,
    reward: Annotated[
        str | None, typer.Option("--reward", help="Reward source judging the win rate.")
    ] = None,
    max_steps: StepsOption = None,
    epochs: EpochsOption = None,
    overwrite: OverwriteFlag = False,
    set_: SetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Direct preference optimisation of a LoRA policy on preference pairs (no reward model needed).

    With --reward, held-out prompts are answered by base and tuned model and judged (win rate).
    The result is a LoRA adapter that vLLM hot-loads: `ragtune adapters load NAME`.
    """
    from training.dpo import train_dpo

    given = build_overrides(
        set_,
        name=name,
        dataset=dataset,
        reward=reward,
        max_steps=max_steps,
        epochs=epochs,
        overwrite=overwrite,
    )
    _run(DPOArgs, config, given, _registry_run(train_dpo), as_json)


@train_cli.command("ppo", epilog=fields_epilog(PPOArgs))
def ppo(
    config: ConfigOption = None,
    name: NameOption = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Prompt file (JSONL/TSV/CSV).")
    ] = None,
    reward: Annotated[
        str | None, typer.Option("--reward", help="Reward adapter or classifier.")
    ] = None,
    max_steps: StepsOption = None,
    overwrite: OverwriteFlag = False,
    set_: SetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """PPO: tune a LoRA policy to maximise a reward, with a KL penalty to the frozen base.

    Logs mean reward, KL and loss per step (runs/NAME/log.jsonl) and scores held-out prompts
    before and after. See configs/train/ppo_sentiment.yaml for the sentiment-steering demo.
    """
    from training.ppo import train_ppo

    given = build_overrides(
        set_, name=name, dataset=dataset, reward=reward, max_steps=max_steps, overwrite=overwrite
    )
    _run(PPOArgs, config, given, _registry_run(train_ppo), as_json)


@train_cli.command("methods")
def methods(as_json: JsonFlag = False) -> None:
    """List the training methods."""
    from training.methods import CLASSIFY_METHODS, PREFERENCE_METHODS, SFT_METHODS

    rows = {
        "sft": {n: m.description for n, m in SFT_METHODS.items()},
        "classify": CLASSIFY_METHODS,
        **PREFERENCE_METHODS,
    }
    if as_json:
        emit_json(rows)
        return
    for task, entries in rows.items():
        typer.echo(f"ragtune train {task}" + (" --method ..." if len(entries) > 1 else ""))
        for method_name, description in entries.items():
            typer.echo(f"  {method_name:<10} {description}")
        if task == "sft":
            typer.echo(
                "  with any of them: --mix PATH:WEIGHT:TASK (multi-task mixture), --replay SHARE "
                "(mix in the general instruction set against forgetting)"
            )


@train_cli.command("compare-classifiers")
def compare_classifiers(
    data: Annotated[
        Path, typer.Option(help="Folder with train.tsv, dev.tsv and test.tsv (GLUE layout).")
    ],
    train_rows: Annotated[
        int,
        typer.Option(help="Training rows sampled for head/lora/full (features: at least 5000)."),
    ] = 2000,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps for head/lora/full.")] = 125,
    methods: Annotated[
        str, typer.Option(help="Comma-separated approaches.")
    ] = "features,head,lora,full",
    prefix: Annotated[str, typer.Option(help="Adapter name prefix.")] = "sst2",
    output: Annotated[Path, typer.Option(help="Markdown file for the table.")] = Path(
        "docs/classifiers.md"
    ),
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
    with user_errors():
        rows = run_comparison(
            data,
            prefix=prefix,
            train_rows=train_rows,
            max_steps=max_steps,
            extra=[],
            methods=chosen,
        )
        test = load_labeled(data / "test.tsv")
    majority = max(test.labels.count(i) for i in set(test.labels)) / len(test.labels)
    table = markdown_table(rows, majority)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        f"# Classifier comparison on {data.name}\n\n"
        f"Produced by `ragtune train compare-classifiers --data {data} --train-rows {train_rows} "
        f"--max-steps {max_steps}` on the default models. Train on a sample of train.tsv, "
        f"select on dev.tsv (1,000 rows), report on test.tsv ({len(test.texts)} rows).\n\n"
        f"{table}\n\n"
        "```json\n"
        + json.dumps(
            [
                {
                    k: r.get(k)
                    for k in (
                        "name",
                        "method",
                        "metrics",
                        "trainable_parameters",
                        "total_parameters",
                    )
                }
                for r in rows
            ],
            indent=1,
        )[:20000]
        + "\n```\n"
    )
    if as_json:
        emit_json(rows)
    else:
        typer.echo(table)
        typer.echo(f"\nwritten to {output}")
