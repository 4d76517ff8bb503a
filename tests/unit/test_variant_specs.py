"""Variant specs: one parser for eval run, the A/B and Evaluate tabs and the API; data as suites."""

from __future__ import annotations

import json
import random

import pytest

from app.chat import ChatService
from app.generation.base import GenerationParams
from app.generation.fake import FakeGenerator
from app.prompting import PromptError
from app.ui.arena_tab import choose_pair
from app.variants import SpecError, Variant, VariantError, parse_spec, resolve, resolve_list
from evals.suites import SuiteError, load_suite_or_data, suite_from_dataset
from training.qa_dataset import DatasetManifest, DatasetNotFound, DatasetStore, QAPair


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ("zero-shot", {"mode": "zero-shot"}),
        ("few-shot", {"mode": "few-shot"}),
        ("base", {"mode": "zero-shot"}),
        ("my-lora", {"mode": "zero-shot", "adapter": "my-lora"}),
        ("rag:docs", {"mode": "rag", "collection": "docs"}),
        ("rag:docs+my-lora", {"mode": "rag", "collection": "docs", "adapter": "my-lora"}),
        ("few-shot+my-lora", {"mode": "few-shot", "adapter": "my-lora"}),
        ("zero-shot+my.lora_2", {"mode": "zero-shot", "adapter": "my.lora_2"}),
        (
            "rag:docs+my-lora@k=6@retriever=bm25",
            {
                "mode": "rag",
                "collection": "docs",
                "adapter": "my-lora",
                "k": 6,
                "retriever": "bm25",
            },
        ),
        ("rag:docs@retriever=dense", {"mode": "rag", "collection": "docs", "retriever": "dense"}),
        (
            "few-shot@shots=4@demos=mydata",
            {"mode": "few-shot", "fewshot_count": 4, "demos": "mydata"},
        ),
        ("few-shot+x@shots=0", {"mode": "few-shot", "adapter": "x", "fewshot_count": 0}),
    ],
)
def test_specs_parse_to_variants_named_as_written(spec, fields):
    variant = parse_spec(spec)
    assert variant == Variant(spec, **fields)


@pytest.mark.parametrize(
    ("spec", "part", "says"),
    [
        ("rag:", "collection", "rag: names no collection"),
        ("rag:+x", "collection", "rag: names no collection"),
        ("rag:docs+", "adapter", "'+' names no adapter"),
        ("rag:docs+a+b", "adapter", "'a+b' is not an adapter name"),
        ("rag:do cs", "collection", "'do cs' is not a collection name"),
        (" rag:docs", "mode", "' rag:docs' is not a mode"),
        ("Rag:docs", "mode", "'Rag:docs' is not a mode"),
        ("base+x", "mode", "the base model takes no '+'"),
        ("my-lora+x", "mode", "adapter 'my-lora' takes no '+'"),
        ("my-lora@k=3", "mode", "adapter 'my-lora' takes no '+' or '@' options"),
        ("rag:docs@topk=3", "option", "unknown option 'topk' after '@'; options: k, retriever"),
        ("rag:docs@k", "option", "option 'k' needs a value: @k=..."),
        ("rag:docs@", "option", "unknown option ''"),
        ("rag:docs@k=0", "option", "@k=0: a whole number from 1 to 50"),
        ("rag:docs@k=six", "option", "@k=six: a whole number from 1 to 50"),
        ("rag:docs@k=3@k=4", "option", "@k is given twice"),
        ("rag:docs@retriever=magic", "option", "@retriever=magic: one of dense, bm25, hybrid"),
        ("zero-shot@k=3", "option", "@k applies to rag:COLLECTION only"),
        ("rag:docs@shots=2", "option", "@shots applies to few-shot only"),
        ("few-shot@shots=33", "option", "a whole number from 0 to 32"),
        ("few-shot@demos=../x", "option", "@demos=../x: not a dataset name"),
        ("", "mode", "'' is not a mode"),
    ],
)
def test_a_bad_spec_names_the_part_at_fault(spec, part, says):
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    assert caught.value.part == part
    message = str(caught.value)
    assert message.startswith(f"variant spec {spec!r}: ") and says in message, message
    assert caught.value.status == 400 and caught.value.param == "model"


def test_names_come_first_then_specs_and_unknown_bare_names_are_refused():
    named = {"rag": Variant("rag", "rag", collection="docs", k=4)}
    assert resolve("rag", named) is named["rag"]
    assert resolve("rag:docs@k=2", named).k == 2
    assert resolve("my-lora", named, adapters=["my-lora"]).adapter == "my-lora"
    with pytest.raises(VariantError, match=r"unknown variant 'nope': not a named variant \(rag\)"):
        resolve("nope", named, adapters=["my-lora"])
    listed = resolve_list(" rag , few-shot@shots=1,rag:docs+my-lora@k=6", named)
    assert [v.name for v in listed] == ["rag", "few-shot@shots=1", "rag:docs+my-lora@k=6"]
    with pytest.raises(VariantError, match="listed twice"):
        resolve_list("rag,rag", named)


def _dataset(root, name="mydata", n=10) -> DatasetStore:
    store = DatasetStore(root)
    topics = ["tea", "kites", "boats", "bread", "maps", "owls", "glass", "rain", "clocks", "salt"]
    pairs = [
        QAPair(f"What does the guide say about {t}?", f"Answer {i}.", f"docs/f{i}.md")
        for i, t in enumerate(topics[:n])
    ]
    store.save(DatasetManifest(name=name, collection="docs", origin="import", seed=1), pairs)
    return store


def test_few_shot_demonstrations_come_from_a_datasets_train_split(make_settings, tmp_path):
    settings = make_settings(generator={"mode": "fake"})
    datasets = _dataset(tmp_path / "datasets")
    chat = ChatService(
        FakeGenerator(), {}, settings.prompting, GenerationParams(), "docs", datasets=datasets
    )
    train = datasets.get("mydata").split("train")
    turn = chat.prepare("What now?", mode="few-shot", fewshot_count=2, demos="mydata")
    assert [m["content"] for m in turn.messages[1:-1]] == [
        train[0].question,
        train[0].answer,
        train[1].question,
        train[1].answer,
    ]
    default = chat.prepare("What now?", mode="few-shot", fewshot_count=2)
    assert default.messages[1]["content"] != train[0].question  # the settings' file
    with pytest.raises(DatasetNotFound, match="unknown dataset 'nope'"):
        chat.prepare("q", mode="few-shot", demos="nope")
    bare = ChatService(FakeGenerator(), {}, settings.prompting, GenerationParams(), "docs")
    with pytest.raises(PromptError, match="no dataset store"):
        bare.prepare("q", mode="few-shot", demos="mydata")


def test_a_dataset_or_a_plain_qa_file_works_where_a_suite_does(tmp_path):
    datasets = _dataset(tmp_path / "datasets")
    suite = load_suite_or_data("mydata", datasets=datasets)
    test = datasets.get("mydata").split("test")
    assert suite.name == "mydata-test" and suite.kind == "qa"
    assert [(i.question, i.reference, i.relevant) for i in suite.items] == [
        (p.question, p.answer, [p.source]) for p in test
    ]
    assert len(load_suite_or_data("mydata", datasets=datasets, split="train").items) == len(
        datasets.get("mydata").split("train")
    )
    assert suite_from_dataset(datasets.get("mydata"), "dev").name == "mydata-dev"
    qa = tmp_path / "mine.jsonl"
    qa.write_text(
        '{"question": "How hot?", "answer": "80 degrees"}\n'
        "not json\n"
        '{"question": "Where?", "reference": "Lisbon", "source": "docs/trip.md"}\n'
        '{"question": "", "answer": "x"}\n'
    )
    plain = load_suite_or_data(qa, datasets=datasets)
    assert plain.name == "mine"
    assert [(i.question, i.reference, i.relevant) for i in plain.items] == [
        ("How hot?", "80 degrees", []),
        ("Where?", "Lisbon", ["docs/trip.md"]),
    ]
    assert [p.split(": ")[0] for p in plain.problems] == [f"{qa}, line 2", f"{qa}, line 4"]
    with pytest.raises(SuiteError, match="no such suite file, QA file or dataset; unknown dataset"):
        load_suite_or_data("nope", datasets=datasets)
    with pytest.raises(SuiteError, match="missing.jsonl: no such suite file or QA file"):
        load_suite_or_data(tmp_path / "missing.jsonl", datasets=datasets)
    qa.write_text("not json\n")
    with pytest.raises(SuiteError, match="no question/answer line to evaluate"):
        load_suite_or_data(qa)
    with pytest.raises(SuiteError, match="unknown split 'val'"):
        load_suite_or_data("mydata", datasets=datasets, split="val")


def test_the_ab_tab_takes_a_spec_per_side_over_its_dropdown():
    named = {
        "zero-shot": Variant("zero-shot"),
        "rag": Variant("rag", "rag", collection="docs"),
        "clf": Variant("clf", classifier="clf"),
    }
    rng = random.Random(0)
    a, b = choose_pair(named, ("random pair", "rag"), ("rag:docs+x@k=2", ""), rng)
    assert (a.name, a.adapter, a.k, b.name) == ("rag:docs+x@k=2", "x", 2, "rag")
    a, b = choose_pair(named, ("random pair", "random pair"), ("", "few-shot@shots=1"), rng)
    assert b.fewshot_count == 1 and a.name in ("zero-shot", "rag")
    a, b = choose_pair(named, ("rag", "rag"), ("", ""), rng)
    assert {a.name, b.name} == {"zero-shot", "rag"}  # the same twice: a random pair
    with pytest.raises(SpecError, match="unknown option 'kk'"):
        choose_pair(named, ("rag", "rag"), ("rag:docs@kk=1", ""), rng)
    with pytest.raises(VariantError, match="is a classifier"):
        choose_pair(named, ("rag", "rag"), ("clf", ""), rng)


def test_the_evaluate_tab_queues_specs_and_refuses_a_bad_one_at_once(make_settings, tmp_path):
    from app.jobs import JobStore
    from app.ui.evaluate_tab import submit_eval

    settings = make_settings()
    jobs = JobStore(settings.jobs_dir)
    job_id, _ = submit_eval(
        jobs, settings, "mydata", ["rag"], None, "rag:docs@k=2, few-shot@demos=mydata"
    )
    command = json.loads((jobs.folder(job_id) / "job.json").read_text())["command"]
    assert command[command.index("--variants") + 1] == "rag,rag:docs@k=2,few-shot@demos=mydata"
    assert command[command.index("--suite") + 1] == "mydata"
    with pytest.raises(SpecError, match="@k=0"):
        submit_eval(jobs, settings, "mydata", [], None, "rag:docs@k=0")
