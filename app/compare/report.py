"""The study's report: summary.json, report.md, a self-contained report.html and PNG plots,
in the study's ``reports/`` folder, in the style of ``evals.report``.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.compare.arms import study_arms, trained_adapters
from app.compare.measure import FORGETTING, QUALITY, forgetting, quality
from app.compare.plots import plots
from app.compare.recommend import recommend

if TYPE_CHECKING:
    from app.compare.stages import Context

SMALL_TEST = 30  # fewer questions than this: the report says the intervals are wide
STYLE = (
    "body{font-family:sans-serif;max-width:75em;margin:2em auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.25em .6em}img{max-width:100%}"
)


def build_summary(ctx: Context) -> dict[str, Any]:
    """Every number of the report, JSON-ready (also ``ragtune compare --json``)."""
    study, config = ctx.study, ctx.config
    arms = study_arms(config.name, config.methods)
    table = quality(study, arms, config.primary_metric)
    trained = trained_adapters(config.name, config.methods)
    forgot = {t.key: forgetting(study, t) for t in trained}
    for arm in arms:
        row = table["arms"][arm.name]
        row["adapter"] = arm.trained.adapter if arm.trained else None
        row["forgetting"] = forgot.get(arm.trained.key) if arm.trained else None
    dataset = study.result("dataset") or {}
    states = study.state().stages
    return {
        "study": config.name,
        "config": config.to_dict(),
        "budget": ctx.budget.to_dict(),
        "folder": str(study.folder),
        "data": {
            "dataset": dataset.get("dataset"),
            "counts": dataset.get("counts", {}),
            "synth": dataset.get("synth", {}),
            "test_source": dataset.get("test_source"),
            "test_items": len(dataset.get("splits", {}).get("test", [])),
            "leakage": dataset.get("leakage", {}),
            "problems": dataset.get("problems", []),
        },
        "retrieval": study.result("retrieval"),
        "arms": table["arms"],
        "best": table["best"],
        "recommendation": recommend(table["arms"], config.primary_metric),
        "stages": {
            name: {"state": s.state, "seconds": s.seconds, "error": s.error}
            for name, s in states.items()
            if name != "report"
        },
    }


def _cell(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "–"
    return f"{cell['mean']:.3f} [{cell['ci'][0]:.3f}, {cell['ci'][1]:.3f}]"


def _label(choice: dict[str, Any]) -> str:
    label = str(choice.get("retriever")) + (f" {choice['fusion']}" if choice.get("fusion") else "")
    return label + (f" {choice['alpha']:.2f}" if choice.get("alpha") is not None else "")


def _few_items(n: int, best: dict[str, Any], metric: str) -> str:
    """A warning when the test set is too small for the intervals to separate arms."""
    cell = best.get("metrics", {}).get(metric)
    if n >= SMALL_TEST or not cell:
        return ""
    width = cell["ci"][1] - cell["ci"][0]
    return (
        f" With {n} test questions the best arm's interval is {width:.2f} wide, so only large "
        "differences can show; more pairs (a larger --synth, a teacher model in "
        "synth.teacher_url, or your own --data) give a sharper answer."
    )


def _ci(row: dict[str, Any], metric: str) -> str:
    if metric not in row:
        return "–"
    low, high = row.get(f"{metric}_ci", [row[metric]] * 2)
    return f"{row[metric]:.3f} [{low:.3f}, {high:.3f}]"


def _num(value: Any, form: str = "{:.2f}") -> str:
    return "–" if value is None else form.format(value)


def markdown(summary: dict[str, Any]) -> str:
    """The report as Markdown."""
    config, data, arms = summary["config"], summary["data"], summary["arms"]
    rec = summary["recommendation"]
    counts = data["counts"]
    lines = [
        f"# Which method wins on collection {config['collection']!r}? Study {summary['study']}",
        "",
        f"## Recommendation: {rec['arm'] or 'none'}",
        "",
        rec["reason"],
        "",
        (
            f"Primary metric: {rec['metric']}. Budget: {config['budget']}. Test questions: "
            f"{data['test_items']} (from {data['test_source']})."
            + _few_items(data["test_items"], arms.get(summary["best"] or "", {}), rec["metric"])
        ),
        "",
        "## Data",
        "",
        f"Dataset {data['dataset']!r}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items() if not isinstance(v, dict)),
    ]
    synth = data.get("synth") or {}
    if synth:
        dropped = synth.get("dropped", {})
        lines += [
            "",
            f"Synthesised: generated {synth.get('generated')}, kept {synth.get('kept')}"
            + (", dropped " + ", ".join(f"{k} {v}" for k, v in dropped.items()) if dropped else ""),
        ]
    if data.get("leakage"):
        leak = data["leakage"]
        lines += [
            "",
            (
                f"Leakage: {leak['test_questions_with_overlap']} test question(s) had a "
                f"near-duplicate in the training data; {leak['training_pairs_removed']} "
                "training pair(s) were removed."
            ),
        ]
    lines += [f"\n- {p}" for p in data.get("problems", [])[:10]]
    retrieval = summary.get("retrieval") or {}
    lines += ["", "## Retrieval", ""]
    if retrieval.get("pick"):
        lines += [
            (
                f"Tuned on {retrieval.get('dev_questions', '?')} dev questions "
                f"({retrieval.get('budget', '')} grid), picked by MRR@10:"
            ),
            "",
            "| | chunk tokens | retriever | k | test hit@1 | test MRR@10 |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        test = retrieval.get("test", {})
        for which in ("pick", "default"):
            c, t = retrieval[which], test.get(which, {})
            lines.append(
                f"| {which} | {c['chunk_tokens']} | {_label(c)} | {c['k']} "
                f"| {_ci(t, 'hit@1')} | {_ci(t, 'mrr@10')} |"
            )
        used = retrieval.get("used") or {}
        lines += [
            "",
            (
                f"The RAG arms retrieve with {_label(used)} at {used.get('chunk_tokens')}-token "
                f"chunks, k={used.get('k')}. {retrieval.get('note', '')}"
            ),
        ]
    else:
        lines.append(
            f"Not tuned ({retrieval.get('skipped', 'the stage failed')}); "
            "the RAG arms use the settings."
        )
    lines += _quality_table(arms)
    lines += _vs_best(arms, summary["best"], rec["metric"])
    lines += _cost_table(arms)
    lines += _forgetting_table(arms)
    lines += ["", "## Stage times", "", "| stage | state | seconds |", "| --- | --- | --- |"]
    for name, stage in summary["stages"].items():
        state = stage["state"] + (f": {stage['error']}" if stage["error"] else "")
        lines.append(f"| {name} | {state} | {_num(stage['seconds'], '{:.1f}')} |")
    return "\n".join(lines) + "\n"


def _quality_table(arms: dict[str, Any]) -> list[str]:
    shown = [m for m in QUALITY if any(m in r.get("metrics", {}) for r in arms.values())]
    lines = [
        "",
        "## Quality (mean [95% bootstrap CI])",
        "",
        "| arm | status | " + " | ".join(shown) + " | n |",
        "| --- | --- | " + " | ".join("---" for _ in shown) + " | --- |",
    ]
    for name, row in arms.items():
        if row["status"] != "ok":
            lines.append(
                f"| {name} | failed: {row['error']} | " + " | ".join("–" for _ in shown) + " | 0 |"
            )
            continue
        status = "ok" + (f", {row['errors']} answer(s) failed" if row["errors"] else "")
        cells = [_cell(row["metrics"].get(m)) for m in shown]
        lines.append(f"| {name} | {status} | " + " | ".join(cells) + f" | {row['n']} |")
    return lines


def _vs_best(arms: dict[str, Any], best: str | None, primary: str) -> list[str]:
    if not best:
        return []
    lines = [
        "",
        f"## Paired differences against the best arm on {primary} ({best})",
        "",
        "Mean of (arm - best) over the items both answered; sign-flip permutation p-value.",
        "",
        "| arm | metric | difference | p-value | n |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in arms.items():
        for metric, cell in row.get("vs_best", {}).items():
            lines.append(
                f"| {name} | {metric} | {cell['diff']:+.3f} | {cell['p']:.3f} | {cell['n']} |"
            )
    return lines


def _cost_table(arms: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Cost",
        "",
        (
            "| arm | training s | peak memory MB | adapter MB | latency p50 s | latency p95 s "
            "| prompt tokens/answer | tokens/s |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in arms.items():
        c = row.get("cost")
        if not c:
            continue
        lines.append(
            f"| {name} | {_num(c['train_seconds'], '{:.0f}')} | "
            f"{_num(c['peak_memory_mb'], '{:.0f}')} | {_num(c['adapter_mb'])} | "
            f"{_num(c['latency_p50_s'])} | {_num(c['latency_p95_s'])} | "
            f"{_num(c['prompt_tokens'], '{:.0f}')} | {_num(c['tokens_per_s'], '{:.1f}')} |"
        )
    return lines


def _forgetting_table(arms: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Forgetting (adapter - base on the general suite, mean [95% CI])",
        "",
        "| arm | " + " | ".join(FORGETTING) + " | perplexity change |",
        "| --- | " + " | ".join("---" for _ in FORGETTING) + " | --- |",
    ]
    for name, row in arms.items():
        f = row.get("forgetting")
        if not f:
            note = "not measured" if row.get("adapter") else "no adapter: weights unchanged"
            lines.append(f"| {name} | {note} |" + " – |" * len(FORGETTING))
            continue
        cells = []
        for metric in FORGETTING:
            c = f["metrics"].get(metric)
            cells.append(f"{c['delta']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]" if c else "–")
        ppl = (f.get("perplexity_check") or {}).get("perplexity")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_num(ppl, '{:+.3f}')} |")
    sizes = [
        c["n"]
        for row in arms.values()
        for c in (row.get("forgetting") or {}).get("metrics", {}).values()
        if "n" in c
    ]
    if sizes and min(sizes) < SMALL_TEST:
        lines += [
            "",
            (
                f"Measured on {min(sizes)} general questions, too few to rule forgetting out: "
                "an interval of width 0 means the adapter answered them exactly as the base "
                "did, not that it cannot forget (a larger budget asks more)."
            ),
        ]
    return lines


def write_report(summary: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Write summary.json, report.md, report.html (images inlined) and the plots."""
    import markdown as markdown_lib

    from app.compare.study import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    images = plots(summary, folder)
    text = markdown(summary)
    paths = {
        "summary": folder / "summary.json",
        "markdown": folder / "report.md",
        "html": folder / "report.html",
    }
    write_atomic(paths["summary"], json.dumps(summary, indent=2, ensure_ascii=False))
    write_atomic(paths["markdown"], text + "".join(f"\n![{p.stem}]({p.name})\n" for p in images))
    inline = "".join(
        f'<p><img alt="{p.stem}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"></p>'
        for p in images
    )
    body = markdown_lib.markdown(text, extensions=["tables"])
    title = html.escape(f"ragtune compare: {summary['study']}")
    write_atomic(
        paths["html"],
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{STYLE}</style></head><body>{body}{inline}</body></html>",
    )
    return {**paths, **{p.stem: p for p in images}}


def report_stage(ctx: Context) -> dict[str, Any]:
    """The last stage: the summary, written as the report files; returns the summary."""
    summary = build_summary(ctx)
    files = write_report(summary, ctx.study.reports)
    summary["files"] = {k: str(v) for k, v in files.items()}
    return summary
