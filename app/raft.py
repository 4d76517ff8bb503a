"""Retrieval-augmented finetuning (RAFT; Zhang et al. 2024, arXiv 2403.10131).

Each training example is a question of the training pairs asked over sources the way a
``rag:`` variant asks it at answer time: its oracle chunk (the chunk that answers it)
among distractor chunks, the chunks the retriever ranks highest for the question other
than the oracle. The prompt comes from ``ChatService.compose`` in mode ``rag``, the code
path of every RAG answer, so the adapter learns exactly the prompt ``rag:C+ADAPTER``
serves, and the answer cites the oracle by its number, as the prompt asks.

The oracle is present in ``oracle_share`` of the examples (the paper's P; 0.8 by
default), at a random position. In the others every source is a distractor and the
answer is still trained, without a citation (there is no source to cite). The paper
keeps these examples on purpose: with the oracle missing the model can only produce the
answer from what it has learnt, so they push it to memorise the domain's answers rather
than assume the answer is always in the context, and the paper found that leaving the
oracle out of part of the training data helped answers with retrieval (the best P
varied by dataset). The cost: these examples teach the model to answer even when its
sources do not hold the answer, against the prompt's "say that you do not know". The
paper's chain-of-thought answers with verbatim quotes are not used: the pairs' short
answers are trained as they are.

Finding the oracle: a pair's ``chunk_id`` (a synthesised pair's chunk), looked up among
the chunks of its ``source`` file closest to the pair's ``chunk`` text; else (no id, or
the collection was re-chunked since) the chunk of the ``source`` file that best matches
the question and answer together by the hybrid retriever (dense + BM25 fused), searched
over the whole collection when the pair names no source. Pairs whose source is not in
the collection are skipped, counted and named in the summary.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.chat import ChatService
from indexing.errors import RagtuneError
from indexing.lexical import MetadataFilter, text_key
from indexing.retrieval import MAX_QUERY_CHARS, RetrievedChunk
from indexing.store import StoreError
from training.config import SFTArgs
from training.qa_dataset import DatasetStore, QAPair, read_pairs
from training.registry import AdapterRegistry, Manifest
from training.run import load_tokenizer
from training.sft import train_sft

ORACLE_SEARCH = 8  # chunks of the pair's file searched for its chunk_id
ORACLE_RETRIEVER = "hybrid"
_CITATION = re.compile(r"\s*\[\d+\]")
_END = re.compile(r"[.!?]+[\"')\]]*$")


class RaftError(RagtuneError, ValueError):
    """RAFT data cannot be built (bad option, no pairs, no usable pair); says why."""


@dataclass(frozen=True)
class RaftOptions:
    """How RAFT examples are drawn.

    ``oracle_share``: share of examples whose sources include the oracle (0 to 1).
    ``distractors``: distractor chunks beside the oracle; an example without the oracle
    has one more, so every prompt holds ``distractors + 1`` sources: serve the adapter
    with that k (``prompting.top_k``, 4 by default, matches the default 3).
    ``k``: distractors are drawn at random from the top ``k`` chunks for the question
    other than the oracle (default ``distractors + 1``: the top-ranked ones).
    ``retriever``: dense, bm25 or hybrid (default: the collection's, as RAG answers use).
    """

    oracle_share: float = 0.8
    distractors: int = 3
    k: int | None = None
    retriever: str | None = None
    seed: int = 0

    @property
    def depth(self) -> int:
        """How many non-oracle chunks distractors are drawn from."""
        return self.k or self.distractors + 1

    def check(self) -> None:
        """Raise ``RaftError`` naming the option that is out of range."""
        if not 0.0 <= self.oracle_share <= 1.0:
            raise RaftError(f"oracle share {self.oracle_share} must be between 0 and 1")
        if not 0 <= self.distractors <= 49:
            raise RaftError(f"distractors {self.distractors} must be between 0 and 49")
        if self.k is not None and not self.distractors + 1 <= self.k <= 200:
            raise RaftError(
                f"k {self.k} must be between distractors + 1 ({self.distractors + 1}) and 200"
            )


@dataclass
class RaftExample:
    """One training example: the question's sources in prompt order and its messages.

    ``oracle`` is the oracle's number among ``sources`` (1-based), None when left out;
    ``messages`` ends with the assistant's answer.
    """

    pair: QAPair
    sources: list[RetrievedChunk]
    oracle: int | None
    messages: list[dict[str, str]]

    def record(self) -> dict[str, Any]:
        """The SFT JSONL line: ``messages`` (what ``train sft`` reads) and a ``raft`` note."""
        return {
            "messages": self.messages,
            "raft": {
                "oracle": self.oracle,
                "chunk_ids": [s.chunk_id for s in self.sources],
                "source": self.pair.source,
            },
        }


@dataclass
class RaftData:
    """The examples and a summary (options, counts, skipped pairs by reason)."""

    examples: list[RaftExample]
    summary: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """The SFT records, one per example."""
        return [e.record() for e in self.examples]

    def write(self, path: Path) -> Path:
        """Write the SFT JSONL to ``path`` atomically; returns ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in self.records())
        partial.write_text("".join(lines), encoding="utf-8")
        os.replace(partial, path)
        return path


def serving_distractors(chat: ChatService, collection: str) -> int:
    """Distractors per example so that a prompt holds as many sources as a RAG answer on
    ``collection`` (its tuned or configured k, minus the oracle)."""
    return max(chat.retrieval_for(collection)[1] - 1, 0)


def cite(answer: str, number: int | None) -> str:
    """``answer`` with its own ``[n]`` markers removed and ``[number]`` added before the
    closing punctuation (none when ``number`` is None)."""
    text = _CITATION.sub("", answer).strip()
    if number is None:
        return text
    end = _END.search(text)
    cut = end.start() if end else len(text)
    return f"{text[:cut]} [{number}]{text[cut:]}"


def _query(text: str) -> str:
    return text[:MAX_QUERY_CHARS]


def _find_oracle(chat: ChatService, collection: str, pair: QAPair) -> tuple[RetrievedChunk, str]:
    """The pair's oracle chunk and how it was found (``chunk_id``, ``matched``,
    ``matched_anywhere``); raises StoreError when its source has no chunks."""
    flt = MetadataFilter(source_glob=glob.escape(pair.source)) if pair.source else None
    kind = ORACLE_RETRIEVER if ORACLE_RETRIEVER in chat.retrievers else None
    if pair.chunk_id:
        query = _query(pair.chunk or f"{pair.question}\n{pair.answer}")
        key = text_key(pair.chunk) if pair.chunk else None
        for hit in chat.retrieve(query, collection, ORACLE_SEARCH, retriever=kind, flt=flt):
            if hit.chunk_id == pair.chunk_id or text_key(hit.text) == key:
                return hit, "chunk_id"
    hits = chat.retrieve(
        _query(f"{pair.question}\n{pair.answer}"), collection, 1, retriever=kind, flt=flt
    )
    return hits[0], "matched" if pair.source else "matched_anywhere"


def _resolve(
    chat: ChatService, collection: str, pair: QAPair, options: RaftOptions
) -> tuple[RetrievedChunk, list[RetrievedChunk], str]:
    """The oracle, the ranked non-oracle candidates (at most ``options.depth``), and how
    the oracle was found."""
    ranked = chat.retrieve(
        pair.question, collection, options.depth + 1, retriever=options.retriever
    )
    oracle, how = _find_oracle(chat, collection, pair)
    key = text_key(oracle.text)
    # The oracle as retrieval shows it for the question (its ``also_in`` over every file).
    oracle = next((c for c in ranked if text_key(c.text) == key), oracle)
    others = [c for c in ranked if text_key(c.text) != key][: options.depth]
    return oracle, others, how


def build_raft_data(
    chat: ChatService,
    collection: str,
    pairs: list[QAPair],
    *,
    options: RaftOptions | None = None,
    dataset: str = "",
    progress: bool = False,
) -> RaftData:
    """RAFT examples for ``pairs`` over ``collection``, in pair order, with a summary.

    Raises ``RaftError`` for bad options, no pairs, or no usable pair (the summary's
    reasons in the message), and ``StoreError`` when the collection is missing or empty.
    """
    options = options or RaftOptions()
    options.check()
    if not pairs:
        raise RaftError(f"no question/answer pairs to build RAFT data from ({dataset or 'input'})")
    chat.retrieve(pairs[0].question, collection, 1, retriever=options.retriever)
    resolved, how_found, missing = [], {}, {}
    for pair in tqdm(pairs, desc="raft", unit="pair", disable=not progress):
        try:
            oracle, others, how = _resolve(chat, collection, pair, options)
        except StoreError:
            missing[pair.source] = missing.get(pair.source, 0) + 1
            continue
        how_found[how] = how_found.get(how, 0) + 1
        resolved.append((pair, oracle, others))
    summary: dict[str, Any] = {
        "collection": collection,
        "dataset": dataset,
        **asdict(options),
        "k": options.depth,
        "retriever": options.retriever or chat.retrieval_for(collection)[0],
        "sources_per_prompt": options.distractors + 1,
        "pairs": len(pairs),
        "examples": len(resolved),
        "skipped": {"source_not_in_collection": sum(missing.values())} if missing else {},
        "missing_sources": sorted(missing),
        "oracle_found_by": how_found,
    }
    if not resolved:
        raise RaftError(
            f"no pair of {dataset or 'the input'} has a source in collection {collection!r} "
            f"(missing: {', '.join(sorted(missing)[:5])})"
        )
    rng = random.Random(options.seed)
    with_oracle = set(rng.sample(range(len(resolved)), round(options.oracle_share * len(resolved))))
    examples, short = [], 0
    for index, (pair, oracle, others) in enumerate(resolved):
        present = index in with_oracle
        wanted = options.distractors + (0 if present else 1)
        if len(others) > wanted:
            others = [others[i] for i in sorted(rng.sample(range(len(others)), wanted))]
        short += len(others) < wanted
        number = None
        if present:
            position = rng.randrange(len(others) + 1)
            others = [*others[:position], oracle, *others[position:]]
            number = position + 1
        prompt = chat.compose(pair.question, "rag", sources=others)
        answer = {"role": "assistant", "content": cite(pair.answer, number)}
        examples.append(RaftExample(pair, others, number, [*prompt, answer]))
    summary |= {"with_oracle": len(with_oracle), "without_oracle": len(resolved) - len(with_oracle)}
    summary["short_of_distractors"] = short
    return RaftData(examples, summary)


def build_raft_examples(
    chat: ChatService,
    collection: str,
    pairs: list[QAPair],
    *,
    oracle_share: float = 0.8,
    distractors: int = 3,
    k: int | None = None,
    retriever: str | None = None,
    seed: int = 0,
) -> list[dict]:
    """The SFT records (``{"messages": [...], "raft": {...}}``) of ``build_raft_data``."""
    options = RaftOptions(oracle_share, distractors, k, retriever, seed)
    return build_raft_data(chat, collection, pairs, options=options).records()


def write_raft_dataset(
    chat: ChatService,
    collection: str,
    pairs: list[QAPair],
    path: Path,
    *,
    options: RaftOptions | None = None,
    dataset: str = "",
    progress: bool = False,
) -> Path:
    """Build the RAFT examples and write them as SFT JSONL to ``path``; returns ``path``.

    For the summary as well, call ``build_raft_data`` and its ``write``.
    """
    data = build_raft_data(
        chat, collection, pairs, options=options, dataset=dataset, progress=progress
    )
    return data.write(path)


def load_pairs(datasets_dir: Path, data: str) -> tuple[list[QAPair], list[str]]:
    """The training pairs ``data`` names, and one problem message per bad line.

    A QA file (JSONL or CSV of question, answer, optional source, chunk_id, chunk) gives
    all its pairs, its bad lines named and skipped; otherwise ``data`` is a dataset under
    ``datasets_dir`` and gives its train split. Raises ``RaftError`` for a missing file
    and ``DatasetNotFound`` for an unknown dataset.
    """
    path = Path(data)
    if path.is_file():
        return read_pairs(path)
    if "/" in data or path.suffix.lower() in (".jsonl", ".json", ".csv"):
        raise RaftError(f"{data}: no such file")
    return DatasetStore(datasets_dir).get(data).split("train"), []


def longest_example(records: list[dict[str, Any]], base_model: str) -> int:
    """Tokens of the longest record (chat template applied) with ``base_model``'s tokenizer."""
    tokenizer = load_tokenizer(base_model)
    return max(
        len(
            tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        for r in records
    )


def train_raft(
    args: SFTArgs,
    chat: ChatService,
    registry: AdapterRegistry,
    runs_dir: Path,
    *,
    collection: str,
    pairs: list[QAPair],
    output: Path,
    options: RaftOptions | None = None,
    dataset: str = "",
    progress: bool = True,
) -> Manifest:
    """Build RAFT data, write it to ``output`` and train ``args`` on it with ``train_sft``.

    ``args.dataset`` is replaced by ``output``; ``args.max_length`` is raised to the
    longest example when shorter (a truncated prompt would lose its answer). The
    manifest's metrics record the summary under ``raft``. Raises what
    ``build_raft_data`` and ``train_sft`` raise; a taken name is refused first.
    """
    registry.check_free(args.name, args.overwrite)
    data = build_raft_data(
        chat, collection, pairs, options=options, dataset=dataset, progress=progress
    )
    longest = longest_example(data.records(), args.base_model)
    args = replace(args, dataset=str(data.write(output)), max_length=max(args.max_length, longest))
    summary = {**data.summary, "longest_example_tokens": longest, "max_length": args.max_length}
    if progress:
        tqdm.write(
            f"raft: {summary['examples']} examples ({summary['with_oracle']} with the oracle) "
            f"in {args.dataset}; longest {longest} tokens, max_length {args.max_length}",
            file=sys.stderr,
        )
    return train_sft(args, registry, runs_dir, extra_metrics={"raft": summary})
