"""Log-likelihood of continuations given contexts, batched, as lm-evaluation-harness computes it.

The tokenisation follows lm-eval 0.4.13 (``api/model.py _encode_pair`` and
``models/huggingface.py _loglikelihood_tokens``): trailing whitespace of the context moves
to the front of the continuation; the continuation's tokens are the tail of
``encode(context + continuation)`` after ``encode(context)``; the model reads
``(context + continuation)[:-1]`` and the log-probabilities of the continuation tokens are
summed in float32. Requests whose model input is identical (e.g. MMLU's one-token letters)
share one forward pass. Rows are right-padded without an attention mask: causal attention
never lets a position see the padding after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Encoded:
    inp: tuple[int, ...]
    cont: list[int]


def _encode(tokenizer, context: str, continuation: str, cache: dict[str, list[int]], max_len: int):
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    if context not in cache:
        cache[context] = tokenizer.encode(context)
    ctx = cache[context]
    if not ctx:  # lm-eval scores an empty context after the prefix (BOS) token
        prefix = tokenizer.bos_token_id
        ctx = [prefix if prefix is not None else tokenizer.eos_token_id]
        cont = tokenizer.encode(continuation)
    else:
        cont = tokenizer.encode(context + continuation)[len(ctx) :]
    if not cont:
        raise ValueError(f"continuation {continuation!r} encodes to no tokens")
    return _Encoded(tuple((ctx + cont)[-(max_len + 1) :][:-1]), cont)


def loglikelihoods(
    model,
    tokenizer,
    requests: list[tuple[str, str]],
    *,
    batch_size: int = 16,
    max_batch_tokens: int = 8192,
    max_logit_rows: int = 2048,
    on_forward: Callable[[int], None] | None = None,
) -> list[float]:
    """Sum of log P(continuation tokens | context) for each (context, continuation) request.

    ``model`` is a causal LM (transformers or peft) in eval mode; ``tokenizer`` its
    tokenizer. A batch holds at most ``batch_size`` rows, ``max_batch_tokens`` padded
    tokens and ``max_logit_rows`` rows x kept positions of vocabulary logits (memory).
    ``on_forward(n)`` is called after each batch with the number of requests it scored.
    Returns one float (natural log) per request, in request order.
    """
    import torch
    import torch.nn.functional as F

    max_len = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    cache: dict[str, list[int]] = {}
    encoded = [_encode(tokenizer, c, x, cache, max_len) for c, x in requests]
    by_input: dict[tuple[int, ...], list[int]] = {}
    for index, enc in enumerate(encoded):
        by_input.setdefault(enc.inp, []).append(index)
    # Longest first, as lm-eval orders them: similar lengths share a batch, little padding.
    inputs = sorted(by_input, key=lambda inp: (-len(inp), inp))
    results = [0.0] * len(requests)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    start = 0
    while start < len(inputs):
        batch = _next_batch(inputs, start, encoded, by_input, batch_size, max_batch_tokens)
        batch, keep = _fit_logits(batch, encoded, by_input, max_logit_rows)
        width = len(batch[0])
        ids = torch.full((len(batch), width), pad, dtype=torch.long, device=device)
        for row, inp in enumerate(batch):
            ids[row, : len(inp)] = torch.tensor(inp, dtype=torch.long)
        with torch.no_grad():
            logits = _forward(model, ids, keep)
        logp = F.log_softmax(logits.float(), dim=-1)  # [rows, keep, vocab]
        scored = 0
        for row, inp in enumerate(batch):
            for index in by_input[inp]:
                cont = encoded[index].cont
                first = keep - (width - len(inp)) - len(cont)
                picked = logp[row, first : first + len(cont)]
                target = torch.tensor(cont, device=device)[:, None]
                results[index] = float(picked.gather(1, target).sum())
                scored += 1
        if on_forward:
            on_forward(scored)
        start += len(batch)
    return results


def _next_batch(inputs, start, encoded, by_input, batch_size, max_batch_tokens):
    width = len(inputs[start])
    rows = max(1, min(batch_size, max_batch_tokens // max(width, 1)))
    return inputs[start : start + rows]


def _fit_logits(batch, encoded, by_input, max_logit_rows):
    """Shrink ``batch`` until rows x kept positions fit; return it and the positions kept."""
    width = len(batch[0])
    while True:
        keep = max(
            width - len(inp) + max(len(encoded[i].cont) for i in by_input[inp]) for inp in batch
        )
        if len(batch) == 1 or len(batch) * keep <= max_logit_rows:
            return batch, keep
        batch = batch[: max(1, len(batch) // 2)]


def _forward(model, ids, keep: int):
    """Logits of the last ``keep`` positions; only those are projected onto the vocabulary."""
    try:
        logits = model(input_ids=ids, logits_to_keep=keep).logits
    except TypeError:  # a model class without logits_to_keep
        logits = model(input_ids=ids).logits
    # prompt-tuned peft models return extra (virtual token) positions at the front
    return logits[:, -keep:, :]
