"""`ragtune compare`'s study with small fakes of every piece it orchestrates: resuming after
Ctrl-C and kill -9, a failing arm's row, leakage, the recommendation and the report files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.compare.answering import AnswerOutcome, AnswerRequest
from app.compare.budget import BudgetError, get_budget
from app.compare.data import LeakageError
from app.compare.run import run_study
from app.compare.services import StudyServices
from app.compare.study import Study, StudyConfig, StudyConflict, StudyError
from evals.runner import ItemResult
from evals.suites import Item, Suite
from tests.conftest import REPO
from training.qa_dataset import DatasetManifest, DatasetStore, QAPair
from training.registry import Manifest

TOPICS = ["tea", "coffee", "lighthouse", "bicycle", "volcano", "harbour", "glacier", "orchard"]
NOUNS = [
    *("anchor", "basalt", "canyon", "dolphin", "ember", "falcon", "granite", "hazel", "indigo"),
    *("juniper", "kelp", "lantern", "meadow", "nectar", "obsidian", "pepper", "quartz", "raven"),
    *("saffron", "tundra", "umber", "violet", "walnut", "xylem", "yarrow", "zephyr", "almond"),
    *("birch", "cobalt", "dune"),
]
ARMS = ["zero-shot", "few-shot", "rag", "lora", "rag+lora", "rag+raft"]


def qa_pairs(n: int = 40) -> list[QAPair]:
    """Distinct questions (no two near-duplicates up to 60), each with a source."""
    return [
        QAPair(
            f"Which {NOUNS[i % 30]} does the {TOPICS[i % 8]} guide pair with "
            f"{NOUNS[(i * 11 + 5) % 29]} in part {i}?",
            f"the {NOUNS[(i * 11 + 5) % 29]} of part {i}",
            source=f"docs/{TOPICS[i % 8]}.md",
        )
        for i in range(n)
    ]


class Fakes:
    """Every piece a study calls, recording the calls; ``quality`` sets each arm's scores."""

    def __init__(self, root: Path, *, quality: dict[str, float] | None = None) -> None:
        self.datasets = DatasetStore(root / "datasets")
        self.calls: list[str] = []
        self.quality = quality or {arm: 0.2 + 0.1 * i for i, arm in enumerate(ARMS)}
        self.fail_training: dict[str, Exception] = {}
        self.interrupt_at: str | None = None
        self.sleep_at: str | None = None

    def check(self, collection: str) -> None:
        self.calls.append(f"check {collection}")

    def synthesize(self, collection, n, name, seed, fractions):
        self.calls.append("synthesize")
        manifest = DatasetManifest(name=name, collection=collection, seed=seed)
        dataset = self.datasets.save(manifest, qa_pairs(n), fractions=fractions)
        return dataset, {"generated": n, "kept": n, "dropped": {}}

    def import_pairs(self, path, name, collection, seed, fractions):
        from training.qa_dataset import read_pairs

        self.calls.append("import")
        pairs, problems = read_pairs(path)
        manifest = DatasetManifest(name=name, collection=collection, origin="import", seed=seed)
        return self.datasets.save(manifest, pairs, fractions=fractions), problems

    def tune(self, collection, dev, test, grid, seed):
        self.calls.append("tune")
        pick = {"chunk_tokens": 128, "retriever": "bm25", "fusion": "", "alpha": None, "k": 6}
        default = {"chunk_tokens": 256, "retriever": "hybrid", "fusion": "convex", "alpha": 0.7}
        default["k"] = 4
        rows = [
            {**default, "mrr@10": 0.7},
            {**pick, "mrr@10": 0.8},
            {**pick, "chunk_tokens": 256, "k": 3, "mrr@10": 0.75},
        ]
        test = {"pick": {"hit@1": 0.8, "hit@1_ci": [0.7, 0.9]}, "default": {"hit@1": 0.7}}
        return {"pick": pick, "default": default, "dev": rows, "test": test}

    def train_raft(self, args, collection, pairs, output, budget, retrieval):
        self.calls.append(f"raft k={retrieval['k'] if retrieval else None}")
        return self.train(args)

    def train(self, args) -> Manifest:
        self.calls.append(f"train {args.name}")
        for key, error in self.fail_training.items():
            if args.name.endswith(key):
                raise error
        metrics = {"train_seconds": 30.0 * args.max_steps, "peak_memory_mb": 1500.0}
        return Manifest(args.name, "lora", args.method, args.base_model, metrics=metrics)

    def answer(self, request: AnswerRequest) -> AnswerOutcome:
        name = request.arm.name
        self.calls.append(f"answer {name}")
        if self.interrupt_at == name:
            raise KeyboardInterrupt
        if self.sleep_at == name:
            time.sleep(600)
        level = self.quality.get(name, 0.5)
        results = []
        for index, item in enumerate(request.suite.items):
            score = level + (0.05 if index % 2 else -0.05)
            scores = {"rougeL": score, "token_f1": score, "latency_s": 0.5 + index / 100}
            if request.arm.rag:
                scores.update({"groundedness": score, "hit@1": 1.0, "hit@4": 1.0, "mrr": 1.0})
            results.append(
                ItemResult(
                    name, index, item.question, f"answer {index}", item.reference, [], scores
                )
            )
        return AnswerOutcome(results, [100 + 300 * request.arm.rag] * len(results), {"name": name})

    def services(self) -> StudyServices:
        general = Suite("general", "qa", [Item(f"General question {i}?", "yes") for i in range(5)])
        return StudyServices(
            datasets=self.datasets,
            check=self.check,
            synthesize=self.synthesize,
            import_pairs=self.import_pairs,
            read_pairs=__import__("training.qa_dataset", fromlist=["read_pairs"]).read_pairs,
            tune=self.tune,
            train=self.train,
            train_raft=self.train_raft,
            adapter_bytes=lambda name: 3_700_000,
            answer=self.answer,
            base_model="tiny-base",
            system_prompt="Answer.",
            general_suite=general,
        )


def config(**changes) -> StudyConfig:
    values = {"name": "s1", "collection": "docs", "synth": 60, "budget": "quick"}
    return StudyConfig(**{**values, **changes})


def run(tmp_path: Path, fakes: Fakes, **changes) -> dict:
    study = Study.open(tmp_path / "compare", config(**changes))
    return run_study(study, fakes.services())


def test_a_study_reports_every_arm_with_intervals_costs_forgetting_and_a_recommendation(
    tmp_path,
):
    fakes = Fakes(tmp_path)
    summary = run(tmp_path, fakes)
    assert list(summary["arms"]) == ARMS
    for name in ARMS:
        row = summary["arms"][name]
        assert row["status"] == "ok", row
        cell = row["metrics"]["token_f1"]
        assert cell["ci"][0] <= cell["mean"] <= cell["ci"][1] and cell["n"] == 15
        assert row["cost"]["latency_p50_s"] is not None
    assert summary["arms"]["rag"]["metrics"]["hit@1"]["mean"] == 1.0
    assert "groundedness" not in summary["arms"]["zero-shot"]["metrics"]
    # 36 train pairs, 3 epochs at most at batch 8: 14 steps rather than the budget's 30
    assert summary["arms"]["lora"]["cost"]["train_seconds"] == 30.0 * 14
    assert summary["arms"]["lora"]["cost"]["adapter_mb"] == 3.7
    assert summary["arms"]["rag"]["cost"]["train_seconds"] == 0.0
    assert summary["arms"]["lora"]["forgetting"]["metrics"]["token_f1"]["n"] == 5
    assert summary["arms"]["rag"]["forgetting"] is None
    assert summary["best"] == "rag+raft"
    assert (
        "vs_best" in summary["arms"]["zero-shot"] and "vs_best" not in summary["arms"]["rag+raft"]
    )
    assert summary["recommendation"]["arm"] == "rag+raft"
    assert summary["recommendation"]["rule"] == "beats-interval"
    reports = tmp_path / "compare" / "s1" / "reports"
    for name in ("report.md", "report.html", "summary.json", "quality.png", "cost.png"):
        assert (reports / name).stat().st_size > 0, name
    assert (reports / "forgetting.png").exists()
    html = (reports / "report.html").read_text()
    assert "data:image/png;base64" in html and "Recommendation: rag+raft" in html
    text = (reports / "report.md").read_text()
    for arm in ARMS:
        assert f"| {arm} |" in text
    used = "The RAG arms retrieve with bm25 at 256-token chunks, k=3. The pick re-chunks to 128"
    assert used in text
    assert "Measured on 5 general questions, too few to rule forgetting out" in text
    assert fakes.calls[0] == "check docs"


def test_a_study_uses_the_tuned_retrieval_the_train_split_and_the_budget(tmp_path):
    fakes = Fakes(tmp_path)
    requests: list[AnswerRequest] = []
    answer = fakes.answer
    fakes.answer = lambda request: requests.append(request) or answer(request)
    run(tmp_path, fakes)
    by_arm = {r.arm.name: r for r in requests}
    assert by_arm["rag"].retrieval == {  # the best setting at the collection's chunk size
        "chunk_tokens": 256,
        "retriever": "bm25",
        "fusion": "",
        "alpha": None,
        "k": 3,
    }
    assert "raft k=3" in fakes.calls
    assert by_arm["zero-shot"].retrieval is None
    demos = by_arm["few-shot"].demonstrations.read_text().splitlines()
    assert len(demos) == get_budget("quick").fewshot_count
    study = Study(tmp_path / "compare" / "s1")
    train = {p["question"] for p in study.result("dataset")["splits"]["train"]}
    assert json.loads(demos[0])["question"] in train
    test = {item.question for item in by_arm["rag"].suite.items}
    assert not test & train
    sft = (study.work / "sft-lora.jsonl").read_text().splitlines()
    assert len(sft) == len(train)
    assert json.loads(sft[0])["messages"][0] == {"role": "system", "content": "Answer."}


def test_rerun_reuses_finished_stages_and_restarts_one_interrupted_by_ctrl_c(tmp_path):
    fakes = Fakes(tmp_path)
    fakes.interrupt_at = "rag+lora"
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, fakes)
    study = Study(tmp_path / "compare" / "s1")
    assert study.state().stages["answer-rag+lora"].state == "interrupted"
    assert study.done("answer-lora") and not study.done("answer-rag+lora")
    before = list(fakes.calls)
    fakes.interrupt_at = None
    summary = run(tmp_path, fakes)
    again = fakes.calls[len(before) :]
    assert "synthesize" not in again and not any(c.startswith("train") for c in again)
    assert "answer lora" not in again and "answer rag+lora" in again
    assert all(summary["arms"][a]["status"] == "ok" for a in ARMS)
    assert study.state().stages["answer-rag+lora"].state == "done"


def _kill_script(root: Path) -> str:
    return (
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "from pathlib import Path\n"
        "from tests.unit.test_compare import Fakes, config\n"
        "from app.compare.run import run_study\n"
        "from app.compare.study import Study\n"
        f"fakes = Fakes(Path({str(root)!r})); fakes.sleep_at = 'rag'\n"
        f"run_study(Study.open(Path({str(root)!r}) / 'compare', config()), fakes.services())\n"
    )


def test_a_study_killed_with_sigkill_resumes_and_nothing_half_written_is_used(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", _kill_script(tmp_path)], cwd=REPO)
    study = Study(tmp_path / "compare" / "s1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stage = study.state().stages.get("answer-rag") if study.state_path.exists() else None
        if stage and stage.state == "running":
            break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the study never reached answer-rag")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    (study.stages_dir / ".answer-rag.json.999.tmp").write_text('{"half": ')  # a cut-short write
    fakes = Fakes(tmp_path)
    summary = run_study(study, fakes.services())  # the lock died with the process
    assert "synthesize" not in fakes.calls and "answer zero-shot" not in fakes.calls
    assert "answer rag" in fakes.calls
    assert not list(study.stages_dir.glob(".*.tmp"))
    assert summary["arms"]["rag"]["status"] == "ok"


def test_a_failing_arm_gets_a_row_saying_why_and_the_others_are_reported(tmp_path):
    fakes = Fakes(tmp_path)
    fakes.fail_training["raft"] = RuntimeError("out of memory in RAFT training")
    summary = run(tmp_path, fakes)
    row = summary["arms"]["rag+raft"]
    assert row["status"] == "failed"
    assert "train-raft" in row["error"] and "out of memory" in row["error"]
    assert summary["arms"]["lora"]["status"] == "ok"
    assert summary["recommendation"]["arm"] == "rag+lora"
    assert "rag+raft" in summary["recommendation"]["reason"]  # named as left out
    text = (tmp_path / "compare" / "s1" / "reports" / "report.md").read_text()
    assert "| rag+raft | failed: needs train-raft, which failed: RuntimeError(" in text
    log = (tmp_path / "compare" / "s1" / "study.log").read_text()
    assert "Traceback" in log and "out of memory" in log
    # a re-run tries the failed stages again and keeps the rest
    fakes.fail_training.clear()
    again = run(tmp_path, fakes)
    assert again["arms"]["rag+raft"]["status"] == "ok"


def test_extra_methods_add_arms_and_unknown_ones_are_refused(tmp_path):
    fakes = Fakes(tmp_path)
    summary = run(tmp_path, fakes, methods=("ia3",))
    assert summary["arms"]["ia3"]["status"] == "ok"
    assert "train s1-ia3" in fakes.calls
    with pytest.raises(StudyError, match="unknown method"):
        run(tmp_path, Fakes(tmp_path), name="s2", methods=("sorcery",))


def _write_pairs(path: Path, pairs: list[QAPair]) -> Path:
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in pairs))
    return path


def test_a_test_file_overlapping_the_training_data_is_refused_or_dropped(tmp_path):
    data = _write_pairs(tmp_path / "mine.jsonl", qa_pairs(40))
    fakes = Fakes(tmp_path)
    run(tmp_path, fakes, name="s0", synth=0, data=str(data))
    trained = Study(tmp_path / "compare" / "s0").result("dataset")["splits"]["train"][3]
    leaked = QAPair(trained["question"].replace("Which", "which") + " ", "x")  # a near-duplicate
    test = _write_pairs(tmp_path / "test.jsonl", [leaked, QAPair("What is new here?", "x")])
    with pytest.raises(LeakageError, match="1 test question"):
        run(tmp_path, fakes, name="s2", synth=0, data=str(data), test_file=str(test))
    # The refused study finished no stage: the advised --drop-overlap re-run takes its name.
    summary = run(
        tmp_path, fakes, name="s2", synth=0, data=str(data), test_file=str(test), drop_overlap=True
    )
    assert summary["data"]["leakage"]["test_questions_with_overlap"] == 1
    assert summary["data"]["leakage"]["training_pairs_removed"] == 1
    assert summary["data"]["test_items"] == 2
    result = Study(tmp_path / "compare" / "s2").result("dataset")
    train = result["splits"]["train"]
    assert trained["question"] not in {p["question"] for p in train}
    # the dataset's own test split trains (the file tests); the counts are those used
    counts = result["counts"]
    assert (counts["train"], counts["dev"], counts["test"]) == (
        len(train),
        len(result["splits"]["dev"]),
        2,
    )
    assert counts["dataset_test_pairs_trained_on"] > 0
    assert counts["train"] + counts["dev"] == 40 - 1  # every pair but the leaked one


def test_a_clean_test_file_is_used_and_bad_lines_are_named(tmp_path):
    data = _write_pairs(tmp_path / "mine.jsonl", qa_pairs(30))
    test = tmp_path / "test.jsonl"
    test.write_text('{"question": "What colour is the sky?", "answer": "blue"}\nnot json\n')
    summary = run(tmp_path, Fakes(tmp_path), synth=0, data=str(data), test_file=str(test))
    assert summary["data"]["test_items"] == 1 and summary["data"]["test_source"] == str(test)
    assert any("line 2" in p for p in summary["data"]["problems"])
    assert summary["retrieval"]["skipped"]  # the test file has no sources to tune on


def test_rerun_with_other_settings_is_refused_and_one_process_at_a_time(tmp_path):
    Study.open(tmp_path, config())
    assert Study.open(tmp_path, config(seed=3)).config.seed == 3  # nothing done: replaced
    Study.open(tmp_path, config()).finish("dataset", {})
    with pytest.raises(StudyConflict, match="budget"):
        Study.open(tmp_path, config(budget="standard"))
    assert Study.open(tmp_path, config(budget="standard"), restart=True).config.budget == "standard"
    first, second = Study(tmp_path / "s1"), Study(tmp_path / "s1")
    first.lock()
    with pytest.raises(StudyConflict, match="another process"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()


def test_bad_configurations_are_named(tmp_path):
    with pytest.raises(StudyError, match="--data D or --synth N"):
        StudyConfig("s", "docs")
    with pytest.raises(StudyError, match="unknown method"):
        StudyConfig("s", "docs", synth=5, methods=("sorcery",)).check_inputs()
    with pytest.raises(StudyError, match="--test .*missing.jsonl: no such file"):
        StudyConfig("s", "docs", synth=5, test_file=str(tmp_path / "missing.jsonl")).check_inputs()
    with pytest.raises(StudyError, match="--data pairs/mine.jsonl: no such file"):
        StudyConfig("s", "docs", data="pairs/mine.jsonl").check_inputs()
    StudyConfig("s", "docs", data="my-dataset", methods=("ia3",)).check_inputs()
    with pytest.raises(StudyError, match="invalid study name"):
        StudyConfig("../up", "docs", synth=5)
    with pytest.raises(BudgetError, match="quick"):
        get_budget("huge")


def test_a_missing_collection_or_engine_stops_the_study_before_any_work(tmp_path):
    from indexing.errors import NotFound

    fakes = Fakes(tmp_path)

    def check(collection):
        raise NotFound(f"no collection {collection!r}")

    fakes.check = check
    with pytest.raises(NotFound):
        run(tmp_path, fakes)
    assert fakes.calls == []
    assert not (tmp_path / "compare" / "s1").exists()  # no empty study left behind


def test_prompt_tokens_are_counted_with_the_models_chat_template(tiny_model):
    from app.compare.answering import chat_template_counter, word_count

    messages = [{"role": "system", "content": "Answer."}, {"role": "user", "content": "Why?"}]
    tokens = chat_template_counter(tiny_model)(messages)
    assert tokens > word_count(messages) == 2  # the template's role markers count too
