"""The Train tab: pick a method and data, adjust the key hyperparameters, run it as a
background job.

Every method of `ragtune train` is here with its bundled config's values filled in. The
form is validated (ranges, and the dataset line by line) before a job is queued; the job
itself is the CLI command, run by ``app.jobs`` in its own process. While it runs the page
shows the step, ETA, loss curve (reward and KL for PPO) and the log tail, and can cancel it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import yaml

from app.jobs import RAGTUNE, JobStore
from app.settings import Settings
from app.ui.errors import warning
from indexing.errors import RagtuneError
from training.config import ClassifyArgs, DPOArgs, PPOArgs, RewardArgs, SFTArgs, load_args
from training.methods import CLASSIFY_METHODS, SFT_METHODS
from training.run import log_path

# label -> (train subcommand, bundled config), one per method of training.methods
RECIPES = {
    **{f"sft / {m}": ("sft", f"configs/train/sft_{m}.yaml") for m in SFT_METHODS},
    **{
        f"classify / {m}": ("classify", f"configs/train/classify_{m}.yaml")
        for m in CLASSIFY_METHODS
    },
    "reward model": ("reward", "configs/train/reward_grounded.yaml"),
    "dpo": ("dpo", "configs/train/dpo_grounded.yaml"),
    "ppo": ("ppo", "configs/train/ppo_sentiment.yaml"),
}
ARGS = {
    "sft": SFTArgs,
    "classify": ClassifyArgs,
    "reward": RewardArgs,
    "dpo": DPOArgs,
    "ppo": PPOArgs,
}
# where an SFT method without a bundled config of its own starts from
SFT_FALLBACK = "configs/train/sft_lora.yaml"
FORM = ("name", "dataset", "learning_rate", "max_steps", "epochs", "batch_size", "lora_r")
CURVES = ("loss", "reward", "kl", "rewards/accuracies")
JOB_COLUMNS = ["id", "job", "state", "queued at", "progress"]


def recipe(label: str, repo: Path) -> tuple[str, Path, dict[str, Any]]:
    """The train subcommand, config file and fixed overrides of a form label.

    An SFT method added to ``training.methods`` without a config of its own starts from
    ``SFT_FALLBACK``, with its method and an adapter name of its own set.
    """
    task, config = RECIPES[label]
    if task != "sft" or (repo / config).exists():
        return task, repo / config, {}
    method = label.removeprefix("sft / ")
    return task, repo / SFT_FALLBACK, {"method": method, "name": f"ragtune-qa-{method}"}


def recipe_values(label: str, repo: Path) -> dict[str, Any]:
    """The bundled config's values for the form fields (defaults of the dataclass otherwise)."""
    task, config, fixed = recipe(label, repo)
    values = (yaml.safe_load(config.read_text()) or {}) | fixed
    defaults = ARGS[task]()
    return {f: values.get(f, getattr(defaults, f, None)) for f in FORM}


def check_dataset(task: str, args) -> None:
    """Read the dataset as the trainer will, so a bad line is reported before the job starts."""
    from training.data import load_instructions, load_labeled
    from training.preferences import load_preferences
    from training.rollout import load_prompts

    path = Path(args.dataset)
    if task == "sft":
        load_instructions(path)
    elif task == "classify":
        load_labeled(path, args.text_column or None, args.label_column)
    elif task in ("reward", "dpo"):
        load_preferences(path, args.skip_invalid)
    else:
        load_prompts(path, args.prompt_column, args.prompt_words, args.min_prompt_words, rows=1)


def submit_training(store: JobStore, repo: Path, label: str, form: dict[str, Any]) -> str:
    """Validate the form and the dataset, then queue the CLI command; returns the job id."""
    task, config, fixed = recipe(label, repo)
    overrides = fixed | {k: v for k, v in form.items() if v not in (None, "") and k in FORM}
    for key in ("max_steps", "batch_size", "lora_r"):
        if key in overrides:
            overrides[key] = int(overrides[key])
    args = load_args(ARGS[task], config, overrides)  # ranges: ConfigError names field and range
    check_dataset(task, args)
    command = [RAGTUNE, "train", task, "--config", str(config), "--overwrite", "--json"]
    for key, value in overrides.items():
        command += ["--set", f"{key}={json.dumps(value) if isinstance(value, str) else value}"]
    return store.submit("train", f"{label} → {args.name}", command, run_name=args.name).id


def job_progress(store: JobStore, runs_dir: Path, job) -> tuple[str, pd.DataFrame]:
    """(status line, long-format curve data) of one job from its metric log."""
    records = []
    log = log_path(runs_dir, job.run_name) if job.run_name else None
    if log and log.exists() and job.started and log.stat().st_mtime >= job.started - 1:
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    rows = [
        {"step": r["step"], "metric": k, "value": r[k]} for r in records for k in CURVES if k in r
    ]
    status = f"**{job.title}**: {job.state}"
    if records:
        last = records[-1]
        status += (
            f" · step {last['step']} of {last.get('max_steps', '?')} · ETA "
            f"{last.get('eta_s', 0):.0f} s"
        )
    if job.error:
        status += f" · {job.error}"
    return status, pd.DataFrame(rows, columns=["step", "metric", "value"])


def jobs_table(store: JobStore, runs_dir: Path) -> list[list]:
    """The queue and history, newest first."""
    rows = []
    for job in store.list():
        progress = ""
        log = log_path(runs_dir, job.run_name) if job.run_name else None
        if job.state == "running" and log and log.exists():
            lines = log.read_text().splitlines()
            if lines:
                last = json.loads(lines[-1])
                progress = f"{last['step']}/{last.get('max_steps', '?')}"
        rows.append(
            [
                job.id,
                job.title,
                job.state,
                time.strftime("%H:%M:%S", time.localtime(job.created)),
                progress,
            ]
        )
    return rows


def build_train_tab(store: JobStore, settings: Settings, repo: Path) -> None:
    """Render the Train tab inside the current Blocks context."""
    first = next(iter(RECIPES))
    start_values = recipe_values(first, repo)
    bundled = sorted(str(p.relative_to(repo)) for p in (repo / "training/datasets").glob("*.jsonl"))
    with gr.Row():
        recipe = gr.Dropdown(list(RECIPES), value=first, label="Method")
        name = gr.Textbox(start_values["name"], label="Adapter name")
        dataset = gr.Dropdown(
            bundled + ["../shared/data/sst2/train.tsv"],
            value=start_values["dataset"],
            allow_custom_value=True,
            label="Dataset (bundled, a path, or upload below)",
        )
        upload = gr.File(label="Upload a dataset", file_types=[".jsonl", ".tsv", ".csv"])
    with gr.Row():
        learning_rate = gr.Number(start_values["learning_rate"], label="Learning rate")
        max_steps = gr.Number(
            start_values["max_steps"], label="Max steps (-1: all epochs)", precision=0
        )
        epochs = gr.Number(start_values["epochs"], label="Epochs")
        batch_size = gr.Number(start_values["batch_size"], label="Batch size", precision=0)
        lora_r = gr.Number(start_values["lora_r"], label="LoRA rank", precision=0)
    start = gr.Button("Start training", variant="primary")
    message = gr.Markdown(elem_id="train-message")
    fields = [name, dataset, learning_rate, max_steps, epochs, batch_size, lora_r]

    gr.Markdown("### Jobs (one runs at a time; the rest wait in this queue)")
    jobs = gr.Dataframe(
        jobs_table(store, settings.runs_dir), headers=JOB_COLUMNS, interactive=False
    )
    with gr.Row():
        selected = gr.Dropdown([], label="Job", allow_custom_value=True)
        cancel = gr.Button("Cancel job", variant="stop", size="sm")
    status = gr.Markdown(elem_id="job-status")
    curve = gr.LinePlot(x="step", y="value", color="metric", label="Training curves", height=260)
    log_tail = gr.Textbox(label="Log (tail)", lines=10, max_lines=10, autoscroll=True)

    def fill(label):
        values = recipe_values(label, repo)
        return [gr.update(value=values[f]) for f in FORM]

    def take_upload(path):
        if not path:
            return gr.update()
        target = settings.dataset_uploads_dir / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        return gr.update(value=str(target))

    def start_job(label, *values):
        try:
            job_id = submit_training(store, repo, label, dict(zip(FORM, values)))
        except RagtuneError as exc:
            return warning(exc), gr.update()
        return f"Queued job {job_id}.", gr.update(value=job_id)

    def refresh(shown):
        table = jobs_table(store, settings.runs_dir)
        ids = [row[0] for row in table]
        job_id = shown if shown in ids else (ids[0] if ids else None)
        if not job_id:
            return (
                table,
                gr.update(choices=ids),
                "",
                pd.DataFrame(columns=["step", "metric", "value"]),
                "",
            )
        job = store.get(job_id)
        text, data = job_progress(store, settings.runs_dir, job)
        # the value is set only when it had to change: a tick that began before a new job
        # was selected must not put the old one back (CI, stop 21)
        chosen = gr.update(choices=ids, value=job_id) if job_id != shown else gr.update(choices=ids)
        return table, chosen, text, data, store.log_tail(job_id, 30)

    def cancel_job(job_id):
        try:
            return f"Cancelled {store.cancel(job_id).title}."
        except RagtuneError as exc:
            return warning(exc)

    recipe.change(fill, recipe, fields)
    upload.upload(take_upload, upload, dataset)
    start.click(start_job, [recipe, *fields], [message, selected])
    cancel.click(cancel_job, selected, message)
    outputs = [jobs, selected, status, curve, log_tail]
    gr.Timer(2.0).tick(refresh, selected, outputs)
    selected.input(lambda job_id: refresh(job_id)[2:], selected, outputs[2:])
