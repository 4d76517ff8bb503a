"""`ragtune adapters ...` and `ragtune classify`: the registry and serving what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit_json, load_cli_settings
from app.cli.errors import user_errors

# The benchmark forgetting check's defaults (`adapters forgetting`, `train sft --bench-limit`).
FORGETTING_TASKS = "mmlu,arc_easy,hellaswag"
FORGETTING_LIMIT = 100

adapters_cli = typer.Typer(
    help="The adapter registry: list, inspect, load into the server, delete.", no_args_is_help=True
)


def _registry():
    from app.components import build_registry

    return build_registry(load_cli_settings())


@adapters_cli.command("list")
def list_adapters(as_json: JsonFlag = False) -> None:
    """Every adapter: name, kind, method, base model, size, created."""
    with user_errors():
        registry = _registry()
        rows = [m.to_dict() | {"size_bytes": registry.size_bytes(m.name)} for m in registry.list()]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        typer.echo(
            "no adapters yet; train one with `ragtune train sft --config "
            "configs/train/sft_lora.yaml`"
        )
        return
    typer.echo(f"{'name':<24} {'kind':<10} {'method':<9} {'size':>10}  {'created':<25} base")
    for r in rows:
        typer.echo(
            f"{r['name']:<24} {r['kind']:<10} {r['method']:<9} {r['size_bytes'] / 1e6:>8.1f}MB  "
            f"{r['created']:<25} {r['base_model'].rstrip('/').rsplit('/', 1)[-1]}"
        )


@adapters_cli.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Adapter name.")], as_json: JsonFlag = False
) -> None:
    """The manifest of one adapter, with the forgetting check as base / tuned / difference."""
    with user_errors():
        manifest = _registry().get(name)
    data = manifest.to_dict()
    if as_json:
        emit_json(data)
        return
    for key in ("name", "kind", "method", "base_model", "dataset", "dataset_sha256", "created"):
        typer.echo(f"{key:<22} {data[key]}")
    share = 100 * manifest.trainable_parameters / max(manifest.total_parameters, 1)
    typer.echo(f"{'trainable_parameters':<22} {manifest.trainable_parameters:,} ({share:.3f}%)")
    typer.echo(f"{'hyperparameters':<22} {data['hyperparameters']}")
    hidden = {"forgetting", "loss_curve", "benchmark_forgetting", "mixture"}
    metrics = {k: v for k, v in data["metrics"].items() if k not in hidden}
    typer.echo(f"{'metrics':<22} {metrics}")
    if data["metrics"].get("mixture"):
        from training.mixture import describe

        typer.echo("mixture:\n  " + "\n  ".join(describe(data["metrics"]["mixture"])))
    bench = data["metrics"].get("benchmark_forgetting")
    if bench:
        typer.echo("forgetting on benchmarks (tuned - base, paired):")
        typer.echo("  " + forgetting_table(bench).replace("\n", "\n  "))
    forgetting = data["metrics"].get("forgetting")
    if forgetting:
        typer.echo("forgetting check:")
        typer.echo(f"  {'metric':<16} {'base':>9} {'tuned':>9} {'tuned-base':>11}")
        for metric, base in forgetting["base"].items():
            typer.echo(
                f"  {metric:<16} {base:>9} {forgetting['tuned'][metric]:>9} "
                f"{forgetting['delta'][metric]:>+11}"
            )


@adapters_cli.command("forgetting")
def forgetting(
    name: Annotated[str, typer.Argument(help="Adapter name.")],
    tasks: Annotated[
        str,
        typer.Option(
            help="Comma-separated benchmark families (as `ragtune eval bench --tasks`): mmlu, "
            "hellaswag, arc_easy, arc_challenge, boolq, truthfulqa_mc1, bigbench, bbh."
        ),
    ] = FORGETTING_TASKS,
    limit: Annotated[
        int | None,
        typer.Option(help="Only the first N items of each family, in data order (>= 1)."),
    ] = FORGETTING_LIMIT,
    shots: Annotated[
        int | None,
        typer.Option(min=0, help="Few-shot examples per question (default: each task's own)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=256, help="Sequences per forward pass.")
    ] = 16,
    as_json: JsonFlag = False,
) -> None:
    """Score the adapter's base model and the adapter on benchmark items, paired per item.

    Per family and metric: base, tuned, delta (tuned - base) with a 95% bootstrap interval of
    the per-item differences, and McNemar's exact p-value. Stored in the manifest as
    metrics.benchmark_forgetting (shown by `adapters show` and the Adapters tab). The base
    model's per-item results are cached in the data folder, so checking another adapter of
    the same base with the same tasks and limit scores only the adapter.
    """
    from tqdm import tqdm

    from evals.benchmarks.forgetting import benchmark_forgetting

    settings = load_cli_settings()
    with user_errors():
        registry = _registry()
        base = registry.get(name).base_model
        # delay: a request refused before any scoring shows no empty bar above its error
        with tqdm(desc="forgetting", unit="choice", disable=as_json, delay=0.5) as bar:
            result = benchmark_forgetting(
                base,
                registry=registry,
                adapter=name,
                tasks=tasks,
                limit=limit,
                shots=shots,
                bench_dir=settings.benchmarks_dir,
                cache_dir=settings.bench_base_cache_dir,
                batch_size=batch_size,
                on_total=lambda n: bar.reset(total=n),
                on_progress=bar.update,
            )
    if as_json:
        emit_json(result)
        return
    typer.echo(forgetting_table(result))
    seconds = result["config"]["seconds"]
    cached = ", ".join(result["config"]["base_from_cache"]) or "none"
    typer.echo(
        f"\nbase {seconds['base']} s (from cache: {cached}), tuned {seconds['tuned']} s, "
        f"total {seconds['total']} s; stored in {name}'s manifest"
    )


def forgetting_table(result: dict) -> str:
    """Plain-text table of a benchmark forgetting result: family, metric, n, base, tuned,
    delta [95% CI], p."""
    from evals.benchmarks.forgetting import delta_cells

    lines = [f"{'task':<16} {'metric':<9} {'n':>5} {'base':>7} {'tuned':>7}  delta [95% CI]"]
    for family, row in result["results"].items():
        for metric, delta in delta_cells(row):
            m = row[metric]
            lines.append(
                f"{family:<16} {metric:<9} {row['n']:>5} {m['base']:>7.4f} {m['tuned']:>7.4f}"
                f"  {delta}  p={m['p']:.3g}"
            )
    return "\n".join(lines)


@adapters_cli.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Adapter name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an adapter from the registry."""
    with user_errors():
        registry = _registry()
        registry.get(name)
        if not yes:
            typer.confirm(f"delete adapter {name!r}?", abort=True)
        registry.delete(name)
    typer.echo(f"deleted {name}")


@adapters_cli.command("load")
def load(
    name: Annotated[str, typer.Argument(help="Adapter name.")],
    no_probe: Annotated[
        bool, typer.Option("--no-probe", help="Skip the base-vs-adapter probe.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Load an adapter into the running server (LoRA: vLLM runtime API, no restart).

    Then a probe prompt is answered greedily by base and adapter; identical answers are
    flagged, since an adapter that changes nothing is usually not applied.
    """
    from app.components import build_adapter_service

    with user_errors():
        result = build_adapter_service(load_cli_settings()).load(name, probe=not no_probe)
    if as_json:
        emit_json(vars(result) | {"warning": result.warning})
        return
    typer.echo(f"{result.name} ({result.kind}) is served by {result.served_by}")
    if result.changed_output is not None:
        typer.echo(
            f"  probe, base:    {result.base_answer!r}\n  probe, adapter: {result.adapter_answer!r}"
        )
    if result.warning:
        typer.echo(f"warning: {result.warning}", err=True)


@adapters_cli.command("merge")
def merge(
    name: Annotated[str, typer.Argument(help="LoRA adapter name.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Model folder to write (default: <models_dir>/merged/NAME)."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing merged folder.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Merge a LoRA adapter into its base weights, for serving a dominant adapter at base speed.

    Serve the folder with an engine of its own named after the adapter
    (RAGTUNE_GENERATOR__MODEL=<folder> RAGTUNE_GENERATOR__SERVED_NAME=NAME
    RAGTUNE_GENERATOR__ENABLE_LORA=false RAGTUNE_GENERATOR__PORT=8001 ragtune engine),
    then route the adapter there: generator.routes: {NAME: http://127.0.0.1:8001/v1}.
    """
    from app.components import build_registry
    from training.merge import merge_adapter

    settings = load_cli_settings()
    with user_errors():
        folder = merge_adapter(
            build_registry(settings),
            name,
            output or settings.merged_models_dir / name,
            overwrite,
        )
    if as_json:
        emit_json({"adapter": name, "output": str(folder)})
    else:
        typer.echo(f"merged {name} into {folder}")


@adapters_cli.command("unload")
def unload(name: Annotated[str, typer.Argument(help="Adapter name.")]) -> None:
    """Remove a LoRA adapter from the running vLLM server (it stays in the registry)."""
    from app.components import build_adapter_service

    with user_errors():
        build_adapter_service(load_cli_settings()).unload(name)
    typer.echo(f"unloaded {name}")


def classify(
    texts: Annotated[list[str], typer.Argument(help="Texts to classify.")],
    adapter: Annotated[
        str, typer.Option("--adapter", help="A classifier adapter from the registry.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Label texts with a classifier adapter (see `ragtune train classify`)."""
    from training.classify import load_classifier
    from training.registry import RegistryError

    with user_errors():
        registry = _registry()
        manifest = registry.get(adapter)
        if manifest.kind != "classifier":
            raise RegistryError(f"{adapter!r} is a {manifest.kind} adapter, not a classifier")
        predictions = load_classifier(manifest, registry.path(adapter))(list(texts))
    rows = [
        {"text": t, "label": label, "probability": round(p, 4)}
        for t, (label, p) in zip(texts, predictions)
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['label']}\t{row['probability']:.3f}\t{row['text']}")
