"""Cross-check `ragtune eval bench` against lm-evaluation-harness on the same local items.

Both score the first N items of each family from the benchmarks data folder with the same
model: ragtune through ``evals.benchmarks``, lm-eval 0.4.13 through its Hugging Face
backend, with task configs written here after lm-eval's own ones (mmlu, hellaswag, arc,
super_glue boolq, truthfulqa_mc1; BIG-bench and BBH have no lm-eval log-likelihood
template, so they use ragtune's) and pointing at copies of exactly those items. Nothing is
downloaded. The result goes to benchmarks/results/lm_eval_crosscheck.json and into
docs/methods.md between ``<!-- bench:lm_eval_crosscheck -->`` markers.

    .venv/bin/python -m benchmarks.lm_eval_crosscheck [--limit 200] [--adapter NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks/results/lm_eval_crosscheck.json"
METHODS_DOC = REPO / "docs/methods.md"
FAMILIES = ["mmlu", "hellaswag", "arc_easy", "arc_challenge", "boolq", "truthfulqa_mc1"]
FAMILIES += ["bigbench", "bbh"]
COMMAND = ".venv/bin/python -m benchmarks.lm_eval_crosscheck"

_TRUTHFULQA_QA = (
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\nA: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\nA: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain."
)
# lm-eval 0.4.13's prompt of each family (tasks/<family>/*.yaml), on the local columns.
_PROMPTS = {
    "mmlu": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}"
    "\nD. {{choices[3]}}\nAnswer:",
    "hellaswag": "{{query}}",
    "arc_easy": "Question: {{question}}\nAnswer:",
    "arc_challenge": "Question: {{question}}\nAnswer:",
    "boolq": "{{question}}\nAnswer:",
    "truthfulqa_mc1": "{% set prompt_qa = '" + _TRUTHFULQA_QA.replace("'", "\\'") + "' %}"
    "{{prompt_qa + '\n\nQ: ' + question + '\nA:'}}",
    "bigbench": "{{question}}\nA:",
    "bbh": "{{question}}\nA:",
}


def _hellaswag_preprocess(text: str) -> str:
    """lm_eval/tasks/hellaswag/utils.py ``preprocess``, verbatim."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def _hellaswag_docs(dataset):
    return dataset.map(
        lambda d: {
            "query": _hellaswag_preprocess(d["subject"] + ": " + d["question"]),
            "endings": [_hellaswag_preprocess(e) for e in d["choices"]],
        }
    )


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def lm_eval_tasks(family: str, bench_dir: Path, limit: int | None, folder: Path) -> list[dict]:
    """lm-eval task configs scoring the first ``limit`` items of ``family`` (ragtune's order).

    The items are copied to ``folder`` (one file per lm-eval task), so both tools see the
    same items whatever lm-eval's own ``limit`` semantics are.
    """
    from evals.benchmarks.tasks import load_task

    spec = load_task(family)
    items = [row for name in spec.test for row in _lines(bench_dir / name)][:limit]
    base = {
        "dataset_path": "json",
        "output_type": "multiple_choice",
        "test_split": "test",
        "doc_to_text": _PROMPTS[family],
        "doc_to_choice": ["no", "yes"] if family == "boolq" else "choices",
        "doc_to_target": "answer",
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
        "metadata": {"version": 1.0},
    }
    if family == "hellaswag":
        base.update(process_docs=_hellaswag_docs, doc_to_choice="endings")
    if family != "mmlu":
        path = folder / f"{family}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in items))
        base.update(task=f"rt_{family}", dataset_kwargs={"data_files": {"test": str(path)}})
        return [base]
    dev = _lines(bench_dir / spec.fewshot)
    tasks = []
    for subject in dict.fromkeys(r["subject"] for r in items):
        paths = {
            "test": folder / f"mmlu_{subject}.jsonl",
            "dev": folder / f"mmlu_{subject}_dev.jsonl",
        }
        paths["test"].write_text(
            "".join(json.dumps(r) + "\n" for r in items if r["subject"] == subject)
        )
        paths["dev"].write_text(
            "".join(json.dumps(r) + "\n" for r in dev if r["subject"] == subject)
        )
        tasks.append(
            base
            | {
                "task": f"rt_mmlu_{subject}",
                "dataset_kwargs": {"data_files": {k: str(v) for k, v in paths.items()}},
                "fewshot_split": "dev",
                "fewshot_config": {"sampler": "first_n"},
                "num_fewshot": 5,
                "description": "The following are multiple choice questions (with answers) "
                f"about {subject.replace('_', ' ')}.\n\n",
                "doc_to_choice": ["A", "B", "C", "D"],
            }
        )
    return tasks


def run_lm_eval(model_dir: str, adapter_dir: str | None, tasks: list[dict], cache: Path) -> dict:
    """Per-task lists of per-item acc and acc_norm from lm-eval's HF backend (offline)."""
    offline = {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(cache),  # the json builder's arrow cache, not ~/.cache
    }
    saved = {k: os.environ.get(k) for k in offline}
    os.environ.update(offline)
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager

        args = {"pretrained": model_dir, "dtype": "float32"}
        if adapter_dir:
            args["peft"] = adapter_dir
        result = lm_eval.simple_evaluate(
            model="hf",
            model_args=args,
            device="cpu",
            batch_size=16,
            tasks=tasks,
            task_manager=TaskManager(include_defaults=False),
            log_samples=True,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {
        name: {
            m: [s[m] for s in sorted(samples, key=lambda s: s["doc_id"])]
            for m in ("acc", "acc_norm")
        }
        for name, samples in result["samples"].items()
    }


def compare(
    families: list[str],
    model_dir: str,
    *,
    bench_dir: Path,
    work: Path,
    limit: int | None = 200,
    registry=None,
    adapter: str | None = None,
) -> dict:
    """ragtune and lm-eval accuracy per family on the same items, with their timings."""
    from evals.benchmarks.models import load_scoring_model
    from evals.benchmarks.runner import prepare, run_benchmarks
    from evals.benchmarks.tasks import load_task

    work.mkdir(parents=True, exist_ok=True)
    model, tokenizer, describe = load_scoring_model(model_dir, registry=registry, adapter=adapter)
    prepared = [prepare(load_task(f), bench_dir, limit=limit) for f in families]
    started = time.perf_counter()
    ours = run_benchmarks(prepared, model, tokenizer, describe=describe)
    ragtune_s = time.perf_counter() - started
    del model
    tasks = {f: lm_eval_tasks(f, bench_dir, limit, work) for f in families}
    started = time.perf_counter()
    theirs = run_lm_eval(
        describe["model"] if describe["adapter_kind"] == "full" else model_dir,
        describe.get("adapter_path") if describe["adapter_kind"] not in (None, "full") else None,
        [t for group in tasks.values() for t in group],
        work / "hf-datasets",
    )
    lm_eval_s = time.perf_counter() - started
    rows = {}
    for family in families:
        samples = ours["samples"][family]
        row = {"n": len(samples)}
        for metric in ("acc", "acc_norm"):
            peer = [v for t in tasks[family] for v in theirs[t["task"]][metric]]
            mine = [s[metric] for s in samples]
            row[metric] = {
                "ragtune": round(sum(mine) / len(mine), 4),
                "lm_eval": round(sum(peer) / len(peer), 4),
                "items_differing": sum(a != b for a, b in zip(mine, peer)),
            }
        rows[family] = row
    return {
        "model": describe["model"],
        "adapter": adapter,
        "adapter_kind": describe["adapter_kind"],
        "limit": limit,
        "families": rows,
        "seconds": {"ragtune": round(ragtune_s, 1), "lm_eval": round(lm_eval_s, 1)},
    }


def section(runs: list[dict], command: str = COMMAND) -> str:
    """Markdown table of one or more ``compare`` results, with the command that made them."""
    lines = [
        (
            f"Reproduce: `{command}` (lm-eval 0.4.13, HF backend, float32, CPU; "
            f"first {runs[0]['limit']} items of each family)."
        ),
        "",
        (
            "| model | family | n | acc ragtune | acc lm-eval | items differing "
            "| acc_norm ragtune | acc_norm lm-eval |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        who = f"{run['adapter']} ({run['adapter_kind']})" if run["adapter"] else "base"
        for family, row in run["families"].items():
            acc, norm = row["acc"], row["acc_norm"]
            lines.append(
                f"| {who} | {family} | {row['n']} | {acc['ragtune']:.4f} | {acc['lm_eval']:.4f} "
                f"| {acc['items_differing']} | {norm['ragtune']:.4f} | {norm['lm_eval']:.4f} |"
            )
    times = "; ".join(
        f"{r['adapter'] or 'base'}: ragtune {r['seconds']['ragtune']} s, "
        f"lm-eval {r['seconds']['lm_eval']} s"
        for r in runs
    )
    return "\n".join(lines + ["", f"Scoring time on this machine: {times}."])


def render(runs: list[dict], command: str = COMMAND) -> None:
    """Put the table into docs/methods.md between its markers (appending them if absent)."""
    begin, end = "<!-- bench:lm_eval_crosscheck -->", "<!-- /bench:lm_eval_crosscheck -->"
    block = f"{begin}\n{section(runs, command)}\n{end}"
    text = METHODS_DOC.read_text() if METHODS_DOC.exists() else "# Methods\n"
    if begin in text:
        text = re.sub(
            rf"{re.escape(begin)}.*?{re.escape(end)}", lambda _: block, text, flags=re.DOTALL
        )
    else:
        text = (
            text.rstrip("\n")
            + "\n\n## Benchmarks cross-checked with lm-evaluation-harness\n\n"
            + block
            + "\n"
        )
    METHODS_DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=200, help="First N items of each family.")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--adapter", action="append", default=[], help="Also this adapter.")
    args = parser.parse_args()
    import tempfile

    from app.models import pull_default_generator
    from app.settings import load_settings
    from training.registry import AdapterRegistry

    settings = load_settings()
    model_dir = str(pull_default_generator(settings.models_dir))
    registry = AdapterRegistry(settings.adapters_root)
    families = args.families.split(",")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for adapter in [None, *args.adapter]:
            runs.append(
                compare(
                    families,
                    model_dir,
                    bench_dir=settings.benchmarks_dir,
                    work=Path(tmp) / (adapter or "base"),
                    limit=args.limit,
                    registry=registry,
                    adapter=adapter,
                )
            )
            print(json.dumps(runs[-1], indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(runs, indent=2))
    flags = [f"--limit {args.limit}"]
    if args.families != ",".join(FAMILIES):
        flags.append(f"--families {args.families}")
    flags += [f"--adapter {a}" for a in args.adapter]
    render(runs, " ".join([COMMAND, *flags]))


if __name__ == "__main__":
    main()
