"""The Compare tab: run `ragtune compare` on a collection as a background job; see its
stages advance and its report when it is done; browse past studies.

The job is the CLI command (``app.jobs``, one heavy job at a time), so the study, its
resumability and its report are the CLI's; the page reads the study's ``state.json``
for stage progress and shows ``reports/report.html`` when the job finishes.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from app.compare.budget import BUDGETS
from app.compare.report import report_stage
from app.compare.stages import plan
from app.compare.study import StageState, Study, StudyError, default_study_name, list_studies
from app.jobs import RAGTUNE, JobStore
from app.settings import Settings
from app.ui.errors import warning
from app.uploads import safe_name
from indexing.errors import RagtuneError
from training.methods import SFT_METHODS
from training.qa_dataset import DatasetStore

SOURCES = ("synthesise pairs", "upload pairs", "existing dataset")
METRICS = ("token_f1", "rougeL", "embedding_similarity", "groundedness", "hit@1", "mrr")
STUDY_COLUMNS = ["study", "collection", "budget", "stages", "recommendation", "updated"]


def submit_study(
    jobs: JobStore,
    settings: Settings,
    *,
    collection: str,
    source: str,
    n: int | None = None,
    upload: str | None = None,
    dataset: str | None = None,
    methods: list[str] | None = None,
    budget: str = "quick",
    primary_metric: str = "token_f1",
    name: str = "",
) -> tuple[str, str]:
    """Queue `ragtune compare`; returns (job id, study name).

    Raises ``StudyError`` naming the missing input (collection, N, file, dataset).
    """
    if not collection:
        raise StudyError("pick a collection (ingest documents in the Documents tab first)")
    command = [RAGTUNE, "compare", "--collection", collection]
    if source == SOURCES[0]:
        if not n or int(n) < 1:
            raise StudyError("give the number of pairs to synthesise")
        command += ["--synth", str(int(n))]
        data, synth = "", int(n)
    elif source == SOURCES[1]:
        if not upload:
            raise StudyError("upload a JSONL or CSV file of question, answer[, source]")
        target = settings.dataset_uploads_dir / safe_name(Path(upload).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(upload, target)
        command += ["--data", str(target)]
        data, synth = str(target), 0
    else:
        if not dataset:
            raise StudyError("pick a dataset (make one with `ragtune data synth` or import)")
        command += ["--data", dataset]
        data, synth = dataset, 0
    study = name.strip() or default_study_name(collection, data, synth, budget)
    if methods:
        command += ["--methods", ",".join(methods)]
    command += ["--budget", budget, "--primary-metric", primary_metric, "--name", study, "--json"]
    job = jobs.submit("compare", f"compare {study}", command, run_name=study)
    return job.id, study


def stage_table(study: Study) -> str:
    """Every planned stage as a Markdown table (state and seconds), with a count of done
    ones; a stage left ``running`` by a process that is gone (cancelled, killed) shows as
    stopped."""
    if not study.state_path.exists():
        return "Waiting for the study to start…"
    stages = study.state().stages
    try:
        names = [s.name for s in plan(study.config, report_stage)]
    except RagtuneError:
        names = []
    names += [n for n in stages if n not in names]
    live = study.is_running()
    done = sum(1 for s in stages.values() if s.state == "done")
    lines = [
        f"Stages done: {done} of {len(names)}",
        "",
        "| stage | state | seconds |",
        "| --- | --- | --- |",
    ]
    for name in names:
        stage = stages.get(name, StageState())
        state = stage.state + (f": {stage.error}" if stage.error else "")
        seconds = f"{stage.seconds:.1f}" if stage.seconds is not None else ""
        if stage.state == "running" and not live:
            state, seconds = "stopped (run the study again to resume)", ""
        elif stage.state == "running" and stage.started:
            seconds = f"{time.time() - stage.started:.0f} so far"
        lines.append(f"| {name} | {state} | {seconds} |")
    return "\n".join(lines)


def report_html(study: Study) -> str:
    """The body of the study's self-contained report.html ('' before it exists)."""
    path = study.reports / "report.html"
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    body = re.search(r"<body>(.*)</body>", text, re.DOTALL)
    return f'<div class="compare-report">{body.group(1) if body else text}</div>'


def studies_table(root: Path) -> list[list[str]]:
    """One row per past study, newest first."""
    rows = []
    for study in list_studies(root):
        try:
            state, config = study.state(), study.config
        except (ValueError, KeyError, TypeError, RagtuneError):
            continue
        done = sum(1 for s in state.stages.values() if s.state == "done")
        report = study.result("report") or {}
        recommended = (report.get("recommendation") or {}).get("arm") or ""
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(study.state_path.stat().st_mtime))
        stages = f"{done}/{len(state.stages)}"
        rows.append([study.name, config.collection, config.budget, stages, recommended, updated])
    return rows


def build_compare_tab(
    jobs: JobStore, settings: Settings, collections: Callable[[], list[str]]
) -> None:
    """Render the Compare tab inside the current Blocks context."""
    names = collections()
    datasets = DatasetStore(settings.datasets_dir)
    extra = [m for m in SFT_METHODS if m != "lora"]
    gr.Markdown(
        "Which method wins on your documents? A study builds question/answer pairs, tunes "
        "retrieval, trains a LoRA and a RAFT LoRA, answers a held-out test set with every arm "
        "(zero-shot, few-shot, RAG, LoRA, RAG + LoRA, RAG + RAFT-LoRA) and recommends one."
    )
    with gr.Row():
        collection = gr.Dropdown(
            names,
            value=names[0] if names else None,
            label="Collection",
            elem_id="compare-collection",
        )
        source = gr.Radio(list(SOURCES), value=SOURCES[0], label="Data")
        n = gr.Number(200, label="Pairs to synthesise", precision=0)
    with gr.Row():
        upload = gr.File(
            label="Question/answer pairs (JSONL or CSV)", file_types=[".jsonl", ".csv"]
        )
        dataset = gr.Dropdown(
            [m.name for m in datasets.list()], label="Existing dataset", allow_custom_value=True
        )
    with gr.Row():
        methods = gr.CheckboxGroup(extra, label="Extra methods (trained like the LoRA arm)")
        budget = gr.Radio(list(BUDGETS), value="quick", label="Budget")
        primary = gr.Dropdown(list(METRICS), value="token_f1", label="Primary metric")
        name = gr.Textbox(label="Study name (blank: from the inputs)")
    run = gr.Button("Run study", variant="primary")
    status = gr.Markdown(elem_id="compare-status")
    stages = gr.Markdown(elem_id="compare-stages")
    report = gr.HTML(elem_id="compare-report")
    downloads = gr.File(label="Report files", file_count="multiple", visible=False)
    gr.Markdown("### Past studies")
    past = gr.Dataframe(
        studies_table(settings.compare_dir), headers=STUDY_COLUMNS, interactive=False
    )
    with gr.Row():
        shown = gr.Dropdown([r[0] for r in studies_table(settings.compare_dir)], label="Show study")
        refresh = gr.Button("Refresh", size="sm", elem_id="compare-refresh")
    job_id, study_name = gr.State(""), gr.State("")

    def start(coll, src, count, file, data, chosen, level, metric, title):
        try:
            new_id, study = submit_study(
                jobs,
                settings,
                collection=coll,
                source=src,
                n=count,
                upload=file,
                dataset=data,
                methods=chosen,
                budget=level,
                primary_metric=metric,
                name=title,
            )
        except RagtuneError as exc:
            return warning(exc), "", ""
        return f"Queued study {study} (job {new_id}).", new_id, study

    def files_of(study: Study):
        paths = [study.reports / f for f in ("report.html", "report.md", "summary.json")]
        existing = [str(p) for p in paths if p.exists()]
        return gr.update(value=existing, visible=bool(existing))

    def poll(current, study):
        if not current:
            return gr.update(), gr.update(), gr.update(), gr.update()
        job = jobs.get(current)
        text = f"**{job.title}**: {job.state}" + (f" · {job.error}" if job.error else "")
        folder = Study(settings.compare_dir / study)
        table = stage_table(folder)
        if job.state != "succeeded":
            return text, table, gr.update(), gr.update()
        return text, table, report_html(folder), files_of(folder)

    def show(study):
        if not study:
            return gr.update(), gr.update(), gr.update()
        folder = Study(settings.compare_dir / study)
        return stage_table(folder), report_html(folder) or "No report yet.", files_of(folder)

    def reload():
        rows = studies_table(settings.compare_dir)
        return (
            rows,
            gr.update(choices=[r[0] for r in rows]),
            gr.update(choices=collections()),
            gr.update(choices=[m.name for m in datasets.list()]),
        )

    inputs = [collection, source, n, upload, dataset, methods, budget, primary, name]
    run.click(start, inputs, [status, job_id, study_name])
    gr.Timer(2.0).tick(poll, [job_id, study_name], [status, stages, report, downloads])
    shown.change(show, shown, [stages, report, downloads])
    refresh.click(reload, None, [past, shown, collection, dataset])
