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
    on_forward: Callable[[int], None] | None = None,
) -> list[float]:
    """Sum of log P(continuation tokens | context) for each (context, continuation) request.

    ``model`` is a causal LM (transformers or peft) in eval mode; ``tokenizer`` its
    tokenizer. A batch holds at most ``batch_size`` rows and ``max_batch_tokens`` padded
    tokens.
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
        batch = _next_batch(inputs, start, batch_size, max_batch_tokens)
        ids = torch.full((len(batch), len(batch[0])), pad, dtype=torch.long, device=device)
        for row, inp in enumerate(batch):
            ids[row, : len(inp)] = torch.tensor(inp, dtype=torch.long)
        wanted = []  # (row, first position, request index)
        for row, inp in enumerate(batch):
            for index in by_input[inp]:
                wanted.append((row, len(inp) - len(encoded[index].cont), index))
        with torch.no_grad():
            logits = _logits_at(model, ids, wanted, encoded)
        logp = F.log_softmax(logits.float(), dim=-1)  # [sum of continuation lengths, vocab]
        offset = 0
        for _, _, index in wanted:
            cont = encoded[index].cont
            target = torch.tensor(cont, device=device)[:, None]
            results[index] = float(logp[offset : offset + len(cont)].gather(1, target).sum())
            offset += len(cont)
        if on_forward:
            on_forward(len(wanted))
        start += len(batch)
    return results


def _next_batch(inputs, start, batch_size, max_batch_tokens):
    width = len(inputs[start])
    rows = max(1, min(batch_size, max_batch_tokens // max(width, 1)))
    return inputs[start : start + rows]


def _logits_at(model, ids, wanted, encoded):
    """Vocabulary logits only at the positions that predict continuation tokens.

    The forward pass keeps one position of logits; the final hidden states of the wanted
    positions go through the output layer afterwards (projecting every position onto a
    49k vocabulary would cost as much as the model). A model whose last hidden state is not
    what its output layer reads (logit soft-capping, ...) gets full logits instead.
    """
    import torch

    out = model(input_ids=ids, logits_to_keep=1, output_hidden_states=True)
    hidden = out.hidden_states[-1]
    offset = hidden.shape[1] - ids.shape[1]  # prompt-tuned peft models prepend virtual tokens
    head = model.get_output_embeddings()
    if not torch.allclose(head(hidden[:, -1]), out.logits[:, -1], atol=1e-4, rtol=1e-4):
        full = model(input_ids=ids).logits
        return torch.cat(
            [
                full[row, offset + first : offset + first + len(encoded[i].cont)]
                for row, first, i in wanted
            ]
        )
    picked = torch.cat(
        [
            hidden[row, offset + first : offset + first + len(encoded[i].cont)]
            for row, first, i in wanted
        ]
    )
    return head(picked)
