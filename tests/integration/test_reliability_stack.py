"""Load, engine crash and full restart, on a `ragtune serve` stack of this module's own.

The stack admits 8 generations and queues 16, so 32 clients overload it on purpose. Its
engine is then killed mid-stream (kill -9 of vLLM's process group): the client gets a
clear error, /healthz says so, serve restarts the engine, and the same seeded questions
give the same answers. Finally serve itself is restarted: collections, adapters and A/B
votes are still there and the answers are still the same. Run by `make test-reliability`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter

import httpx
import openai
import psutil
import pytest

from app.generation.engine import SERVER_MODULE
from evals.votes import VoteStore
from tests.integration.conftest import Stack, make_stack, wait_healthy

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
QUESTION = [{"role": "user", "content": "Which command ingests documents?"}]
MODELS = ("base", "rel-lora", "rag:docs")


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory) -> Stack:
    stack = make_stack(
        tmp_path_factory.mktemp("reliability") / "data",
        RAGTUNE_API__MAX_CONCURRENT="8",
        RAGTUNE_API__MAX_QUEUE="16",
        RAGTUNE_API__RETRY_AFTER_S="1",
    )
    trained = stack.ragtune(
        "train",
        "sft",
        "--config",
        "configs/train/sft_lora.yaml",
        "--name",
        "rel-lora",
        "--max-steps",
        "2",
        "--set",
        "forgetting_check=false",
        "--set",
        "batch_size=2",
        "--json",
        timeout=900,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    votes = VoteStore(stack.data_dir / "votes.sqlite3")
    votes.vote(
        votes.add_comparison(
            "Which command ingests?", "rag", "zero-shot", "ragtune ingest", "no idea"
        ),
        "a",
    )
    stack.start()
    yield stack
    if stack.serve and stack.serve.poll() is None:
        stack.stop()


def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.app_url}/v1", api_key="none", max_retries=0, timeout=300)


def answers(stack: Stack) -> dict[str, str]:
    """Greedy, seeded answers of every kind of model (base, LoRA adapter, RAG)."""
    return {
        model: client(stack)
        .chat.completions.create(
            model=model, messages=QUESTION, temperature=0, seed=0, max_tokens=24
        )
        .choices[0]
        .message.content
        for model in MODELS
    }


def engine_process(stack: Stack) -> psutil.Process:
    for child in psutil.Process(stack.serve.pid).children(recursive=True):
        if SERVER_MODULE in child.cmdline():
            return child
    raise AssertionError("no vLLM server process under ragtune serve")


@pytest.fixture(scope="module")
def seeded_answers(own_stack) -> dict[str, str]:
    return answers(own_stack)


def test_200_requests_from_32_clients_answer_or_get_503_and_memory_stays_bounded(
    own_stack, seeded_answers
):
    app = psutil.Process(own_stack.serve.pid)
    rss_before, peak = app.memory_info().rss, [0]
    outcomes: Counter = Counter()
    issued, lock, done = [0], threading.Lock(), threading.Event()

    def watch_memory() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], app.memory_info().rss)

    def one_client(index: int) -> None:
        with httpx.Client(base_url=own_stack.app_url, timeout=300) as http:
            while True:
                with lock:
                    if issued[0] >= 200:
                        return
                    issued[0] += 1
                body = {
                    "model": "base",
                    "messages": [{"role": "user", "content": f"Count to {index}."}],
                    "max_tokens": 12,
                    "stream": index % 2 == 0,
                }
                response = http.post("/v1/chat/completions", json=body)
                if response.status_code == 503:
                    assert int(response.headers["retry-after"]) >= 1
                    time.sleep(int(response.headers["retry-after"]))
                else:
                    assert response.status_code == 200, response.text
                    assert "error" not in response.text, response.text[-500:]
                outcomes[response.status_code] += 1

    watcher = threading.Thread(target=watch_memory)
    watcher.start()
    clients = [threading.Thread(target=one_client, args=(i,)) for i in range(32)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=900)
    done.set()
    watcher.join()
    print(
        f"outcomes {dict(outcomes)}; app RSS {rss_before / 2**20:.0f} MB before, peak "
        f"{peak[0] / 2**20:.0f} MB"
    )
    assert sum(outcomes.values()) == 200 and set(outcomes) <= {200, 503}
    assert outcomes[200] >= 8 and outcomes[503] >= 1  # both answering and shedding happened
    assert peak[0] - rss_before < 300 * 2**20, (
        "the app's memory grew by more than 300 MB under load"
    )
    assert httpx.get(f"{own_stack.app_url}/healthz", timeout=10).status_code == 200
    metrics = httpx.get(f"{own_stack.app_url}/metrics", timeout=10).text
    assert 'ragtune_errors_total{reason="overloaded"}' in metrics


def test_engine_killed_mid_stream_gives_a_clear_error_and_is_restarted(own_stack, seeded_answers):
    stream = client(own_stack).chat.completions.create(
        model="base",
        messages=QUESTION,
        max_tokens=2000,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    chunks = iter(stream)
    for _ in range(3):
        next(chunks)
    engine = engine_process(own_stack)
    os.killpg(engine.pid, signal.SIGKILL)
    with pytest.raises(openai.APIError, match="not reachable"):
        for _ in chunks:
            pass
    health = httpx.get(f"{own_stack.app_url}/healthz", timeout=10)
    assert health.status_code == 503 and health.json()["generator"] is False
    assert wait_healthy(own_stack, 600, own_stack.serve), own_stack.serve_log.read_text()[-3000:]
    assert "restarting it" in own_stack.serve_log.read_text()
    assert engine_process(own_stack).pid != engine.pid
    assert answers(own_stack) == seeded_answers  # the adapter is loaded back on its first request


def test_collections_adapters_and_votes_survive_a_full_restart(own_stack, seeded_answers):
    own_stack.stop()
    own_stack.start()
    http = httpx.Client(base_url=own_stack.app_url, timeout=60)
    assert "docs" in [c["name"] for c in http.get("/v1/collections").json()["data"]]
    assert "rel-lora" in [a["name"] for a in http.get("/v1/adapters").json()["data"]]
    exported = own_stack.ragtune(
        "prefs", "export", "--output", str(own_stack.data_dir / "prefs.jsonl"), "--json"
    )
    assert exported.returncode == 0 and json.loads(exported.stdout)["pairs"] == 1, exported.stderr
    assert answers(own_stack) == seeded_answers
