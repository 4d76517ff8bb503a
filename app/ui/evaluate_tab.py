"""The Evaluate tab: run a suite over chosen variants as a background job; show its report.

The job is `ragtune eval run`, so the report (tables with confidence intervals, plots,
HTML and the results JSONL) is the CLI's; the page shows it when the job finishes and
offers the files for download. The suite can also be a dataset (its test split) or a QA
file path, and variants can be typed as specs (``app.variants.parse_spec``) beside the
named ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from app.jobs import RAGTUNE, JobError, JobStore
from app.settings import Settings
from app.ui.errors import warning
from app.variants import SPEC_HELP, parse_spec
from evals.report import report_folder, report_paths
from indexing.errors import RagtuneError
from training.qa_dataset import DatasetStore


def submit_eval(
    store: JobStore, settings: Settings, suite: str, variants: list[str], limit, specs: str = ""
) -> tuple[str, Path]:
    """Queue `ragtune eval run`; returns (job id, report folder).

    ``specs`` is a comma-separated list of variant specs added after ``variants``; each is
    parsed here, so a typo is reported at once (``SpecError``) rather than by a failed job.
    """
    if not suite:
        raise JobError("pick a suite")
    typed = [spec.strip() for spec in specs.split(",") if spec.strip()]
    for spec in typed:
        parse_spec(spec)
    variants = list(dict.fromkeys([*variants, *typed]))
    if not variants:
        raise JobError("pick at least one variant or type a spec")
    output = report_folder(settings.evals_dir, Path(suite).stem)
    command = [
        RAGTUNE,
        "eval",
        "run",
        "--suite",
        suite,
        "--variants",
        ",".join(variants),
        "--output",
        str(output),
    ]
    if limit:
        command += ["--limit", str(int(limit))]
    job = store.submit("eval", f"eval {Path(suite).stem}: {', '.join(variants)}", command)
    (store.folder(job.id) / "report_dir").write_text(str(output))
    return job.id, output


def progress_of(log: str) -> str:
    """The last progress-bar percentage in a log tail ('' when none)."""
    found = re.findall(r"(\d+)%\|", log)
    return f"{found[-1]}%" if found else ""


def build_evaluate_tab(
    store: JobStore, settings: Settings, repo: Path, variant_names: list[str]
) -> None:
    """Render the Evaluate tab inside the current Blocks context."""
    suites = sorted(str(p.relative_to(repo)) for p in (repo / "evals/suites").glob("*.yaml"))
    suites += [m.name for m in DatasetStore(settings.datasets_dir).list()]
    with gr.Row():
        suite = gr.Dropdown(
            suites,
            value=suites[0] if suites else None,
            label="Suite",
            info="a suite, a dataset (its test split), or type a QA file's path",
            allow_custom_value=True,
        )
        variants = gr.CheckboxGroup(variant_names, value=variant_names[:2], label="Variants")
        limit = gr.Number(None, label="Only the first N items (blank: all)", precision=0)
    specs = gr.Textbox(
        label="More variants as specs (comma-separated)",
        placeholder="e.g. rag:docs+my-lora@k=6, few-shot@shots=4@demos=mydata",
        info=SPEC_HELP,
    )
    run = gr.Button("Run evaluation", variant="primary")
    status = gr.Markdown(elem_id="eval-status")
    job_id = gr.State("")
    report = gr.Markdown()
    with gr.Row():
        metrics_plot = gr.Image(label="Metrics", type="filepath", visible=False)
        latency_plot = gr.Image(label="Latency", type="filepath", visible=False)
    downloads = gr.File(label="Report files", file_count="multiple", visible=False)

    def start(suite_path, chosen, n, typed):
        try:
            new_id, _ = submit_eval(store, settings, suite_path, chosen, n, typed or "")
        except RagtuneError as exc:
            return warning(exc), ""
        return f"Queued evaluation job {new_id}.", new_id

    def poll(current):
        if not current:
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        job = store.get(current)
        tail = store.log_tail(current, 5)
        text = f"**{job.title}**: {job.state} {progress_of(tail)}" + (
            f" · {job.error}" if job.error else ""
        )
        paths = report_paths(Path((store.folder(current) / "report_dir").read_text()))
        if job.state != "succeeded" or not paths["markdown"].exists():
            return text, gr.update(), gr.update(), gr.update(), gr.update()
        files = [str(paths[k]) for k in ("html", "results", "summary") if paths[k].exists()]
        plots = [paths["metrics"], paths["latency"]]
        images = [
            gr.update(value=str(p), visible=True) if p.exists() else gr.update(visible=False)
            for p in plots
        ]
        return (
            text,
            paths["markdown"].read_text(),
            *images,
            gr.update(value=files, visible=True),
        )

    run.click(start, [suite, variants, limit, specs], [status, job_id])
    gr.Timer(2.0).tick(poll, job_id, [status, report, metrics_plot, latency_plot, downloads])
