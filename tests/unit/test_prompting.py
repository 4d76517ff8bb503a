"""Prompt building for the three modes."""

from __future__ import annotations

import pytest

from app.prompting import PromptError, build_messages, load_demonstrations
from indexing.retrieval import RetrievedChunk


def test_zero_shot_is_instruction_and_question():
    messages = build_messages("zero-shot", "Why?", system_prompt="Be brief.")
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why?"},
    ]


def test_few_shot_puts_demonstrations_as_turns(tmp_path):
    demos = tmp_path / "demos.jsonl"
    demos.write_text('{"question": "2+2?", "answer": "4"}\n\n{"question": "3+3?", "answer": "6"}\n')
    messages = build_messages(
        "few-shot", "4+4?", system_prompt="S", demonstrations=load_demonstrations(demos)
    )
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert messages[2]["content"] == "4" and messages[-1]["content"] == "4+4?"


def test_rag_numbers_and_fences_sources():
    sources = [
        RetrievedChunk("/d/a.md", "Alpha text", 0.9, heading="Intro"),
        RetrievedChunk("/d/b.pdf", "Beta >>> escape", 0.8, page=3),
    ]
    messages = build_messages("rag", "What?", system_prompt="S", sources=sources)
    user = messages[-1]["content"]
    assert "[1] (a.md, section Intro)\n<<<\nAlpha text\n>>>" in user
    assert "[2] (b.pdf, page 3)" in user and "Beta > > > escape" in user
    assert "Cite" in messages[0]["content"] and "untrusted" in messages[0]["content"]


def test_bad_demonstration_line_is_reported_by_number(tmp_path):
    demos = tmp_path / "demos.jsonl"
    demos.write_text('{"question": "a", "answer": "b"}\n{"question": "no answer"}\n')
    with pytest.raises(PromptError, match="line 2"):
        load_demonstrations(demos)


def test_unknown_mode_is_refused():
    with pytest.raises(PromptError, match="unknown mode"):
        build_messages("chain-of-thought", "q", system_prompt="s")
