"""The Adapters tab: the registry as a table; load into / unload from vLLM; delete.

Loading a LoRA adapter sends it to the running vLLM server (runtime LoRA API); other kinds
are served by transformers + peft. The forgetting checks and the RLHF numbers come from
each adapter's manifest; picking an adapter shows its benchmark forgetting check
(``ragtune adapters forgetting``) as a table per family.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import gradio as gr

from app.ui.errors import warning
from indexing.errors import RagtuneError
from training.registry import AdapterRegistry

if TYPE_CHECKING:
    from app.adapters import AdapterService

NO_SERVER = "⚠️ no generation server is configured"

COLUMNS = [
    "name",
    "kind",
    "method",
    "base",
    "key metrics",
    "forgetting (tuned - base)",
    "benchmarks (tuned - base)",
    "size MB",
    "created",
]
KEY_METRICS = (
    "train_loss",
    "test",
    "heldout_pairwise_accuracy",
    "win_rate_vs_base",
    "heldout_mean_reward_before",
    "heldout_mean_reward_after",
    "heldout_kl_from_base",
)


def adapter_rows(registry: AdapterRegistry) -> list[list]:
    """One row per adapter, newest first."""
    rows = []
    for m in registry.list():
        metrics = ", ".join(f"{k}={_short(m.metrics[k])}" for k in KEY_METRICS if k in m.metrics)
        forgetting = m.metrics.get("forgetting", {}).get("delta", "")
        rows.append(
            [
                m.name,
                m.kind,
                m.method,
                m.base_model.rstrip("/").rsplit("/", 1)[-1],
                metrics,
                _short(forgetting) if forgetting != "" else "",
                bench_summary(m.metrics.get("benchmark_forgetting")),
                round(registry.size_bytes(m.name) / 1e6, 1),
                m.created,
            ]
        )
    return rows


def bench_summary(result: dict | None) -> str:
    """One cell: each family's delta of its first metric, * where p < 0.05."""
    if not result:
        return ""
    cells = []
    for family, row in result["results"].items():
        metric = next(m for m in ("acc_norm", "acc") if m in row)
        star = "*" if row[metric]["p"] < 0.05 else ""
        cells.append(f"{family} {row[metric]['delta']:+.3f}{star}")
    return ", ".join(cells)


def bench_markdown(registry: AdapterRegistry, name: str | None) -> str:
    """The benchmark forgetting check of adapter ``name`` as a Markdown table per family."""
    if not name:
        return ""
    try:
        result = registry.get(name).metrics.get("benchmark_forgetting")
    except RagtuneError as exc:
        return warning(exc)
    if not result:
        return (
            f"No benchmark forgetting check for **{name}** yet: "
            f"`ragtune adapters forgetting {name}`."
        )
    from evals.benchmarks.forgetting import delta_cells

    lines = ["**Forgetting on benchmarks** (tuned - base, paired per item)"]
    for family, row in result["results"].items():
        checked = row.get("checked", result["config"]["created"])
        lines += [
            "",
            f"*{family}* (first {row['n']} items, {row['num_fewshot']}-shot, {checked})",
            "",
            "| metric | base | tuned | delta [95% CI] | p |",
            "| --- | ---: | ---: | --- | ---: |",
        ]
        for metric, delta in delta_cells(row):
            m = row[metric]
            lines.append(
                f"| {metric} | {m['base']:.3f} | {m['tuned']:.3f} | {delta} | {m['p']:.3g} |"
            )
    return "\n".join(lines + ["", f"<small>{result['method']}</small>"])


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(
            f"{k} {_short(v)}" for k, v in value.items() if not isinstance(v, (dict, list))
        )
    return str(value)


def build_adapters_tab(registry: AdapterRegistry, service: AdapterService | None) -> gr.Dataframe:
    """Render the Adapters tab; ``service`` is None when no engine is configured (fake mode)."""
    table = gr.Dataframe(
        adapter_rows(registry), headers=COLUMNS, interactive=False, elem_id="adapters-table"
    )
    with gr.Row():
        name = gr.Dropdown(
            [m.name for m in registry.list()], label="Adapter", allow_custom_value=True
        )
        load = gr.Button("Load into the server", variant="primary", size="sm")
        unload = gr.Button("Unload", size="sm")
        confirm = gr.Checkbox(label="Yes, delete", value=False)
        delete = gr.Button("Delete", variant="stop", size="sm")
        refresh = gr.Button("Refresh", size="sm")
    result = gr.Markdown(elem_id="adapter-result")
    bench = gr.Markdown(elem_id="adapter-bench-forgetting")

    def rows_and_names():
        return adapter_rows(registry), gr.update(choices=[m.name for m in registry.list()])

    def do_load(adapter):
        if service is None:
            return NO_SERVER
        try:
            started = time.monotonic()
            loaded = service.load(adapter)
        except RagtuneError as exc:
            return warning(exc)
        text = (
            f"**{adapter}** is served by {loaded.served_by} ({time.monotonic() - started:.1f} s)."
        )
        if loaded.changed_output is not None:
            text += (
                " It changes the answer to a probe question."
                if loaded.changed_output
                else f" {loaded.warning}"
            )
        return text + " Pick it in the Chat tab's “Answer with” list."

    def do_unload(adapter):
        if service is None:
            return NO_SERVER
        try:
            service.unload(adapter)
        except RagtuneError as exc:
            return warning(exc)
        return f"Unloaded {adapter}."

    def do_delete(adapter, sure):
        if not sure:
            return "Tick “Yes, delete” first.", *rows_and_names()
        try:
            registry.delete(adapter)
        except RagtuneError as exc:
            return warning(exc), *rows_and_names()
        return f"Deleted {adapter}.", *rows_and_names()

    load.click(do_load, name, result)
    unload.click(do_unload, name, result)
    delete.click(do_delete, [name, confirm], [result, table, name])
    refresh.click(rows_and_names, outputs=[table, name])
    name.change(lambda adapter: bench_markdown(registry, adapter), name, bench)
    return table
