"""Reward model, DPO and PPO on a tiny model: weights change, metrics are finite, bad
input is refused."""

from __future__ import annotations

import json
import math

import pytest

from training.config import DPOArgs, PPOArgs, RewardArgs, validate
from training.data import DatasetError
from training.dpo import train_dpo
from training.ppo import gae, train_ppo
from training.preferences import load_preferences, render_pairs, split_pairs
from training.registry import AdapterRegistry, RegistryError
from training.reward import load_reward, train_reward

SYSTEM = {"role": "system", "content": "Answer from the sources and cite them."}


def _pairs(count: int) -> list[dict]:
    rows = []
    for i in range(count):
        user = {
            "role": "user",
            "content": f"Sources: [1] The port is {8000 + i}.\n\nQuestion: which port? ({i})",
        }
        rows.append(
            {
                "prompt": [SYSTEM, user] if i % 2 else f"Which port is number {i}?",
                "chosen": f"The port is {8000 + i} [1].",
                "rejected": "Probably some port, I guess.",
            }
        )
    return rows


def _write(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model):
    """A reward adapter trained once for the tests that need a reward source."""
    root = tmp_path_factory.mktemp("rlhf")
    registry = AdapterRegistry(root / "adapters")
    data = _write(root / "prefs.jsonl", _pairs(12))
    args = validate(
        RewardArgs(
            name="tiny-reward",
            dataset=data,
            base_model=tiny_model,
            max_steps=3,
            batch_size=4,
            logging_steps=1,
            learning_rate=1e-3,
            max_length=128,
        )
    )
    manifest = train_reward(args, registry, root / "runs")
    return registry, root, data, manifest


def _finite(values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def test_reward_model_trains_reports_heldout_accuracy_and_scores_text(trained, tiny_model):
    registry, _, _, manifest = trained
    assert manifest.kind == "reward" and manifest.metrics["max_weight_change"] > 0
    assert (
        manifest.metrics["heldout_pairs"] == 2
        and 0 <= manifest.metrics["heldout_pairwise_accuracy"] <= 1
    )
    assert _finite(r["loss"] for r in manifest.metrics["loss_curve"])
    scores = load_reward(registry, "tiny-reward", policy_base=tiny_model)(
        ["The port is 8000 [1].", "no idea"]
    )
    assert len(scores) == 2 and _finite(scores)
    assert "tiny-reward" not in registry.generative()  # a reward model is not a chat adapter


def test_dpo_changes_the_policy_and_judges_the_heldout_prompts(trained, tiny_model):
    registry, root, data, _ = trained
    args = validate(
        DPOArgs(
            name="tiny-dpo",
            dataset=data,
            base_model=tiny_model,
            max_steps=2,
            batch_size=4,
            logging_steps=1,
            learning_rate=1e-3,
            max_length=128,
            reward="tiny-reward",
            max_new_tokens=4,
        )
    )
    manifest = train_dpo(args, registry, root / "runs")
    assert (manifest.kind, manifest.method) == ("lora", "dpo")
    assert manifest.metrics["max_weight_change"] > 0 and manifest.metrics["steps"] == 2
    assert _finite(r["loss"] for r in manifest.metrics["curve"] if "loss" in r)
    assert (
        0 <= manifest.metrics["win_rate_vs_base"] <= 1 and manifest.metrics["judged_prompts"] == 2
    )
    assert (registry.path("tiny-dpo") / "adapter_config.json").exists()


def test_ppo_steps_change_the_policy_and_log_finite_reward_kl_and_loss(trained, tiny_model):
    registry, root, _, _ = trained
    prompts = _write(
        root / "prompts.jsonl", [{"prompt": f"The film number {i} was"} for i in range(8)]
    )
    args = validate(
        PPOArgs(
            name="tiny-ppo",
            dataset=prompts,
            base_model=tiny_model,
            reward="tiny-reward",
            max_steps=2,
            batch_size=4,
            mini_batch_size=2,
            ppo_epochs=2,
            logging_steps=1,
            learning_rate=1e-2,
            max_new_tokens=5,
            eval_prompts=4,
        )
    )
    manifest = train_ppo(args, registry, root / "runs")
    assert (manifest.kind, manifest.method) == ("lora", "ppo")
    assert manifest.metrics["max_weight_change"] > 0
    curve = manifest.metrics["curve"]
    assert [r["step"] for r in curve] == [1, 2]
    assert all(
        _finite(r[k] for k in ("reward", "kl", "loss", "policy_loss", "value_loss")) for r in curve
    )
    m = manifest.metrics
    assert _finite(
        [m["heldout_mean_reward_before"], m["heldout_mean_reward_after"], m["heldout_kl_from_base"]]
    )
    logged = [
        json.loads(line)
        for line in (root / "runs" / "tiny-ppo" / "log.jsonl").read_text().splitlines()
    ]
    assert len(logged) == 2 and "eta_s" in logged[0]


def test_gae_with_lambda_one_is_the_reward_to_go():
    import torch

    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    advantages, returns = gae(rewards, torch.zeros(1, 4), mask, gamma=1.0, lam=1.0)
    assert advantages.tolist() == [[1.0, 1.0, 1.0, 0.0]] and returns.tolist() == advantages.tolist()


def test_bad_pairs_are_reported_by_line_and_nothing_is_registered(tmp_path, trained, tiny_model):
    registry, *_ = trained
    before = sorted(m.name for m in registry.list())
    rows = _pairs(3) + [
        {"prompt": "Q?", "chosen": "same", "rejected": "same"},
        {"prompt": "", "chosen": "a", "rejected": "b"},
        {"prompt": "Q?", "chosen": "a"},
    ]
    data = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DatasetError) as error:
        train_dpo(
            validate(DPOArgs(name="bad-dpo", dataset=data, base_model=tiny_model)),
            registry,
            tmp_path,
        )
    message = str(error.value)
    assert "3 bad preference pair(s)" in message
    assert "line 4: 'chosen' and 'rejected' are identical" in message
    assert "line 5: empty 'prompt'" in message and "line 6: missing field(s) rejected" in message
    pairs, skipped = load_preferences(tmp_path / "bad.jsonl", skip_invalid=True)
    assert len(pairs) == 3 and len(skipped) == 3
    assert sorted(m.name for m in registry.list()) == before


def test_long_prompts_are_cut_from_the_start_and_counted(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    pairs, _ = load_preferences_from(
        [
            {
                "prompt": "filler words " * 200 + "Question: which port?",
                "chosen": "8000 [1].",
                "rejected": "no idea",
            }
        ]
        + _pairs(2)
    )
    rendered = render_pairs(pairs, tokenizer, max_length=64)
    assert rendered.truncated == 1
    assert rendered.rows[0]["prompt"].endswith("Question: which port?")
    assert len(tokenizer(rendered.rows[0]["prompt"] + "8000 [1].")["input_ids"]) <= 64


def load_preferences_from(rows):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.jsonl"
        _write(path, rows)
        return load_preferences(path)


def test_split_is_seeded_and_disjoint():
    items = list(range(50))
    train, held = split_pairs(items, 0.2, seed=7)
    assert (
        len(held) == 10
        and not set(train) & set(held)
        and split_pairs(items, 0.2, seed=7) == (train, held)
    )


def test_reward_from_another_base_model_is_refused(trained, tmp_path, tiny_model):
    registry, *_ = trained
    with pytest.raises(RegistryError, match="trained on base model"):
        load_reward(registry, "tiny-reward", policy_base=str(tmp_path / "other-model"))
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": "hello there"}])
    args = validate(
        PPOArgs(
            name="mismatch-ppo",
            dataset=prompts,
            base_model=str(tmp_path / "other-model"),
            reward="tiny-reward",
        )
    )
    with pytest.raises(RegistryError):
        train_ppo(args, registry, tmp_path / "runs")
    assert not registry.exists("mismatch-ppo")


@pytest.fixture
def cli_env(trained, monkeypatch):
    from tests.conftest import REPO

    registry, root, *_ = trained
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("RAGTUNE_ADAPTERS_DIR", str(registry.root))
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "fake")
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["train", "reward"],
        ["train", "dpo"],
        ["train", "ppo"],
        ["reward", "score"],
        ["prefs", "sample"],
    ],
)
def test_rlhf_commands_explain_themselves(command):
    from typer.testing import CliRunner

    from app.cli.main import cli

    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_cli_refuses_a_bad_pair_file_with_line_numbers_and_scores_answers(
    cli_env, tiny_model, tmp_path
):
    from typer.testing import CliRunner

    from app.cli.main import cli

    runner = CliRunner()
    bad = _write(tmp_path / "bad.jsonl", [{"prompt": "Q?", "chosen": "same", "rejected": "same"}])
    result = runner.invoke(
        cli,
        [
            "train",
            "dpo",
            "--dataset",
            bad,
            "--name",
            "cli-dpo",
            "--set",
            f"base_model={tiny_model}",
        ],
    )
    assert (
        result.exit_code == 2 and "line 1: 'chosen' and 'rejected' are identical" in result.output
    )
    assert "Traceback" not in result.output
    answers = _write(
        tmp_path / "answers.jsonl",
        [
            {"prompt": "Which port?", "response": "8000 [1]."},
            {"prompt": "Which port?", "chosen": "8000 [1].", "rejected": "?"},
        ],
    )
    scored = runner.invoke(
        cli, ["reward", "score", "--adapter", "tiny-reward", "--file", answers, "--json"]
    )
    assert scored.exit_code == 0, scored.output
    payload = json.loads(scored.stdout)
    assert (
        payload["lines"] == 2
        and "response_score" in payload["scores"][0]
        and "pairwise_accuracy" in payload
    )
