"""The A/B arena and leaderboard tabs.

One question goes to two variants; their answers stream side by side (generated
concurrently), each with its sources. A side is a named variant from the dropdown, or any
variant written as a spec in the text field beside it (``app.variants.parse_spec``, e.g.
``rag:docs+my-lora@k=6``), which wins over the dropdown. In blind mode the variant names
stay hidden until the vote. Votes go to the SQLite store; a comparison with a failed
answer cannot be voted.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Iterator

import gradio as gr

from app.ui.chat_tab import format_sources_markdown
from app.ui.errors import warning
from app.variants import SPEC_HELP, Variant, VariantError, VariantRunner, resolve
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


def choose_pair(
    variants: dict[str, Variant],
    picks: tuple[str, str],
    specs: tuple[str, str] = ("", ""),
    rng: random.Random | None = None,
) -> tuple[Variant, Variant]:
    """The two variants of a comparison: a side's spec, else its named pick, else random.

    A side left on "random pair" gets a random named chat variant other than the other
    side's; when both are random, or the dropdowns name the same variant, both are drawn.
    Raises ``VariantError`` for a spec that does not parse or names a classifier.
    """
    rng = rng or random.Random()
    names = [n for n, v in variants.items() if not v.classifier]
    a, b = (_side(variants, pick, spec) for pick, spec in zip(picks, specs))
    typed = any(spec.strip() for spec in specs)
    if not names and (a is None or b is None):
        raise VariantError("no named variants to draw from: type a spec for each side")
    if (a is None and b is None) or (a is not None and a == b and not typed):
        first, second = rng.sample(names, 2) if len(names) >= 2 else (names[0], names[0])
        return variants[first], variants[second]
    if a is None or b is None:
        fixed = a or b
        drawn = variants[rng.choice([n for n in names if n != fixed.name] or names)]
        return (drawn, fixed) if a is None else (fixed, drawn)
    return a, b


def _side(variants: dict[str, Variant], pick: str, spec: str) -> Variant | None:
    """One side's variant: its spec, else its named pick; None for "random pair"."""
    if not spec.strip():
        return variants.get(pick)
    chosen = resolve(spec.strip(), variants)
    if chosen.classifier:
        raise VariantError(f"{spec.strip()!r} is a classifier; the A/B tab compares answers")
    return chosen


def build_arena_tabs(runner: VariantRunner, variants: dict[str, Variant], store: VoteStore):
    """Render the A/B and Leaderboard tabs; return the leaderboard table and its row source."""
    names = [n for n, v in variants.items() if not v.classifier]
    with gr.Tab("A/B"):
        with gr.Row():
            pick_a = gr.Dropdown([RANDOM_PAIR, *names], value=RANDOM_PAIR, label="Variant A")
            pick_b = gr.Dropdown([RANDOM_PAIR, *names], value=RANDOM_PAIR, label="Variant B")
            blind = gr.Checkbox(value=True, label="Blind (hide names until the vote)")
        with gr.Row():
            spec_a = gr.Textbox(
                label="or a spec for A", placeholder="e.g. rag:docs+my-lora@k=6", info=SPEC_HELP
            )
            spec_b = gr.Textbox(label="or a spec for B", placeholder="e.g. few-shot@shots=4")
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

    def run(a: str, b: str, text_a: str, text_b: str, is_blind: bool, text: str):
        locked = [gr.update(interactive=False)] * len(buttons)
        if not text.strip():
            yield "### A", "", "### B", "", None, "Type a question first.", *locked
            return
        try:
            pair = choose_pair(variants, (a, b), (text_a, text_b))
        except RagtuneError as exc:
            yield "### A", "", "### B", "", None, warning(exc), *locked
            return
        a, b = pair[0].name, pair[1].name
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
        [pick_a, pick_b, spec_a, spec_b, blind, question],
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
                message = (
                    f"Vote recorded: **{label}**. A was **{current['a']}**, B was "
                    f"**{current['b']}**."
                )
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
