"""The A/B arena and leaderboard tabs.

One question goes to two variants; their answers stream side by side (generated
concurrently), each with its sources. In blind mode the variant names stay hidden until
the vote. Votes go to the SQLite store; a comparison with a failed answer cannot be voted.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Iterator

import gradio as gr

from app.ui.chat_tab import format_sources_markdown
from app.ui.errors import warning
from app.variants import Variant, VariantRunner
from evals.votes import VoteStore
from indexing.errors import RagtuneError

RANDOM_PAIR = "random pair"
VOTES = {"A is better": "a", "B is better": "b", "Tie": "tie", "Both are bad": "both_bad"}


def stream_pair(
    runner: VariantRunner, variants: tuple[Variant, Variant], question: str
) -> Iterator[tuple[list, list, bool]]:
    """Both answers as they grow: ([text, sources] for A, same for B, any failure)."""
    updates: queue.Queue = queue.Queue()
    state = [["", "", False], ["", "", False]]  # text, sources markdown, failed

    def work(side: int, variant: Variant) -> None:
        try:
            turn = runner.prepare(variant, question)
            for delta in runner.stream(variant, turn):
                updates.put((side, "delta", delta))
            updates.put((side, "sources", format_sources_markdown(turn.sources)))
        except RagtuneError as exc:
            updates.put((side, "error", warning(exc)))
        finally:
            updates.put((side, "done", None))

    for side, variant in enumerate(variants):
        threading.Thread(target=work, args=(side, variant), daemon=True).start()
    finished = 0
    while finished < 2:
        side, kind, value = updates.get()
        if kind == "delta":
            state[side][0] += value
        elif kind == "sources":
            state[side][1] = value
        elif kind == "error":
            state[side][0], state[side][2] = value, True
        else:
            finished += 1
        yield state[0], state[1], state[0][2] or state[1][2]


def build_arena_tabs(runner: VariantRunner, variants: dict[str, Variant], store: VoteStore):
    """Render the A/B and Leaderboard tabs; return the leaderboard table and its row source."""
    names = [n for n, v in variants.items() if not v.classifier]
    with gr.Tab("A/B"):
        with gr.Row():
            pick_a = gr.Dropdown([RANDOM_PAIR, *names], value=RANDOM_PAIR, label="Variant A")
            pick_b = gr.Dropdown([RANDOM_PAIR, *names], value=RANDOM_PAIR, label="Variant B")
            blind = gr.Checkbox(value=True, label="Blind (hide names until the vote)")
        question = gr.Textbox(label="Question", placeholder="One question, two answers…")
        ask = gr.Button("Ask both", variant="primary")
        with gr.Row():
            with gr.Column():
                title_a = gr.Markdown("### A")
                answer_a = gr.Markdown(elem_id="arena-answer-a")
            with gr.Column():
                title_b = gr.Markdown("### B")
                answer_b = gr.Markdown(elem_id="arena-answer-b")
        comment = gr.Textbox(label="Comment (optional)")
        with gr.Row():
            buttons = [gr.Button(label, interactive=False) for label in VOTES]
        status = gr.Markdown(elem_id="arena-status")
        comparison = gr.State(None)

    def run(a: str, b: str, is_blind: bool, text: str):
        locked = [gr.update(interactive=False)] * len(buttons)
        if not text.strip():
            yield "### A", "", "### B", "", None, "Type a question first.", *locked
            return
        if RANDOM_PAIR in (a, b) or a == b:
            a, b = random.sample(names, 2) if len(names) >= 2 else (names[0], names[0])
        pair = (variants[a], variants[b])
        heads = ("### A", "### B") if is_blind else (f"### A: {a}", f"### B: {b}")
        for side_a, side_b, failed in stream_pair(runner, pair, text):
            yield heads[0], side_a[0], heads[1], side_b[0], None, "Generating…", *locked
        comparison_id = store.add_comparison(
            text, a, b, side_a[0], side_b[0], failed=failed, blind=is_blind
        )
        note = "An answer failed; this comparison cannot be voted on." if failed else "Vote below."
        ready = [gr.update(interactive=not failed)] * len(buttons)
        yield (
            heads[0],
            side_a[0] + side_a[1],
            heads[1],
            side_b[0] + side_b[1],
            {"id": comparison_id, "a": a, "b": b},
            note,
            *ready,
        )

    ask.click(
        run,
        [pick_a, pick_b, blind, question],
        [title_a, answer_a, title_b, answer_b, comparison, status, *buttons],
    )

    with gr.Tab("Leaderboard"):
        gr.Markdown(
            "Bradley-Terry ratings (Elo scale) from the A/B votes, with 95% bootstrap intervals."
        )
        table = gr.Dataframe(
            headers=["variant", "rating", "95% CI", "votes", "wins", "losses", "ties", "win rate"],
            elem_id="leaderboard",
            interactive=False,
        )
        refresh = gr.Button("Refresh")

    def rows():
        return [
            [
                r["variant"],
                r["rating"],
                f"{r['ci'][0]} – {r['ci'][1]}",
                r["votes"],
                r["wins"],
                r["losses"],
                r["ties"],
                r["win_rate"],
            ]
            for r in store.leaderboard()
        ]

    refresh.click(rows, outputs=table)

    def make_vote(label: str):
        def vote(current, note: str):
            locked = [gr.update(interactive=False)] * len(buttons)
            if not current:
                return "### A", "### B", "No comparison to vote on.", rows(), *locked
            try:
                store.vote(current["id"], VOTES[label], note or "")
                message = f"Vote recorded: **{label}**. A was **{current['a']}**, B was **{current['b']}**."
            except RagtuneError as exc:
                message = warning(exc)
            return f"### A: {current['a']}", f"### B: {current['b']}", message, rows(), *locked

        return vote

    for button in buttons:
        button.click(
            make_vote(button.value),
            [comparison, comment],
            [title_a, title_b, status, table, *buttons],
        )
    return table, rows
