"""Preference pairs ``{"prompt", "chosen", "rejected"}``: read, validate, render, split.

The same file feeds the reward model and DPO. Prompts may be plain text or a chat
message list; message lists are rendered with the policy's chat template here, once, so
the reward model, DPO and PPO all see exactly the text the server will send the model,
and so over-long prompts can be cut and counted instead of silently dropped by trl.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.data import ROLES, DatasetError, read_jsonl

log = logging.getLogger(__name__)


@dataclass
class PreferencePair:
    """One human (or model) judgement: ``chosen`` is better than ``rejected`` for ``prompt``."""

    prompt: str | list[dict[str, str]]
    chosen: str
    rejected: str
    line: int = 0


def _response_text(value: Any) -> str | None:
    """A response as text: a string, or trl's conversational form
    ``[{"role": "assistant", ...}]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        return (
            "".join(str(m.get("content", "")) for m in value if m.get("role") == "assistant")
            or None
        )
    return None


def _problem(record: dict) -> str | None:
    """Why a record is not a usable pair, or None."""
    missing = [k for k in ("prompt", "chosen", "rejected") if k not in record]
    if missing:
        return f"missing field(s) {', '.join(missing)} (found: {', '.join(record) or 'none'})"
    prompt = record["prompt"]
    if isinstance(prompt, list):
        for message in prompt:
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                return f"each prompt message needs a role of {sorted(ROLES)}"
            if not str(message.get("content", "")).strip():
                return "a prompt message has empty 'content'"
        if not prompt:
            return "empty 'prompt'"
    elif not isinstance(prompt, str) or not prompt.strip():
        return "empty 'prompt'"
    chosen, rejected = _response_text(record["chosen"]), _response_text(record["rejected"])
    for name, value in (("chosen", chosen), ("rejected", rejected)):
        if value is None or not value.strip():
            return f"empty '{name}'"
    if chosen.strip() == rejected.strip():
        return "'chosen' and 'rejected' are identical, so the pair prefers nothing"
    return None


def load_preferences(
    path: Path, skip_invalid: bool = False
) -> tuple[list[PreferencePair], list[str]]:
    """Pairs from a JSONL file, and the list of skipped-line messages.

    Every bad line is reported by number. With ``skip_invalid`` bad lines are skipped
    and listed; without it the whole file is refused, so no run starts on a file with
    problems nobody has looked at.
    """
    pairs, problems = [], []
    for number, record in read_jsonl(path):
        problem = _problem(record)
        if problem:
            problems.append(f"{path}, line {number}: {problem}")
            continue
        pairs.append(
            PreferencePair(
                record["prompt"],
                _response_text(record["chosen"]),
                _response_text(record["rejected"]),
                number,
            )
        )
    if problems and not skip_invalid:
        shown = "\n  ".join(problems[:10]) + (
            f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        )
        raise DatasetError(
            f"{len(problems)} bad preference pair(s) (set skip_invalid=true to skip "
            f"them):\n  {shown}"
        )
    if not pairs:
        raise DatasetError(f"{path}: no usable preference pairs")
    return pairs, problems


def render_prompt(prompt: str | list[dict[str, str]], tokenizer) -> str:
    """The prompt as the model sees it: chat messages through the chat template."""
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in prompt) + "\n\n"


@dataclass
class RenderedPairs:
    """Text rows for trl plus how many prompts had to be cut to fit."""

    rows: list[dict[str, str]]
    truncated: int


def render_pairs(pairs: list[PreferencePair], tokenizer, max_length: int) -> RenderedPairs:
    """Render prompts; cut the start of prompts that do not fit ``max_length`` with
    the longer answer.

    The start goes because the question sits at the end of a RAG prompt. Responses are
    cut at the end only when a response alone is too long. Each cut is counted and
    warned about once in total.
    """
    rows, truncated = [], 0
    for pair in pairs:
        prompt = render_prompt(pair.prompt, tokenizer)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answers = [
            tokenizer(a, add_special_tokens=False)["input_ids"]
            for a in (pair.chosen, pair.rejected)
        ]
        budget = max_length - max(len(a) for a in answers) - 1  # one for the end-of-sequence token
        chosen, rejected = pair.chosen, pair.rejected
        if budget < max_length // 4:  # a response that alone nearly fills the context
            keep = max_length - max_length // 4 - 1
            chosen, rejected = (tokenizer.decode(a[:keep]) for a in answers)
            budget = max_length // 4
        if len(prompt_ids) > budget:
            truncated += 1
            prompt = tokenizer.decode(prompt_ids[len(prompt_ids) - budget :])
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    if truncated:
        log.warning(
            "%d of %d prompts were longer than max_length=%d with their answers; "
            "their start was cut",
            truncated,
            len(pairs),
            max_length,
        )
    return RenderedPairs(rows, truncated)


def split_pairs(pairs: list, eval_fraction: float, seed: int) -> tuple[list, list]:
    """(train, held-out) by a seeded shuffle; the same seed gives the same split everywhere."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    held = round(len(pairs) * eval_fraction)
    if eval_fraction > 0 and len(pairs) > 1:
        held = min(max(held, 1), len(pairs) - 1)
    held_out = sorted(order[:held])
    train = sorted(order[held:])
    return [pairs[i] for i in train], [pairs[i] for i in held_out]
