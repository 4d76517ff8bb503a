"""`ragtune ask --file --concurrency`: the file's order, failures in place, one clear
error up front."""

from __future__ import annotations

import json
import random
import time

from app.chat import ChatService
from app.cli.main import cli
from indexing.errors import RagtuneError
from tests.unit.test_cli import env, ingested, runner  # noqa: F401 (fixtures)


def test_answers_are_written_in_the_files_order_whatever_finishes_first(
    ingested,  # noqa: F811
    env,  # noqa: F811
    monkeypatch,
):
    questions = [f"How hot for green tea, take {i}?" for i in range(12)]
    pauses = random.Random(1)
    real_answer = ChatService.answer

    def slow_answer(self, question, **kwargs):
        time.sleep(pauses.uniform(0, 0.05))
        if question.endswith("take 5?"):
            raise RagtuneError("the engine refused this one")
        return real_answer(self, question, **kwargs)

    monkeypatch.setattr(ChatService, "answer", slow_answer)
    file = env / "q.jsonl"
    file.write_text("".join(json.dumps({"question": q}) + "\n" for q in questions))
    out = env / "answers.jsonl"
    result = runner.invoke(
        cli, ["ask", "--file", str(file), "-c", "notes", "-o", str(out), "--concurrency", "6"]
    )
    assert result.exit_code == 1, result.output
    assert "warning: question 6: the engine refused this one" in result.output
    assert "wrote 12 answers" in result.output and "1 failed" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["question"] for r in records] == questions
    assert records[5] == {
        "question": questions[5],
        "answer": None,
        "error": "the engine refused this one",
    }
    assert all(r["answer"] and r["sources"] for i, r in enumerate(records) if i != 5)


def test_a_missing_collection_or_adapter_is_one_error_before_any_question(
    ingested,  # noqa: F811
    env,  # noqa: F811
):
    file = env / "q.jsonl"
    file.write_text('{"question": "a"}\n{"question": "b"}\n')
    result = runner.invoke(cli, ["ask", "--file", str(file), "-c", "nope", "--concurrency", "2"])
    assert result.exit_code == 2 and result.output.count("unknown collection 'nope'") == 1
    result = runner.invoke(cli, ["ask", "--file", str(file), "-c", "notes", "--adapter", "x"])
    assert result.exit_code == 2 and result.output.count("unknown adapter 'x'") == 1


def test_every_question_failing_exits_2(ingested, env, monkeypatch):  # noqa: F811
    def fail(self, question, **kwargs):
        raise RagtuneError("engine down")

    monkeypatch.setattr(ChatService, "answer", fail)
    file = env / "q.jsonl"
    file.write_text('{"question": "a"}\n{"question": "b"}\n')
    result = runner.invoke(cli, ["ask", "--file", str(file), "-c", "notes"])
    assert result.exit_code == 2 and "2 failed" in result.output
